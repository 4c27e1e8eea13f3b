//! Event handlers between members: an event emitted with `emit_with_handler` names a method
//! that the members who apply the delta run (merod 0.10's rule: not its author), each run a
//! call of its own whose writes make a delta of their own. Runs the handler-counter guest.

mod common;

use common::{guest, node, settle, TestNode};

use futures::executor::block_on;
use serde_json::{json, Value};
use tabnode_node::{Env, FixedEnv, Node, NodeEvent};
use tabnode_runtime::{Limits, Runtime};
use tabnode_sim::{CommitFault, Faults, Sim, SimStore};
use tabnode_store::{Namespace, Store};
use tabnode_types::{ContextId, DeltaId, Hash};

fn call<S: Store, E: Env>(
    node: &mut Node<S, E>,
    ctx: &ContextId,
    method: &str,
    args: Value,
) -> Value {
    block_on(node.execute(ctx, method, args))
        .unwrap_or_else(|e| panic!("{method}: {e}"))
        .output
}

fn set<S: Store>(node: &mut Node<S, FixedEnv>, ctx: &ContextId, key: &str, value: &str) {
    call(node, ctx, "set", json!({"key": key, "value": value}));
}

/// Handler runs by every member, and by `node` itself.
fn counts(node: &mut TestNode, ctx: &ContextId) -> (Value, Value) {
    let all = call(node, ctx, "handled", json!({}));
    (all, call(node, ctx, "handled_here", json!({})))
}

fn position(node: &mut TestNode, ctx: &ContextId) -> (Vec<DeltaId>, Option<Hash>) {
    let cp = block_on(node.checkpoint(ctx)).unwrap();
    (cp.heads, cp.root_hash)
}

/// The handler runs `node` reported since it was last asked: (handler, its delta, its error).
fn handler_runs<S: Store>(
    node: &mut Node<S, FixedEnv>,
) -> Vec<(String, Option<DeltaId>, Option<String>)> {
    node.take_events()
        .into_iter()
        .filter_map(|e| match e {
            NodeEvent::Handler {
                handler,
                handler_delta,
                error,
                ..
            } => Some((handler, handler_delta, error)),
            _ => None,
        })
        .collect()
}

/// Every node announces its heads and root, and what follows is delivered: members whose
/// concurrent handler runs merged to different roots (calimero-storage 0.10 can, see
/// `sync.rs`) rebuild to one.
fn announce(nodes: &mut [&mut TestNode]) {
    for node in nodes.iter_mut() {
        node.env().advance(tabnode_node::ANNOUNCE_NANOS);
        common::tick(node);
    }
    settle(nodes);
}

/// A node (key from `seed`) with handler-counter installed.
fn member(seed: u8) -> TestNode {
    let mut n = node(seed);
    block_on(n.install_app(&guest("handler_counter"))).unwrap();
    n
}

/// A creates a handler-counter context and B joins it; both settled, their events taken.
fn two_members() -> (TestNode, TestNode, ContextId) {
    let mut a = member(1);
    let app = block_on(a.install_app(&guest("handler_counter"))).unwrap();
    let ctx = block_on(a.create_context(app, json!({}))).unwrap();
    let mut b = member(2);
    block_on(b.join(&a.invite(&ctx).unwrap())).unwrap();
    settle(&mut [&mut a, &mut b]);
    handler_runs(&mut a);
    handler_runs(&mut b);
    (a, b, ctx)
}

#[test]
fn a_writes_handlers_run_on_the_member_that_applies_it_and_not_on_its_author() {
    let (mut a, mut b, ctx) = two_members();
    for i in 0..3 {
        set(&mut a, &ctx, &format!("k{i}"), &format!("v{i}"));
    }
    assert_eq!(
        counts(&mut a, &ctx),
        (json!(0), json!(0)),
        "the author runs none"
    );
    settle(&mut [&mut a, &mut b]);
    // B ran `count` once per write of A's, each a delta of its own, which reached A.
    let runs = handler_runs(&mut b);
    assert_eq!(runs.len(), 3, "{runs:?}");
    assert!(runs
        .iter()
        .all(|(h, delta, error)| h == "count" && delta.is_some() && error.is_none()));
    assert!(handler_runs(&mut a).is_empty());
    assert_eq!(counts(&mut b, &ctx), (json!(3), json!(3)));
    assert_eq!(counts(&mut a, &ctx), (json!(3), json!(0)));
    // Each run was given its event's payload as its arguments.
    let seen = json!({"k0": "v0", "k1": "v1", "k2": "v2"});
    assert_eq!(call(&mut a, &ctx, "seen", json!({})), seen);
    assert_eq!(position(&mut a, &ctx), position(&mut b, &ctx));

    // And the other way round: B writes, A handles, B does not.
    set(&mut b, &ctx, "from-b", "x");
    settle(&mut [&mut a, &mut b]);
    assert_eq!(handler_runs(&mut a).len(), 1);
    assert!(handler_runs(&mut b).is_empty());
    assert_eq!(counts(&mut a, &ctx), (json!(4), json!(1)));
    assert_eq!(counts(&mut b, &ctx), (json!(4), json!(3)));
    assert_eq!(position(&mut a, &ctx), position(&mut b, &ctx));
}

