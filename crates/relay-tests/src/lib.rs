//! The relay's service tests and load test. The relay is a Cargo workspace of its own
//! (`crates/relay`, libp2p 0.57 with WebRTC-direct), so its tests, which drive it with tabnode
//! peers on libp2p 0.56, live here and run the binary `make relay` builds.

pub mod harness;

use std::path::PathBuf;
use std::time::Duration;

use libp2p::identity::Keypair;
use libp2p::swarm::NetworkBehaviour;
use libp2p::{identify, noise, relay, yamux, Swarm};

/// What tabnode peers say in identify (the relay tells relays from its peers by it).
pub fn identify(key: &Keypair) -> identify::Behaviour {
    identify::Behaviour::new(identify::Config::new("/tabnode/0.1.0".into(), key.public()))
}

/// A native peer over TCP and WebSocket (Noise, yamux), as the tests drive the relay; it closes
/// a connection after `idle` without streams.
pub async fn peer_swarm<B: NetworkBehaviour>(
    idle: Duration,
    behaviour: impl FnOnce(&Keypair) -> B,
) -> Swarm<B> {
    libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            Default::default(),
            noise::Config::new,
            yamux::Config::default,
        )
        .expect("TCP builds")
        .with_websocket(noise::Config::new, yamux::Config::default)
        .await
        .expect("WebSocket builds")
        .with_behaviour(|key| behaviour(key))
        .expect("the behaviour builds")
        .with_swarm_config(|c| c.with_idle_connection_timeout(idle))
        .build()
}

/// [`peer_swarm`] with the circuit relay v2 client, to take reservations and dial circuits.
pub async fn relay_client_swarm<B: NetworkBehaviour>(
    idle: Duration,
    behaviour: impl FnOnce(&Keypair, relay::client::Behaviour) -> B,
) -> Swarm<B> {
    libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            Default::default(),
            noise::Config::new,
            yamux::Config::default,
        )
        .expect("TCP builds")
        .with_websocket(noise::Config::new, yamux::Config::default)
        .await
        .expect("WebSocket builds")
        .with_relay_client(noise::Config::new, yamux::Config::default)
        .expect("the relay client builds")
        .with_behaviour(|key, relay| behaviour(key, relay))
        .expect("the behaviour builds")
        .with_swarm_config(|c| c.with_idle_connection_timeout(idle))
        .build()
}

/// The value of the sample `name` (no labels, or its labels written out) in a Prometheus text
/// exposition, as the relay's `/metrics` serves it; 0 if it is not there.
pub fn metric(body: &str, name: &str) -> f64 {
    body.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

/// The `tabnode-relay` binary: `TABNODE_RELAY` if set, else the one `make relay` builds into
/// `release/` of the target directory (`CARGO_TARGET_DIR` if set, else the top-level `target`).
pub fn relay_binary() -> PathBuf {
    let path = std::env::var_os("TABNODE_RELAY").map_or_else(
        || {
            let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
                || PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../target")),
                PathBuf::from,
            );
            target.join("release/tabnode-relay")
        },
        PathBuf::from,
    );
    assert!(
        path.is_file(),
        "no relay binary at {}: build it with `make relay`",
        path.display()
    );
    path
}
