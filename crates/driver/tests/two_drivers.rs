//! Two drivers, each a node's Core on its own store, linked by a [`Network`] of this test's
//! own (in one process, no libp2p): one invites, the other joins, and each reads what the
//! other wrote. The driver's edges are traits: the store (`MemoryStore` here), the network
//! (`Hub` here, `NetHandle` in the page and the CLI), the clock.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use futures::channel::mpsc::{self, UnboundedSender};
use futures::executor::block_on;
use serde_json::json;
use tabnode_driver::{Driver, Network, Step};
use tabnode_net::NetEvent;
use tabnode_node::{Clock, Env, Outgoing};
use tabnode_runtime::{Limits, Runtime};
use tabnode_store::MemoryStore;

/// One clock for both nodes, moved by the test.
#[derive(Clone)]
struct TestClock(Rc<Cell<u64>>, u8);

impl Clock for TestClock {
    fn now_nanos(&self) -> u64 {
        self.0.get()
    }
}

impl Env for TestClock {
    fn random32(&self) -> [u8; 32] {
        let n = self.0.get().to_le_bytes();
        let mut seed = [self.1; 32];
        seed[..8].copy_from_slice(&n);
        *blake3::hash(&seed).as_bytes()
    }
}

/// The peers in this process: who is subscribed to which topic, and where each one's network
/// events go.
#[derive(Default)]
struct Peers {
    events: BTreeMap<String, UnboundedSender<NetEvent>>,
    topics: BTreeMap<String, BTreeSet<String>>,
    /// Everything transmitted, by whom.
    sent: Vec<(String, Outgoing)>,
}

/// One peer's end of the hub.
#[derive(Clone)]
struct Hub {
    me: String,
    peers: Rc<RefCell<Peers>>,
}

impl Network for Hub {
    fn transmit(&self, out: Outgoing) -> Result<(), String> {
        let mut peers = self.peers.borrow_mut();
        peers.sent.push((self.me.clone(), out.clone()));
        let message = |topic: String, data: Vec<u8>| NetEvent::Message {
            topic,
            data,
            source: Some(self.me.clone()),
        };
        match out {
            Outgoing::Subscribe { topic, .. } => {
                peers
                    .topics
                    .entry(self.me.clone())
                    .or_default()
                    .insert(topic);
            }
            Outgoing::Publish { topic, data } => {
                for (peer, events) in &peers.events {
                    let subscribed = peers.topics.get(peer).is_some_and(|t| t.contains(&topic));
                    if *peer != self.me && subscribed {
                        let _ = events.unbounded_send(message(topic.clone(), data.clone()));
                    }
                }
            }
            Outgoing::Reply { peer, topic, data } => {
                let events = peers.events.get(&peer).ok_or("no such peer")?;
                let _ = events.unbounded_send(message(topic, data));
            }
        }
        Ok(())
    }
}

type TestDriver = Driver<MemoryStore, TestClock, Hub>;

fn kv_store() -> Vec<u8> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/apps/dist/kv_store.wasm"
    );
    std::fs::read(path).expect("build the apps first: bash tests/apps/build.sh")
}

fn driver(name: &str, seed: u8, clock: &Rc<Cell<u64>>, peers: &Rc<RefCell<Peers>>) -> TestDriver {
    let clock = TestClock(clock.clone(), seed);
    let runtime = Runtime::new(Limits::default());
    let open = Driver::open(MemoryStore::default(), clock.clone(), runtime, clock);
    let mut driver = block_on(open).expect("opens");
    let (events, net_events) = mpsc::unbounded();
    peers.borrow_mut().events.insert(name.to_owned(), events);
    let hub = Hub {
        me: name.to_owned(),
        peers: peers.clone(),
    };
    driver.connect(Some(hub), Some(net_events));
    driver
}

/// Lets both drivers take what the network brought and run their timers, the clock moving on
/// 100 ms a round, until `done` holds (at most 300 rounds: 30 s of the test's time).
fn until(
    drivers: &mut [&mut TestDriver],
    clock: &Rc<Cell<u64>>,
    mut done: impl FnMut(&mut [&mut TestDriver]) -> bool,
) {
    for _ in 0..300 {
        if done(drivers) {
            return;
        }
        clock.set(clock.get() + 100_000_000);
        for driver in drivers.iter_mut() {
            // A sleep that is over at once: each step takes a network event if one came, or
            // runs the timer work that is due.
            for _ in 0..8 {
                let step = block_on(driver.step(|_| async {}, std::future::pending::<()>()));
                assert!(!matches!(step, Step::NetworkStopped));
            }
        }
    }
    panic!("not done after 300 rounds");
}

#[test]
fn two_drivers_on_a_network_of_their_own_join_and_read_each_others_writes() {
    let clock = Rc::new(Cell::new(1_700_000_000_000_000_000));
    let peers = Rc::new(RefCell::new(Peers::default()));
    let mut a = driver("A", 1, &clock, &peers);
    let mut b = driver("B", 2, &clock, &peers);

    let (created, _) = block_on(a.run(async |node| {
        let app = node.install_app(&kv_store()).await?;
        let context = node.create_context(app, serde_json::Value::Null).await?;
        let invitation = node.invite(&context)?;
        Ok::<_, tabnode_node::NodeError>((context, invitation))
    }));
    let (context, invitation) = created.unwrap();
    let (set, _) = block_on(a.run(async move |node| {
        node.execute(&context, "set", json!({"key": "from-a", "value": "1"}))
            .await
    }));
    assert!(set.unwrap().delta_id.is_some());
    // A's delta went out only as a publish on the context's topic, after it was durable.
    assert!(peers
        .borrow()
        .sent
        .iter()
        .any(|(who, out)| who == "A" && matches!(out, Outgoing::Publish { .. })));

    let (joined, _) = block_on(b.run(async move |node| {
        node.install_app(&kv_store()).await?;
        node.join(&invitation).await
    }));
    assert_eq!(joined.unwrap(), context);
    until(&mut [&mut a, &mut b], &clock, |d| {
        d[1].node().is_synced(&context)
    });

    let read = |driver: &mut TestDriver, key: &'static str| {
        let (got, _) = block_on(
            driver
                .run(async move |node| node.execute(&context, "get", json!({ "key": key })).await),
        );
        got.unwrap().output
    };
    assert_eq!(read(&mut b, "from-a"), json!("1"), "B has A's write");

    let (set, _) = block_on(b.run(async move |node| {
        node.execute(&context, "set", json!({"key": "from-b", "value": "2"}))
            .await
    }));
    assert!(set.unwrap().delta_id.is_some());
    until(&mut [&mut a, &mut b], &clock, |d| {
        let heads = |d: &TestDriver| d.node().position(&context).map(|p| p.heads).ok();
        heads(d[0]) == heads(d[1])
    });
    assert_eq!(read(&mut a, "from-b"), json!("2"), "A has B's write");
}
