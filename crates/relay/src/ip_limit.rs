//! A cap on connections from one IP address. libp2p's `connection-limits` counts per peer id,
//! which a client mints for free; an IP costs more to change. Connections are refused before the
//! handshake, so an over-limit IP does not cost the relay a noise handshake.
//!
//! An IPv6 address is counted by its /64: one host is commonly given a whole /64 (SLAAC, privacy
//! addresses), so its exact addresses are as free as peer ids. IPv4-mapped addresses count as
//! the IPv4 address.
//!
//! Behind a reverse proxy every browser shares the proxy's address: raise the limit there.

use std::collections::HashMap;
use std::convert::Infallible;
use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
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

/// The address a limit counts: an IPv4 address as it is, an IPv6 one as its /64 (the low 64
/// bits zeroed), an IPv4-mapped IPv6 one as the IPv4 address.
pub fn counted_as(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from_bits(v6.to_bits() & !u128::from(u64::MAX))),
        v4 => v4,
    }
}

/// `addr` with its first IP component replaced by [`counted_as`] it, so that limiters keyed
/// by IP (libp2p's relay rate limiters) count a /64 as one.
pub fn counted_addr(addr: &Multiaddr) -> Multiaddr {
    let mut done = false;
    addr.iter()
        .map(|p| match p {
            Protocol::Ip4(ip) if !done => {
                done = true;
                Protocol::Ip4(ip)
            }
            Protocol::Ip6(ip) if !done => {
                done = true;
                match counted_as(IpAddr::V6(ip)) {
                    IpAddr::V4(v4) => Protocol::Ip4(v4),
                    IpAddr::V6(v6) => Protocol::Ip6(v6),
                }
            }
            other => other,
        })
        .collect()
}

fn ip_of(addr: &Multiaddr) -> Option<IpAddr> {
    addr.iter().find_map(|p| match p {
        Protocol::Ip4(ip) => Some(counted_as(IpAddr::V4(ip))),
        Protocol::Ip6(ip) => Some(counted_as(IpAddr::V6(ip))),
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

    #[test]
    fn ipv6_addresses_count_by_their_64_and_mapped_ipv4_as_ipv4() {
        let mut b = Behaviour::new(1);
        let local: Multiaddr = "/ip6/::1/tcp/1/ws".parse().unwrap();
        let pending = |b: &mut Behaviour, n: usize, addr: &str| {
            let addr: Multiaddr = addr.parse().unwrap();
            b.handle_pending_inbound_connection(ConnectionId::new_unchecked(n), &local, &addr)
        };
        assert!(pending(&mut b, 1, "/ip6/2001:db8:1:2::1/tcp/5/ws").is_ok());
        // Another address of the same /64: the same host, over the limit.
        let denied =
            pending(&mut b, 2, "/ip6/2001:db8:1:2:ffff:ffff:ffff:ffff/tcp/5/ws").unwrap_err();
        let denied = denied.downcast_ref::<IpLimitExceeded>().unwrap();
        assert_eq!(denied.ip.to_string(), "2001:db8:1:2::");
        // The next /64 is another.
        assert!(pending(&mut b, 3, "/ip6/2001:db8:1:3::1/tcp/5/ws").is_ok());
        // An IPv4 address and its mapped IPv6 form are one.
        assert!(pending(&mut b, 4, "/ip4/10.0.0.1/tcp/5/ws").is_ok());
        assert!(pending(&mut b, 5, "/ip6/::ffff:10.0.0.1/tcp/5/ws").is_err());
        assert_eq!(
            counted_addr(&"/ip6/2001:db8::7/tcp/5/p2p-circuit".parse().unwrap()).to_string(),
            "/ip6/2001:db8::/tcp/5/p2p-circuit"
        );
    }
}
