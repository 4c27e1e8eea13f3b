//! The node's libp2p glue: it moves bytes on gossip topics and knows nothing of their meaning.
//!
//! [`start`] builds a swarm (in the browser WebSocket and WebRTC-direct to relays, circuits
//! through them, and WebRTC between pages; natively TCP, WebSocket and circuits), dials the
//! relays, and runs it in a task of its own. The node talks to it through a [`NetHandle`]
//! (subscribe, publish) and hears from it through a stream of [`NetEvent`]s.

mod addr;
pub mod direct;
pub mod envelope;
mod links;
mod prefixed;
mod redial;
// Used by the page's WebRTC only; top-level so that their tests run natively too.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
mod sdp;
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
mod signaling;
mod swarm;
pub use swarm::{message_id, peer_gossip_config};
#[cfg(target_arch = "wasm32")]
pub(crate) mod webrtc;

use futures::channel::mpsc;

/// The longest peer id text parsed: base58 of a multihash (an ed25519 peer's is 52 characters).
/// Base58 decoding takes time quadratic in the length, and the text comes from callers.
pub const MAX_PEER_ID_CHARS: usize = 128;

/// The longest multiaddr text parsed (its `/p2p/` part is base58, as a peer id).
pub const MAX_ADDR_CHARS: usize = 1024;

/// `text` as a peer id, refused unparsed when longer than [`MAX_PEER_ID_CHARS`].
pub fn parse_peer_id(text: &str) -> Result<libp2p::PeerId, NetError> {
    let bad = |reason: String| NetError::BadAddress {
        addr: text.chars().take(MAX_PEER_ID_CHARS).collect(),
        reason,
    };
    if text.len() > MAX_PEER_ID_CHARS {
        return Err(bad(format!(
            "{} characters, a peer id is at most {MAX_PEER_ID_CHARS}",
            text.len()
        )));
    }
    text.parse().map_err(|e| bad(format!("not a peer id: {e}")))
}

/// `text` as a multiaddr, refused unparsed when longer than [`MAX_ADDR_CHARS`].
pub fn parse_addr(text: &str) -> Result<libp2p::Multiaddr, NetError> {
    let bad = |reason: String| NetError::BadAddress {
        addr: text.chars().take(MAX_ADDR_CHARS).collect(),
        reason,
    };
    if text.len() > MAX_ADDR_CHARS {
        return Err(bad(format!(
            "{} characters, an address is at most {MAX_ADDR_CHARS}",
            text.len()
        )));
    }
    addr::parse(text).map_err(bad)
}

/// What the network layer needs to start.
#[derive(Debug, Clone)]
pub struct NetConfig {
    /// Relay multiaddrs ending in `/p2p/<peer id>`; redialled with backoff when a connection drops.
    pub relays: Vec<String>,
    /// Seed of the node's libp2p ed25519 identity, so its peer id is stable across reloads.
    pub identity_ed25519_secret: [u8; 32],
    /// Open direct WebRTC links (libp2p's private-to-private transport) to the peers heard on
    /// this node's topics (in the page only), and send over them instead of the relay while
    /// they are up (see [`direct`]).
    pub direct: bool,
    /// STUN/TURN URLs for those links (none: host candidates only, enough on one network).
    pub ice_servers: Vec<String>,
}

/// What happened on the network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetEvent {
    Connected {
        peer: String,
        via: Via,
    },
    Disconnected {
        peer: String,
    },
    /// A gossip message on a topic this node subscribes to (never one it published itself).
    Message {
        topic: String,
        data: Vec<u8>,
        source: Option<String>,
    },
    /// A peer subscribed to a topic.
    PeerSubscribed {
        peer: String,
        topic: String,
    },
    /// The relay accepted this node's reservation: it can be dialled through the relay
    /// (`<relay address>/p2p-circuit/p2p/<this node>`) while the connection lasts.
    Reserved {
        relay: String,
    },
    /// A direct WebRTC link to `peer` opened: traffic for it goes there.
    DirectOpened {
        peer: String,
    },
    /// The direct link to `peer` closed: traffic for it goes through the relay again.
    DirectClosed {
        peer: String,
    },
    /// Something failed that the caller may want to show (a dial, a publish).
    Error(String),
}

