//! The swarm: transports per platform, the behaviours, and the task that drives them.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Duration;

use futures::channel::mpsc;
use futures::{FutureExt, StreamExt};
use libp2p::gossipsub::{self, IdentTopic, MessageAuthenticity, PublishError, ValidationMode};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{
    identify, identity::Keypair, multiaddr::Protocol, ping, relay, Multiaddr, PeerId, Swarm,
};

use crate::direct::{self, Action, Links, Signal};
use crate::webrtc::Rtc;
use crate::{Command, NetError, NetEvent, RtcEvent, Via};

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
}

/// The gossipsub settings of a tabnode peer (validation and size limit aside): small meshes,
/// since two browsers and a relay must already form one, and flood publishing. The relay's load
/// test and tests take them to act as peers do.
pub fn peer_gossip_config() -> gossipsub::ConfigBuilder {
    let mut config = gossipsub::ConfigBuilder::default();
    config
        .heartbeat_interval(Duration::from_millis(500))
        .mesh_n_low(1)
        .mesh_n(3)
        .mesh_n_high(6)
        .mesh_outbound_min(0)
        .flood_publish(true);
    config
}

fn behaviour(key: &Keypair, relay_client: relay::client::Behaviour) -> Result<Behaviour, NetError> {
    let config = peer_gossip_config()
        .validation_mode(ValidationMode::Strict)
        .max_transmit_size(MAX_MESSAGE_BYTES)
        .build()
        .map_err(|e| NetError::Build(format!("gossipsub config: {e}")))?;
    let gossipsub = gossipsub::Behaviour::new(MessageAuthenticity::Signed(key.clone()), config)
        .map_err(|e| NetError::Build(format!("gossipsub: {e}")))?;
    Ok(Behaviour {
        relay_client,
        gossipsub,
        identify: identify::Behaviour::new(identify::Config::new(
            PROTOCOL_VERSION.into(),
            key.public(),
        )),
        ping: ping::Behaviour::new(ping::Config::new()),
    })
}

const IDLE: Duration = Duration::from_secs(3600);

#[cfg(target_arch = "wasm32")]
pub(crate) fn build(keypair: Keypair) -> Result<Swarm<Behaviour>, NetError> {
    use libp2p::core::{muxing::StreamMuxerBox, upgrade::Version, Transport};
    let err = |e: &dyn std::fmt::Display| NetError::Build(e.to_string());
    Ok(libp2p::SwarmBuilder::with_existing_identity(keypair)
        .with_wasm_bindgen()
        .with_other_transport(|key| {
            let ws = libp2p::websocket_websys::Transport::default()
                .upgrade(Version::V1)
                .authenticate(libp2p::noise::Config::new(key)?)
                .multiplex(libp2p::yamux::Config::default())
                .map(|(peer, muxer), _| (peer, StreamMuxerBox::new(muxer)));
            // A relay's /webrtc-direct/certhash/… address: DTLS and Noise, data channels as
            // streams (the browser's RTCPeerConnection).
            let webrtc =
                libp2p::webrtc_websys::Transport::new(libp2p::webrtc_websys::Config::new(key))
                    .map(|(peer, conn), _| (peer, StreamMuxerBox::new(conn)));
            Ok(ws.or_transport(webrtc).map(|either, _| either.into_inner()))
        })
        .map_err(|e| err(&e))?
        .with_relay_client(libp2p::noise::Config::new, libp2p::yamux::Config::default)
        .map_err(|e| err(&e))?
        .with_behaviour(|key, relay_client| {
            behaviour(key, relay_client)
                .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)
        })
        .map_err(|e| err(&e))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(IDLE))
        .build())
}

#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn build(keypair: Keypair) -> Result<Swarm<Behaviour>, NetError> {
    use libp2p::core::{muxing::StreamMuxerBox, upgrade::Version, Transport};
    let err = |e: &dyn std::fmt::Display| NetError::Build(e.to_string());
    Ok(libp2p::SwarmBuilder::with_existing_identity(keypair)
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
            behaviour(key, relay_client)
                .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)
        })
        .map_err(|e| err(&e))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(IDLE))
        .build())
}

fn relay_peer(addr: &Multiaddr) -> Option<PeerId> {
    addr.iter().find_map(|p| match p {
        Protocol::P2p(peer) => Some(peer),
        _ => None,
    })
}

/// Largest frame sent on a direct link (a data channel message); larger messages take the relay.
const MAX_FRAME_BYTES: usize = 60 * 1024;
/// A peer heard on a topic within this long counts as on it (heads are announced every 5 s).
const HEARD_MS: u64 = 30_000;

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

/// The direct path beside the relay: links, the WebRTC connections under them, and who was
/// heard on which topic (the peers a message for that topic is for).
pub(crate) struct Direct {
    enabled: bool,
    /// This peer's signal topic (see [`direct::signal_topic`]).
    own_signals: String,
    links: Links,
    rtc: Rtc,
    rtc_events: mpsc::UnboundedReceiver<RtcEvent>,
    heard: HashMap<String, HashMap<String, u64>>,
    subscribed: HashSet<String>,
    /// Peers whose link was reported open (and whose closing must be reported).
    reported: HashSet<String>,
}

