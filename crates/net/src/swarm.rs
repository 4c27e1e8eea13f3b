//! The swarm: transports per platform, the behaviours, and the task that drives them.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Duration;

use futures::channel::mpsc;
use futures::{FutureExt, StreamExt};
use libp2p::gossipsub::{self, IdentTopic, MessageAuthenticity, PublishError, ValidationMode};
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::{ConnectionId, NetworkBehaviour, SwarmEvent};
use libp2p::{
    identify, identity::Keypair, multiaddr::Protocol, ping, relay, Multiaddr, PeerId,
    StreamProtocol, Swarm,
};

use crate::direct::{self, Action, Links};
use crate::envelope::{self, TopicKey};
use crate::redial::Redial;
use crate::{prefixed, Command, NetError, NetEvent, Via};

/// Largest gossip message: deltas are batched well under it.
pub const MAX_MESSAGE_BYTES: usize = 1024 * 1024;
/// Messages kept per topic while no peer listens on it.
const MAX_QUEUED_PER_TOPIC: usize = 1024;
const PROTOCOL_VERSION: &str = "/tabnode/0.1.0";

#[derive(NetworkBehaviour)]
pub(crate) struct Behaviour {
    /// Circuit relay v2 client: a reservation at each relay, so this node can be dialled
    /// through it (`<relay>/p2p-circuit/p2p/<this node>`).
    relay_client: relay::client::Behaviour,
    gossipsub: gossipsub::Behaviour,
    identify: identify::Behaviour,
    ping: ping::Behaviour,
    /// Streams of our own protocols: WebRTC signalling (taken by the page's WebRTC transport)
    /// and the direct links' frames.
    streams: libp2p_stream::Behaviour,
}

/// The gossipsub settings of a tabnode peer (size limit aside): small meshes, since two
/// browsers and a relay must already form one, flood publishing, and anonymous messages with
/// ids from their content ([`message_id`]). The relay's load
/// test and tests take them to act as peers do.
pub fn peer_gossip_config() -> gossipsub::ConfigBuilder {
    let mut config = gossipsub::ConfigBuilder::default();
    config
        .heartbeat_interval(Duration::from_millis(500))
        .mesh_n_low(1)
        .mesh_n(3)
        .mesh_n_high(6)
        .mesh_outbound_min(0)
        .flood_publish(true)
        .validation_mode(ValidationMode::Anonymous)
        .message_id_fn(|message| message_id(&message.data));
    config
}

/// A gossip message's id: the first 20 bytes of the SHA-256 of its data. Messages are anonymous
/// (see [`envelope`]), so the id cannot be the author and sequence number; every envelope has a
/// fresh nonce, so two messages never share an id by accident. The relay computes the same.
pub fn message_id(data: &[u8]) -> gossipsub::MessageId {
    use sha2::Digest;
    gossipsub::MessageId::from(sha2::Sha256::digest(data)[..20].to_vec())
}

fn behaviour(
    key: &Keypair,
    relay_client: relay::client::Behaviour,
    streams: libp2p_stream::Behaviour,
) -> Result<Behaviour, NetError> {
    let config = peer_gossip_config()
        .max_transmit_size(MAX_MESSAGE_BYTES)
        .build()
        .map_err(|e| NetError::Build(format!("gossipsub config: {e}")))?;
    let gossipsub = gossipsub::Behaviour::new(MessageAuthenticity::Anonymous, config)
        .map_err(|e| NetError::Build(format!("gossipsub: {e}")))?;
    Ok(Behaviour {
        relay_client,
        gossipsub,
        identify: identify::Behaviour::new(identify::Config::new(
            PROTOCOL_VERSION.into(),
            key.public(),
        )),
        ping: ping::Behaviour::new(ping::Config::new()),
        streams,
    })
}

const IDLE: Duration = Duration::from_secs(3600);

/// The swarm, and the control its stream protocols are opened and taken with.
type Built = (Swarm<Behaviour>, libp2p_stream::Control);

