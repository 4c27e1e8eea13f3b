//! The swarm: transports per platform, the behaviours, and the task that drives them.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use futures::channel::mpsc;
use futures::{FutureExt, StreamExt};
use libp2p::gossipsub::{self, IdentTopic, MessageAuthenticity, PublishError, ValidationMode};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{identify, identity::Keypair, multiaddr::Protocol, ping, Multiaddr, PeerId, Swarm};

use crate::{Command, NetError, NetEvent};

/// Largest gossip message: deltas are batched well under it.
pub const MAX_MESSAGE_BYTES: usize = 1024 * 1024;
/// Messages kept per topic while no peer listens on it.
const MAX_QUEUED_PER_TOPIC: usize = 1024;
const PROTOCOL_VERSION: &str = "/tabnode/0.1.0";

#[derive(NetworkBehaviour)]
pub(crate) struct Behaviour {
    gossipsub: gossipsub::Behaviour,
    identify: identify::Behaviour,
    ping: ping::Behaviour,
}

fn behaviour(key: &Keypair) -> Result<Behaviour, NetError> {
    let config = gossipsub::ConfigBuilder::default()
        .validation_mode(ValidationMode::Strict)
        .max_transmit_size(MAX_MESSAGE_BYTES)
        .heartbeat_interval(Duration::from_millis(500))
        // Small meshes: two browsers and a relay must already form one.
        .mesh_n_low(1)
        .mesh_n(3)
        .mesh_n_high(6)
        .mesh_outbound_min(0)
        .flood_publish(true)
        .build()
        .map_err(|e| NetError::Build(format!("gossipsub config: {e}")))?;
    let gossipsub = gossipsub::Behaviour::new(MessageAuthenticity::Signed(key.clone()), config)
        .map_err(|e| NetError::Build(format!("gossipsub: {e}")))?;
    Ok(Behaviour {
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
            Ok(libp2p::websocket_websys::Transport::default()
                .upgrade(Version::V1)
                .authenticate(libp2p::noise::Config::new(key)?)
                .multiplex(libp2p::yamux::Config::default())
                .map(|(peer, muxer), _| (peer, StreamMuxerBox::new(muxer))))
        })
        .map_err(|e| err(&e))?
        .with_behaviour(|key| {
            behaviour(key).map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)
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
        .with_behaviour(|key| {
            behaviour(key).map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)
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

/// The swarm task: runs until the handle and the event receiver are both dropped.
pub(crate) async fn run(
    mut swarm: Swarm<Behaviour>,
    relays: Vec<Multiaddr>,
    mut commands: mpsc::UnboundedReceiver<Command>,
    events: mpsc::UnboundedSender<NetEvent>,
) {
    let emit = |event: NetEvent| {
        let _ = events.unbounded_send(event);
    };
    let mut queued: HashMap<String, VecDeque<Vec<u8>>> = HashMap::new();
    let mut backoff: HashMap<Multiaddr, Duration> = HashMap::new();
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
                        if let Err(e) = swarm.behaviour_mut().gossipsub.subscribe(&IdentTopic::new(&topic)) {
                            emit(NetEvent::Error(format!("subscribing to {topic}: {e}")));
                        }
                    }
                    Command::Unsubscribe(topic) => {
                        swarm.behaviour_mut().gossipsub.unsubscribe(&IdentTopic::new(&topic));
                        queued.remove(&topic);
                    }
                    Command::Publish(topic, data) => {
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
                    emit(NetEvent::Connected { peer: peer_id.to_string() });
                }
                SwarmEvent::ConnectionClosed { peer_id, num_established: 0, .. } => {
                    emit(NetEvent::Disconnected { peer: peer_id.to_string() });
                }
                SwarmEvent::OutgoingConnectionError { error, .. } => {
                    emit(NetEvent::Error(format!("connection failed: {error}")));
                }
                SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message { message, .. })) => {
                    emit(NetEvent::Message {
                        topic: message.topic.into_string(),
                        data: message.data,
                        source: message.source.map(|p| p.to_string()),
                    });
                }
                SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Subscribed { peer_id, topic })) => {
                    let topic = topic.into_string();
                    flush(&mut swarm, &mut queued, &topic, &emit);
                    emit(NetEvent::PeerSubscribed { peer: peer_id.to_string(), topic });
                }
                _ => {}
            },
            _ = tick => {
                tick = futures_timer::Delay::new(Duration::from_secs(1)).fuse();
                let topics: Vec<String> = queued.keys().cloned().collect();
                for topic in topics {
                    flush(&mut swarm, &mut queued, &topic, &emit);
                }
                redial(&mut swarm, &relays, &mut backoff);
            }
        }
    }
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