/// What a connection runs over, from the address it was made to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// `/ws` or `/wss` (a page to a relay, or a native peer).
    Websocket,
    /// `/webrtc-direct/certhash/…`: a page to a relay over WebRTC, no WebSocket.
    WebrtcDirect,
    /// Plain TCP (native peers only).
    Tcp,
    /// Through another peer's relay (`/p2p-circuit`).
    Circuit,
    /// `…/webrtc/p2p/…`: straight to another page (libp2p's WebRTC private-to-private).
    Webrtc,
}

impl Via {
    pub fn of(addr: &libp2p::Multiaddr) -> Via {
        use libp2p::multiaddr::Protocol;
        let mut via = Via::Tcp;
        for protocol in addr.iter() {
            match protocol {
                Protocol::WebRTC => return Via::Webrtc,
                Protocol::P2pCircuit => via = Via::Circuit,
                Protocol::WebRTCDirect => via = Via::WebrtcDirect,
                Protocol::Ws(_) | Protocol::Wss(_) => via = Via::Websocket,
                _ => {}
            }
        }
        via
    }

    /// As `connections()` names it in the page.
    pub fn as_str(self) -> &'static str {
        match self {
            Via::Websocket => "websocket",
            Via::WebrtcDirect => "webrtc-direct",
            Via::Tcp => "tcp",
            Via::Circuit => "circuit",
            Via::Webrtc => "webrtc",
        }
    }
}

/// Why a network call was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetError {
    #[error("invalid relay address {addr:?}: {reason}")]
    BadAddress { addr: String, reason: String },
    #[error("cannot build the network: {0}")]
    Build(String),
    #[error("the network task has stopped")]
    Stopped,
}

pub(crate) enum Command {
    Subscribe(String, envelope::TopicKey),
    Unsubscribe(String),
    Publish(String, Vec<u8>),
    SendTo(String, String, Vec<u8>),
    DialPeer(libp2p::PeerId),
}

/// Talks to the swarm task; cheap to clone.
#[derive(Clone)]
pub struct NetHandle {
    commands: mpsc::UnboundedSender<Command>,
    peer_id: String,
}

impl NetHandle {
    pub fn peer_id(&self) -> String {
        self.peer_id.clone()
    }

    fn send(&self, command: Command) -> Result<(), NetError> {
        self.commands
            .unbounded_send(command)
            .map_err(|_| NetError::Stopped)
    }

    /// Joins `topic`. What is published on it goes out in an envelope under `key`, which says
    /// who sent it to those holding the key only ([`envelope`]); what arrives in any other
    /// envelope is dropped.
    pub fn subscribe(&self, topic: &str, key: envelope::TopicKey) -> Result<(), NetError> {
        self.send(Command::Subscribe(topic.to_owned(), key))
    }

    pub fn unsubscribe(&self, topic: &str) -> Result<(), NetError> {
        self.send(Command::Unsubscribe(topic.to_owned()))
    }

    /// Sends a message on a topic for one peer: over its direct link if one is open, else
    /// published on the topic like any other (the others drop what they do not need).
    pub fn send_to(&self, peer: &str, topic: &str, data: Vec<u8>) -> Result<(), NetError> {
        self.send(Command::SendTo(peer.to_owned(), topic.to_owned(), data))
    }

