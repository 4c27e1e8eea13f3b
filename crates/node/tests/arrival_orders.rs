//! The membership log's rule does not depend on the order deltas arrive in, on a generated
//! graph (on `tabnode-sim`): two admins and two members, cut into two sides, write and change
//! membership concurrently (one admin's role changes; in the second test both admins', and
//! removals and upgrades, so concurrent upgrades and writes concurrent with them); a fifth
//! member, cut off from all of it, then receives every delta the others made, one message
//! each, in several orders: as they stored them (member by member), the reverse (most deltas
//! before their parents), and shuffles. Each order starts from a copy of the fifth member's
//! store (and what it still lacks after is sent again, as anti-entropy would), and every order
//! must end with nothing waiting, on the same heads, root, members and roles, app and entries,
//! and (while it is a member) the same secret: concurrent removals in the graph give it the
//! secrets of several latest removals, in any order.
//!
//! `TABNODE_SIM_SEEDS=N` runs N seeds (default 10); `TABNODE_SIM_SEED=S` replays one.

mod common;

use std::collections::{BTreeMap, HashSet};

use futures::executor::block_on;
use serde_json::{json, Value};
use tabnode_node::{Delta, Node, Role, WireMessage};
use tabnode_runtime::{Limits, Runtime};
use tabnode_sim::{fork, Faults, Rng, Sim, SimEnv, ROUND_NANOS};
use tabnode_types::{AppId, ContextId, DeltaId, Hash, PublicKey};

const ADMIN: usize = 0;
const OTHER_ADMIN: usize = 1;
const OBSERVER: usize = 4;
const MIGRATE: &str = "migrate_v1_to_v2";

/// What a member ends on after one order of arrival.
#[derive(Debug, PartialEq)]
struct Outcome {
    heads: Vec<DeltaId>,
    root: Option<Hash>,
    members: BTreeMap<PublicKey, Role>,
    app: Result<AppId, String>,
    entries: Result<Value, String>,
    /// Which secret it seals with (a digest), while it is a member: one removed may be left
    /// on any secret it held.
    secret: Option<Hash>,
}

/// The membership operations a run makes besides role changes.
#[derive(Debug, Clone, Copy)]
struct Menu {
    removals: bool,
    upgrades: bool,
    /// Whether the second admin (on the other side) changes membership too.
    both_admins: bool,
}

/// One member's random step on its side: a write, or a membership operation an admin may
/// make (refusals, e.g. by a member an operation on the other side demoted, are fine).
fn step(sim: &mut Sim, ctx: &ContextId, i: usize, menu: Menu, v2: &[u8], round: usize) {
    let keys: Vec<PublicKey> = (0..OBSERVER).map(|i| sim.node(i).public_key()).collect();
    let target = keys[sim.rng.below(4) as usize];
    let node_key = sim.node(i).public_key();
    let choice = match sim.rng.below(10) {
        6..=9 if i == OTHER_ADMIN && !menu.both_admins => 0,
        6 if !menu.removals => 7,
        9 if !menu.upgrades => 8,
        other => other,
    };
    let node = sim.node(i);
    let _ = match choice {
        0..=5 => block_on(node.execute(
            ctx,
            "set",
            json!({"key": format!("m{i}-{}", round % 3), "value": format!("r{round}")}),
        ))
        .map(|_| ()),
        6 if target != node_key => block_on(node.remove_member(ctx, target)).map(|_| ()),
        7 | 8 => {
            let role = [Role::Reader, Role::Member, Role::Admin][(round + i) % 3];
            block_on(node.set_role(ctx, target, role)).map(|_| ())
        }
        _ => block_on(node.upgrade_app(ctx, v2, Some(MIGRATE.into()))).map(|_| ()),
    };
}

fn outcome(node: &mut Node<tabnode_store::MemoryStore, SimEnv>, ctx: &ContextId) -> Outcome {
    let cp = block_on(node.checkpoint(ctx)).unwrap();
    let members: BTreeMap<PublicKey, Role> = node.members(ctx).unwrap().into_iter().collect();
    let secret = members
        .contains_key(&node.public_key())
        .then(|| node.secret_digest(ctx).unwrap());
    Outcome {
        heads: cp.heads,
        root: cp.root_hash,
        members,
        secret,
        app: block_on(node.context_wasm(ctx))
            .map(|wasm| AppId::of_wasm(&wasm))
            .map_err(|e| e.to_string()),
        entries: block_on(node.execute(ctx, "entries", json!({})))
            .map(|r| r.output)
            .map_err(|e| e.kind().to_owned()),
    }
}

