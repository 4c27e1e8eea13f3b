//! `tabnode-relay`: the native peer browser nodes dial.
//!
//! It listens on WebSocket and on WebRTC-direct (browsers cannot dial raw TCP; over WebRTC-direct
//! a page dials the UDP address with the certificate's hash in it), serves circuit relay v2 so a
//! browser can be reached through a reservation, and is a gossip hub: it subscribes to every topic a
//! peer subscribes to, since gossipsub only forwards topics a node is itself subscribed to.
//!
//! Once listening it prints one line per address to stdout, `RELAY_MULTIADDR=<addr>/p2p/<id>`,
//! and `RELAY_METRICS=<url>` when `--metrics` is set; logs go to stderr. SIGINT or SIGTERM stop
//! it cleanly. It keeps no state but its key: reservations, circuits and subscriptions are
//! made again by peers when they reconnect, so a restart (or another relay) loses nothing.

mod config;
mod gossip;
mod ip_limit;
mod metrics;

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use libp2p::connection_limits::{self, ConnectionLimits};
use libp2p::gossipsub::{
    self, MessageAuthenticity, PeerScoreParams, PeerScoreThresholds, TopicHash, ValidationMode,
};
use libp2p::identity::Keypair;
use libp2p::metrics::Recorder;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::{ConnectionDenied, ListenError, NetworkBehaviour, SwarmEvent};
use libp2p::{identify, noise, ping, relay, yamux, Multiaddr, PeerId, Swarm};
use prometheus_client::registry::Registry;
use tokio::signal::unix::{signal, SignalKind};

use config::{Config, ConfigError, Limits, LogFormat};
use metrics::Metrics;

const PROTOCOL_VERSION: &str = "/tabnode/0.1.0";
/// Identify's agent string: how relays of one network recognise each other.
const AGENT: &str = concat!("tabnode-relay/", env!("CARGO_PKG_VERSION"));
/// Room in a gossip frame for what surrounds the payload (signature, key, topic, seqno).
/// A frame over payload + this is cut off by gossipsub's codec before it is parsed.
const FRAME_OVERHEAD: usize = 64 * 1024;

