//! The direct links beside the relay, as the swarm task carries them out: the links' policy
//! ([`crate::direct::Links`]) drives libp2p's WebRTC connections between pages (dialled once a
//! relayed connection to the peer is up, the relayed one closed once the WebRTC one is), and the
//! frames each link carries (`/tabnode/frames/1.0.0`, a stream each way), and it keeps who was
//! heard on which topic: the peers a message for that topic is for.

use std::collections::{HashMap, HashSet};

use futures::channel::mpsc;
use futures::StreamExt;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::ConnectionId;
use libp2p::{Multiaddr, PeerId, StreamProtocol, Swarm};

use crate::direct::{self, Action, Links};
use crate::envelope::TopicKey;
use crate::swarm::{dial_through_relays, relay_peer, Behaviour};
use crate::{prefixed, NetEvent, Via};

/// Largest frame sent on a direct link; larger messages take the relay.
const MAX_FRAME_BYTES: usize = 60 * 1024;
/// Frames waiting for a link's writer; past it (a link that cannot keep up) messages take the
/// relay instead, as for a peer with no link.
const MAX_QUEUED_FRAMES: usize = 256;
/// A peer heard on a topic within this long counts as on it (heads are announced every 5 s).
const HEARD_MS: u64 = 30_000;
/// A link lives while its peer is heard on a topic of this node: one not heard within
/// [`HEARD_MS`] is closed once it is this old (the dialler may hear us before we hear it), so a
/// peer of no shared context keeps no link.
const PROBATION_MS: u64 = 10_000;
/// The direct links' protocol: each side opens one stream to the other on their WebRTC
/// connection and writes frames ([`direct::encode_frame`]), each behind a varint length.
const FRAMES_PROTOCOL: &str = "/tabnode/frames/1.0.0";

/// The frame of a message for a direct link, if it is small enough to go on one.
fn frame(topic: &str, data: &[u8]) -> Option<Vec<u8>> {
    direct::encode_frame(topic, data).filter(|f| f.len() <= MAX_FRAME_BYTES)
}

/// Milliseconds on the wall clock: direct links time out and back off by it.
pub(crate) fn now_ms() -> u64 {
    #[cfg(target_arch = "wasm32")]
    return js_sys::Date::now() as u64;
    #[cfg(not(target_arch = "wasm32"))]
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Runs a task beside the swarm's: on the page's event loop, or on tokio natively.
fn spawn(task: impl std::future::Future<Output = ()> + Send + 'static) {
    #[cfg(target_arch = "wasm32")]
    wasm_bindgen_futures::spawn_local(task);
    #[cfg(not(target_arch = "wasm32"))]
    tokio::spawn(task);
}

/// What the tasks reading and writing frames report.
pub(crate) enum FrameEvent {
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
    pub(crate) enabled: bool,
    links: Links,
    pub(crate) heard: HashMap<String, HashMap<String, u64>>,
    /// The topics this node is on, with their envelope keys.
    pub(crate) subscribed: HashMap<String, TopicKey>,
    control: libp2p_stream::Control,
    /// The WebRTC connection with each linked peer, and when it came up.
    webrtc: HashMap<PeerId, (ConnectionId, u64)>,
    /// Relayed connections with each peer; closed once a WebRTC connection takes over.
    circuits: HashMap<PeerId, HashSet<ConnectionId>>,
    /// Peers to dial over WebRTC once a relayed connection to them is up.
    awaiting_circuit: HashSet<PeerId>,
    /// The queue of each link's writer. A writer starts once no relayed connection to its peer
    /// is left, since a new stream goes on any connection to the peer.
    writers: HashMap<String, mpsc::Sender<Vec<u8>>>,
    pub(crate) incoming_frames: Option<libp2p_stream::IncomingStreams>,
    frame_tx: mpsc::UnboundedSender<FrameEvent>,
    pub(crate) frame_events: mpsc::UnboundedReceiver<FrameEvent>,
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
            writers: HashMap::new(),
            incoming_frames,
            frame_tx,
            frame_events,
        }
    }

    /// Carries out what the links asked for.
    pub(crate) fn act(
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
                    if let Some((connection, _)) = self.webrtc.get(&peer_id) {
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
    pub(crate) fn on_gossip(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        relays: &[Multiaddr],
        topic: &str,
        source: &PeerId,
        emit: &impl Fn(NetEvent),
    ) {
        let source = source.to_string();
        let now = now_ms();
        self.hear(topic, &source, now);
        if self.enabled {
            let actions = self.links.heard_from(&source, now);
            self.act(swarm, relays, actions, emit);
        }
    }

    /// `peer` sent on `topic` at `now` (through the relay or over its link).
    fn hear(&mut self, topic: &str, peer: &str, now: u64) {
        self.heard
            .entry(topic.to_owned())
            .or_default()
            .insert(peer.to_owned(), now);
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
    pub(crate) fn send(&mut self, topic: &str, data: &[u8]) -> bool {
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
    pub(crate) fn send_one(&mut self, peer: &str, topic: &str, data: &[u8]) -> bool {
        let Some(writer) = self.writers.get_mut(peer) else {
            return false;
        };
        frame(topic, data).is_some_and(|f| writer.try_send(f).is_ok())
    }

    pub(crate) fn on_established(
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
                self.webrtc.insert(peer, (connection, now_ms()));
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

    pub(crate) fn on_closed(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        relays: &[Multiaddr],
        peer: PeerId,
        connection: ConnectionId,
        emit: &impl Fn(NetEvent),
    ) {
        if self
            .webrtc
            .get(&peer)
            .is_some_and(|(c, _)| *c == connection)
        {
            self.webrtc.remove(&peer);
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
    pub(crate) fn on_dial_failed(
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
    pub(crate) fn on_frames_stream(&mut self, peer: PeerId, mut stream: libp2p::Stream) {
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

    pub(crate) fn on_frame_event(
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
                        self.hear(&topic, &name, now);
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

    pub(crate) fn tick(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        relays: &[Multiaddr],
        emit: &impl Fn(NetEvent),
    ) {
        let now = now_ms();
        let actions = self.links.tick(now);
        self.act(swarm, relays, actions, emit);
        for (peer, (connection, since)) in &self.webrtc {
            let unheard = !self.heard_lately(&peer.to_string());
            if unheard && now.saturating_sub(*since) >= PROBATION_MS {
                swarm.close_connection(*connection);
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

/// The next frames stream a peer opened; never, if this node takes none.
pub(crate) async fn next_frames_stream(
    incoming: &mut Option<libp2p_stream::IncomingStreams>,
) -> Option<(PeerId, libp2p::Stream)> {
    match incoming {
        Some(incoming) => incoming.next().await,
        None => futures::future::pending().await,
    }
}