#[cfg(target_arch = "wasm32")]
pub(crate) fn build(keypair: Keypair, ice_servers: Vec<String>) -> Result<Built, NetError> {
    use libp2p::core::{muxing::StreamMuxerBox, upgrade::Version, Transport};
    let err = |e: &dyn std::fmt::Display| NetError::Build(e.to_string());
    let streams = libp2p_stream::Behaviour::new();
    let control = streams.new_control();
    let signalling = control.clone();
    let (relayed, relay_client) = relay::client::new(keypair.public().to_peer_id());
    let swarm = libp2p::SwarmBuilder::with_existing_identity(keypair)
        .with_wasm_bindgen()
        .with_other_transport(|key| {
            // Page to page: libp2p's WebRTC (private-to-private), signalled over a relayed
            // connection. Tried first, so that a `…/p2p-circuit/webrtc/p2p/…` address is not
            // taken for a plain circuit.
            let webrtc = crate::webrtc::Transport::new(signalling, ice_servers)
                .map(|(peer, conn), _| (peer, StreamMuxerBox::new(conn)));
            let relayed = relayed
                .upgrade(Version::V1)
                .authenticate(libp2p::noise::Config::new(key)?)
                .multiplex(libp2p::yamux::Config::default())
                .map(|(peer, muxer), _| (peer, StreamMuxerBox::new(muxer)));
            let ws = libp2p::websocket_websys::Transport::default()
                .upgrade(Version::V1)
                .authenticate(libp2p::noise::Config::new(key)?)
                .multiplex(libp2p::yamux::Config::default())
                .map(|(peer, muxer), _| (peer, StreamMuxerBox::new(muxer)));
            // A relay's /webrtc-direct/certhash/… address: DTLS and Noise, data channels as
            // streams (the browser's RTCPeerConnection).
            let webrtc_direct = crate::webrtc::direct::Transport::new(key.clone())
                .map(|(peer, conn), _| (peer, StreamMuxerBox::new(conn)));
            Ok(webrtc
                .or_transport(relayed)
                .map(|either, _| either.into_inner())
                .or_transport(ws)
                .map(|either, _| either.into_inner())
                .or_transport(webrtc_direct)
                .map(|either, _| either.into_inner()))
        })
        .map_err(|e| err(&e))?
        .with_behaviour(|key| {
            behaviour(key, relay_client, streams)
                .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)
        })
        .map_err(|e| err(&e))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(IDLE))
        .build();
    Ok((swarm, control))
}

#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn build(keypair: Keypair, _ice_servers: Vec<String>) -> Result<Built, NetError> {
    use libp2p::core::{muxing::StreamMuxerBox, upgrade::Version, Transport};
    let err = |e: &dyn std::fmt::Display| NetError::Build(e.to_string());
    let streams = libp2p_stream::Behaviour::new();
    let control = streams.new_control();
    let swarm = libp2p::SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_other_transport(|key| {
            let tcp = libp2p::tcp::tokio::Transport::new(libp2p::tcp::Config::default());
            let ws = libp2p::websocket::Config::new(libp2p::tcp::tokio::Transport::new(
                libp2p::tcp::Config::default(),
            ));
            Ok(ws
                .or_transport(tcp)
                .upgrade(Version::V1)
                .authenticate(libp2p::noise::Config::new(key)?)
                .multiplex(libp2p::yamux::Config::default())
                .map(|(peer, muxer), _| (peer, StreamMuxerBox::new(muxer))))
        })
        .map_err(|e| err(&e))?
        .with_relay_client(libp2p::noise::Config::new, libp2p::yamux::Config::default)
        .map_err(|e| err(&e))?
        .with_behaviour(|key, relay_client| {
            behaviour(key, relay_client, streams)
                .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)
        })
        .map_err(|e| err(&e))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(IDLE))
        .build();
    Ok((swarm, control))
}

fn relay_peer(addr: &Multiaddr) -> Option<PeerId> {
    addr.iter().find_map(|p| match p {
        Protocol::P2p(peer) => Some(peer),
        _ => None,
    })
}

/// Largest frame sent on a direct link; larger messages take the relay.
const MAX_FRAME_BYTES: usize = 60 * 1024;
/// Frames waiting for a link's writer; past it (a link that cannot keep up) messages take the
/// relay instead, as for a peer with no link.
const MAX_QUEUED_FRAMES: usize = 256;
/// A peer heard on a topic within this long counts as on it (heads are announced every 5 s).
const HEARD_MS: u64 = 30_000;
/// How long a page that linked to this one may go unheard on every topic of this node before
/// the link is closed: a peer of no shared context gets no link.
const PROBATION_MS: u64 = 10_000;
/// The direct links' protocol: each side opens one stream to the other on their WebRTC
/// connection and writes frames ([`direct::encode_frame`]), each behind a varint length.
const FRAMES_PROTOCOL: &str = "/tabnode/frames/1.0.0";