#[derive(NetworkBehaviour)]
struct Behaviour {
    ip_limit: ip_limit::Behaviour,
    limits: connection_limits::Behaviour,
    relay: relay::Behaviour,
    gossipsub: gossip::Gossipsub,
    identify: identify::Behaviour,
    ping: ping::Behaviour,
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

/// Wraps one of libp2p's rate limiters to count its refusals: the relay's denial events say only
/// "resource limit", and this tells a rate limit from a count limit.
struct Noting {
    inner: Box<dyn relay::RateLimiter>,
    refusals: Arc<AtomicUsize>,
}

impl relay::RateLimiter for Noting {
    fn try_next(&mut self, peer: PeerId, addr: &Multiaddr, now: Instant) -> bool {
        // libp2p's limiters key by the exact IP: count an IPv6 /64 as one address.
        let ok = self
            .inner
            .try_next(peer, &ip_limit::counted_addr(addr), now);
        if !ok {
            self.refusals.fetch_add(1, Ordering::Relaxed);
        }
        ok
    }
}

/// Loads the WebRTC-direct certificate (PEM), creating it on first start; without a path, a fresh
/// one (and so a new `/certhash/`) each start.
fn load_certificate(
    path: Option<&std::path::Path>,
) -> Result<libp2p_webrtc::tokio::Certificate, String> {
    use libp2p_webrtc::tokio::Certificate;
    let generate = || Certificate::generate(&mut rand::rng()).map_err(|e| e.to_string());
    let Some(path) = path else {
        return generate();
    };
    let named = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
    match std::fs::read_to_string(path) {
        Ok(pem) => Certificate::from_pem(&pem).map_err(|e| named(&e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let cert = generate()?;
            std::fs::write(path, cert.serialize_pem()).map_err(|e| named(&e))?;
            Ok(cert)
        }
        Err(e) => Err(named(&e)),
    }
}

/// Rate-limit refusals not yet matched with the relay's denial event.
#[derive(Default, Clone)]
struct RateRefusals {
    reservations: Arc<AtomicUsize>,
    circuits: Arc<AtomicUsize>,
}

impl RateRefusals {
    /// Whether the latest denial was a rate limit's (taking one from the count if so).
    fn take(counter: &AtomicUsize) -> bool {
        counter
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok()
    }
}

fn relay_config(limits: &Limits, refusals: &RateRefusals) -> relay::Config {
    let mut config = relay::Config {
        max_reservations: limits.max_reservations,
        max_reservations_per_peer: limits.max_reservations_per_peer,
        reservation_duration: limits.reservation_duration,
        reservation_rate_limiters: Vec::new(),
        max_circuits: limits.max_circuits,
        max_circuits_per_peer: limits.max_circuits_per_peer,
        max_circuit_duration: limits.max_circuit_duration,
        max_circuit_bytes: limits.max_circuit_bytes,
        circuit_src_rate_limiters: Vec::new(),
    };
    // Per peer id, libp2p's own defaults (30 in a burst, then one every 2 minutes).
    let thirty = NonZeroU32::new(30).expect("30 > 0");
    config = config
        .reservation_rate_per_peer(thirty, Duration::from_secs(120))
        .circuit_src_per_peer(thirty, Duration::from_secs(120));
    if let Some(rate) = NonZeroU32::new(limits.reservation_rate_per_ip) {
        config = config.reservation_rate_per_ip(rate, Duration::from_secs(60) / rate.get());
    }
    if let Some(rate) = NonZeroU32::new(limits.circuit_rate_per_ip) {
        config = config.circuit_src_per_ip(rate, Duration::from_secs(60) / rate.get());
    }
    let noting = |limiters: Vec<Box<dyn relay::RateLimiter>>, refusals: &Arc<AtomicUsize>| {
        limiters
            .into_iter()
            .map(|inner| {
                Box::new(Noting {
                    inner,
                    refusals: refusals.clone(),
                }) as Box<dyn relay::RateLimiter>
            })
            .collect()
    };
    config.reservation_rate_limiters =
        noting(config.reservation_rate_limiters, &refusals.reservations);
    config.circuit_src_rate_limiters = noting(config.circuit_src_rate_limiters, &refusals.circuits);
    config
}

fn behaviour(
    key: &Keypair,
    config: &Config,
    refusals: &RateRefusals,
) -> Result<Behaviour, Box<dyn std::error::Error + Send + Sync>> {
    let limits = &config.limits;
    let gossip = gossipsub::ConfigBuilder::default()
        // Peers publish anonymously (who sent a message travels sealed inside it, for members
        // only); ids come from the content, computed as the peers compute them.
        .validation_mode(ValidationMode::Anonymous)
        .message_id_fn(|message| gossip::message_id(&message.data))
        // The relay checks each message's size itself (see `on_gossip`), so that an oversize
        // one lowers its sender's score; frames beyond this are cut off by the codec.
        .validate_messages()
        .max_transmit_size(limits.max_message_bytes + FRAME_OVERHEAD)
        .connection_handler_queue_len(limits.gossip_queue)
        .heartbeat_interval(Duration::from_millis(500))
        // Graft every browser on a topic (up to a few dozen): the relay is the hub they meet at.
        .mesh_n_low(8)
        .mesh_n(16)
        .mesh_n_high(32)
        .gossip_lazy(8)
        .mesh_outbound_min(0)
        .build()?;
    let mut gossipsub = gossipsub::Behaviour::new_with_subscription_filter(
        MessageAuthenticity::Anonymous,
        gossip,
        gossip::subscription_filter(limits),
    )?;
    gossipsub.with_peer_score(
        PeerScoreParams {
            // Browsers behind one NAT share an IP: the per-IP connection limit covers that.
            ip_colocation_factor_weight: 0.0,
            ..PeerScoreParams::default()
        },
        PeerScoreThresholds::default(),
    )?;
    let peer_id = key.public().to_peer_id();
    Ok(Behaviour {
        ip_limit: ip_limit::Behaviour::new(limits.max_connections_per_ip),
        limits: connection_limits::Behaviour::new(
            ConnectionLimits::default()
                .with_max_established(Some(limits.max_connections))
                .with_max_established_per_peer(Some(limits.max_connections_per_peer))
                .with_max_pending_incoming(Some(limits.max_pending_connections)),
        ),
        relay: relay::Behaviour::new(peer_id, relay_config(limits, refusals)),
        gossipsub,
        identify: identify::Behaviour::new(
            identify::Config::new(PROTOCOL_VERSION.into(), key.public())
                .with_agent_version(AGENT.into()),
        ),
        ping: ping::Behaviour::new(ping::Config::new()),
    })
}

fn init_logs(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&config.log_level));
    let logs = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter);
    match config.log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().flatten_event(true).init(),
    }
}