#[test]
fn a_failing_handler_is_reported_changes_nothing_and_the_rest_still_run() {
    let (mut a, mut b, ctx) = two_members();
    call(
        &mut a,
        &ctx,
        "set_refused",
        json!({"key": "k", "value": "v"}),
    );
    settle(&mut [&mut a, &mut b]);
    let runs = handler_runs(&mut b);
    assert_eq!(runs.len(), 2, "{runs:?}");
    let (handler, delta, error) = &runs[0];
    assert_eq!((handler.as_str(), delta), ("refuse", &None));
    let error = error.as_deref().unwrap();
    assert!(
        error.starts_with("AppError") && error.contains("refused \\\"k\\\""),
        "{error}"
    );
    // The handler after it ran, and the write that named both stands.
    assert_eq!(runs[1].0, "count");
    assert!(runs[1].1.is_some() && runs[1].2.is_none(), "{runs:?}");
    for n in [&mut a, &mut b] {
        assert_eq!(call(n, &ctx, "get", json!({"key": "k"})), json!("v"));
        assert_eq!(call(n, &ctx, "handled", json!({})), json!(1));
    }
    assert_eq!(position(&mut a, &ctx), position(&mut b, &ctx));
}

#[test]
fn a_joiner_runs_no_handlers_for_the_history_it_catches_up_on() {
    let (mut a, mut b, ctx) = two_members();
    set(&mut a, &ctx, "k1", "v1");
    set(&mut a, &ctx, "k2", "v2");
    settle(&mut [&mut a, &mut b]);
    assert_eq!(handler_runs(&mut b).len(), 2);
    let mut c = member(3);
    block_on(c.join(&a.invite(&ctx).unwrap())).unwrap();
    settle(&mut [&mut a, &mut b, &mut c]);
    assert!(handler_runs(&mut c).is_empty(), "B handled those already");
    assert_eq!(counts(&mut c, &ctx), (json!(2), json!(0)));

    // A write after C joined is handled by both other members.
    set(&mut a, &ctx, "k3", "v3");
    settle(&mut [&mut a, &mut b, &mut c]);
    assert_eq!(handler_runs(&mut b).len(), 1);
    assert_eq!(handler_runs(&mut c).len(), 1);
    assert_eq!(counts(&mut b, &ctx), (json!(4), json!(3)));
    assert_eq!(counts(&mut c, &ctx), (json!(4), json!(1)));
    assert_eq!(counts(&mut a, &ctx), (json!(4), json!(0)));
    // B and C ran theirs concurrently (both wrote `seen["k3"]`): one root after announcing.
    announce(&mut [&mut a, &mut b, &mut c]);
    assert!(handler_runs(&mut b).is_empty() && handler_runs(&mut c).is_empty());
    let root = position(&mut a, &ctx);
    assert_eq!(position(&mut b, &ctx), root);
    assert_eq!(position(&mut c, &ctx), root);
}

