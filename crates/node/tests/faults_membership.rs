//! Membership changes under faults (on `tabnode-sim`, in virtual time): while four members
//! write on a network that loses, duplicates, reorders and delays messages, with crashes
//! between calls and in the middle of commits, the admin demotes a member to reader and back,
//! removes another, and upgrades the app (kv-store to kv-store-v2, with its migration).
//!
//! (The member removed only reads in the first test; the second lets it write, see there.)
//! At the end the remaining members agree on heads, root, entries, members and roles, and the
//! app version; each replays its history to the same root and its audit chain verifies; every
//! write of the admin's stands (nothing voids it); no key holds a value its owner never wrote;
//! the removed member is no member anywhere and cannot open what is sent after; and writes
//! made after all of it reach everyone.
//!
//! `TABNODE_SIM_SEEDS=N` runs N seeds (default 20); `TABNODE_SIM_SEED=S` replays one.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use futures::executor::block_on;
use serde_json::{json, Value};
use tabnode_node::{NodeError, Role, WireMessage};
use tabnode_sim::{CommitFault, Faults, Sim, SimNode, ROUND_NANOS};
use tabnode_types::ContextId;

const ADMIN: usize = 0;
/// Demoted to reader, then made a member again.
const DEMOTED: usize = 1;
const REMOVED: usize = 2;
/// Left alone (its writes concurrent with the upgrade are void, as any member's).
const BYSTANDER: usize = 3;
const MIGRATE: &str = "migrate_v1_to_v2";

/// A member's write: `Ok(true)` acknowledged, `Ok(false)` refused or cut short by a crash.
fn write(node: &mut SimNode, ctx: &ContextId, key: &str, value: &str) -> bool {
    match block_on(node.execute(ctx, "set", json!({"key": key, "value": value}))) {
        Ok(_) => true,
        Err(NodeError::Store(_) | NodeError::Unauthorized(_) | NodeError::NotSynced(_)) => false,
        Err(e) => panic!("set {key}: {e}"),
    }
}

/// A membership operation by the admin; `false` if a crash cut it short (it is tried again).
fn operate(result: Result<tabnode_types::DeltaId, NodeError>) -> bool {
    match result {
        Ok(_) => true,
        Err(NodeError::Store(_)) => false,
        Err(e) => panic!("membership operation: {e}"),
    }
}

fn position(node: &mut SimNode, ctx: &ContextId) -> (Vec<tabnode_types::DeltaId>, Value) {
    let cp = block_on(node.checkpoint(ctx)).unwrap();
    (cp.heads, json!(cp.root_hash))
}

fn converged(sim: &mut Sim, ctx: &ContextId, who: &[usize]) -> bool {
    let positions: Vec<_> = who.iter().map(|&i| position(sim.node(i), ctx)).collect();
    positions.windows(2).all(|w| w[0] == w[1])
}

fn entries(node: &mut SimNode, ctx: &ContextId) -> BTreeMap<String, String> {
    let out = block_on(node.execute(ctx, "entries", json!({})))
        .unwrap()
        .output;
    serde_json::from_value(out).unwrap()
}