#[tokio::main]
async fn main() {
    let config = match config::parse(std::env::args().skip(1)) {
        Ok(config) => config,
        Err(ConfigError::Help) => {
            println!("{}", config::USAGE);
            return;
        }
        Err(e) => {
            eprintln!("tabnode-relay: {e}");
            eprintln!("{}", config::USAGE);
            std::process::exit(2);
        }
    };
    init_logs(&config);
    if let Err(e) = run(config).await {
        tracing::error!("{e}");
        eprintln!("tabnode-relay: {e}");
        std::process::exit(1);
    }
}

/// Prints one line for scripts (`scripts/serve.mjs` reads them) and flushes it at once.
fn announce(line: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")?;
    out.flush()
}

async fn run(config: Config) -> Result<(), Box<dyn std::error::Error>> {
    let key = load_key(config.key_file.as_deref())?;
    let certificate = load_certificate(config.webrtc_cert.as_deref())?;
    let mut registry = Registry::default();
    let metrics = Metrics::new(&mut registry, &config.limits);
    let refusals = RateRefusals::default();
    let mut swarm = libp2p::SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_tcp(
            Default::default(),
            noise::Config::new,
            yamux::Config::default,
        )?
        // WebRTC-direct brings its own encryption (DTLS, then Noise) and multiplexing (data
        // channels); it serves the /udp/PORT/webrtc-direct listen addresses.
        .with_other_transport(|key| libp2p_webrtc::tokio::Transport::new(key.clone(), certificate))?
        // The builder goes on to WebSocket through DNS (so `--peer` may name a host, too).
        .with_dns()?
        .with_websocket(noise::Config::new, yamux::Config::default)
        .await?
        .with_bandwidth_metrics(&mut registry)
        .with_behaviour(|key| behaviour(key, &config, &refusals))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(3600)))
        .build();
    let registry = Arc::new(registry);
    let metrics_server = match config.metrics {
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| format!("--metrics {addr}: {e}"))?;
            let bound = listener.local_addr()?;
            announce(&format!("RELAY_METRICS=http://{bound}/metrics"))?;
            tracing::info!(addr = %bound, "metrics served at /metrics");
            Some(tokio::spawn(metrics::serve(listener, registry.clone())))
        }
        None => None,
    };
    let mut listeners = Vec::new();
    for addr in &config.listen {
        listeners.push(
            swarm
                .listen_on(addr.clone())
                .map_err(|e| format!("--listen {addr}: {e}"))?,
        );
    }
    for addr in &config.external {
        swarm.add_external_address(addr.clone());
    }
    let peer_id = *swarm.local_peer_id();
    tracing::info!(
        %peer_id,
        limits = ?config.limits,
        "relay starting"
    );
    let mut relay = Relay {
        swarm,
        metrics,
        peer_id,
        relays: config
            .peers
            .iter()
            .filter_map(|a| match a.iter().last() {
                Some(Protocol::P2p(p)) => Some(p),
                _ => None,
            })
            .collect(),
        peer_dials: config
            .peers
            .iter()
            .map(|a| (a.clone(), (Instant::now(), Duration::from_secs(1))))
            .collect(),
        advertise_listen: config.external.is_empty(),
        topics: HashMap::new(),
        joined: HashMap::new(),
        budgets: HashMap::new(),
        reservations: HashMap::new(),
        circuits: HashMap::new(),
        limits: config.limits.clone(),
        refusals,
    };
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = sigint.recv() => break,
            _ = sigterm.recv() => break,
            _ = tick.tick() => relay.tick(),
            event = relay.swarm.select_next_some() => relay.on_event(event)?,
        }
    }
    relay
        .shut_down(listeners, config.shutdown_grace, &mut sigint, &mut sigterm)
        .await;
    if let Some(server) = metrics_server {
        server.abort();
    }
    Ok(())
}