/// The frame of a message for a direct link, if it is small enough to go on one.
fn frame(topic: &str, data: &[u8]) -> Option<Vec<u8>> {
    direct::encode_frame(topic, data).filter(|f| f.len() <= MAX_FRAME_BYTES)
}

/// Milliseconds on the wall clock: direct links time out and back off by it.
fn now_ms() -> u64 {
    #[cfg(target_arch = "wasm32")]
    return js_sys::Date::now() as u64;
    #[cfg(not(target_arch = "wasm32"))]
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn spawn(task: impl std::future::Future<Output = ()> + Send + 'static) {
    #[cfg(target_arch = "wasm32")]
    wasm_bindgen_futures::spawn_local(task);
    #[cfg(not(target_arch = "wasm32"))]
    tokio::spawn(task);
}

/// What the tasks reading and writing frames report.
enum FrameEvent {
    Frame {
        peer: PeerId,
        data: Vec<u8>,
    },
    /// A frame over [`MAX_FRAME_BYTES`] or with a malformed length.
    Bad {
        peer: PeerId,
    },
    /// The writer to `peer` stopped: its stream failed (or its queue was dropped).
    WriterGone {
        peer: PeerId,
    },
}

/// The direct path beside the relay: the links' policy, the WebRTC connections under them, and
/// who was heard on which topic (the peers a message for that topic is for).
pub(crate) struct Direct {
    enabled: bool,
    links: Links,
    heard: HashMap<String, HashMap<String, u64>>,
    /// The topics this node is on, with their envelope keys.
    subscribed: HashMap<String, TopicKey>,
    control: libp2p_stream::Control,
    /// The WebRTC connection with each linked peer.
    webrtc: HashMap<PeerId, ConnectionId>,
    /// Relayed connections with each peer; closed once a WebRTC connection takes over.
    circuits: HashMap<PeerId, HashSet<ConnectionId>>,
    /// Peers to dial over WebRTC once a relayed connection to them is up.
    awaiting_circuit: HashSet<PeerId>,
    /// Linked peers not heard on any topic of ours yet, since when.
    probation: HashMap<PeerId, u64>,
    /// The queue of each link's writer. A writer starts once no relayed connection to its peer
    /// is left, since a new stream goes on any connection to the peer.
    writers: HashMap<String, mpsc::Sender<Vec<u8>>>,
    incoming_frames: Option<libp2p_stream::IncomingStreams>,
    frame_tx: mpsc::UnboundedSender<FrameEvent>,
    frame_events: mpsc::UnboundedReceiver<FrameEvent>,
}

impl Direct {
    /// Links are made in the page only (natively there is no WebRTC transport).
    pub(crate) fn new(me: &str, enabled: bool, mut control: libp2p_stream::Control) -> Self {
        let enabled = enabled && cfg!(target_arch = "wasm32");
        let (frame_tx, frame_events) = mpsc::unbounded();
        let incoming_frames = enabled
            .then(|| control.accept(StreamProtocol::new(FRAMES_PROTOCOL)).ok())
            .flatten();
        Self {
            enabled,
            links: Links::new(me),
            heard: HashMap::new(),
            subscribed: HashMap::new(),
            control,
            webrtc: HashMap::new(),
            circuits: HashMap::new(),
            awaiting_circuit: HashSet::new(),
            probation: HashMap::new(),
            writers: HashMap::new(),
            incoming_frames,
            frame_tx,
            frame_events,
        }
    }

    /// Carries out what the links asked for.
    fn act(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        relays: &[Multiaddr],
        actions: Vec<Action>,
        emit: &impl Fn(NetEvent),
    ) {
        for action in actions {
            match action {
                Action::Dial { peer } => {
                    let Ok(peer) = peer.parse::<PeerId>() else {
                        continue;
                    };
                    if self.circuits.get(&peer).is_some_and(|c| !c.is_empty()) {
                        dial_webrtc(swarm, relays, peer);
                    } else {
                        // If no relay is connected the dial times out in the links' tick.
                        self.awaiting_circuit.insert(peer);
                        dial_through_relays(swarm, relays, peer, emit);
                    }
                }
                Action::Close { peer } => {
                    let Ok(peer_id) = peer.parse::<PeerId>() else {
                        continue;
                    };
                    self.awaiting_circuit.remove(&peer_id);
                    if let Some(connection) = self.webrtc.get(&peer_id) {
                        swarm.close_connection(*connection);
                    }
                    if self.writers.remove(&peer).is_some() {
                        emit(NetEvent::DirectClosed { peer });
                    }
                }
            }
        }
    }

    /// A gossip message on a topic from a peer we may link to.
    fn on_gossip(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        relays: &[Multiaddr],
        topic: &str,
        source: Option<&PeerId>,
        emit: &impl Fn(NetEvent),
    ) {
        let Some(source) = source.map(|p| p.to_string()) else {
            return;
        };
        let now = now_ms();
        self.heard
            .entry(topic.to_owned())
            .or_default()
            .insert(source.clone(), now);
        if self.enabled {
            let actions = self.links.heard_from(&source, now);
            self.act(swarm, relays, actions, emit);
        }
    }

    /// Whether `peer` was heard lately on a topic of ours: only such peers get a link.
    fn heard_lately(&self, peer: &str) -> bool {
        let now = now_ms();
        self.heard.values().any(|peers| {
            peers
                .get(peer)
                .is_some_and(|at| now.saturating_sub(*at) < HEARD_MS)
        })
    }

    /// Sends `data` on every open link to a peer on `topic`; true if that reached every peer
    /// heard on it lately, so the relay is not needed.
    fn send(&mut self, topic: &str, data: &[u8]) -> bool {
        if !self.enabled || self.writers.is_empty() {
            return false; // the common case while no link is up: nothing to copy
        }
        let now = now_ms();
        let Some(peers) = self.heard.get_mut(topic) else {
            return false;
        };
        peers.retain(|_, at| now.saturating_sub(*at) < HEARD_MS);
        let Some(frame) = frame(topic, data) else {
            return false;
        };
        let mut all = !peers.is_empty();
        for peer in peers.keys() {
            all &= self
                .writers
                .get_mut(peer)
                .is_some_and(|w| w.try_send(frame.clone()).is_ok());
        }
        all
    }

    /// Sends `data` on the open link to `peer`; false if there is none (or it is too large).
    fn send_one(&mut self, peer: &str, topic: &str, data: &[u8]) -> bool {
        let Some(writer) = self.writers.get_mut(peer) else {
            return false;
        };
        frame(topic, data).is_some_and(|f| writer.try_send(f).is_ok())
    }

    fn on_established(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        relays: &[Multiaddr],
        peer: PeerId,
        connection: ConnectionId,
        via: Via,
        emit: &impl Fn(NetEvent),
    ) {
        match via {
            Via::Circuit => {
                self.circuits.entry(peer).or_default().insert(connection);
                if self.webrtc.contains_key(&peer) {
                    swarm.close_connection(connection); // the direct one carries it
                } else if self.awaiting_circuit.remove(&peer) {
                    dial_webrtc(swarm, relays, peer);
                }
            }
            Via::Webrtc => {
                let name = peer.to_string();
                if !self.enabled || self.webrtc.contains_key(&peer) {
                    swarm.close_connection(connection); // a duplicate
                    return;
                }
                if !self.heard_lately(&name) {
                    // Not (yet) heard on a topic of ours: it has [`PROBATION_MS`] to show up
                    // there (the dialler may have heard us first), or the link is closed.
                    self.probation.insert(peer, now_ms());
                }
                self.webrtc.insert(peer, connection);
                self.awaiting_circuit.remove(&peer);
                let actions = self.links.opened(&name, now_ms());
                if !actions.is_empty() {
                    return self.act(swarm, relays, actions, emit);
                }
                // The relayed connection did its job (signalling); traffic goes direct now.
                let circuits = self.circuits.get(&peer).cloned().unwrap_or_default();
                for circuit in &circuits {
                    swarm.close_connection(*circuit);
                }
                if circuits.is_empty() {
                    self.start_writer(peer, emit);
                }
            }
            _ => {}
        }
    }

    fn on_closed(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        relays: &[Multiaddr],
        peer: PeerId,
        connection: ConnectionId,
        emit: &impl Fn(NetEvent),
    ) {
        if self.webrtc.get(&peer) == Some(&connection) {
            self.webrtc.remove(&peer);
            self.probation.remove(&peer);
            let name = peer.to_string();
            if self.writers.remove(&name).is_some() {
                emit(NetEvent::DirectClosed { peer: name.clone() });
            }
            let actions = self.links.closed(&name, now_ms());
            self.act(swarm, relays, actions, emit);
        } else if let Some(circuits) = self.circuits.get_mut(&peer) {
            circuits.remove(&connection);
            if circuits.is_empty() {
                self.circuits.remove(&peer);
                let waiting = self.webrtc.contains_key(&peer)
                    && !self.writers.contains_key(&peer.to_string());
                if waiting {
                    self.start_writer(peer, emit);
                }
            }
        }
    }

    /// A dial failed: a link being made to `peer` waits out a backoff.
    fn on_dial_failed(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        relays: &[Multiaddr],
        peer: PeerId,
        emit: &impl Fn(NetEvent),
    ) {
        if self.webrtc.contains_key(&peer) {
            return;
        }
        self.awaiting_circuit.remove(&peer);
        let actions = self.links.closed(&peer.to_string(), now_ms());
        self.act(swarm, relays, actions, emit);
    }

    /// Starts the task writing frames to `peer` on a stream of its WebRTC connection.
    fn start_writer(&mut self, peer: PeerId, emit: &impl Fn(NetEvent)) {
        let (tx, mut rx) = mpsc::channel::<Vec<u8>>(MAX_QUEUED_FRAMES);
        let mut control = self.control.clone();
        let events = self.frame_tx.clone();
        spawn(async move {
            if let Ok(mut stream) = control
                .open_stream(peer, StreamProtocol::new(FRAMES_PROTOCOL))
                .await
            {
                while let Some(frame) = rx.next().await {
                    if prefixed::write(&mut stream, &frame).await.is_err() {
                        break;
                    }
                }
            }
            let _ = events.unbounded_send(FrameEvent::WriterGone { peer });
        });
        self.writers.insert(peer.to_string(), tx);
        emit(NetEvent::DirectOpened {
            peer: peer.to_string(),
        });
    }

    /// A frames stream a peer opened: read only on its WebRTC connection's link.
    fn on_frames_stream(&mut self, peer: PeerId, mut stream: libp2p::Stream) {
        if !self.webrtc.contains_key(&peer) {
            return; // frames travel on direct links only
        }
        let events = self.frame_tx.clone();
        spawn(async move {
            loop {
                match prefixed::read(&mut stream, MAX_FRAME_BYTES).await {
                    Ok(Some(data)) => {
                        if events
                            .unbounded_send(FrameEvent::Frame { peer, data })
                            .is_err()
                        {
                            return;
                        }
                    }
                    Ok(None) => return,
                    Err(e) => {
                        if e.kind() == std::io::ErrorKind::InvalidData {
                            let _ = events.unbounded_send(FrameEvent::Bad { peer });
                        }
                        return;
                    }
                }
            }
        });
    }

    fn on_frame_event(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        relays: &[Multiaddr],
        event: FrameEvent,
        emit: &impl Fn(NetEvent),
    ) {
        let now = now_ms();
        let actions = match event {
            FrameEvent::Frame { peer, data } => {
                let name = peer.to_string();
                match direct::decode_frame(&data).filter(|(t, _)| self.subscribed.contains_key(t)) {
                    Some((topic, data)) => {
                        self.heard
                            .entry(topic.clone())
                            .or_default()
                            .insert(name.clone(), now);
                        emit(NetEvent::Message {
                            topic,
                            data,
                            source: Some(name),
                        });
                        Vec::new()
                    }
                    None => self.links.bad_frame(&name, now),
                }
            }
            FrameEvent::Bad { peer } => self.links.bad_frame(&peer.to_string(), now),
            FrameEvent::WriterGone { peer } => {
                let name = peer.to_string();
                if self.writers.get(&name).is_some_and(|w| w.is_closed()) {
                    self.links.closed(&name, now) // the link cannot carry frames: drop it
                } else {
                    Vec::new() // a writer since replaced
                }
            }
        };
        self.act(swarm, relays, actions, emit);
    }

    fn tick(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        relays: &[Multiaddr],
        emit: &impl Fn(NetEvent),
    ) {
        let now = now_ms();
        let actions = self.links.tick(now);
        self.act(swarm, relays, actions, emit);
        let on_probation: Vec<(PeerId, u64)> =
            self.probation.iter().map(|(p, t)| (*p, *t)).collect();
        for (peer, since) in on_probation {
            if self.heard_lately(&peer.to_string()) {
                self.probation.remove(&peer);
            } else if now.saturating_sub(since) >= PROBATION_MS {
                self.probation.remove(&peer);
                if let Some(connection) = self.webrtc.get(&peer) {
                    swarm.close_connection(*connection);
                }
            }
        }
    }
}

/// Dials `peer` over WebRTC, signalled on the relayed connection already up with it; the address
/// names a relay it is reachable through, as libp2p's spec writes it.
fn dial_webrtc(swarm: &mut Swarm<Behaviour>, relays: &[Multiaddr], peer: PeerId) {
    let through = relays
        .iter()
        .find(|a| relay_peer(a).is_some_and(|r| swarm.is_connected(&r)))
        .map(|a| a.clone().with(Protocol::P2pCircuit))
        .unwrap_or_else(Multiaddr::empty);
    let addr = through.with(Protocol::WebRTC).with(Protocol::P2p(peer));
    let opts = DialOpts::peer_id(peer)
        .addresses(vec![addr])
        .condition(PeerCondition::Always)
        .build();
    if let Err(e) = swarm.dial(opts) {
        tracing::debug!(%peer, "dialling over WebRTC: {e}");
    }
}

/// The swarm task: runs until the handle and the event receiver are both dropped.
pub(crate) async fn run(
    mut swarm: Swarm<Behaviour>,
    relays: Vec<Multiaddr>,
    mut direct: Direct,
    mut commands: mpsc::UnboundedReceiver<Command>,
    events: mpsc::UnboundedSender<NetEvent>,
) {
    let emit = |event: NetEvent| {
        let _ = events.unbounded_send(event);
    };
    #[cfg(target_arch = "wasm32")]
    if direct.enabled {
        // Take WebRTC offers from peers that reach us through a relay.
        if let Err(e) = swarm.listen_on(crate::webrtc::listen_address()) {
            emit(NetEvent::Error(format!("listening for WebRTC offers: {e}")));
        }
    }
    let mut queued: HashMap<String, VecDeque<Vec<u8>>> = HashMap::new();
    // The circuit listener (reservation) at each relay, while its connection is up.
    let mut circuits: HashMap<PeerId, libp2p::core::transport::ListenerId> = HashMap::new();
    let mut redial = Redial::new(swarm.local_peer_id().to_string());
    // Peers to dial through a relay as soon as one is connected.
    let mut waiting_dials: HashSet<PeerId> = HashSet::new();
    for addr in &relays {
        if let Err(e) = swarm.dial(addr.clone()) {
            emit(NetEvent::Error(format!("dialling {addr}: {e}")));
        }
    }
    let mut tick = futures_timer::Delay::new(Duration::from_secs(1)).fuse();
    loop {
        futures::select! {
            command = commands.next() => {
                let Some(command) = command else { return };
                match command {
                    Command::Subscribe(topic, key) => {
                        direct.subscribed.insert(topic.clone(), key);
                        if let Err(e) = swarm.behaviour_mut().gossipsub.subscribe(&IdentTopic::new(&topic)) {
                            emit(NetEvent::Error(format!("subscribing to {topic}: {e}")));
                        }
                    }
                    Command::Unsubscribe(topic) => {
                        direct.subscribed.remove(&topic);
                        direct.heard.remove(&topic);
                        swarm.behaviour_mut().gossipsub.unsubscribe(&IdentTopic::new(&topic));
                        queued.remove(&topic);
                    }
                    Command::SendTo(peer, topic, data) => {
                        if !direct.send_one(&peer, &topic, &data) {
                            if let Some(data) = publish(&mut swarm, &direct.subscribed, &topic, data, &emit) {
                                enqueue(&mut queued, topic, data);
                            }
                        }
                    }
                    Command::DialPeer(peer) => {
                        if !dial_through_relays(&mut swarm, &relays, peer, &emit) {
                            waiting_dials.insert(peer); // dialled once a relay is connected
                        }
                    }
                    Command::Publish(topic, data) => {
                        if direct.send(&topic, &data) {
                            continue; // every peer on the topic has it, directly
                        }
                        let waiting = queued.get(&topic).is_some_and(|q| !q.is_empty());
                        if waiting {
                            enqueue(&mut queued, topic, data);
                        } else if let Some(data) = publish(&mut swarm, &direct.subscribed, &topic, data, &emit) {
                            enqueue(&mut queued, topic, data);
                        }
                    }
                }
            }
            event = swarm.select_next_some() => match event {
                SwarmEvent::ConnectionEstablished { peer_id, connection_id, endpoint, .. } => {
                    let relay = relays.iter().find(|a| relay_peer(a) == Some(peer_id));
                    if let (Some(addr), false) = (relay, circuits.contains_key(&peer_id)) {
                        match swarm.listen_on(addr.clone().with(Protocol::P2pCircuit)) {
                            Ok(listener) => {
                                circuits.insert(peer_id, listener);
                            }
                            Err(e) => emit(NetEvent::Error(format!("reserving at {addr}: {e}"))),
                        }
                    }
                    // A peer that dialled us through our reservation or over WebRTC: that shows
                    // in the address we listened on, not in the one it came from.
                    let via = match &endpoint {
                        libp2p::core::ConnectedPoint::Listener { local_addr, .. }
                            if matches!(Via::of(local_addr), Via::Circuit | Via::Webrtc) => Via::of(local_addr),
                        _ => Via::of(endpoint.get_remote_address()),
                    };
                    emit(NetEvent::Connected {
                        peer: peer_id.to_string(),
                        via,
                    });
                    direct.on_established(&mut swarm, &relays, peer_id, connection_id, via, &emit);
                    if relay.is_some() {
                        for peer in std::mem::take(&mut waiting_dials) {
                            dial_through_relays(&mut swarm, &relays, peer, &emit);
                        }
                    }
                }
                SwarmEvent::ListenerClosed { listener_id, .. } => {
                    circuits.retain(|_, l| *l != listener_id);
                }
                SwarmEvent::Behaviour(BehaviourEvent::RelayClient(relay::client::Event::ReservationReqAccepted { relay_peer_id, renewal: false, .. })) => {
                    emit(NetEvent::Reserved { relay: relay_peer_id.to_string() });
                }
                SwarmEvent::ConnectionClosed { peer_id, connection_id, num_established, .. } => {
                    direct.on_closed(&mut swarm, &relays, peer_id, connection_id, &emit);
                    if num_established == 0 {
                        if let Some(listener) = circuits.remove(&peer_id) {
                            swarm.remove_listener(listener);
                        }
                        emit(NetEvent::Disconnected { peer: peer_id.to_string() });
                    }
                }
                SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => {
                    if let Some(peer) = peer_id {
                        direct.on_dial_failed(&mut swarm, &relays, peer, &emit);
                    }
                    emit(NetEvent::Error(format!("connection failed: {error}")));
                }
                SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message { message, .. })) => {
                    let topic = message.topic.into_string();
                    // Only an envelope under the topic's key tells who sent it; anything else
                    // is not from a member and is dropped here.
                    let opened = direct.subscribed.get(&topic).and_then(|key| envelope::unwrap(key, &message.data));
                    let Some((source, data)) = opened else { continue };
                    let data = data.to_vec();
                    direct.on_gossip(&mut swarm, &relays, &topic, Some(&source), &emit);
                    emit(NetEvent::Message { topic, data, source: Some(source.to_string()) });
                }
                SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Subscribed { peer_id, topic })) => {
                    let topic = topic.into_string();
                    flush(&mut swarm, &direct.subscribed, &mut queued, &topic, &emit);
                    emit(NetEvent::PeerSubscribed { peer: peer_id.to_string(), topic });
                }
                _ => {}
            },
            event = direct.frame_events.select_next_some() => direct.on_frame_event(&mut swarm, &relays, event, &emit),
            incoming = next_frames_stream(&mut direct.incoming_frames).fuse() => {
                if let Some((peer, stream)) = incoming {
                    direct.on_frames_stream(peer, stream);
                }
            }
            _ = tick => {
                tick = futures_timer::Delay::new(Duration::from_secs(1)).fuse();
                direct.tick(&mut swarm, &relays, &emit);
                let topics: Vec<String> = queued.keys().cloned().collect();
                for topic in topics {
                    flush(&mut swarm, &direct.subscribed, &mut queued, &topic, &emit);
                }
                redial_relays(&mut swarm, &relays, &mut redial);
            }
        }
    }
}

