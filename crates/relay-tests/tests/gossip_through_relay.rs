//! Two native tabnode-net clients exchange gossip through a real relay process.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures::StreamExt;
use tabnode_net::{NetConfig, NetEvent, Via};

/// Kills the relay when the test ends, also when it fails.
struct Relay(Child);

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_relay() -> (Relay, String) {
    let mut child = Command::new(tabnode_relay_tests::relay_binary())
        .args(["--listen", "/ip4/127.0.0.1/tcp/0/ws"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the relay");
    let stdout = child.stdout.take().unwrap();
    let relay = Relay(child);
    let line = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find(|l| l.starts_with("RELAY_MULTIADDR="))
        .expect("the relay prints its address");
    (
        relay,
        line.trim_start_matches("RELAY_MULTIADDR=").to_owned(),
    )
}

/// The next message: its topic, data and sender (from the envelope, for key holders only).
async fn next_message(
    events: &mut futures::channel::mpsc::UnboundedReceiver<NetEvent>,
) -> (String, Vec<u8>, Option<String>) {
    loop {
        match events.next().await.expect("the network task runs") {
            NetEvent::Message {
                topic,
                data,
                source,
            } => return (topic, data, source),
            _ => continue,
        }
    }
}

/// The peer id at the end of a relay's multiaddr.
/// The envelope key both nodes hold for the test topic (a node derives it from a context id).
const KEY: [u8; 32] = [3; 32];

fn addr_peer(addr: &str) -> Option<String> {
    addr.rsplit_once("/p2p/").map(|(_, peer)| peer.to_owned())
}

#[tokio::test]
async fn a_hundred_messages_cross_the_relay_exactly_once() {
    let (_relay, addr) = start_relay();
    let (a, _a_events) = tabnode_net::start(NetConfig {
        relays: vec![addr.clone()],
        identity_ed25519_secret: [1; 32],
        direct: false,
        ice_servers: Vec::new(),
    })
    .unwrap();
    let relay_addr = addr.clone();
    let (b, mut b_events) = tabnode_net::start(NetConfig {
        relays: vec![addr],
        identity_ed25519_secret: [2; 32],
        direct: false,
        ice_servers: Vec::new(),
    })
    .unwrap();
    assert_ne!(a.peer_id(), b.peer_id());
    // B holds a reservation at the relay (circuit relay v2): it can be dialled through it.
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            if let Some(NetEvent::Reserved { relay }) = b_events.next().await {
                assert!(addr_peer(&relay_addr).is_some_and(|p| p == relay));
                return;
            }
        }
    })
    .await
    .expect("the relay accepts B's reservation");
    let topic = "/tabnode/context/test";
    // B is on the topic at the relay first (gossip only reaches peers already in the relay's
    // mesh; later joiners catch up through the node's anti-entropy, not through gossip).
    b.subscribe(topic, KEY).unwrap();
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            if let Some(NetEvent::PeerSubscribed { topic: t, .. }) = b_events.next().await {
                if t == topic {
                    return;
                }
            }
        }
    })
    .await
    .expect("the relay joins the topic B subscribed to");
    // A publishes before it knows any peer on the topic: queued, then sent, not lost.
    a.subscribe(topic, KEY).unwrap();
    for i in 0..100u32 {
        a.publish(topic, i.to_le_bytes().to_vec()).unwrap();
    }
    let received = tokio::time::timeout(Duration::from_secs(30), async {
        let mut seen = Vec::new();
        while seen.len() < 100 {
            let (t, data, source) = next_message(&mut b_events).await;
            assert_eq!(t, topic);
            assert_eq!(source, Some(a.peer_id()), "the sender, from the envelope");
            seen.push(u32::from_le_bytes(data.try_into().unwrap()));
        }
        seen
    })
    .await
    .expect("all 100 messages arrive within 30 s");
    let unique: BTreeSet<u32> = received.iter().copied().collect();
    assert_eq!(unique.len(), 100, "every message once");
    // Nothing more arrives: no duplicates.
    let extra =
        tokio::time::timeout(Duration::from_millis(1500), next_message(&mut b_events)).await;
    assert!(extra.is_err(), "a duplicate arrived: {extra:?}");
}

#[test]
fn bad_arguments_are_refused_with_usage() {
    let out = Command::new(tabnode_relay_tests::relay_binary())
        .arg("--listen")
        .arg("not-an-addr")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--listen not-an-addr") && err.contains("usage"),
        "{err}"
    );
}

/// Waits (30 s at most) for the first event `pick` takes.
async fn wait_for<T>(
    events: &mut futures::channel::mpsc::UnboundedReceiver<NetEvent>,
    what: &str,
    mut pick: impl FnMut(NetEvent) -> Option<T>,
) -> T {
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            if let Some(found) = pick(events.next().await.expect("the network task runs")) {
                return found;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{what} within 30 s"))
}

#[tokio::test]
async fn a_node_is_dialled_through_its_reservation_at_the_relay() {
    let (_relay, addr) = start_relay();
    let start = |seed: u8| {
        tabnode_net::start(NetConfig {
            relays: vec![addr.clone()],
            identity_ed25519_secret: [seed; 32],
            direct: false,
            ice_servers: Vec::new(),
        })
        .unwrap()
    };
    let (a, mut a_events) = start(3);
    let (b, mut b_events) = start(4);
    wait_for(&mut a_events, "A's reservation", |e| {
        matches!(e, NetEvent::Reserved { .. }).then_some(())
    })
    .await;
    wait_for(&mut b_events, "B's connection to the relay", |e| {
        matches!(e, NetEvent::Connected { .. }).then_some(())
    })
    .await;
    assert!(b.dial_peer("not a peer id").is_err());

    b.dial_peer(&a.peer_id()).unwrap();
    let b_side = wait_for(&mut b_events, "B's connection to A", |e| match e {
        NetEvent::Connected { peer, via } if peer == a.peer_id() => Some(via),
        _ => None,
    })
    .await;
    let a_side = wait_for(&mut a_events, "A to be dialled by B", |e| match e {
        NetEvent::Connected { peer, via } if peer == b.peer_id() => Some(via),
        _ => None,
    })
    .await;
    assert_eq!((b_side, a_side), (Via::Circuit, Via::Circuit));
}
