//! A deterministic simulation (on `tabnode-sim`, in virtual time): three members on a network
//! that loses, duplicates, reorders and delays messages (past their round too), partitions a
//! member for a while, and crashes and restarts members from what they persisted, between
//! calls and in the middle of a commit (the batch lost, or kept with what followed it lost); a
//! fourth joins halfway, when the others hold more deltas than their snapshot threshold, so it
//! may catch up by a state snapshot (under the same faults, crashes included; when the deltas
//! reach it first, it needs none).
//! Random calls, on each member's own keys and on keys all members write at once;
//! at the end every member has the same heads, root and entries, every acknowledged call on an
//! own key is in the state, and each shared key holds one of the values written to it. (Same
//! heads with different roots, which concurrent writes of one key can leave, are repaired by
//! the members' announcements: see `Node::compare_root`.)
//!
//! `TABNODE_SIM_SEEDS=N` runs N seeds (default 200); `TABNODE_SIM_SEED=S` replays one.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use futures::executor::block_on;
use serde_json::{json, Value};
use tabnode_node::NodeError;
use tabnode_sim::{CommitFault, Faults, Sim, SimNode, ROUND_NANOS};
use tabnode_types::ContextId;

/// Members from the start; one more joins at [`JOIN_ROUND`].
const MEMBERS: usize = 3;
const JOIN_ROUND: usize = 25;
/// Low, so the late joiner is offered snapshots.
const SNAPSHOT_THRESHOLD: usize = 10;

/// Same heads and the same app root everywhere. (Not the node's Merkle root over the stored
/// bytes: calimero-storage keeps per-member metadata beside the entries it hashes.)
fn converged(sim: &mut Sim, ctx: &ContextId) -> bool {
    let mut cps = Vec::new();
    for node in sim.nodes() {
        let cp = block_on(node.checkpoint(ctx)).unwrap();
        cps.push((cp.heads, cp.root_hash));
    }
    cps.windows(2).all(|w| w[0] == w[1]) && !cps[0].0.is_empty()
}

/// A member joins `ctx` on an invitation of member 0's.
fn join(sim: &mut Sim, ctx: &ContextId, wasm: &[u8]) -> usize {
    let i = sim.add_member();
    block_on(sim.node(i).install_app(wasm)).unwrap();
    let invitation = sim.node(0).invite(ctx).unwrap();
    block_on(sim.node(i).join(&invitation)).unwrap();
    i
}

/// Sometimes crashes member `i` now, or arms a crash at one of its next commits.
fn maybe_crash(sim: &mut Sim, i: usize) {
    if sim.rng.chance(3) {
        sim.restart(i);
    } else if sim.rng.chance(3) {
        let fault = match sim.rng.chance(50) {
            true => CommitFault::Lost,
            false => CommitFault::Kept,
        };
        let nth = 1 + sim.rng.below(3) as u32;
        sim.crash_at_commit(i, nth, fault);
    }
}

/// A write on `node`: `Ok(true)` acknowledged, `Ok(false)` cut short by a crash (it may or may
/// not have been kept), and any other failure is the test's.
fn write(node: &mut SimNode, ctx: &ContextId, method: &str, args: Value) -> bool {
    match block_on(node.execute(ctx, method, args)) {
        Ok(_) => true,
        Err(NodeError::Store(_)) => false,
        Err(e) => panic!("{method}: {e}"),
    }
}

