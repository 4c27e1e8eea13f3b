//! A relay process and native gossip peers to drive it, for the service tests.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use futures::StreamExt;
use libp2p::gossipsub::{self, IdentTopic, MessageAuthenticity, ValidationMode};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{ping, Multiaddr};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc as tmpsc;

use crate::{identify, peer_swarm};

/// Kills the relay when the test ends, also when it fails.
pub struct Relay {
    pub child: Child,
    pub addr: String,
    pub metrics: Option<String>,
    pub stderr: PathBuf,
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.stderr);
    }
}

pub fn temp_path(name: &str) -> PathBuf {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    std::env::temp_dir().join(format!(
        "tabnode-relay-test-{}-{n}-{name}",
        std::process::id()
    ))
}

/// Starts the relay and waits for its address (and metrics URL, when `--metrics` is given).
pub fn start_relay(args: &[&str]) -> Relay {
    let stderr = temp_path("stderr");
    let mut child = Command::new(crate::relay_binary())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .expect("start the relay");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut relay = Relay {
        child,
        addr: String::new(),
        metrics: None,
        stderr,
    };
    let wants_metrics = args.iter().any(|a| a.starts_with("--metrics"))
        || args.iter().any(|a| a.starts_with("--config"));
    while relay.addr.is_empty() || (wants_metrics && relay.metrics.is_none()) {
        let line = rx
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("the relay printed its lines: {}", relay.log()));
        if let Some(a) = line.strip_prefix("RELAY_MULTIADDR=") {
            relay.addr = a.to_owned();
        } else if let Some(m) = line.strip_prefix("RELAY_METRICS=") {
            relay.metrics = Some(m.to_owned());
        }
    }
    relay
}

impl Relay {
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// `GET /metrics`: the status line, the headers and the body.
    pub async fn scrape(&self) -> (String, String) {
        let url = self.metrics.as_ref().expect("started with --metrics");
        get(url).await
    }

    /// The value of one sample (`name` or `name{labels}`), 0 when absent.
    pub async fn sample(&self, sample: &str) -> f64 {
        let (_, body) = self.scrape().await;
        crate::metric(&body, sample)
    }

    /// Waits until a sample satisfies `ok`, scraping every 100 ms for up to 20 s.
    pub async fn wait_for(&self, sample: &str, ok: impl Fn(f64) -> bool) -> f64 {
        for _ in 0..200 {
            let v = self.sample(sample).await;
            if ok(v) {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let (_, body) = self.scrape().await;
        panic!(
            "{sample} never reached the expected value:\n{body}\n{}",
            self.log()
        );
    }
}

pub async fn get(url: &str) -> (String, String) {
    let rest = url.strip_prefix("http://").expect("an http url");
    let (host, path) = rest.split_once('/').unwrap();
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    stream
        .write_all(format!("GET /{path} HTTP/1.1\r\nhost: {host}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    (head.to_owned(), body.to_owned())
}

#[derive(NetworkBehaviour)]
pub struct Client {
    gossipsub: gossipsub::Behaviour,
    identify: identify::Behaviour,
    ping: ping::Behaviour,
}

#[derive(Debug)]
pub enum Seen {
    Connected,
    Disconnected,
    DialFailed(String),
    Subscribed(String),
    Message(Vec<u8>),
}

pub enum Do {
    Subscribe(String),
    Unsubscribe(String),
    Publish(String, Vec<u8>),
}

/// A native libp2p peer (TCP/WebSocket, noise, yamux, gossipsub, identify, ping) driven by its
/// own task. It publishes anonymously, as tabnode peers do; `signed: true` makes one that signs
/// its messages (naming its peer id), which a relay refuses.
pub struct Peer {
    pub seen: tmpsc::UnboundedReceiver<Seen>,
    pub todo: tmpsc::UnboundedSender<Do>,
}

/// Peers as tabnode's publish: anonymously.
pub const NORMAL: bool = false;
/// A peer that signs its gossip.
pub const SIGNING: bool = true;

pub async fn peer(relay: &str, signed: bool) -> Peer {
    let gossip = tabnode_net::peer_gossip_config()
        .validation_mode(if signed {
            ValidationMode::Strict
        } else {
            ValidationMode::Anonymous
        })
        // Larger than any relay's limit here: the relay must do the refusing.
        .max_transmit_size(4 << 20)
        .build()
        .unwrap();
    let mut swarm = peer_swarm(Duration::from_secs(60), |key| Client {
        gossipsub: gossipsub::Behaviour::new(
            if signed {
                MessageAuthenticity::Signed(key.clone())
            } else {
                MessageAuthenticity::Anonymous
            },
            gossip,
        )
        .unwrap(),
        identify: identify(key),
        ping: ping::Behaviour::new(ping::Config::new()),
    })
    .await;
    let addr: Multiaddr = relay.parse().unwrap();
    swarm.dial(addr).unwrap();
    let (seen_tx, seen) = tmpsc::unbounded_channel();
    let (todo, mut todo_rx) = tmpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                command = todo_rx.recv() => match command {
                    None => return,
                    Some(Do::Subscribe(t)) => {
                        swarm.behaviour_mut().gossipsub.subscribe(&IdentTopic::new(t)).unwrap();
                    }
                    Some(Do::Unsubscribe(t)) => {
                        swarm.behaviour_mut().gossipsub.unsubscribe(&IdentTopic::new(t));
                    }
                    Some(Do::Publish(t, data)) => {
                        let _ = swarm.behaviour_mut().gossipsub.publish(IdentTopic::new(t), data);
                    }
                },
                event = swarm.select_next_some() => {
                    let seen = match event {
                        SwarmEvent::ConnectionEstablished { .. } => Seen::Connected,
                        SwarmEvent::ConnectionClosed { .. } => Seen::Disconnected,
                        SwarmEvent::OutgoingConnectionError { error, .. } => {
                            Seen::DialFailed(error.to_string())
                        }
                        SwarmEvent::Behaviour(ClientEvent::Gossipsub(
                            gossipsub::Event::Subscribed { topic, .. },
                        )) => Seen::Subscribed(topic.into_string()),
                        SwarmEvent::Behaviour(ClientEvent::Gossipsub(
                            gossipsub::Event::Message { message, .. },
                        )) => Seen::Message(message.data),
                        _ => continue,
                    };
                    let _ = seen_tx.send(seen);
                }
            }
        }
    });
    Peer { seen, todo }
}

impl Peer {
    /// The next event that `pick` accepts, within 20 s.
    pub async fn expect<T>(&mut self, what: &str, mut pick: impl FnMut(Seen) -> Option<T>) -> T {
        tokio::time::timeout(Duration::from_secs(20), async {
            loop {
                let seen = self.seen.recv().await.expect("the peer task runs");
                if let Some(t) = pick(seen) {
                    return t;
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no {what} within 20 s"))
    }

    pub async fn connected(&mut self) {
        self.expect("connection", |s| match s {
            Seen::Connected => Some(()),
            Seen::DialFailed(e) => panic!("the dial failed: {e}"),
            _ => None,
        })
        .await
    }

    pub async fn subscribed(&mut self, topic: &str) {
        self.todo.send(Do::Subscribe(topic.into())).unwrap();
        self.expect("subscription from the relay", |s| match s {
            Seen::Subscribed(t) if t == topic => Some(()),
            _ => None,
        })
        .await
    }
}