/// A member that stops after it applied a delta and before it ran the handlers the delta
/// names runs them when it opens again, once: they wait in its store.
#[test]
fn handlers_due_when_a_node_stops_run_when_it_opens_again() {
    // Both on stores that can crash their process (A's never does).
    let open = |store: SimStore, seed: u8| {
        let runtime = Runtime::new(Limits::default());
        let mut node = block_on(Node::open(store, FixedEnv::new(seed), runtime)).unwrap();
        block_on(node.install_app(&guest("handler_counter"))).unwrap();
        node
    };
    let open_b = |store: SimStore| open(store, 2);
    let mut a = open(SimStore::default(), 1);
    let app = block_on(a.install_app(&guest("handler_counter"))).unwrap();
    let ctx = block_on(a.create_context(app, json!({}))).unwrap();
    let store = SimStore::default();
    let mut b = open_b(store.clone());
    block_on(b.join(&a.invite(&ctx).unwrap())).unwrap();
    settle(&mut [&mut a, &mut b]);
    handler_runs(&mut b);

    set(&mut a, &ctx, "k1", "v1");
    set(&mut a, &ctx, "k2", "v2");
    // B's process dies right after the first delta is applied and stored.
    store.crash_at_commit(1, CommitFault::Kept);
    settle(&mut [&mut a, &mut b]);
    assert!(store.crashed());
    drop(b);
    let waiting = || block_on(store.data().scan_prefix(Namespace::Meta, b"handler:")).unwrap();
    assert_eq!(
        waiting().len(),
        1,
        "the first delta's handler waits in the store"
    );

    let mut b = open_b(store.reopen());
    let runs = handler_runs(&mut b);
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert!(runs[0].0 == "count" && runs[0].1.is_some() && runs[0].2.is_none());
    assert!(waiting().is_empty());
    settle(&mut [&mut a, &mut b]);
    assert_eq!(
        handler_runs(&mut b).len(),
        1,
        "the second delta's, which B had lost"
    );
    assert_eq!(call(&mut b, &ctx, "handled_here", json!({})), json!(2));
    assert!(waiting().is_empty());

    // Run once: opening again runs nothing.
    drop(b);
    let mut b = open_b(store.reopen());
    assert!(handler_runs(&mut b).is_empty());
    settle(&mut [&mut a, &mut b]);
    assert_eq!(call(&mut b, &ctx, "handled_here", json!({})), json!(2));
    assert_eq!(call(&mut a, &ctx, "handled", json!({})), json!(2));
    let position = |node: &mut Node<SimStore, FixedEnv>| {
        let cp = block_on(node.checkpoint(&ctx)).unwrap();
        (cp.heads, cp.root_hash)
    };
    assert_eq!(position(&mut a), position(&mut b));
}

/// Each member's handler runs (`null` before it has the state) and whether all agree on heads and root, in a simulation.
fn handled_and_converged(sim: &mut Sim, ctx: &ContextId) -> (Vec<Value>, bool) {
    let mut positions = Vec::new();
    let mut handled = Vec::new();
    for node in sim.nodes() {
        let cp = block_on(node.checkpoint(ctx)).ok();
        positions.push(cp.map(|cp| (cp.heads, cp.root_hash)));
        let here = block_on(node.execute(ctx, "handled_here", json!({})));
        handled.push(here.map_or(Value::Null, |r| r.output));
    }
    let converged = positions.windows(2).all(|w| w[0] == w[1]) && positions[0].is_some();
    (handled, converged)
}

/// On a network that loses, duplicates, delays and reorders messages (deltas then arrive
/// before their parents, twice, or through sync requests), each delta's handlers still run
/// once on every member but its author, and the members end on one root.
#[test]
fn handlers_run_once_per_delta_and_member_on_a_bad_network() {
    const WRITES: u64 = 8;
    let wasm = guest("handler_counter");
    for seed in common::sim_seeds(4) {
        let mut sim = Sim::new(seed, Faults::BAD);
        for i in 0..3 {
            sim.add_member();
            block_on(sim.node(i).install_app(&wasm)).unwrap();
        }
        let app = block_on(sim.node(0).install_app(&wasm)).unwrap();
        let ctx = block_on(sim.node(0).create_context(app, json!({}))).unwrap();
        for i in 1..3 {
            let invitation = sim.node(0).invite(&ctx).unwrap();
            block_on(sim.node(i).join(&invitation)).unwrap();
        }
        let joined = sim.run_until(400, |sim| handled_and_converged(sim, &ctx).1);
        assert!(joined.is_some(), "seed {seed}: the members never joined");
        // Members 0 and 1 write, 2 only handles.
        for n in 0..WRITES {
            for i in 0..2 {
                let args = json!({"key": format!("m{i}-{n}"), "value": "v"});
                call(sim.node(i), &ctx, "set", args);
            }
            sim.step();
        }
        let expected = vec![json!(WRITES), json!(WRITES), json!(2 * WRITES)];
        let done = sim.run_until(2_000, |sim| {
            handled_and_converged(sim, &ctx) == (expected.clone(), true)
        });
        let (handled, converged) = handled_and_converged(&mut sim, &ctx);
        assert!(
            done.is_some(),
            "seed {seed}: handled {handled:?} (expected {expected:?}), converged: {converged}"
        );
        // Nothing more runs once everything has arrived.
        for _ in 0..3 {
            sim.wait();
            sim.step();
        }
        assert_eq!(
            handled_and_converged(&mut sim, &ctx),
            (expected, true),
            "seed {seed}"
        );
    }
}