fn run(seed: u64, v1: &[u8], v2: &[u8], removed_writes: bool) {
    let replay = format!("seed {seed}: replay with TABNODE_SIM_SEED={seed}");
    let mut sim = Sim::new(seed, Faults::BAD);
    sim.add_member();
    let app = block_on(sim.node(ADMIN).install_app(v1)).unwrap();
    let ctx = block_on(sim.node(ADMIN).create_context(app, json!({}))).unwrap();
    for _ in 1..4 {
        let i = sim.add_member();
        block_on(sim.node(i).install_app(v1)).unwrap();
        let invitation = sim.node(ADMIN).invite(&ctx).unwrap();
        block_on(sim.node(i).join(&invitation)).unwrap();
    }
    let all = [ADMIN, DEMOTED, REMOVED, BYSTANDER];
    // Each operation's round, in causal order on the admin's node.
    let demote = 3 + sim.rng.below(8) as usize;
    let promote = demote + 1 + sim.rng.below(10) as usize;
    let remove = 3 + sim.rng.below(20) as usize;
    let upgrade = 5 + sim.rng.below(20) as usize;
    let mut done = BTreeSet::new();
    // Every value each member wrote to its own keys; the admin's acknowledged ones exactly
    // (a crash may keep a write it cut short: its key then allows both, and is retired).
    let mut written: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut admin_expected: BTreeMap<String, Vec<Option<String>>> = BTreeMap::new();
    let mut retired = BTreeSet::new();

    for round in 0..40 {
        let due = [
            ("demote", demote),
            ("promote", promote),
            ("remove", remove),
            ("upgrade", upgrade),
        ];
        for (op, at) in due {
            if round < at || done.contains(op) || sim.crashed(ADMIN) {
                continue;
            }
            let member = |sim: &mut Sim, i| sim.node(i).public_key();
            let (demoted, removed) = (member(&mut sim, DEMOTED), member(&mut sim, REMOVED));
            // Demotion and promotion stay in order: the second waits for the first.
            if op == "promote" && !done.contains("demote") {
                continue;
            }
            let admin = sim.node(ADMIN);
            let ok = match op {
                "demote" => operate(block_on(admin.set_role(&ctx, demoted, Role::Reader))),
                "promote" => operate(block_on(admin.set_role(&ctx, demoted, Role::Member))),
                "remove" => operate(block_on(admin.remove_member(&ctx, removed))),
                _ => operate(block_on(admin.upgrade_app(&ctx, v2, Some(MIGRATE.into())))),
            };
            if ok {
                done.insert(op);
            }
        }
        for i in all {
            if sim.rng.chance(3) {
                sim.restart(i);
            } else if sim.rng.chance(4) {
                let fault = match sim.rng.chance(50) {
                    true => CommitFault::Lost,
                    false => CommitFault::Kept,
                };
                let nth = 1 + sim.rng.below(2) as u32;
                sim.crash_at_commit(i, nth, fault);
            }
            sim.recover();
            if !sim.rng.chance(60) || (i == REMOVED && !removed_writes) {
                continue;
            }
            let key = format!("m{i}-{}", sim.rng.below(6));
            if retired.contains(&key) {
                continue;
            }
            let value = format!("r{round}");
            let acknowledged = write(sim.node(i), &ctx, &key, &value);
            written.entry(key.clone()).or_default().push(value.clone());
            if i == ADMIN {
                let allowed = admin_expected.entry(key.clone()).or_insert(vec![None]);
                if acknowledged {
                    *allowed = vec![Some(value)];
                } else {
                    allowed.push(Some(value));
                    retired.insert(key);
                }
            }
        }
        sim.advance(ROUND_NANOS);
        sim.step();
    }
    assert_eq!(done.len(), 4, "{replay}: operations done {done:?}");
    sim.disarm();
    let remaining = [ADMIN, DEMOTED, BYSTANDER];
    let mut refused = BTreeMap::new();
    let rounds = sim.run_until(300, |sim| {
        for i in remaining {
            for e in sim.node(i).take_events() {
                if let tabnode_node::NodeEvent::SyncRejected { kind, reason, .. } = e {
                    let reason: String = reason.chars().take(160).collect();
                    *refused.entry((i, kind, reason)).or_insert(0) += 1;
                }
            }
        }
        converged(sim, &ctx, &remaining)
    });
    if rounds.is_none() {
        let stands: Vec<_> = remaining
            .iter()
            .map(|&i| {
                let node = sim.node(i);
                let cp = block_on(node.checkpoint(&ctx)).unwrap();
                let pending = node.pending(&ctx).unwrap();
                (i, cp.heads, cp.root_hash, pending)
            })
            .collect();
        panic!("{replay}: no convergence: {stands:?}; refusals: {refused:#?}");
    }

    let keys: Vec<_> = all.iter().map(|&i| sim.node(i).public_key()).collect();
    let want_members = BTreeMap::from([
        (keys[ADMIN], Role::Admin),
        (keys[DEMOTED], Role::Member),
        (keys[BYSTANDER], Role::Member),
    ]);
    let first = entries(sim.node(ADMIN), &ctx);
    for i in remaining {
        let node = sim.node(i);
        let members: BTreeMap<_, _> = node.members(&ctx).unwrap().into_iter().collect();
        assert_eq!(members, want_members, "{replay}, member {i}");
        let schema = block_on(node.execute(&ctx, "schema", json!({}))).unwrap();
        assert_eq!(schema.output, json!("2"), "{replay}, member {i}");
        assert_eq!(
            block_on(node.context_wasm(&ctx)).unwrap(),
            v2,
            "{replay}, member {i}"
        );
        let replayed = block_on(node.replay(&ctx)).unwrap();
        assert!(replayed.matches, "{replay}, member {i}: {replayed:?}");
        assert!(block_on(node.verify_audit(&ctx)).unwrap().ok, "{replay}");
        let got = entries(node, &ctx);
        assert_eq!(got, first, "{replay}, member {i}");
        for (key, value) in &got {
            assert!(
                written.get(key).is_some_and(|w| w.contains(value)),
                "{replay}: {key} holds {value}, never written"
            );
        }
        for (key, allowed) in &admin_expected {
            let value = got.get(key).cloned();
            assert!(
                allowed.contains(&value),
                "{replay}, member {i}: the admin's {key} is {value:?}, not one of {allowed:?}"
            );
        }
    }

    // After all of it, writes flow among the remaining members, under a secret the removed
    // one does not hold; its own attempts come to nothing.
    for i in all {
        let acknowledged = write(sim.node(i), &ctx, &format!("final-{i}"), "after");
        assert!(
            acknowledged || i == REMOVED,
            "{replay}: member {i} cannot write"
        );
    }
    let sealed = sim
        .node(ADMIN)
        .seal_for(&ctx, &WireMessage::Deltas(vec![]))
        .unwrap();
    assert!(
        sim.node(REMOVED).open_message(&ctx, &sealed).is_err(),
        "{replay}: the removed member reads"
    );
    let rounds = sim.run_until(300, |sim| {
        converged(sim, &ctx, &remaining)
            && remaining
                .iter()
                .all(|&i| entries(sim.node(i), &ctx).contains_key("final-0"))
    });
    assert!(
        rounds.is_some(),
        "{replay}: no convergence after the final writes"
    );
    for i in remaining {
        let got = entries(sim.node(i), &ctx);
        for j in remaining {
            assert_eq!(
                got.get(&format!("final-{j}")).map(String::as_str),
                Some("after")
            );
        }
        assert_eq!(got.get(&format!("final-{REMOVED}")), None, "{replay}");
        let members = sim.node(i).members(&ctx).unwrap();
        assert!(
            !members.iter().any(|(k, _)| *k == keys[REMOVED]),
            "{replay}"
        );
    }
}

