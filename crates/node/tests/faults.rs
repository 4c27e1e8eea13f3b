//! A deterministic simulation: three members on a network that loses, duplicates and reorders
//! messages, partitions a member for a while, and crashes and restarts members from what they
//! persisted; a fourth joins halfway, when the others hold more deltas than their snapshot
//! threshold, so it may catch up by a state snapshot (under the same faults, crashes included;
//! when the deltas reach it first, it needs none).
//! Random calls, on each member's own keys and on keys all members write at once;
//! at the end every member has the same heads, root and entries, every acknowledged call on an
//! own key is in the state, and each shared key holds one of the values written to it. (Same
//! heads with different roots, which concurrent writes of one key can leave, are repaired by
//! the members' announcements: see `Node::compare_root`.)
//!
//! `TABNODE_SIM_SEEDS=N` runs N seeds (default 200); `TABNODE_SIM_SEED=S` replays one.

mod common;

use std::collections::BTreeMap;

use futures::executor::block_on;
use serde_json::{json, Value};
use tabnode_node::{FixedEnv, Node, NodeError, Outgoing, ANNOUNCE_NANOS};
use tabnode_runtime::{Limits, Runtime};
use tabnode_store::MemoryStore;
use tabnode_types::ContextId;

type TestNode = Node<MemoryStore, FixedEnv>;
/// Members from the start; one more joins at [`JOIN_ROUND`].
const MEMBERS: usize = 3;
const JOIN_ROUND: usize = 25;
/// Low, so the late joiner is offered snapshots.
const SNAPSHOT_THRESHOLD: usize = 10;

/// xorshift64*: the network's and the workload's choices, reproducible per seed.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// A member: its node, and the store it restarts from after a crash.
struct Member {
    node: TestNode,
    store: MemoryStore,
    restarts: u8,
    index: u8,
}

impl Member {
    fn new(index: u8) -> Self {
        let store = MemoryStore::default();
        let mut node = block_on(Node::open(
            store.clone(),
            FixedEnv::new(index),
            Runtime::new(Limits::default()),
        ))
        .unwrap();
        node.set_snapshot_threshold(Some(SNAPSHOT_THRESHOLD));
        Self {
            node,
            store,
            restarts: 0,
            index,
        }
    }

    fn crash_and_restart(&mut self) {
        self.restarts += 1;
        // A fresh process: a new clock and randomness stream, only what was committed survives.
        let env = FixedEnv::new(self.index + 16 * self.restarts);
        self.node = block_on(Node::open(
            self.store.clone(),
            env,
            Runtime::new(Limits::default()),
        ))
        .unwrap();
        self.node.set_snapshot_threshold(Some(SNAPSHOT_THRESHOLD));
    }
}

struct Sim {
    rng: Rng,
    members: Vec<Member>,
    /// Members cut off from everyone else.
    partitioned: Vec<usize>,
}

impl Sim {
    /// One round of delivery: every queued message reaches each other member, or not.
    fn deliver(&mut self) {
        let mut in_flight = Vec::new();
        let members = self.members.len();
        for from in 0..members {
            for out in self.members[from].node.take_outgoing() {
                let Outgoing::Publish { topic, data } = out else {
                    continue;
                };
                for to in 0..members {
                    let cut = self.partitioned.contains(&from) || self.partitioned.contains(&to);
                    if to == from || cut || self.rng.chance(25) {
                        continue;
                    }
                    in_flight.push((to, topic.clone(), data.clone()));
                    if self.rng.chance(15) {
                        in_flight.push((to, topic.clone(), data.clone()));
                    }
                }
            }
        }
        for i in (1..in_flight.len()).rev() {
            let j = self.rng.below(i as u64 + 1) as usize;
            in_flight.swap(i, j);
        }
        for (to, topic, data) in in_flight {
            block_on(self.members[to].node.handle_message(&topic, &data));
        }
    }

    fn tick_all(&mut self) {
        for m in &mut self.members {
            m.node.env().advance(ANNOUNCE_NANOS);
            m.node.tick();
        }
    }

    /// Same heads and the same app root everywhere. (Not the node's Merkle root over the stored
    /// bytes: calimero-storage keeps per-member metadata beside the entries it hashes.)
    async fn converged(&mut self, ctx: &ContextId) -> bool {
        let mut cps = Vec::new();
        for m in &mut self.members {
            let cp = m.node.checkpoint(ctx).await.unwrap();
            cps.push((cp.heads, cp.root_hash));
        }
        cps.windows(2).all(|w| w[0] == w[1]) && !cps[0].0.is_empty()
    }
}

fn kv_store() -> Vec<u8> {
    common::guest("kv_store")
}

