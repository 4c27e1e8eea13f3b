//! Event handlers: an event emitted with `emit_with_handler` names a method that the node whose
//! call emitted it runs after the call (merod 0.10's rule), each run a call of its own whose
//! writes make a delta of their own, which the members apply as any other; a delta of an older
//! build that still names a handler has it run by the members that apply it. Runs the
//! handler-counter guest.

mod common;

use common::{guest, node, settle, TestNode};

use borsh::BorshDeserialize;
use futures::executor::block_on;
use serde_json::{json, Value};
use tabnode_node::{
    context_topic, Delta, Env, FixedEnv, Node, NodeEvent, WireMessage, HANDLER_DEPTH,
};
use tabnode_runtime::{Limits, Runtime};
use tabnode_sim::{CommitFault, Faults, Sim, SimStore};
use tabnode_store::{MemoryStore, Namespace, Store};
use tabnode_types::SecretKey;
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
    named_runs(node).into_iter().map(|(_, run)| run).collect()
}

/// The same, each with the delta that named it.
#[allow(clippy::type_complexity)]
fn named_runs<S: Store>(
    node: &mut Node<S, FixedEnv>,
) -> Vec<(Option<DeltaId>, (String, Option<DeltaId>, Option<String>))> {
    node.take_events()
        .into_iter()
        .filter_map(|e| match e {
            NodeEvent::Handler {
                delta_id,
                handler,
                handler_delta,
                error,
                ..
            } => Some((delta_id, (handler, handler_delta, error))),
            _ => None,
        })
        .collect()
}

