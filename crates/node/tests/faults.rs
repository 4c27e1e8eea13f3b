//! Three members on a simulated network that loses, duplicates and reorders messages and
//! partitions one member for a while. Whatever the seed, anti-entropy (`tick`) brings every
//! member to the same entries, heads and root.

use futures::executor::block_on;
use serde_json::json;
use tabnode_node::{FixedEnv, Node, Outgoing, ANNOUNCE_NANOS};
use tabnode_runtime::{Limits, Runtime};
use tabnode_store::MemoryStore;
use tabnode_types::ContextId;

type TestNode = Node<MemoryStore, FixedEnv>;

/// xorshift64*: a seeded stream for the network's choices, reproducible per seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

struct FaultyNet {
    rng: Rng,
    loss: u64,
    duplication: u64,
    /// Nodes cut off from everyone else (their messages and messages to them are dropped).
    partitioned: Vec<usize>,
}

impl FaultyNet {
    /// One round: everything every node queued is delivered (or not) to every other node.
    fn round(&mut self, nodes: &mut [TestNode]) -> usize {
        let mut in_flight = Vec::new();
        for (from, node) in nodes.iter_mut().enumerate() {
            for out in node.take_outgoing() {
                if let Outgoing::Publish { topic, data } = out {
                    for to in 0..3 {
                        if to == from
                            || self.partitioned.contains(&from)
                            || self.partitioned.contains(&to)
                        {
                            continue;
                        }
                        if self.rng.chance(self.loss) {
                            continue;
                        }
                        in_flight.push((to, topic.clone(), data.clone()));
                        if self.rng.chance(self.duplication) {
                            in_flight.push((to, topic.clone(), data.clone()));
                        }
                    }
                }
            }
        }
        // Reorder: a seeded shuffle.
        for i in (1..in_flight.len()).rev() {
            let j = (self.rng.next() % (i as u64 + 1)) as usize;
            in_flight.swap(i, j);
        }
        let delivered = in_flight.len();
        for (to, topic, data) in in_flight {
            block_on(nodes[to].handle_message(&topic, &data));
        }
        delivered
    }
}

fn kv_store() -> Vec<u8> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/apps/dist/kv_store.wasm"
    );
    std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}; run `bash tests/apps/build.sh`"))
}

/// Same heads and the same root everywhere.
fn converged(nodes: &mut [TestNode], ctx: &ContextId) -> bool {
    let checkpoints: Vec<_> = nodes.iter().map(|n| n.checkpoint(ctx).unwrap()).collect();
    checkpoints.windows(2).all(|w| w[0] == w[1])
}

fn run(seed: u64) {
    let wasm = kv_store();
    let mut nodes: Vec<TestNode> = (1..=3)
        .map(|i| {
            block_on(Node::open(
                MemoryStore::default(),
                FixedEnv::new(i),
                Runtime::new(Limits::default()),
            ))
            .unwrap()
        })
        .collect();
    let app = block_on(nodes[0].install_app(&wasm)).unwrap();
    let ctx = block_on(nodes[0].create_context(app, json!({}))).unwrap();
    for i in 1..3 {
        block_on(nodes[i].install_app(&wasm)).unwrap();
        let invitation = nodes[0].invite(&ctx).unwrap();
        block_on(nodes[i].join(&invitation)).unwrap();
    }
    let mut net = FaultyNet {
        rng: Rng(seed),
        loss: 30,
        duplication: 20,
        partitioned: vec![],
    };

    // Until every member has the state, retry through anti-entropy.
    for _ in 0..100 {
        for node in nodes.iter_mut() {
            node.env().advance(ANNOUNCE_NANOS);
            node.tick();
        }
        net.round(&mut nodes);
        if nodes
            .iter()
            .all(|n| !n.checkpoint(&ctx).unwrap().heads.is_empty())
        {
            break;
        }
    }
    // Everyone writes, with C partitioned for the first half.
    net.partitioned = vec![2];
    for round in 0..20 {
        if round == 10 {
            net.partitioned.clear();
        }
        for (i, node) in nodes.iter_mut().enumerate() {
            if node.checkpoint(&ctx).unwrap().heads.is_empty() {
                continue;
            }
            let key = format!("n{i}-{round}");
            block_on(node.execute(&ctx, "set", json!({"key": key, "value": "v"}))).unwrap();
        }
        net.round(&mut nodes);
    }
    // Heal: keep ticking over the lossy network until all agree (bounded).
    let mut rounds = 0;
    while !converged(&mut nodes, &ctx) {
        rounds += 1;
        assert!(
            rounds <= 200,
            "seed {seed}: no convergence after {rounds} rounds of anti-entropy"
        );
        for node in nodes.iter_mut() {
            node.env().advance(ANNOUNCE_NANOS);
            node.tick();
        }
        net.round(&mut nodes);
    }
    let entries: Vec<_> = nodes
        .iter_mut()
        .map(|n| {
            block_on(n.execute(&ctx, "entries", json!({})))
                .unwrap()
                .output
        })
        .collect();
    assert_eq!(entries[0], entries[1], "seed {seed}");
    assert_eq!(entries[1], entries[2], "seed {seed}");
    assert_eq!(
        entries[0].as_object().unwrap().len(),
        60,
        "seed {seed}: every write of every member"
    );
    assert!(nodes[0].checkpoint(&ctx).unwrap().root_hash.is_some());
    println!("seed {seed}: converged after {rounds} anti-entropy rounds");
}

#[test]
fn members_converge_despite_loss_duplication_reordering_and_a_partition() {
    for seed in [1, 7, 42, 1234, 99_999] {
        run(seed);
    }
}