impl Direct {
    pub(crate) fn new(me: &str, enabled: bool, ice_servers: Vec<String>) -> Self {
        let (tx, rtc_events) = mpsc::unbounded();
        Self {
            enabled,
            own_signals: direct::signal_topic(me),
            links: Links::new(me),
            rtc: Rtc::new(tx, ice_servers),
            rtc_events,
            heard: HashMap::new(),
            subscribed: HashSet::new(),
            reported: HashSet::new(),
        }
    }

    /// Carries out what the links asked for.
    fn act(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        actions: Vec<Action>,
        emit: &impl Fn(NetEvent),
    ) {
        for action in actions {
            match action {
                Action::Offer { peer } => self.rtc.offer(&peer),
                Action::Answer { peer, sdp } => self.rtc.answer(&peer, sdp),
                Action::Complete { peer, sdp } => self.rtc.complete(&peer, sdp),
                Action::Signal { peer, signal } => {
                    // Lost signals are made good by the links' timeouts and retries.
                    let topic = IdentTopic::new(direct::signal_topic(&peer));
                    let _ = swarm
                        .behaviour_mut()
                        .gossipsub
                        .publish(topic, signal.encode());
                }
                Action::Close { peer } => {
                    if self.reported.remove(&peer) {
                        emit(NetEvent::DirectClosed { peer: peer.clone() });
                    }
                    self.rtc.close(&peer);
                }
            }
        }
    }

    /// A gossip message: a signal for us, or a message on a topic from a peer we may link to.
    /// Returns whether it is for the node.
    fn on_gossip(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        topic: &str,
        source: Option<&PeerId>,
        data: &[u8],
        emit: &impl Fn(NetEvent),
    ) -> bool {
        let Some(source) = source.map(|p| p.to_string()) else {
            return true;
        };
        let now = now_ms();
        if topic == self.own_signals {
            if let Some(signal) = Signal::decode(data).filter(|_| self.enabled) {
                let actions = self.links.on_signal(&source, signal, now);
                self.act(swarm, actions, emit);
            }
            return false;
        }
        self.heard
            .entry(topic.to_owned())
            .or_default()
            .insert(source.clone(), now);
        if self.enabled {
            let actions = self.links.heard_from(&source, now);
            self.act(swarm, actions, emit);
        }
        true
    }

    /// Sends `data` on every open link to a peer on `topic`; true if that reached every peer
    /// heard on it lately, so the relay is not needed.
    fn send(&mut self, topic: &str, data: &[u8]) -> bool {
        if !self.enabled || self.links.open().next().is_none() {
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
            all &= self.links.is_open(peer) && self.rtc.send(peer, &frame);
        }
        all
    }

    /// Sends `data` on the open link to `peer`; false if there is none (or it is too large).
    fn send_one(&mut self, peer: &str, topic: &str, data: &[u8]) -> bool {
        self.links.is_open(peer) && frame(topic, data).is_some_and(|f| self.rtc.send(peer, &f))
    }

    fn on_rtc(&mut self, swarm: &mut Swarm<Behaviour>, event: RtcEvent, emit: &impl Fn(NetEvent)) {
        let now = now_ms();
        let actions = match event {
            RtcEvent::Described { peer, gen, sdp } if self.rtc.current(&peer, gen) => {
                self.links.described(&peer, sdp)
            }
            RtcEvent::Opened { peer, gen } if self.rtc.current(&peer, gen) => {
                let actions = self.links.opened(&peer);
                if self.links.is_open(&peer) && self.reported.insert(peer.clone()) {
                    emit(NetEvent::DirectOpened { peer });
                }
                actions
            }
            RtcEvent::Closed { peer, gen } if self.rtc.current(&peer, gen) => {
                self.links.closed(&peer, now)
            }
            RtcEvent::Frame { peer, gen, data } if self.rtc.current(&peer, gen) => {
                match direct::decode_frame(&data).filter(|(t, _)| self.subscribed.contains(t)) {
                    Some((topic, data)) => {
                        self.heard
                            .entry(topic.clone())
                            .or_default()
                            .insert(peer.clone(), now);
                        emit(NetEvent::Message {
                            topic,
                            data,
                            source: Some(peer),
                        });
                        Vec::new()
                    }
                    None => self.links.bad_frame(&peer, now),
                }
            }
            _ => Vec::new(), // from a connection since replaced
        };
        self.act(swarm, actions, emit);
    }