/// The next frames stream a peer opened; never, if this node takes none.
async fn next_frames_stream(
    incoming: &mut Option<libp2p_stream::IncomingStreams>,
) -> Option<(PeerId, libp2p::Stream)> {
    match incoming {
        Some(incoming) => incoming.next().await,
        None => futures::future::pending().await,
    }
}

/// Dials `peer` through its reservation at each relay this node is connected to; false if none
/// is connected yet.
fn dial_through_relays(
    swarm: &mut Swarm<Behaviour>,
    relays: &[Multiaddr],
    peer: PeerId,
    emit: &impl Fn(NetEvent),
) -> bool {
    let through: Vec<Multiaddr> = relays
        .iter()
        .filter(|a| relay_peer(a).is_some_and(|r| swarm.is_connected(&r)))
        .map(|a| {
            a.clone()
                .with(Protocol::P2pCircuit)
                .with(Protocol::P2p(peer))
        })
        .collect();
    if through.is_empty() {
        return false;
    }
    let opts = libp2p::swarm::dial_opts::DialOpts::peer_id(peer)
        .addresses(through)
        .build();
    if let Err(e) = swarm.dial(opts) {
        emit(NetEvent::Error(format!("dialling {peer}: {e}")));
    }
    true
}

/// Redials the relays this node is not connected to, when [`Redial`] says it is time.
fn redial_relays(swarm: &mut Swarm<Behaviour>, relays: &[Multiaddr], redial: &mut Redial) {
    let now = now_ms();
    for addr in relays {
        let Some(peer) = relay_peer(addr) else {
            continue;
        };
        let relay = addr.to_string();
        if swarm.is_connected(&peer) {
            redial.connected(&relay);
        } else if redial.due(&relay, now) {
            // A dial still under way (WebRTC-direct can take seconds) is not doubled.
            let opts = DialOpts::peer_id(peer)
                .addresses(vec![addr.clone()])
                .condition(PeerCondition::DisconnectedAndNotDialing)
                .build();
            let _ = swarm.dial(opts);
        }
    }
}

