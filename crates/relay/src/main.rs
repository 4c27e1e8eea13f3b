//! `tabnode-relay`: the native peer browser nodes dial.
//!
//! It listens on WebSocket (browsers cannot dial raw TCP), serves circuit relay v2 so a browser
//! can be reached through a reservation, and is a gossip hub: it subscribes to every topic a
//! peer subscribes to, since gossipsub only forwards topics a node is itself subscribed to.
//!
//! Once listening it prints one line per address to stdout, `RELAY_MULTIADDR=<addr>/p2p/<id>`;
//! logs go to stderr (`RUST_LOG`). SIGINT or SIGTERM stop it cleanly.

use std::time::Duration;

use futures::StreamExt;
use libp2p::gossipsub::{self, IdentTopic, MessageAuthenticity, ValidationMode};
use libp2p::identity::Keypair;
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{identify, noise, ping, relay, yamux, Multiaddr};
use tokio::signal::unix::{signal, SignalKind};

const USAGE: &str = "usage: tabnode-relay [--listen MULTIADDR]... [--key-file PATH]
  --listen    address to listen on (default /ip4/127.0.0.1/tcp/9090/ws); port 0 picks a free one
  --key-file  ed25519 key of the relay (created if missing), so its peer id survives restarts";

#[derive(NetworkBehaviour)]
struct Behaviour {
    relay: relay::Behaviour,
    gossipsub: gossipsub::Behaviour,
    identify: identify::Behaviour,
    ping: ping::Behaviour,
}

struct Args {
    listen: Vec<Multiaddr>,
    key_file: Option<std::path::PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        listen: Vec::new(),
        key_file: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--listen" => {
                let value = it.next().ok_or("--listen needs a multiaddr")?;
                args.listen.push(
                    value
                        .parse()
                        .map_err(|e| format!("--listen {value}: {e}"))?,
                );
            }
            "--key-file" => {
                args.key_file = Some(it.next().ok_or("--key-file needs a path")?.into())
            }
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if args.listen.is_empty() {
        args.listen
            .push("/ip4/127.0.0.1/tcp/9090/ws".parse().expect("valid"));
    }
    Ok(args)
}

/// Loads the relay's key, creating it on first start.
fn load_key(path: Option<&std::path::Path>) -> Result<Keypair, String> {
    let Some(path) = path else {
        return Ok(Keypair::generate_ed25519());
    };
    match std::fs::read(path) {
        Ok(bytes) => {
            Keypair::from_protobuf_encoding(&bytes).map_err(|e| format!("{}: {e}", path.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = Keypair::generate_ed25519();
            let bytes = key.to_protobuf_encoding().map_err(|e| e.to_string())?;
            std::fs::write(path, bytes).map_err(|e| format!("{}: {e}", path.display()))?;
            Ok(key)
        }
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

fn behaviour(key: &Keypair) -> Result<Behaviour, Box<dyn std::error::Error + Send + Sync>> {
    let gossip = gossipsub::ConfigBuilder::default()
        .validation_mode(ValidationMode::Strict)
        .max_transmit_size(1024 * 1024)
        .heartbeat_interval(Duration::from_millis(500))
        // Graft every browser on a topic (up to a few dozen): the relay is the hub they meet at.
        .mesh_n_low(8)
        .mesh_n(16)
        .mesh_n_high(32)
        .gossip_lazy(8)
        .mesh_outbound_min(0)
        .build()?;
    Ok(Behaviour {
        relay: relay::Behaviour::new(key.public().to_peer_id(), relay::Config::default()),
        gossipsub: gossipsub::Behaviour::new(MessageAuthenticity::Signed(key.clone()), gossip)?,
        identify: identify::Behaviour::new(identify::Config::new(
            "/tabnode/0.1.0".into(),
            key.public(),
        )),
        ping: ping::Behaviour::new(ping::Config::new()),
    })
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("tabnode-relay: {e}");
            }
            eprintln!("{USAGE}");
            std::process::exit(if e.is_empty() { 0 } else { 2 });
        }
    };
    if let Err(e) = run(args).await {
        eprintln!("tabnode-relay: {e}");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let key = load_key(args.key_file.as_deref())?;
    let mut swarm = libp2p::SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_tcp(
            Default::default(),
            noise::Config::new,
            yamux::Config::default,
        )?
        .with_websocket(noise::Config::new, yamux::Config::default)
        .await?
        .with_behaviour(behaviour)?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(3600)))
        .build();
    for addr in &args.listen {
        swarm.listen_on(addr.clone())?;
    }
    let peer_id = *swarm.local_peer_id();
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sigterm = signal(SignalKind::terminate())?;
    loop {
        tokio::select! {
            _ = sigint.recv() => break,
            _ = sigterm.recv() => break,
            event = swarm.select_next_some() => match event {
                SwarmEvent::NewListenAddr { address, .. } => {
                    use std::io::Write;
                    let mut out = std::io::stdout().lock();
                    writeln!(out, "RELAY_MULTIADDR={address}/p2p/{peer_id}")?;
                    out.flush()?;
                }
                SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Subscribed { peer_id: peer, topic })) => {
                    tracing::info!(%peer, %topic, "peer subscribed");
                    if let Err(e) = swarm.behaviour_mut().gossipsub.subscribe(&IdentTopic::new(topic.as_str())) {
                        tracing::warn!(%topic, "cannot subscribe: {e}");
                    }
                }
                SwarmEvent::ConnectionEstablished { peer_id: peer, endpoint, .. } => {
                    tracing::info!(%peer, addr = %endpoint.get_remote_address(), "connected");
                }
                SwarmEvent::ConnectionClosed { peer_id: peer, cause, .. } => {
                    tracing::info!(%peer, ?cause, "disconnected");
                }
                _ => {}
            }
        }
    }
    tracing::info!("stopping");
    Ok(())
}