fn run(seed: u64, menu: Menu, v1: &[u8], v2: &[u8]) {
    let replay = format!("seed {seed}: replay with TABNODE_SIM_SEED={seed}");
    let mut sim = Sim::new(seed, Faults::NONE);
    sim.add_member();
    let app = block_on(sim.node(ADMIN).install_app(v1)).unwrap();
    let ctx = block_on(sim.node(ADMIN).create_context(app, json!({}))).unwrap();
    for i in 1..=OBSERVER {
        sim.add_member();
        block_on(sim.node(i).install_app(v1)).unwrap();
        let role = if i == OTHER_ADMIN {
            Role::Admin
        } else {
            Role::Member
        };
        let link = sim.node(ADMIN).invite_as(&ctx, role, u64::MAX / 2).unwrap();
        block_on(sim.node(i).join(&link)).unwrap();
    }
    let everyone_in = sim.run_until(100, |sim| {
        (0..=OBSERVER).all(|i| {
            let node = sim.node(i);
            node.members(&ctx).is_ok_and(|m| m.len() == OBSERVER + 1)
                && block_on(node.execute(&ctx, "entries", json!({}))).is_ok()
        })
    });
    assert!(everyone_in.is_some(), "{replay}: the members never settled");

    // Two sides, each with an admin, that do not hear each other; the observer hears nobody.
    sim.net.split(&[ADMIN, 2]);
    sim.net.isolate(OBSERVER);
    for round in 0..8 {
        for i in 0..OBSERVER {
            step(&mut sim, &ctx, i, menu, v2, round);
        }
        sim.advance(ROUND_NANOS);
        sim.step();
    }

    // Every delta any of them holds.
    let mut graph: Vec<Delta> = Vec::new();
    let mut seen = HashSet::new();
    for i in 0..OBSERVER {
        for delta in common::stored_deltas(sim.member(i).store().data(), &ctx) {
            if seen.insert(delta.id()) {
                graph.push(delta);
            }
        }
    }
    let observer_store = sim.member(OBSERVER).store().data().clone();
    let held: HashSet<DeltaId> = common::stored_deltas(&observer_store, &ctx)
        .iter()
        .map(Delta::id)
        .collect();
    graph.retain(|d| !held.contains(&d.id()));
    let ops = graph.iter().filter(|d| d.body.op.is_some()).count();

    let mut orders: Vec<Vec<Delta>> = vec![graph.clone(), graph.iter().rev().cloned().collect()];
    let mut rng = Rng::new(seed ^ 0x5eed);
    for _ in 0..3 {
        let mut order = graph.clone();
        rng.shuffle(&mut order);
        orders.push(order);
    }
    let mut outcomes: Vec<Outcome> = Vec::new();
    for (n, order) in orders.iter().enumerate() {
        let env = SimEnv::new(sim.clock().clone(), [n as u8; 32]);
        let store = fork(&observer_store);
        let mut node = common::clocked(
            block_on(Node::open(
                store.clone(),
                env,
                Runtime::new(Limits::default()),
            ))
            .unwrap(),
        );
        let topic = tabnode_node::context_topic(&ctx);
        // Then, as anti-entropy would, what it still lacks again (a delta refused alone is
        // taken once a member's delta on it waits for it), in the same order.
        for _pass in 0..3 {
            let held: HashSet<DeltaId> = common::stored_deltas(&store, &ctx)
                .iter()
                .map(Delta::id)
                .collect();
            for delta in order.iter().filter(|d| !held.contains(&d.id())) {
                let sealed = node
                    .seal_for(&ctx, &WireMessage::Deltas(vec![delta.clone()]))
                    .unwrap();
                block_on(node.handle_message(&topic, &sealed));
            }
        }
        let got = outcome(&mut node, &ctx);
        assert_eq!(
            node.pending(&ctx).unwrap(),
            0,
            "{replay}: order {n} left deltas waiting"
        );
        if let Some(first) = outcomes.first() {
            let differ: Vec<&str> = [
                ("heads", got.heads != first.heads),
                ("root", got.root != first.root),
                ("members", got.members != first.members),
                ("app", got.app != first.app),
                ("entries", got.entries != first.entries),
                ("secret", got.secret != first.secret),
            ]
            .into_iter()
            .filter_map(|(what, differs)| differs.then_some(what))
            .collect();
            assert_eq!(
                &got,
                first,
                "{replay}: order {n} of {} deltas ({ops} operations) ends elsewhere than order 0: \
                 {differ:?} differ",
                graph.len()
            );
        }
        outcomes.push(got);
    }
    assert!(outcomes[0].app.is_ok(), "{replay}: {:?}", outcomes[0]);
}

/// Runs `seeds`, and reports every one that fails, with its reason.
fn run_all(seeds: &[u64], menu: Menu) {
    let (v1, v2) = (common::guest("kv_store"), common::guest("kv_store_v2"));
    let failed: Vec<(u64, String)> = seeds
        .iter()
        .filter_map(|&seed| {
            std::panic::catch_unwind(|| run(seed, menu, &v1, &v2))
                .err()
                .map(|e| (seed, common::panic_text(e)))
        })
        .collect();
    assert!(failed.is_empty(), "{failed:#?}");
}