/// Publishes, in an envelope under the topic's key ([`envelope`]); gives the data back if no
/// peer is on the topic yet (to queue it).
fn publish(
    swarm: &mut Swarm<Behaviour>,
    keys: &HashMap<String, TopicKey>,
    topic: &str,
    data: Vec<u8>,
    emit: &impl Fn(NetEvent),
) -> Option<Vec<u8>> {
    let Some(key) = keys.get(topic) else {
        emit(NetEvent::Error(format!(
            "publishing on {topic}, which this node is not on"
        )));
        return None;
    };
    let wrapped = envelope::wrap(key, swarm.local_peer_id(), &data);
    match swarm
        .behaviour_mut()
        .gossipsub
        .publish(IdentTopic::new(topic), wrapped)
    {
        Ok(_) | Err(PublishError::Duplicate) => None,
        Err(PublishError::NoPeersSubscribedToTopic | PublishError::AllQueuesFull(_)) => Some(data),
        Err(e) => {
            emit(NetEvent::Error(format!("publishing on {topic}: {e}")));
            None
        }
    }
}

fn enqueue(queued: &mut HashMap<String, VecDeque<Vec<u8>>>, topic: String, data: Vec<u8>) {
    let queue = queued.entry(topic).or_default();
    if queue.len() >= MAX_QUEUED_PER_TOPIC {
        queue.pop_front();
    }
    queue.push_back(data);
}

fn flush(
    swarm: &mut Swarm<Behaviour>,
    keys: &HashMap<String, TopicKey>,
    queued: &mut HashMap<String, VecDeque<Vec<u8>>>,
    topic: &str,
    emit: &impl Fn(NetEvent),
) {
    let Some(queue) = queued.get_mut(topic) else {
        return;
    };
    while let Some(data) = queue.pop_front() {
        if let Some(data) = publish(swarm, keys, topic, data, emit) {
            queue.push_front(data);
            return;
        }
    }
    queued.remove(topic);
}

#[cfg(test)]
mod tests {
    #[test]
    fn message_ids_are_those_the_relay_makes() {
        // The same bytes and id are pinned in the relay (`crates/relay/src/main.rs`).
        let id = super::message_id(b"abc");
        assert_eq!(id.to_string(), "ba7816bf8f01cfea414140de5dae2223b00361a3");
    }
}
