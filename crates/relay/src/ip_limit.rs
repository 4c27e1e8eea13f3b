//! A cap on connections from one IP address. libp2p's `connection-limits` counts per peer id,
//! which a client mints for free; an IP costs more to change. Connections are refused before the
//! handshake, so an over-limit IP does not cost the relay a noise handshake.
//!
//! Behind a reverse proxy every browser shares the proxy's address: raise the limit there.

use std::collections::HashMap;
use std::convert::Infallible;
use std::fmt;
use std::net::IpAddr;
use std::task::{Context, Poll};

use libp2p::core::transport::PortUse;
use libp2p::core::Endpoint;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::{
    dummy, ConnectionClosed, ConnectionDenied, ConnectionId, FromSwarm, ListenFailure,
    NetworkBehaviour, THandler, THandlerInEvent, THandlerOutEvent, ToSwarm,
};
use libp2p::{Multiaddr, PeerId};

/// The reason a connection was refused, for the swarm's `ListenError::Denied`.
#[derive(Debug, Clone, Copy)]
pub struct IpLimitExceeded {
    pub ip: IpAddr,
    pub limit: u32,
}

impl fmt::Display for IpLimitExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} already has {} connections (the limit per IP)",
            self.ip, self.limit
        )
    }
}

impl std::error::Error for IpLimitExceeded {}

/// Counts incoming connections per IP, from their first byte until they close.
pub struct Behaviour {
    limit: u32,
    by_connection: HashMap<ConnectionId, IpAddr>,
    by_ip: HashMap<IpAddr, u32>,
}

impl Behaviour {
    pub fn new(limit: u32) -> Self {
        Behaviour {
            limit,
            by_connection: HashMap::new(),
            by_ip: HashMap::new(),
        }
    }

    fn release(&mut self, connection: ConnectionId) {
        let Some(ip) = self.by_connection.remove(&connection) else {
            return;
        };
        if let Some(n) = self.by_ip.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                self.by_ip.remove(&ip);
            }
        }
    }
}

fn ip_of(addr: &Multiaddr) -> Option<IpAddr> {
    addr.iter().find_map(|p| match p {
        Protocol::Ip4(ip) => Some(IpAddr::V4(ip)),
        Protocol::Ip6(ip) => Some(IpAddr::V6(ip)),
        _ => None,
    })
}

impl NetworkBehaviour for Behaviour {
    type ConnectionHandler = dummy::ConnectionHandler;
    type ToSwarm = Infallible;

    fn handle_pending_inbound_connection(
        &mut self,
        connection_id: ConnectionId,
        _local_addr: &Multiaddr,
        remote_addr: &Multiaddr,
    ) -> Result<(), ConnectionDenied> {
        let Some(ip) = ip_of(remote_addr) else {
            return Ok(());
        };
        let count = self.by_ip.entry(ip).or_insert(0);
        if *count >= self.limit {
            return Err(ConnectionDenied::new(IpLimitExceeded {
                ip,
                limit: self.limit,
            }));
        }
        *count += 1;
        self.by_connection.insert(connection_id, ip);
        Ok(())
    }

    fn handle_established_inbound_connection(
        &mut self,
        _connection_id: ConnectionId,
        _peer: PeerId,
        _local_addr: &Multiaddr,
        _remote_addr: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(dummy::ConnectionHandler)
    }

    fn handle_established_outbound_connection(
        &mut self,
        _connection_id: ConnectionId,
        _peer: PeerId,
        _addr: &Multiaddr,
        _role_override: Endpoint,
        _port_use: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(dummy::ConnectionHandler)
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        match event {
            // A handshake that failed, or a connection another limit refused.
            FromSwarm::ListenFailure(ListenFailure { connection_id, .. }) => {
                self.release(connection_id)
            }
            FromSwarm::ConnectionClosed(ConnectionClosed { connection_id, .. }) => {
                self.release(connection_id)
            }
            _ => {}
        }
    }

    fn on_connection_handler_event(
        &mut self,
        _peer: PeerId,
        _connection: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        match event {}
    }

    fn poll(&mut self, _: &mut Context<'_>) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_over_the_limit_and_frees_on_failure() {
        let mut b = Behaviour::new(2);
        let local: Multiaddr = "/ip4/127.0.0.1/tcp/1/ws".parse().unwrap();
        let a: Multiaddr = "/ip4/10.0.0.1/tcp/5/ws".parse().unwrap();
        let other: Multiaddr = "/ip4/10.0.0.2/tcp/5/ws".parse().unwrap();
        let (c1, c2, c3) = (
            ConnectionId::new_unchecked(1),
            ConnectionId::new_unchecked(2),
            ConnectionId::new_unchecked(3),
        );
        assert!(b.handle_pending_inbound_connection(c1, &local, &a).is_ok());
        assert!(b.handle_pending_inbound_connection(c2, &local, &a).is_ok());
        let denied = b
            .handle_pending_inbound_connection(c3, &local, &a)
            .unwrap_err();
        assert!(denied.downcast_ref::<IpLimitExceeded>().is_some());
        assert!(b
            .handle_pending_inbound_connection(c3, &local, &other)
            .is_ok());
        b.release(c1);
        assert!(b
            .handle_pending_inbound_connection(ConnectionId::new_unchecked(4), &local, &a)
            .is_ok());
        assert_eq!(b.by_ip.values().sum::<u32>(), 3);
    }
}
