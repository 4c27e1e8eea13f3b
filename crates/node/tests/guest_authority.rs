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
use tabnode_node::{
    FixedEnv, GuestPolicy, GuestRequest, Node, NodeError, Outgoing, WireMessage, ANNOUNCE_NANOS,
};
use tabnode_runtime::{Limits, Runtime};
use tabnode_store::{MemoryStore, Namespace, Store};
use tabnode_types::{AppId, ContextId, PublicKey, SecretKey};

/// A merge budget that a small `set` fits in and one of [`LARGE_VALUE`] bytes does not.
const MIDDLE_MERGE_FUEL: u64 = 4_000_000;
const LARGE_VALUE: usize = 12_000;

/// A node on `store` with these limits, probe and kv-store installed.
fn node_with(store: MemoryStore, limits: Limits) -> (TestNode, AppId, AppId) {
    let mut node = common::clocked(
        block_on(Node::open(store, FixedEnv::new(7), Runtime::new(limits))).unwrap(),
    );
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

/// Has `node` ask its embedder, who gives `answers` in order; what it was asked, in order.
fn ask_with(node: &mut TestNode, answers: Vec<bool>) -> Rc<RefCell<Vec<GuestRequest>>> {
    let asked = Rc::new(RefCell::new(Vec::new()));
    let (log, mut answers) = (asked.clone(), answers.into_iter());
    node.set_guest_policy(GuestPolicy::Ask(Box::new(move |request| {
        log.borrow_mut().push(request.clone());
        answers
            .next()
            .expect("asked more often than the test answers")
    })));
    asked
}

#[test]
fn a_guest_xcalls_into_another_context_only_with_consent() {
    let store = MemoryStore::default();
    let (mut node, probe, kv) = node_with(store.clone(), Limits::default());
    let caller = block_on(node.create_context(probe, json!({"title": "t"}))).unwrap();
    let users = block_on(node.create_context(kv, json!({}))).unwrap();
    let child = spawn_kv(&mut node, &caller, kv, "child");

    // Into a context it neither is nor created: only with the embedder's consent, which a
    // node with no way to ask does not give.
    assert_eq!(xcall_set(&mut node, &caller, &users), Some("NoConsent"));
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
        Some("NoConsent")
    );
    drop(node);

    // Who created a context is stored with it.
    let (mut node, ..) = node_with(store, Limits::default());
    assert_eq!(xcall_set(&mut node, &caller, &child), None);
    assert_eq!(xcall_set(&mut node, &caller, &users), Some("NoConsent"));
    assert_eq!(entries(&mut node, &users), json!({}));

    // The embedder is asked about each xcall beyond the guest's reach (and not about those
    // within it); one it consents to runs, as merod runs every xcall.
    let asked = ask_with(&mut node, vec![false, true]);
    assert_eq!(xcall_set(&mut node, &caller, &child), None);
    assert!(asked.borrow().is_empty(), "its child needs no consent");
    assert_eq!(xcall_set(&mut node, &caller, &users), Some("NoConsent"));
    assert_eq!(entries(&mut node, &users), json!({}));
    assert_eq!(xcall_set(&mut node, &caller, &users), None);
    assert_eq!(entries(&mut node, &users), json!({"from": "probe"}));
    let request = GuestRequest::XCall {
        caller,
        target: users,
    };
    assert_eq!(*asked.borrow(), vec![request.clone(), request.clone()]);
    assert_eq!(
        (request.kind(), request.context(), request.caller()),
        ("xcall", users, caller)
    );
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
    let asked = ask_with(&mut node, vec![false, true]);
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

/// Has a call in `ctx` ask to add (`add_member`) or remove (`remove_member`) `member`; the
/// request's error kind, if refused.
fn change_member(
    node: &mut TestNode,
    ctx: &ContextId,
    method: &str,
    member: PublicKey,
) -> Option<&'static str> {
    let result = block_on(node.execute(ctx, method, json!({"key": member.0.to_vec()}))).unwrap();
    result.context_requests[0].error_kind
}

