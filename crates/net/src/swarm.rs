//! The swarm: transports per platform, the behaviours, and the task that drives them.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Duration;

use futures::channel::mpsc;
use futures::{FutureExt, StreamExt};
use libp2p::gossipsub::{self, IdentTopic, MessageAuthenticity, PublishError, ValidationMode};
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{
    identify, identity::Keypair, multiaddr::Protocol, ping, relay, Multiaddr, PeerId, Swarm,
};

use crate::envelope::{self, TopicKey};
use crate::links::{next_frames_stream, now_ms, Direct};
use crate::redial::Redial;
use crate::{Command, NetError, NetEvent, Via};

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

pub(crate) fn relay_peer(addr: &Multiaddr) -> Option<PeerId> {
    addr.iter().find_map(|p| match p {
        Protocol::P2p(peer) => Some(peer),
        _ => None,
    })
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
    let mut reservations: HashMap<PeerId, libp2p::core::transport::ListenerId> = HashMap::new();
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
                    if let (Some(addr), false) = (relay, reservations.contains_key(&peer_id)) {
                        match swarm.listen_on(addr.clone().with(Protocol::P2pCircuit)) {
                            Ok(listener) => {
                                reservations.insert(peer_id, listener);
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
                    reservations.retain(|_, l| *l != listener_id);
                }
                SwarmEvent::Behaviour(BehaviourEvent::RelayClient(relay::client::Event::ReservationReqAccepted { relay_peer_id, renewal: false, .. })) => {
                    emit(NetEvent::Reserved { relay: relay_peer_id.to_string() });
                }
                SwarmEvent::ConnectionClosed { peer_id, connection_id, num_established, .. } => {
                    direct.on_closed(&mut swarm, &relays, peer_id, connection_id, &emit);
                    if num_established == 0 {
                        if let Some(listener) = reservations.remove(&peer_id) {
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
                    direct.on_gossip(&mut swarm, &relays, &topic, &source, &emit);
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

/// Dials `peer` through its reservation at each relay this node is connected to; false if none
/// is connected yet.
pub(crate) fn dial_through_relays(
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
    let opts = DialOpts::peer_id(peer).addresses(through).build();
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
