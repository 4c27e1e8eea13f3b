//! A guest acts in its own context, not with the node's whole authority: its xcalls and
//! deletions reach only its own context and those it created, one user action has one budget
//! for every call it causes, a deletion needs the embedder's consent, and a member's delta
//! whose merge needs more than a merge's fuel is refused alike by every member and replay.

mod common;

use std::cell::RefCell;
use std::rc::Rc;

use common::{guest, node as open_node, settle, TestNode};
use futures::executor::block_on;
use serde_json::{json, Value};
use tabnode_node::{FixedEnv, GuestPolicy, GuestRequest, Node, NodeError, Outgoing};
use tabnode_runtime::{Limits, Runtime};
use tabnode_store::{MemoryStore, Namespace, Store};
use tabnode_types::{AppId, ContextId};

/// A node on `store` with these limits, probe and kv-store installed.
fn node_with(store: MemoryStore, limits: Limits) -> (TestNode, AppId, AppId) {
    let mut node = block_on(Node::open(store, FixedEnv::new(7), Runtime::new(limits))).unwrap();
    let probe = block_on(node.install_app(&guest("probe"))).unwrap();
    let kv = block_on(node.install_app(&guest("kv_store"))).unwrap();
    (node, probe, kv)
}

fn id_arg(ctx: &ContextId) -> Value {
    json!({"context": ctx.0.to_vec()})
}

/// A kv-store context that a call in `caller` (a probe context) creates.
fn spawn_kv(node: &mut TestNode, caller: &ContextId, kv: AppId, alias: &str) -> ContextId {
    let args = json!({"app_id": kv.0.to_vec(), "args": "{}", "alias": alias});
    let spawned = block_on(node.execute(caller, "spawn", args)).unwrap();
    let request = &spawned.context_requests[0];
    assert_eq!(request.error, None);
    request.context_id.expect("created")
}

/// Has a call in `caller` xcall `set` into `target`; the xcall's error kind, if it failed.
fn xcall_set(node: &mut TestNode, caller: &ContextId, target: &ContextId) -> Option<&'static str> {
    let args = json!({"context": target.0.to_vec(), "key": "from", "value": "probe"});
    let result = block_on(node.execute(caller, "call_other", args)).unwrap();
    assert_eq!(result.xcalls.len(), 1);
    result.xcalls[0].error_kind
}

fn entries(node: &mut TestNode, ctx: &ContextId) -> Value {
    block_on(node.execute(ctx, "entries", json!({})))
        .unwrap()
        .output
}

/// Has a call in `caller` ask to delete `target`; the request's error kind, if refused.
fn drop_context(
    node: &mut TestNode,
    caller: &ContextId,
    target: &ContextId,
) -> Option<&'static str> {
    let result = block_on(node.execute(caller, "drop_context", id_arg(target))).unwrap();
    result.context_requests[0].error_kind
}

/// Every row of the namespaces a call's commit writes (not the audit trail).
fn stored(store: &MemoryStore) -> Vec<Vec<(Vec<u8>, Vec<u8>)>> {
    [
        Namespace::State,
        Namespace::Private,
        Namespace::Deltas,
        Namespace::Contexts,
        Namespace::Blobs,
    ]
    .into_iter()
    .map(|ns| block_on(store.scan_prefix(ns, b"")).unwrap())
    .collect()
}

#[test]
fn a_guest_xcalls_only_into_its_own_context_and_those_it_created() {
    let store = MemoryStore::default();
    let (mut node, probe, kv) = node_with(store.clone(), Limits::default());
    let caller = block_on(node.create_context(probe, json!({"title": "t"}))).unwrap();
    let users = block_on(node.create_context(kv, json!({}))).unwrap();
    let child = spawn_kv(&mut node, &caller, kv, "child");

    assert_eq!(xcall_set(&mut node, &caller, &users), Some("Unauthorized"));
    assert_eq!(
        entries(&mut node, &users),
        json!({}),
        "the refusal changed nothing"
    );
    assert_eq!(xcall_set(&mut node, &caller, &child), None);
    assert_eq!(entries(&mut node, &child), json!({"from": "probe"}));
    // A context another guest created is not this one's either.
    let other = block_on(node.create_context(probe, json!({"title": "u"}))).unwrap();
    let others_child = spawn_kv(&mut node, &other, kv, "other-child");
    assert_eq!(
        xcall_set(&mut node, &caller, &others_child),
        Some("Unauthorized")
    );
    drop(node);

    // Who created a context is stored with it.
    let (mut node, ..) = node_with(store, Limits::default());
    assert_eq!(xcall_set(&mut node, &caller, &child), None);
    assert_eq!(xcall_set(&mut node, &caller, &users), Some("Unauthorized"));
    assert_eq!(entries(&mut node, &users), json!({}));
}