/// Runs one seed; whether the late joiner took a snapshot.
fn run(seed: u64, wasm: &[u8]) -> bool {
    let mut sim = Sim::new(seed, Faults::BAD);
    sim.on_open(|node| node.set_snapshot_threshold(Some(SNAPSHOT_THRESHOLD)));
    sim.add_member();
    let app = block_on(sim.node(0).install_app(wasm)).unwrap();
    let ctx = block_on(sim.node(0).create_context(app, json!({}))).unwrap();
    for _ in 1..MEMBERS {
        join(&mut sim, &ctx, wasm);
    }
    // What each call on an own key may have left: each member writes only its own keys, so
    // the last acknowledged write of a key is its final value (None: removed, for good). A
    // write a crash cut short may or may not have been kept: its key then allows both values
    // and is written no more.
    let mut expected: BTreeMap<String, Vec<Option<String>>> = BTreeMap::new();
    let mut retired: BTreeSet<String> = BTreeSet::new();
    // Keys every member writes: any value written may win, but all members must agree.
    let mut shared: BTreeMap<String, Vec<String>> = BTreeMap::new();

    for round in 0..40 {
        if round == 5 {
            let cut = sim.rng.below(MEMBERS as u64) as usize;
            sim.net.isolate(cut);
        }
        if round == 20 {
            sim.net.heal();
        }
        if round == JOIN_ROUND {
            join(&mut sim, &ctx, wasm);
        }
        for i in 0..sim.len() {
            maybe_crash(&mut sim, i);
            sim.recover();
            // A joiner's calls wait for its state (and for a snapshot to be in place).
            let synced = !matches!(
                block_on(sim.node(i).execute(&ctx, "entries", json!({}))),
                Err(NodeError::NotSynced(_))
            );
            if sim.crashed(i) || !synced || !sim.rng.chance(60) {
                continue;
            }
            if sim.rng.chance(25) {
                let (key, value) = (
                    format!("shared-{}", sim.rng.below(3)),
                    format!("m{i}r{round}"),
                );
                let args = json!({"key": key, "value": value});
                // Written or not, the value may be the one that wins.
                write(sim.node(i), &ctx, "set", args);
                shared.entry(key).or_default().push(value);
                continue;
            }
            let key = format!("m{i}-{}", sim.rng.below(8));
            if retired.contains(&key) {
                continue;
            }
            let (method, args, value) = match sim.rng.chance(15) {
                // calimero-storage 0.10 keeps a removed key's tombstone for good: writing the
                // key again is a no-op there (README, known gaps), so the workload retires it.
                true => ("remove", json!({"key": key}), None),
                false => {
                    let value = format!("r{round}");
                    ("set", json!({"key": key, "value": value}), Some(value))
                }
            };
            let written = write(sim.node(i), &ctx, method, args);
            let allowed = expected.entry(key.clone()).or_insert_with(|| vec![None]);
            if written {
                *allowed = vec![value.clone()];
            } else {
                allowed.push(value.clone());
            }
            if !written || value.is_none() {
                retired.insert(key);
            }
        }
        sim.advance(ROUND_NANOS);
        sim.step();
    }
    sim.disarm();
    let rounds = sim.run_until(300, |sim| converged(sim, &ctx));
    assert!(
        rounds.is_some(),
        "seed {seed}: no convergence after 300 rounds of anti-entropy; replay with TABNODE_SIM_SEED={seed}"
    );
    let mut first_shared = None;
    for i in 0..sim.len() {
        let entries = block_on(sim.node(i).execute(&ctx, "entries", json!({})))
            .unwrap()
            .output;
        let mut got: BTreeMap<String, Value> = serde_json::from_value(entries).unwrap();
        let got_shared: BTreeMap<String, Value> =
            shared.keys().filter_map(|k| got.remove_entry(k)).collect();
        let keys: BTreeSet<&String> = got.keys().chain(expected.keys()).collect();
        for key in keys {
            let value = got.get(key).map(|v| v.as_str().unwrap().to_owned());
            let allowed = expected.get(key).cloned().unwrap_or(vec![None]);
            assert!(
                allowed.contains(&value),
                "seed {seed}, member {i}: {key} is {value:?}, not one of {allowed:?}; replay with TABNODE_SIM_SEED={seed}"
            );
        }
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
    let late = sim.node(MEMBERS);
    block_on(late.audit(&ctx))
        .unwrap()
        .iter()
        .any(|r| r.entry.method == "sync.snapshot")
}

#[test]
fn members_converge_under_loss_duplication_reordering_delays_partitions_and_crashes() {
    let wasm = common::guest("kv_store");
    let seeds = common::sim_seeds(200);
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