fn is_member(node: &TestNode, ctx: &ContextId, member: PublicKey) -> bool {
    node.members(ctx).unwrap().iter().any(|(k, _)| *k == member)
}

/// A guest's `context_add_member` / `context_remove_member` give a key the context's secret or
/// take a member's away: like a deletion, made only with the embedder's consent, and the
/// embedder is told what and whom.
#[test]
fn a_guest_changes_membership_only_with_consent() {
    let (mut node, probe, _) = node_with(MemoryStore::default(), Limits::default());
    let ctx = block_on(node.create_context(probe, json!({"title": "t"}))).unwrap();
    let newcomer = SecretKey::from_seed([77; 32]).public();
    let position = block_on(node.checkpoint(&ctx)).unwrap();

    // By default the node has no way to ask its user: refused, and no operation is made.
    assert_eq!(
        change_member(&mut node, &ctx, "add_member", newcomer),
        Some("NoConsent")
    );
    assert!(!is_member(&node, &ctx, newcomer));
    let heads = |node: &mut TestNode| block_on(node.checkpoint(&ctx)).unwrap().heads;
    let after_call = heads(&mut node);
    // (The call itself wrote nothing either: no membership operation joined the heads.)
    assert_eq!(after_call, position.heads);

    let asked = Rc::new(RefCell::new(Vec::new()));
    let answers = Rc::new(RefCell::new(vec![true, false, true, false]));
    let (log, pop) = (asked.clone(), answers.clone());
    node.set_guest_policy(GuestPolicy::Ask(Box::new(move |request| {
        log.borrow_mut().push(request.clone());
        pop.borrow_mut().pop().unwrap()
    })));
    // Declined, then accepted: the add.
    assert_eq!(
        change_member(&mut node, &ctx, "add_member", newcomer),
        Some("NoConsent")
    );
    assert!(!is_member(&node, &ctx, newcomer));
    assert_eq!(change_member(&mut node, &ctx, "add_member", newcomer), None);
    assert!(is_member(&node, &ctx, newcomer));
    // Declined, then accepted: the removal.
    assert_eq!(
        change_member(&mut node, &ctx, "remove_member", newcomer),
        Some("NoConsent")
    );
    assert!(is_member(&node, &ctx, newcomer));
    assert_eq!(
        change_member(&mut node, &ctx, "remove_member", newcomer),
        None
    );
    assert!(!is_member(&node, &ctx, newcomer));
    let add = GuestRequest::AddMember {
        context: ctx,
        member: newcomer,
    };
    let remove = GuestRequest::RemoveMember {
        context: ctx,
        member: newcomer,
    };
    assert_eq!(
        *asked.borrow(),
        vec![add.clone(), add.clone(), remove.clone(), remove.clone()]
    );
    assert_eq!(
        (add.kind(), add.context(), add.member()),
        ("addMember", ctx, Some(newcomer))
    );
    // What the node would refuse anyway is refused without asking: removing itself.
    let me = node.public_key();
    assert_eq!(
        change_member(&mut node, &ctx, "remove_member", me),
        Some("BadArgs")
    );
    assert_eq!(asked.borrow().len(), 4, "the user was not asked");
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
    let mut b = common::clocked(
        block_on(Node::open(
            MemoryStore::default(),
            FixedEnv::new(2),
            Runtime::new(tight.clone()),
        ))
        .unwrap(),
    );
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
    let mut c = common::opened(store.clone(), 3);
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
    let mut c = common::clocked(
        block_on(Node::open(store, FixedEnv::new(3), Runtime::new(tight))).unwrap(),
    );
    match block_on(c.replay(&ctx)) {
        Err(NodeError::OverBudget(reason)) => assert!(reason.contains("merg"), "{reason}"),
        other => panic!("the replay merged over budget: {other:?}"),
    }
}