#[test]
fn a_guest_deletes_only_what_it_may_and_only_with_consent() {
    let (mut node, probe, kv) = node_with(MemoryStore::default(), Limits::default());
    let caller = block_on(node.create_context(probe, json!({"title": "t"}))).unwrap();
    let users = block_on(node.create_context(kv, json!({}))).unwrap();
    let child = spawn_kv(&mut node, &caller, kv, "child");

    // By default the node has no way to ask its user: a deletion is refused.
    assert_eq!(drop_context(&mut node, &caller, &child), Some("NoConsent"));
    assert!(node.context_ids().contains(&child));
    // Consent does not widen what a guest reaches.
    node.set_guest_policy(GuestPolicy::Allow);
    assert_eq!(
        drop_context(&mut node, &caller, &users),
        Some("Unauthorized")
    );
    assert!(node.context_ids().contains(&users));
    // The user is asked, and says no, then yes.
    let asked = Rc::new(RefCell::new(Vec::new()));
    let answers = Rc::new(RefCell::new(vec![true, false]));
    let (log, pop) = (asked.clone(), answers.clone());
    node.set_guest_policy(GuestPolicy::Ask(Box::new(move |request| {
        log.borrow_mut().push(request.clone());
        pop.borrow_mut().pop().unwrap()
    })));
    assert_eq!(drop_context(&mut node, &caller, &child), Some("NoConsent"));
    assert!(node.context_ids().contains(&child));
    assert_eq!(drop_context(&mut node, &caller, &child), None);
    assert!(!node.context_ids().contains(&child));
    let request = GuestRequest::DeleteContext {
        caller,
        target: child,
    };
    assert_eq!(*asked.borrow(), vec![request.clone(), request]);
    // A guest may delete its own context, with consent too.
    node.set_guest_policy(GuestPolicy::Allow);
    assert_eq!(drop_context(&mut node, &caller, &caller), None);
    assert!(!node.context_ids().contains(&caller));
    assert_eq!(node.context_ids(), vec![users]);
}

/// 16 xcalls a call, 4 levels deep, would be about 70,000 calls from one action: it stops at
/// the action's budget of calls, and none of it stands (not even the first call).
#[test]
fn a_fan_out_stops_at_the_action_budget_and_nothing_of_it_stands() {
    let store = MemoryStore::default();
    let (mut node, probe, _) = node_with(store.clone(), Limits::default());
    let ctx = block_on(node.create_context(probe, json!({"title": "t"}))).unwrap();
    let visited = block_on(node.execute(&ctx, "visit", json!({}))).unwrap();
    assert_eq!(visited.output, json!(1));
    let before = (block_on(node.checkpoint(&ctx)).unwrap(), stored(&store));
    node.take_outgoing();
    node.take_events();

    let fan_out = json!({"width": 16, "depth": 4});
    match block_on(node.execute(&ctx, "fan_out", fan_out)) {
        Err(NodeError::OverBudget(reason)) => assert!(reason.contains("64 calls"), "{reason}"),
        other => panic!("the fan-out ran: {other:?}"),
    }
    let after = (block_on(node.checkpoint(&ctx)).unwrap(), stored(&store));
    assert_eq!(
        after, before,
        "nothing of the action is in memory or stored"
    );
    let sent = node.take_outgoing();
    assert!(
        !sent.iter().any(|o| matches!(o, Outgoing::Publish { .. })),
        "no delta of it was published"
    );
    assert!(node.take_events().is_empty(), "no event of it was told");
    let trail = block_on(node.audit(&ctx)).unwrap();
    let last = trail.last().unwrap();
    assert_eq!(
        (last.entry.method.as_str(), last.entry.outcome.as_str()),
        ("fan_out", "OverBudget")
    );
    assert!(block_on(node.verify_audit(&ctx)).unwrap().ok);
    // The context goes on from where it was, here and after a restart.
    let visited = block_on(node.execute(&ctx, "visit", json!({}))).unwrap();
    assert_eq!(visited.output, json!(2));
    let position = block_on(node.checkpoint(&ctx)).unwrap();
    drop(node);
    let (mut node, ..) = node_with(store, Limits::default());
    assert_eq!(block_on(node.checkpoint(&ctx)).unwrap(), position);

    // Within the budget an xcall fan-out runs whole: 1 + 2 + 4 calls.
    let small = block_on(node.execute(&ctx, "fan_out", json!({"width": 2, "depth": 2}))).unwrap();
    assert!(small.xcalls.iter().all(|x| x.error.is_none()));
    let visited = block_on(node.execute(&ctx, "visit", json!({}))).unwrap();
    assert_eq!(visited.output, json!(2 + 7 + 1));
}