/// Every node announces its heads and root, and what follows is delivered: members whose
/// concurrent handler runs merged to different roots (calimero-storage 0.10 can, see
/// `sync.rs`) rebuild to one.
fn announce(nodes: &mut [&mut TestNode]) {
    for node in nodes.iter_mut() {
        node.advance_to(node.now() + tabnode_node::ANNOUNCE_NANOS);
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
fn a_calls_handlers_run_once_on_the_node_that_made_it_and_not_on_the_members_that_apply_it() {
    let (mut a, mut b, ctx) = two_members();
    for i in 0..3 {
        set(&mut a, &ctx, &format!("k{i}"), &format!("v{i}"));
    }
    // A ran `count` after each of its writes, each run a delta of its own.
    let runs = named_runs(&mut a);
    assert_eq!(runs.len(), 3, "{runs:?}");
    assert!(runs.iter().all(|(named_by, (h, delta, error))| {
        named_by.is_some() && h == "count" && delta.is_some() && error.is_none()
    }));
    assert_eq!(counts(&mut a, &ctx), (json!(3), json!(3)));
    settle(&mut [&mut a, &mut b]);
    assert!(
        handler_runs(&mut b).is_empty(),
        "B applies them and runs none"
    );
    assert_eq!(counts(&mut b, &ctx), (json!(3), json!(0)));
    // Each run was given its event's payload as its arguments.
    let seen = json!({"k0": "v0", "k1": "v1", "k2": "v2"});
    assert_eq!(call(&mut b, &ctx, "seen", json!({})), seen);
    assert_eq!(position(&mut a, &ctx), position(&mut b, &ctx));

    // And the other way round: B writes and handles, A does not.
    set(&mut b, &ctx, "from-b", "x");
    assert_eq!(handler_runs(&mut b).len(), 1);
    settle(&mut [&mut a, &mut b]);
    assert!(handler_runs(&mut a).is_empty());
    assert_eq!(counts(&mut a, &ctx), (json!(4), json!(3)));
    assert_eq!(counts(&mut b, &ctx), (json!(4), json!(1)));
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
    let runs = handler_runs(&mut a);
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
    settle(&mut [&mut a, &mut b]);
    assert!(handler_runs(&mut b).is_empty());
    for n in [&mut a, &mut b] {
        assert_eq!(call(n, &ctx, "get", json!({"key": "k"})), json!("v"));
        assert_eq!(call(n, &ctx, "handled", json!({})), json!(1));
    }
    assert_eq!(position(&mut a, &ctx), position(&mut b, &ctx));
}

/// A call that writes nothing makes no delta, and its caller still runs the handler it names
/// (as merod does); a handler that names itself again stops [`HANDLER_DEPTH`] handlers deep,
/// reported, with what the runs before it wrote kept.
#[test]
fn a_call_that_writes_nothing_still_runs_its_handler_and_a_chain_of_handlers_ends() {
    let (mut a, mut b, ctx) = two_members();
    call(&mut a, &ctx, "announce", json!({"key": "k", "value": "v"}));
    let runs = named_runs(&mut a);
    assert_eq!(runs.len(), 1, "{runs:?}");
    let (named_by, (handler, delta, error)) = &runs[0];
    assert_eq!(named_by, &None, "no delta named it");
    assert!(
        handler == "count" && delta.is_some() && error.is_none(),
        "{runs:?}"
    );
    assert_eq!(counts(&mut a, &ctx), (json!(1), json!(1)));

    call(&mut a, &ctx, "echo", json!({"key": "e", "value": "v"}));
    let runs = handler_runs(&mut a);
    let depth = usize::from(HANDLER_DEPTH);
    assert_eq!(runs.len(), depth + 1, "{runs:?}");
    assert!(runs[..depth]
        .iter()
        .all(|(h, delta, error)| h == "echo" && delta.is_some() && error.is_none()));
    let (_, delta, error) = &runs[depth];
    assert!(delta.is_none(), "{runs:?}");
    assert!(
        error.as_deref().unwrap().starts_with("OverBudget"),
        "{runs:?}"
    );
    // The call itself and each handler that ran counted once.
    assert_eq!(counts(&mut a, &ctx), (json!(2 + depth), json!(2 + depth)));
    settle(&mut [&mut a, &mut b]);
    assert!(handler_runs(&mut b).is_empty());
    assert_eq!(counts(&mut b, &ctx), (json!(2 + depth), json!(0)));
    assert_eq!(position(&mut a, &ctx), position(&mut b, &ctx));
}

/// `delta` as a build before this one sent it: its events name their handlers, signed by its
/// author (`author_store` holds the author's key).
fn as_an_older_build_sent_it(delta: &Delta, author_store: &MemoryStore) -> Delta {
    let seed = block_on(author_store.get(Namespace::Keys, b"node"))
        .unwrap()
        .unwrap();
    let key = SecretKey::from_seed(seed.try_into().unwrap());
    let mut body = delta.body.clone();
    assert!(
        body.events.iter().all(|e| e.handler.is_none()),
        "this build names none"
    );
    for e in &mut body.events {
        e.handler = Some("count".into());
    }
    body.sign(&key)
}

/// A delta of an older build that still names its handlers: the members that apply it run
/// them (as merod 0.10's receivers do), its author does not, and a member that joins later runs
/// none for the history it catches up on.
#[test]
fn handlers_an_older_builds_delta_names_run_on_the_members_that_apply_it() {
    let store = MemoryStore::default();
    let mut a = common::node_on(store.clone(), 1);
    let app = block_on(a.install_app(&guest("handler_counter"))).unwrap();
    let ctx = block_on(a.create_context(app, json!({}))).unwrap();
    let mut b = member(2);
    block_on(b.join(&a.invite(&ctx).unwrap())).unwrap();
    settle(&mut [&mut a, &mut b]);
    handler_runs(&mut a);
    handler_runs(&mut b);

    set(&mut a, &ctx, "k", "v");
    assert_eq!(handler_runs(&mut a).len(), 1, "A runs its own call's");
    a.take_outgoing(); // B gets the delta as an older build of A would have sent it
    let rows = block_on(store.scan_prefix(Namespace::Deltas, ctx.as_bytes())).unwrap();
    let write = rows
        .iter()
        .map(|(_, row)| Delta::try_from_slice(row).unwrap())
        .rfind(|d| !d.body.events.is_empty())
        .expect("the write's delta, before its handler's");
    let older = as_an_older_build_sent_it(&write, &store);
    let sealed = b
        .seal_for(&ctx, &WireMessage::Deltas(vec![older.clone()]))
        .unwrap();
    block_on(b.handle_message(&context_topic(&ctx), &sealed));
    let runs = named_runs(&mut b);
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0].0, Some(older.id()));
    assert!(runs[0].1 .0 == "count" && runs[0].1 .1.is_some() && runs[0].1 .2.is_none());

    settle(&mut [&mut a, &mut b]);
    assert!(
        handler_runs(&mut a).is_empty(),
        "A wrote it: it runs none of it"
    );
    assert!(handler_runs(&mut b).is_empty(), "once");
    assert_eq!(counts(&mut a, &ctx), (json!(2), json!(1)));
    assert_eq!(counts(&mut b, &ctx), (json!(2), json!(1)));
    // A and B ran theirs concurrently (both wrote `seen["k"]`): one root after announcing.
    announce(&mut [&mut a, &mut b]);
    assert!(handler_runs(&mut a).is_empty() && handler_runs(&mut b).is_empty());
    assert_eq!(position(&mut a, &ctx), position(&mut b, &ctx));

    let mut c = member(3);
    block_on(c.join(&a.invite(&ctx).unwrap())).unwrap();
    settle(&mut [&mut a, &mut b, &mut c]);
    assert!(handler_runs(&mut c).is_empty(), "B handled it already");
    assert_eq!(counts(&mut c, &ctx), (json!(2), json!(0)));
    announce(&mut [&mut a, &mut b, &mut c]);
    assert!(handler_runs(&mut c).is_empty());
    assert_eq!(position(&mut c, &ctx), position(&mut a, &ctx));
}