    fn tick(&mut self, swarm: &mut Swarm<Behaviour>, emit: &impl Fn(NetEvent)) {
        let actions = self.links.tick(now_ms());
        self.act(swarm, actions, emit);
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
    if direct.enabled {
        let own = IdentTopic::new(direct.own_signals.clone());
        if let Err(e) = swarm.behaviour_mut().gossipsub.subscribe(&own) {
            emit(NetEvent::Error(format!("subscribing to signals: {e}")));
        }
    }
    let mut queued: HashMap<String, VecDeque<Vec<u8>>> = HashMap::new();
    // The circuit listener (reservation) at each relay, while its connection is up.
    let mut circuits: HashMap<PeerId, libp2p::core::transport::ListenerId> = HashMap::new();
    let mut backoff: HashMap<Multiaddr, Duration> = HashMap::new();
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
                    Command::Subscribe(topic) => {
                        direct.subscribed.insert(topic.clone());
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
                            if let Some(data) = publish(&mut swarm, &topic, data, &emit) {
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
                        } else if let Some(data) = publish(&mut swarm, &topic, data, &emit) {
                            enqueue(&mut queued, topic, data);
                        }
                    }
                }
            }
            event = swarm.select_next_some() => match event {
                SwarmEvent::ConnectionEstablished { peer_id, endpoint, .. } => {
                    backoff.remove(endpoint.get_remote_address());
                    let relay = relays.iter().find(|a| relay_peer(a) == Some(peer_id));
                    if let (Some(addr), false) = (relay, circuits.contains_key(&peer_id)) {
                        match swarm.listen_on(addr.clone().with(Protocol::P2pCircuit)) {
                            Ok(listener) => {
                                circuits.insert(peer_id, listener);
                            }
                            Err(e) => emit(NetEvent::Error(format!("reserving at {addr}: {e}"))),
                        }
                    }
                    // A peer that dialled us through our reservation: the relay's circuit
                    // shows in the address we listened on, not in the one it came from.
                    let via = match &endpoint {
                        libp2p::core::ConnectedPoint::Listener { local_addr, .. }
                            if Via::of(local_addr) == Via::Circuit => Via::Circuit,
                        _ => Via::of(endpoint.get_remote_address()),
                    };
                    emit(NetEvent::Connected {
                        peer: peer_id.to_string(),
                        via,
                    });
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
                SwarmEvent::ConnectionClosed { peer_id, num_established: 0, .. } => {
                    if let Some(listener) = circuits.remove(&peer_id) {
                        swarm.remove_listener(listener);
                    }
                    emit(NetEvent::Disconnected { peer: peer_id.to_string() });
                }
                SwarmEvent::OutgoingConnectionError { error, .. } => {
                    emit(NetEvent::Error(format!("connection failed: {error}")));
                }
                SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message { message, .. })) => {
                    let topic = message.topic.into_string();
                    if direct.on_gossip(&mut swarm, &topic, message.source.as_ref(), &message.data, &emit) {
                        emit(NetEvent::Message {
                            topic,
                            data: message.data,
                            source: message.source.map(|p| p.to_string()),
                        });
                    }
                }
                SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Subscribed { peer_id, topic })) => {
                    let topic = topic.into_string();
                    flush(&mut swarm, &mut queued, &topic, &emit);
                    emit(NetEvent::PeerSubscribed { peer: peer_id.to_string(), topic });
                }
                _ => {}
            },
            event = direct.rtc_events.select_next_some() => direct.on_rtc(&mut swarm, event, &emit),
            _ = tick => {
                tick = futures_timer::Delay::new(Duration::from_secs(1)).fuse();
                direct.tick(&mut swarm, &emit);
                let topics: Vec<String> = queued.keys().cloned().collect();
                for topic in topics {
                    flush(&mut swarm, &mut queued, &topic, &emit);
                }
                redial(&mut swarm, &relays, &mut backoff);
            }
        }
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

/// Redials relays we are not connected to, doubling the wait each time up to a minute.
fn redial(
    swarm: &mut Swarm<Behaviour>,
    relays: &[Multiaddr],
    backoff: &mut HashMap<Multiaddr, Duration>,
) {
    for addr in relays {
        let Some(peer) = relay_peer(addr) else {
            continue;
        };
        if swarm.is_connected(&peer) {
            continue;
        }
        let wait = backoff
            .entry(addr.clone())
            .or_insert(Duration::from_secs(1));
        if *wait > Duration::from_secs(1) {
            *wait -= Duration::from_secs(1);
            continue;
        }
        *wait = Duration::from_secs(2);
        let _ = swarm.dial(addr.clone());
    }
}

/// Publishes; gives the data back if no peer is on the topic yet (to queue it).
fn publish(
    swarm: &mut Swarm<Behaviour>,
    topic: &str,
    data: Vec<u8>,
    emit: &impl Fn(NetEvent),
) -> Option<Vec<u8>> {
    match swarm
        .behaviour_mut()
        .gossipsub
        .publish(IdentTopic::new(topic), data.clone())
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
    queued: &mut HashMap<String, VecDeque<Vec<u8>>>,
    topic: &str,
    emit: &impl Fn(NetEvent),
) {
    let Some(queue) = queued.get_mut(topic) else {
        return;
    };
    while let Some(data) = queue.pop_front() {
        if let Some(data) = publish(swarm, topic, data, emit) {
            queue.push_front(data);
            return;
        }
    }
    queued.remove(topic);
}