/// Runs one seed; whether the late joiner took a snapshot.
fn run(seed: u64, wasm: &[u8]) -> bool {
    let mut members: Vec<Member> = (1..=MEMBERS as u8).map(Member::new).collect();
    let app = block_on(members[0].node.install_app(wasm)).unwrap();
    let ctx = block_on(members[0].node.create_context(app, json!({}))).unwrap();
    for i in 1..MEMBERS {
        block_on(members[i].node.install_app(wasm)).unwrap();
        let invitation = members[0].node.invite(&ctx).unwrap();
        block_on(members[i].node.join(&invitation)).unwrap();
    }
    let mut sim = Sim {
        rng: Rng::new(seed),
        members,
        partitioned: vec![],
    };
    // What each acknowledged call left: each member writes only its own keys, so the last
    // acknowledged write of a key is its final value (None: removed, for good).
    let mut expected: BTreeMap<String, Option<String>> = BTreeMap::new();
    // Keys every member writes: any value written may win, but all members must agree.
    let mut shared: BTreeMap<String, Vec<String>> = BTreeMap::new();

    for round in 0..40 {
        if round == 5 {
            sim.partitioned = vec![sim.rng.below(MEMBERS as u64) as usize];
        }
        if round == 20 {
            sim.partitioned.clear();
        }
        if round == JOIN_ROUND {
            let mut late = Member::new(MEMBERS as u8 + 1);
            block_on(late.node.install_app(wasm)).unwrap();
            let invitation = sim.members[0].node.invite(&ctx).unwrap();
            block_on(late.node.join(&invitation)).unwrap();
            sim.members.push(late);
        }
        for i in 0..sim.members.len() {
            if sim.rng.chance(5) {
                sim.members[i].crash_and_restart();
            }
            let node = &mut sim.members[i].node;
            // A joiner's calls wait for its state (and for a snapshot to be in place).
            let synced = !matches!(
                block_on(node.execute(&ctx, "entries", json!({}))),
                Err(NodeError::NotSynced(_))
            );
            if !synced || !sim.rng.chance(60) {
                continue;
            }
            if sim.rng.chance(25) {
                let (key, value) = (
                    format!("shared-{}", sim.rng.below(3)),
                    format!("m{i}r{round}"),
                );
                block_on(node.execute(&ctx, "set", json!({"key": key, "value": value}))).unwrap();
                shared.entry(key).or_default().push(value);
                continue;
            }
            let key = format!("m{i}-{}", sim.rng.below(8));
            if expected.get(&key) == Some(&None) {
                // calimero-storage 0.10 keeps a removed key's tombstone for good: writing the
                // key again is a no-op there (README, known gaps), so the workload retires it.
                continue;
            }
            if sim.rng.chance(15) {
                block_on(node.execute(&ctx, "remove", json!({"key": key}))).unwrap();
                expected.insert(key, None);
            } else {
                let value = format!("r{round}");
                block_on(node.execute(&ctx, "set", json!({"key": key, "value": value}))).unwrap();
                expected.insert(key, Some(value));
            }
        }
        if round % 3 == 0 {
            sim.tick_all();
        }
        sim.deliver();
    }
    let mut rounds = 0;
    while !block_on(sim.converged(&ctx)) {
        rounds += 1;
        assert!(
            rounds <= 300,
            "seed {seed}: no convergence after {rounds} rounds of anti-entropy; replay with TABNODE_SIM_SEED={seed}"
        );
        sim.tick_all();
        sim.deliver();
    }
    let want: BTreeMap<String, Value> = expected
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, Value::from(v))))
        .collect();
    let mut first_shared = None;
    for (i, m) in sim.members.iter_mut().enumerate() {
        let entries = block_on(m.node.execute(&ctx, "entries", json!({})))
            .unwrap()
            .output;
        let mut got: BTreeMap<String, Value> = serde_json::from_value(entries).unwrap();
        let got_shared: BTreeMap<String, Value> =
            shared.keys().filter_map(|k| got.remove_entry(k)).collect();
        assert_eq!(
            got, want,
            "seed {seed}, member {i}: replay with TABNODE_SIM_SEED={seed}"
        );
        for (key, value) in &got_shared {
            assert!(
                shared[key].iter().any(|v| value == v),
                "seed {seed}: {key} holds {value}, never written; replay with TABNODE_SIM_SEED={seed}"
            );
        }
        assert_eq!(got_shared.len(), shared.len(), "seed {seed}, member {i}");
        let first = first_shared.get_or_insert_with(|| got_shared.clone());
        assert_eq!(
            *first, got_shared,
            "seed {seed}, member {i}: replay with TABNODE_SIM_SEED={seed}"
        );
    }
    let late = &sim.members[MEMBERS].node;
    block_on(late.audit(&ctx))
        .unwrap()
        .iter()
        .any(|r| r.entry.method == "sync.snapshot")
}

#[test]
fn members_converge_under_loss_duplication_reordering_partitions_and_crashes() {
    let wasm = kv_store();
    let seeds: Vec<u64> = match std::env::var("TABNODE_SIM_SEED") {
        Ok(seed) => vec![seed.parse().expect("TABNODE_SIM_SEED is a number")],
        Err(_) => {
            let n = std::env::var("TABNODE_SIM_SEEDS")
                .map_or(200, |n| n.parse().expect("TABNODE_SIM_SEEDS is a number"));
            (1..=n).collect()
        }
    };
    let started = std::time::Instant::now();
    let snapshots = seeds.iter().filter(|&&seed| run(seed, &wasm)).count();
    println!(
        "{} seeds converged in {:.1} s; the late joiner took a snapshot in {snapshots}",
        seeds.len(),
        started.elapsed().as_secs_f64()
    );
    // A joiner takes a snapshot only while it lacks a good part of what it covers; here the
    // deltas often arrive first (the network reorders), so fewer seeds take one.
    if seeds.len() >= 40 {
        assert!(
            snapshots * 40 >= seeds.len(),
            "snapshots were taken in only {snapshots} of {} seeds: the path is not exercised",
            seeds.len()
        );
    }
}