/// The swarm and what the relay keeps beside it: counts for metrics and refusal reasons, and
/// which peers are on which topic. All of it is rebuilt by peers after a restart.
struct Relay {
    swarm: Swarm<Behaviour>,
    metrics: Metrics,
    peer_id: PeerId,
    /// Other relays of the network: their subscriptions do not keep a topic alive here.
    relays: HashSet<PeerId>,
    /// `--peer` addresses: when to dial next, and the wait after that.
    peer_dials: HashMap<Multiaddr, (Instant, Duration)>,
    advertise_listen: bool,
    /// Topics the relay is on, and the (non-relay) peers on each.
    topics: HashMap<TopicHash, HashSet<PeerId>>,
    /// Topics joined for each (non-relay) peer, against `--max-topics-per-peer`.
    joined: HashMap<PeerId, usize>,
    /// What each peer that published lately may still publish.
    budgets: HashMap<PeerId, gossip::Budget>,
    /// Reservations held, per peer.
    reservations: HashMap<PeerId, usize>,
    /// Circuits open, per source peer.
    circuits: HashMap<PeerId, usize>,
    limits: Limits,
    refusals: RateRefusals,
}

/// Names a refused connection's limit, for logs and the `refused` metric.
fn denial_reason(cause: &ConnectionDenied) -> &'static str {
    if cause.downcast_ref::<ip_limit::IpLimitExceeded>().is_some() {
        return "max_connections_per_ip";
    }
    match cause.downcast_ref::<connection_limits::Exceeded>() {
        // connection-limits names its kind only in its message.
        Some(e) => {
            let text = e.to_string();
            if text.contains("per peer") {
                "max_connections_per_peer"
            } else if text.contains("pending") {
                "max_pending_connections"
            } else {
                "max_connections"
            }
        }
        None => "other",
    }
}

/// Why the relay refused a reservation or a circuit. It says only "resource limit": a rate
/// limiter noted its own refusals in `rate`, the peer's `own` count against `per_peer` tells the
/// per-peer limit (`limits[0]`), and the total (`limits[1]`) is what remains.
fn refusal_reason(
    status: relay::StatusCode,
    rate: &AtomicUsize,
    own: usize,
    per_peer: usize,
    limits: [&'static str; 2],
) -> &'static str {
    match status {
        relay::StatusCode::ResourceLimitExceeded if RateRefusals::take(rate) => "rate_limit",
        relay::StatusCode::ResourceLimitExceeded if own >= per_peer => limits[0],
        relay::StatusCode::ResourceLimitExceeded => limits[1],
        other => status_reason(other),
    }
}

fn status_reason(status: relay::StatusCode) -> &'static str {
    match status {
        relay::StatusCode::OK => "ok",
        relay::StatusCode::ReservationRefused => "reservation_refused",
        relay::StatusCode::ResourceLimitExceeded => "resource_limit",
        relay::StatusCode::PermissionDenied => "permission_denied",
        relay::StatusCode::ConnectionFailed => "connection_failed",
        relay::StatusCode::NoReservation => "no_reservation",
        relay::StatusCode::MalformedMessage => "malformed_message",
        relay::StatusCode::UnexpectedMessage => "unexpected_message",
    }
}

fn add(map: &mut HashMap<PeerId, usize>, peer: PeerId) {
    *map.entry(peer).or_insert(0) += 1;
}

fn remove(map: &mut HashMap<PeerId, usize>, peer: &PeerId) {
    if let Some(n) = map.get_mut(peer) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            map.remove(peer);
        }
    }
}