/// A node on a fresh store with a merge budget of `merge_fuel`, kv-store installed.
fn node_merging_with(seed: u8, merge_fuel: u64) -> TestNode {
    node_on_store_merging_with(MemoryStore::default(), seed, merge_fuel)
}

/// A node on `store` with a merge budget of `merge_fuel`, kv-store installed.
fn node_on_store_merging_with(store: MemoryStore, seed: u8, merge_fuel: u64) -> TestNode {
    let limits = Limits {
        merge_fuel,
        ..Limits::default()
    };
    let mut node = common::clocked(
        block_on(Node::open(store, FixedEnv::new(seed), Runtime::new(limits))).unwrap(),
    );
    block_on(node.install_app(&guest("kv_store"))).unwrap();
    node
}

/// The refusals of kind `OverBudget` `node` reported since it was last asked.
fn over_budget(node: &mut TestNode) -> Vec<String> {
    common::refusals(node)
        .into_iter()
        .filter(|(kind, _)| kind == "OverBudget")
        .map(|(_, reason)| reason)
        .collect()
}

/// Rounds of anti-entropy: every node announces its heads (as its timer does every
/// `ANNOUNCE_NANOS`) and the others answer, until nobody has anything to say.
fn anti_entropy(nodes: &mut [&mut TestNode], rounds: u64) {
    let start = nodes[0].now();
    for round in 1..=rounds {
        for node in nodes.iter_mut() {
            block_on(node.handle_timeout(start + round * 10 * ANNOUNCE_NANOS));
        }
        settle(nodes);
    }
}

/// A delta refused for its merge's fuel is refused for good: anti-entropy bringing it again,
/// or a delta built on it, costs no merge (before, each round merged it again and refused it
/// again). Only a delta whose signature verified and whose merge ran is remembered: a copy of
/// an honest delta under a forged signature gets nothing remembered, and the honest one merges.
#[test]
fn a_merge_refused_for_its_fuel_is_not_merged_again_when_anti_entropy_brings_it() {
    let mut a = open_node(1);
    let kv = block_on(a.install_app(&guest("kv_store"))).unwrap();
    let ctx = block_on(a.create_context(kv, json!({}))).unwrap();
    let (mut b, mut c) = (node_merging_with(2, MIDDLE_MERGE_FUEL), open_node(3));
    block_on(b.join(&a.invite(&ctx).unwrap())).unwrap();
    block_on(c.join(&a.invite(&ctx).unwrap())).unwrap();
    settle(&mut [&mut a, &mut b, &mut c]);
    b.take_events();

    // C writes a small value; it reaches A, not B yet.
    block_on(c.execute(&ctx, "set", json!({"key": "small", "value": "v"}))).unwrap();
    let from_c = common::sent(&mut c);
    common::deliver(&from_c, &mut a);
    // A writes a large value on it: over B's merge budget.
    let large = "x".repeat(LARGE_VALUE);
    block_on(a.execute(&ctx, "set", json!({"key": "large", "value": large}))).unwrap();
    // A forged copy of C's delta (A's signature over it) reaches B first: refused, and nothing
    // is remembered of it.
    let forged: Vec<_> = from_c
        .iter()
        .filter_map(|(topic, sealed)| {
            let WireMessage::Deltas(mut deltas) = a.open_message(&ctx, sealed).ok()? else {
                return None;
            };
            for delta in &mut deltas {
                delta.signature = SecretKey::from_seed([1; 32]).sign(delta.id().as_bytes());
            }
            let plain = WireMessage::Deltas(deltas).encode();
            Some((topic.clone(), a.seal_bytes_for(&ctx, &plain).unwrap()))
        })
        .collect();
    assert!(!forged.is_empty());
    common::deliver(&forged, &mut b);
    assert_eq!(entries(&mut b, &ctx), json!({}));
    common::deliver(&from_c, &mut b);
    settle(&mut [&mut a, &mut b, &mut c]);
    let refused = over_budget(&mut b);
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert!(refused[0].contains("merg"), "{refused:?}");
    assert_eq!(
        entries(&mut b, &ctx),
        json!({"small": "v"}),
        "C's delta merged after its forged copy"
    );
    let position = block_on(b.checkpoint(&ctx)).unwrap();

    anti_entropy(&mut [&mut a, &mut b, &mut c], 3);
    assert_eq!(over_budget(&mut b), Vec::<String>::new(), "merged again");
    // A writes on the refused delta: refused once, for good too.
    block_on(a.execute(&ctx, "set", json!({"key": "after", "value": "v"}))).unwrap();
    settle(&mut [&mut a, &mut b, &mut c]);
    let refused = over_budget(&mut b);
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert!(refused[0].contains("builds on"), "{refused:?}");
    anti_entropy(&mut [&mut a, &mut b, &mut c], 3);
    assert_eq!(over_budget(&mut b), Vec::<String>::new());
    assert_eq!(block_on(b.checkpoint(&ctx)).unwrap(), position);
    // The members with a merge's budget have it all.
    assert_eq!(entries(&mut c, &ctx), entries(&mut a, &ctx));
}