/// Each call of an action runs on the fuel the calls before it left: calls that each fit in a
/// call's fuel still stop when together they use the action's.
#[test]
fn xcalls_draw_from_the_fuel_the_action_has_left() {
    let limits = Limits {
        fuel: 100_000_000,
        action_fuel: 100_000_000,
        action_calls: 100_000,
        ..Limits::default()
    };
    let (mut node, probe, _) = node_with(MemoryStore::default(), limits);
    let ctx = block_on(node.create_context(probe, json!({"title": "t"}))).unwrap();
    let one = block_on(node.execute(&ctx, "fan_out", json!({"width": 0, "depth": 0}))).unwrap();
    assert_eq!(one.output, json!(1), "one call fits in a call's fuel");
    let position = block_on(node.checkpoint(&ctx)).unwrap();
    match block_on(node.execute(&ctx, "fan_out", json!({"width": 16, "depth": 3}))) {
        Err(NodeError::OverBudget(reason)) => assert!(reason.contains("fuel"), "{reason}"),
        other => panic!("the fan-out ran: {other:?}"),
    }
    assert_eq!(block_on(node.checkpoint(&ctx)).unwrap(), position);
}

/// A member's delta whose merge needs more than a merge's fuel is refused (every member counts
/// the same fuel) and changes nothing; a replay runs on the same budget.
#[test]
fn a_merge_over_the_merge_budget_is_refused_and_changes_nothing() {
    let mut a = open_node(1);
    let kv = block_on(a.install_app(&guest("kv_store"))).unwrap();
    let ctx = block_on(a.create_context(kv, json!({}))).unwrap();
    let tight = Limits {
        merge_fuel: 10_000,
        ..Limits::default()
    };
    let mut b = block_on(Node::open(
        MemoryStore::default(),
        FixedEnv::new(2),
        Runtime::new(tight.clone()),
    ))
    .unwrap();
    block_on(b.install_app(&guest("kv_store"))).unwrap();
    block_on(b.join(&a.invite(&ctx).unwrap())).unwrap();
    settle(&mut [&mut a, &mut b]);
    let joined = block_on(b.checkpoint(&ctx)).unwrap();
    assert!(!joined.heads.is_empty(), "B has the context's first state");
    b.take_events();

    block_on(a.execute(&ctx, "set", json!({"key": "k", "value": "v"}))).unwrap();
    settle(&mut [&mut a, &mut b]);
    let refused = common::refusals(&mut b);
    assert!(
        refused
            .iter()
            .any(|(kind, reason)| kind == "OverBudget" && reason.contains("merg")),
        "{refused:?}"
    );
    assert_eq!(block_on(b.checkpoint(&ctx)).unwrap(), joined);
    assert_eq!(entries(&mut b, &ctx), json!({}));

    // A member with a merge's budget merges it; a replay runs on the merge budget too.
    let store = MemoryStore::default();
    let mut c = block_on(Node::open(
        store.clone(),
        FixedEnv::new(3),
        Runtime::new(Limits::default()),
    ))
    .unwrap();
    block_on(c.install_app(&guest("kv_store"))).unwrap();
    block_on(c.join(&a.invite(&ctx).unwrap())).unwrap();
    settle(&mut [&mut a, &mut c]);
    assert_eq!(
        entries(&mut c, &ctx),
        json!({"k": "v"}),
        "a merge in budget"
    );
    assert!(block_on(c.replay(&ctx)).unwrap().matches);
    drop(c);
    let mut c = block_on(Node::open(store, FixedEnv::new(3), Runtime::new(tight))).unwrap();
    match block_on(c.replay(&ctx)) {
        Err(NodeError::OverBudget(reason)) => assert!(reason.contains("merg"), "{reason}"),
        other => panic!("the replay merged over budget: {other:?}"),
    }
}