    /// Dials `peer` through the reservation it holds at a relay this node is connected to
    /// (`<relay>/p2p-circuit/p2p/<peer>`, circuit relay v2): a connection between two nodes
    /// that cannot reach each other directly, reported as [`NetEvent::Connected`] with
    /// [`Via::Circuit`]. Before any relay is connected, the dial waits for the first. The relay
    /// bounds such circuits in time and bytes.
    pub fn dial_peer(&self, peer: &str) -> Result<(), NetError> {
        let peer = parse_peer_id(peer)?;
        self.send(Command::DialPeer(peer))
    }

    /// Publishes on a topic. With no peer on the topic yet, the message waits in a bounded
    /// queue and goes out when one subscribes.
    pub fn publish(&self, topic: &str, data: Vec<u8>) -> Result<(), NetError> {
        self.send(Command::Publish(topic.to_owned(), data))
    }
}

fn keypair_of(seed: [u8; 32]) -> Result<libp2p::identity::Keypair, NetError> {
    libp2p::identity::Keypair::ed25519_from_bytes(seed).map_err(|e| NetError::Build(e.to_string()))
}

/// The peer id a node started with `identity_ed25519_secret = seed` has, without starting it
/// (a node offline says who it will be on the network).
pub fn peer_id_of(seed: [u8; 32]) -> Result<String, NetError> {
    Ok(keypair_of(seed)?.public().to_peer_id().to_string())
}

/// Starts the network task; in the browser it runs on the page's event loop, natively on the
/// current tokio runtime.
pub fn start(
    config: NetConfig,
) -> Result<(NetHandle, mpsc::UnboundedReceiver<NetEvent>), NetError> {
    let relays = config
        .relays
        .iter()
        .map(|addr| parse_addr(addr))
        .collect::<Result<Vec<_>, _>>()?;
    let keypair = keypair_of(config.identity_ed25519_secret)?;
    let peer_id = keypair.public().to_peer_id().to_string();
    let (swarm, control) = swarm::build(keypair, config.ice_servers)?;
    let (commands, command_rx) = mpsc::unbounded();
    let (events_tx, events) = mpsc::unbounded();
    let direct = links::Direct::new(&peer_id, config.direct, control);
    let task = swarm::run(swarm, relays, direct, command_rx, events_tx);
    #[cfg(target_arch = "wasm32")]
    wasm_bindgen_futures::spawn_local(task);
    #[cfg(not(target_arch = "wasm32"))]
    tokio::spawn(task);
    Ok((NetHandle { commands, peer_id }, events))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(not(target_arch = "wasm32"))]
    #[tokio::test]
    async fn a_nodes_peer_id_is_known_before_it_starts() {
        let seed = [9; 32];
        let (handle, _events) = start(NetConfig {
            relays: Vec::new(),
            identity_ed25519_secret: seed,
            direct: false,
            ice_servers: Vec::new(),
        })
        .unwrap();
        assert_eq!(peer_id_of(seed).unwrap(), handle.peer_id());
        assert_ne!(peer_id_of([8; 32]).unwrap(), handle.peer_id());
    }

    #[test]
    fn long_peer_ids_and_addresses_are_refused_before_they_are_decoded() {
        let key = libp2p::identity::Keypair::ed25519_from_bytes([7; 32]).unwrap();
        let peer = key.public().to_peer_id();
        assert_eq!(parse_peer_id(&peer.to_string()).unwrap(), peer);
        let relay = format!("/ip4/127.0.0.1/tcp/9090/ws/p2p/{peer}");
        assert!(parse_addr(&relay).is_ok());

        // 100,000 characters of base58 took seconds to decode (issue 19, low 10).
        let started = std::time::Instant::now();
        let long = "z".repeat(100_000);
        let err = parse_peer_id(&long).unwrap_err();
        assert!(err.to_string().contains("at most"), "{err}");
        let err = parse_addr(&format!("/ip4/127.0.0.1/tcp/1/p2p/{long}")).unwrap_err();
        assert!(err.to_string().contains("at most"), "{err}");
        assert!(started.elapsed() < std::time::Duration::from_millis(500));
    }
}