/// Refused for good stays refused after a restart: the ids are kept in the store (`refused:`
/// rows). Before, they were kept in memory only, so a node that opened again merged the
/// delta again when anti-entropy brought it (and refused it again, at a merge's cost).
#[test]
fn a_merge_refused_for_its_fuel_stays_refused_after_a_restart() {
    let mut a = open_node(1);
    let kv = block_on(a.install_app(&guest("kv_store"))).unwrap();
    let ctx = block_on(a.create_context(kv, json!({}))).unwrap();
    let store = MemoryStore::default();
    let mut b = node_on_store_merging_with(store.clone(), 2, MIDDLE_MERGE_FUEL);
    block_on(b.join(&a.invite(&ctx).unwrap())).unwrap();
    settle(&mut [&mut a, &mut b]);
    block_on(a.execute(&ctx, "set", json!({"key": "small", "value": "v"}))).unwrap();
    let large = "x".repeat(LARGE_VALUE);
    block_on(a.execute(&ctx, "set", json!({"key": "large", "value": large}))).unwrap();
    settle(&mut [&mut a, &mut b]);
    let refused = over_budget(&mut b);
    assert_eq!(refused.len(), 1, "{refused:?}");
    let position = block_on(b.checkpoint(&ctx)).unwrap();

    drop(b);
    let mut b = node_on_store_merging_with(store.clone(), 2, MIDDLE_MERGE_FUEL);
    assert_eq!(block_on(b.checkpoint(&ctx)).unwrap(), position);
    anti_entropy(&mut [&mut a, &mut b], 3);
    assert_eq!(over_budget(&mut b), Vec::<String>::new(), "merged again");
    assert_eq!(block_on(b.checkpoint(&ctx)).unwrap(), position);
    assert_eq!(entries(&mut b, &ctx), json!({"small": "v"}));
    // A delta on it is refused for good without a merge, and stays so after one more restart.
    block_on(a.execute(&ctx, "set", json!({"key": "after", "value": "v"}))).unwrap();
    settle(&mut [&mut a, &mut b]);
    let refused = over_budget(&mut b);
    assert!(
        refused.len() == 1 && refused[0].contains("builds on"),
        "{refused:?}"
    );
    drop(b);
    let mut b = node_on_store_merging_with(store.clone(), 2, MIDDLE_MERGE_FUEL);
    anti_entropy(&mut [&mut a, &mut b], 3);
    assert_eq!(over_budget(&mut b), Vec::<String>::new());
    assert_eq!(block_on(b.checkpoint(&ctx)).unwrap(), position);
    let rows = block_on(store.scan_prefix(Namespace::Meta, b"refused:")).unwrap();
    assert_eq!(rows.len(), 2, "one row per refused delta");
}