/// Runs `seeds`, and reports every one that fails, with its reason.
fn run_all(seeds: &[u64], removed_writes: bool) {
    let (v1, v2) = (common::guest("kv_store"), common::guest("kv_store_v2"));
    let started = std::time::Instant::now();
    let failed: Vec<(u64, String)> = seeds
        .iter()
        .filter_map(|&seed| {
            std::panic::catch_unwind(|| run(seed, &v1, &v2, removed_writes))
                .err()
                .map(|e| (seed, common::panic_text(e)))
        })
        .collect();
    println!(
        "{} seeds in {:.1} s",
        seeds.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(failed.is_empty(), "{failed:#?}");
}

/// The member to be removed only reads.
#[test]
fn removals_role_changes_and_upgrades_under_faults_leave_one_state() {
    run_all(&common::sim_seeds(20), false);
}

/// The member to be removed writes too, and some of its writes are concurrent with its
/// removal. Seed 5 (TABNODE_SIM_SEED=5) failed: B ended with a head on the removed member C's
/// delta, which A and D refused each time it came ("signed on a point from before the
/// removal, which others have built on"), so A and D never converged with B. Fixed: a
/// removed key's writes are void wherever they arrive and every member takes them (and now
/// its operations too: nothing is refused for the time it arrives, see `races.rs` in the log).
/// Seed 17 failed too: the admin crashed before its removal and its upgrade (made one after
/// the other) went out, and refused every other member's sync request under the former secret
/// ("no member", 12 deltas waiting): membership when that secret was current was judged as a
/// write's authority, and a write there is concurrent with the upgrade, so void. Fixed: a
/// sync request is judged by membership (`Log::member_at`), which an upgrade does not bar
/// (`membership_log`'s `a_member_away_during_a_removal_and_an_upgrade_catches_up`).
/// `TABNODE_SIM_SEED=17 cargo test --release -p tabnode-node --test faults_membership`
#[test]
fn a_removed_members_concurrent_writes_leave_one_state() {
    run_all(&common::sim_seeds(20), true);
}