/// One admin changes roles while everyone writes: writes concurrent with a demotion, and
/// role changes concurrent with writes of the member they concern.
#[test]
fn every_order_of_arrival_of_writes_and_one_admins_role_changes_ends_on_one_state() {
    let menu = Menu {
        removals: false,
        upgrades: false,
        both_admins: false,
    };
    run_all(&common::sim_seeds(10), menu);
}

/// With both admins changing roles concurrently, and removals and upgrades in the graph, the
/// outcome depended on the order of arrival. Of seeds 1..=10 these failed, each differently:
/// - seed 2 (role changes alone): a `SetRole` refused outright in one order and kept void in
///   the others (fixed before);
/// - seed 3, order 1 (the reverse): applying an upgrade failed with `AppNotInstalled`: its
///   binary was installed only if it stood on arrival. Fixed: installed whenever it is kept;
/// - seed 6, order 0: a removed admin's operation concurrent with its removal, arriving once
///   the removal was settled, was refused and 7 deltas waited for good (in other orders it
///   was taken). Fixed: a settled removal refused only what would count, and a junior's
///   operations racing a senior's removal of it count for nothing (since seed 15 nothing is
///   refused for the time it arrives);
/// - seed 10, order 1 (the reverse) ended on the same heads, members and app as order 0 but
///   another root, and its `entries` call trapped (`ExecutionFailed`). The two admins'
///   upgrades to v2 were concurrent, so neither counts; but the writes made after one of them
///   alone (7 deltas, by the v2 app, for v2's state shape) stood, and the v1 app merged them
///   into a v1 state, in the order each node had applied them. Fixed: a write stands only if
///   made by the app the log says runs at its place (`Log::made_by_running_app`: the last
///   upgrade that counts in its causal past is the one that counted in the log of that past
///   alone); those 7 are void in every order.
///
/// Beyond the default seeds, 14 and 15 of 1..=40 failed (see [`seed_14_ends_on_one_state`]
/// and [`seed_15_ends_on_one_state`]).
///
/// `TABNODE_SIM_SEED=10 cargo test --release -p tabnode-node --test arrival_orders`
#[test]
fn every_order_of_arrival_of_removals_and_upgrades_ends_on_one_state() {
    let menu = Menu {
        removals: true,
        upgrades: true,
        both_admins: true,
    };
    run_all(&common::sim_seeds(10), menu);
}

/// Seeds 14 and 15 of 1..=40 (outside the default range) failed, alike on the code before the
/// fixes above. Seed 14: order 0 refused outright an admin operation by a key whose
/// certificate makes it a member, promoted to admin in the operation's past ("is a Member ...
/// and may not change membership": a concurrent demotion that arrived first made its role a
/// member's on arrival, and the fallback was the certificate's role), which order 1, hearing
/// it before the demotion, kept void: the heads differed. Now what is refused outright is what
/// neither the certificate nor the author's role in the delta's own causal past allows
/// (`Log::role_in_own_past`), the same in every order; such an operation is kept void.
#[test]
fn seed_14_ends_on_one_state() {
    let menu = Menu {
        removals: true,
        upgrades: true,
        both_admins: true,
    };
    run_all(&[14], menu);
}

/// Seed 15 of 1..=40 (outside the default range) failed: admin 1, cut off on its side, signs a
/// `SetRole` and then four writes and a `Remove` of admin 2 on it, concurrently with its
/// removal by admin 2, whom the creator promoted (so both are of rank 2, and the removal did
/// not overrule what admin 1 did concurrently). In order 0 the removal and a third member's
/// delta on it arrived first, so the `SetRole` was refused as "a settled removal missed", and
/// admin 1's five deltas on it waited for good; in the other orders it was kept and counted,
/// and admin 1's counter-removal of admin 2 counted in some (orders 1, 2, 4 removed admin 2,
/// order 3 kept it). Now nothing is refused for the time it arrives: an operation racing its
/// author's removal counts only if a third member built on it without the removal in its past
/// (`races.rs` in the log), and of removals racing each other the one a third member followed
/// alone wins. Nobody but admin 1 built on its `SetRole` or its counter-removal, while the
/// creator built on admin 2's removal: admin 1 is removed, admin 2 stays, in every order.
/// `TABNODE_SIM_SEED=15 cargo test --release -p tabnode-node --test arrival_orders`
#[test]
fn seed_15_ends_on_one_state() {
    let menu = Menu {
        removals: true,
        upgrades: true,
        both_admins: true,
    };
    run_all(&[15], menu);
}