impl Relay {
    fn on_event(&mut self, event: SwarmEvent<BehaviourEvent>) -> std::io::Result<()> {
        self.metrics.libp2p.record(&event);
        match event {
            SwarmEvent::NewListenAddr { address, .. } => {
                announce(&format!("RELAY_MULTIADDR={address}/p2p/{}", self.peer_id))?;
                tracing::info!(%address, "listening");
                if self.advertise_listen {
                    self.swarm.add_external_address(address);
                }
            }
            SwarmEvent::ListenerError { error, .. } => {
                tracing::warn!(%error, "listener error");
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                endpoint,
                num_established,
                ..
            } => {
                self.count_connections();
                if let Some((_, wait)) = self.peer_dials.iter_mut().find_map(|(a, d)| {
                    matches!(a.iter().last(), Some(Protocol::P2p(p)) if p == peer_id).then_some(d)
                }) {
                    *wait = Duration::from_secs(1);
                }
                tracing::info!(
                    peer = %peer_id,
                    addr = %endpoint.get_remote_address(),
                    connection = %connection_id,
                    inbound = endpoint.is_listener(),
                    peer_connections = num_established.get(),
                    "connected"
                );
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                connection_id,
                num_established,
                cause,
                ..
            } => {
                self.count_connections();
                if num_established == 0 {
                    self.leave_all(&peer_id);
                }
                tracing::info!(
                    peer = %peer_id,
                    connection = %connection_id,
                    cause = cause.map(|c| c.to_string()),
                    "disconnected"
                );
            }
            SwarmEvent::IncomingConnectionError {
                send_back_addr,
                error,
                peer_id,
                ..
            } => match &error {
                ListenError::Denied { cause } => {
                    let reason = denial_reason(cause);
                    self.metrics.refuse("connection", reason);
                    tracing::info!(
                        addr = %send_back_addr,
                        peer = peer_id.map(|p| p.to_string()),
                        reason,
                        %cause,
                        "connection refused"
                    );
                }
                _ => tracing::debug!(addr = %send_back_addr, %error, "incoming connection failed"),
            },
            SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => {
                tracing::warn!(peer = peer_id.map(|p| p.to_string()), %error, "dial failed");
            }
            SwarmEvent::Behaviour(BehaviourEvent::Relay(event)) => {
                self.metrics.libp2p.record(&event);
                self.on_relay(event);
            }
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(event)) => {
                self.metrics.libp2p.record(&event);
                self.on_gossip(event);
            }
            SwarmEvent::Behaviour(BehaviourEvent::Identify(event)) => {
                self.metrics.libp2p.record(&event);
                if let identify::Event::Received { peer_id, info, .. } = event {
                    if info.agent_version.starts_with("tabnode-relay/")
                        && self.relays.insert(peer_id)
                    {
                        tracing::info!(peer = %peer_id, agent = %info.agent_version, "another relay");
                        self.leave_all(&peer_id);
                    }
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Ping(event)) => {
                self.metrics.libp2p.record(&event);
            }
            _ => {}
        }
        Ok(())
    }

    fn count_connections(&self) {
        let info = self.swarm.network_info();
        self.metrics.peers.set(info.num_peers() as i64);
        self.metrics
            .connections
            .set(i64::from(info.connection_counters().num_established()));
    }

    fn on_relay(&mut self, event: relay::Event) {
        #[allow(deprecated)]
        match event {
            relay::Event::ReservationReqAccepted {
                src_peer_id,
                renewed,
            } => {
                if !renewed {
                    add(&mut self.reservations, src_peer_id);
                    self.metrics.reservations_accepted.inc();
                }
                tracing::info!(peer = %src_peer_id, renewed, "reservation accepted");
            }
            relay::Event::ReservationReqDenied {
                src_peer_id,
                status,
            } => {
                let reason = refusal_reason(
                    status,
                    &self.refusals.reservations,
                    self.reservations.get(&src_peer_id).copied().unwrap_or(0),
                    self.limits.max_reservations_per_peer,
                    ["max_reservations_per_peer", "max_reservations"],
                );
                self.metrics.refuse("reservation", reason);
                tracing::info!(peer = %src_peer_id, reason, "reservation refused");
            }
            relay::Event::ReservationClosed { src_peer_id } => {
                remove(&mut self.reservations, &src_peer_id);
                tracing::info!(peer = %src_peer_id, "reservation closed");
            }
            relay::Event::ReservationTimedOut { src_peer_id } => {
                remove(&mut self.reservations, &src_peer_id);
                tracing::info!(peer = %src_peer_id, "reservation expired");
            }
            relay::Event::CircuitReqAccepted {
                src_peer_id,
                dst_peer_id,
            } => {
                add(&mut self.circuits, src_peer_id);
                self.metrics.circuits_opened.inc();
                tracing::info!(src = %src_peer_id, dst = %dst_peer_id, "circuit opened");
            }
            relay::Event::CircuitReqDenied {
                src_peer_id,
                dst_peer_id,
                status,
            } => {
                let reason = refusal_reason(
                    status,
                    &self.refusals.circuits,
                    self.circuits.get(&src_peer_id).copied().unwrap_or(0),
                    self.limits.max_circuits_per_peer,
                    ["max_circuits_per_peer", "max_circuits"],
                );
                self.metrics.refuse("circuit", reason);
                tracing::info!(src = %src_peer_id, dst = %dst_peer_id, reason, "circuit refused");
            }
            relay::Event::CircuitClosed {
                src_peer_id,
                dst_peer_id,
                error,
            } => {
                remove(&mut self.circuits, &src_peer_id);
                tracing::info!(
                    src = %src_peer_id,
                    dst = %dst_peer_id,
                    error = error.map(|e| e.to_string()),
                    "circuit closed"
                );
            }
            other => tracing::debug!(event = ?other, "relay"),
        }
        self.metrics
            .reservations
            .set(self.reservations.values().sum::<usize>() as i64);
        self.metrics
            .circuits
            .set(self.circuits.values().sum::<usize>() as i64);
    }