/// A node that stops after its call was stored and before the handler the call names ran
/// runs it when it opens again, once: it waits in its store.
#[test]
fn handlers_due_when_a_node_stops_run_when_it_opens_again() {
    let open = |store: SimStore| {
        let runtime = Runtime::new(Limits::default());
        let mut node =
            common::clocked(block_on(Node::open(store, FixedEnv::new(1), runtime)).unwrap());
        block_on(node.install_app(&guest("handler_counter"))).unwrap();
        node
    };
    let store = SimStore::default();
    let mut a = open(store.clone());
    let app = block_on(a.install_app(&guest("handler_counter"))).unwrap();
    let ctx = block_on(a.create_context(app, json!({}))).unwrap();
    let waiting = || block_on(store.data().scan_prefix(Namespace::Meta, b"handler:")).unwrap();

    // A's process dies right after the call's writes are stored, before its handler's.
    store.crash_at_commit(1, CommitFault::Kept);
    let _ = block_on(a.execute(&ctx, "set", json!({"key": "k1", "value": "v1"})));
    assert!(store.crashed());
    drop(a);
    assert_eq!(waiting().len(), 1, "the call's handler waits in the store");

    let mut a = open(store.reopen());
    let runs = handler_runs(&mut a);
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert!(runs[0].0 == "count" && runs[0].1.is_some() && runs[0].2.is_none());
    assert!(waiting().is_empty());
    assert_eq!(call(&mut a, &ctx, "get", json!({"key": "k1"})), json!("v1"));
    assert_eq!(call(&mut a, &ctx, "handled_here", json!({})), json!(1));

    // Run once: opening again runs nothing.
    drop(a);
    let mut a = open(store.reopen());
    assert!(handler_runs(&mut a).is_empty());
    assert_eq!(call(&mut a, &ctx, "handled_here", json!({})), json!(1));
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
/// before their parents, twice, or through sync requests), each write's handler runs once, on
/// its author, and the members end on one root.
#[test]
fn handlers_run_once_per_write_on_its_author_on_a_bad_network() {
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
        // Members 0 and 1 write, 2 only applies.
        for n in 0..WRITES {
            for i in 0..2 {
                let args = json!({"key": format!("m{i}-{n}"), "value": "v"});
                call(sim.node(i), &ctx, "set", args);
            }
            sim.step();
        }
        let expected = vec![json!(WRITES), json!(WRITES), json!(0)];
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
        let total = block_on(sim.node(2).execute(&ctx, "handled", json!({}))).unwrap();
        assert_eq!(total.output, json!(2 * WRITES), "seed {seed}");
    }
}