    /// Once a second: gossip scores for the metrics, budgets, and redials of `--peer` relays.
    fn tick(&mut self) {
        self.forget_full_budgets();
        let gossipsub = &self.swarm.behaviour().gossipsub;
        let penalised = self
            .swarm
            .connected_peers()
            .filter(|p| gossipsub.peer_score(p).is_some_and(|s| s < 0.0))
            .count();
        self.metrics.gossip_penalised_peers.set(penalised as i64);
        let now = Instant::now();
        let mut dials = Vec::new();
        for (addr, (next, wait)) in self.peer_dials.iter_mut() {
            let Some(Protocol::P2p(peer)) = addr.iter().last() else {
                continue;
            };
            if self.swarm.is_connected(&peer) || now < *next {
                continue;
            }
            *next = now + *wait;
            *wait = (*wait * 2).min(Duration::from_secs(60));
            dials.push(addr.clone());
        }
        for addr in dials {
            if let Err(e) = self.swarm.dial(addr.clone()) {
                tracing::warn!(%addr, "cannot dial the relay: {e}");
            }
        }
    }

    /// Closes the listeners, asks every peer to close, and waits up to `grace` for them (a
    /// second signal cuts the wait short).
    async fn shut_down(
        &mut self,
        listeners: Vec<libp2p::core::transport::ListenerId>,
        grace: Duration,
        sigint: &mut tokio::signal::unix::Signal,
        sigterm: &mut tokio::signal::unix::Signal,
    ) {
        let peers: Vec<PeerId> = self.swarm.connected_peers().copied().collect();
        tracing::info!(peers = peers.len(), ?grace, "stopping");
        for id in listeners {
            self.swarm.remove_listener(id);
        }
        for peer in peers {
            let _ = self.swarm.disconnect_peer_id(peer);
        }
        let deadline = tokio::time::sleep(grace);
        tokio::pin!(deadline);
        while self.swarm.network_info().num_peers() > 0 {
            tokio::select! {
                _ = &mut deadline => break,
                _ = sigint.recv() => break,
                _ = sigterm.recv() => break,
                event = self.swarm.select_next_some() => {
                    if let SwarmEvent::ConnectionClosed { .. } = event {
                        self.count_connections();
                    }
                }
            }
        }
        tracing::info!(
            peers_left = self.swarm.network_info().num_peers(),
            "stopped"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_relays_rate_limits_per_ip_count_an_ipv6_64_as_one() {
        let mut config = config::parse(["--reservation-rate-per-ip".to_owned(), "1".to_owned()])
            .unwrap()
            .limits;
        config.circuit_rate_per_ip = 1;
        let relay = relay_config(&config, &RateRefusals::default());
        let now = Instant::now();
        for mut limiters in [
            relay.reservation_rate_limiters,
            relay.circuit_src_rate_limiters,
        ] {
            let mut try_next = |addr: &str| {
                let addr: Multiaddr = addr.parse().unwrap();
                let peer = PeerId::random();
                limiters.iter_mut().all(|l| l.try_next(peer, &addr, now))
            };
            assert!(try_next("/ip6/2001:db8:0:1::1/tcp/1"));
            assert!(
                !try_next("/ip6/2001:db8:0:1::2/tcp/1"),
                "the same /64 again"
            );
            assert!(try_next("/ip6/2001:db8:0:2::1/tcp/1"));
        }
    }
}
