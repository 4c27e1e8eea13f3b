//! A late joiner takes a member's state snapshot instead of running every delta through the
//! guest, and uses it only once it verifies (see `tabnode_node::snapshot`): a snapshot whose
//! rows, signature or deltas do not hold changes nothing, and the joiner ends on the same state
//! by the deltas alone.

mod common;

use common::store::CountingStore;
use common::{deliver, refusals, rejections, relay, sent, settle, Messages, TestNode};
use futures::executor::block_on;
use serde_json::json;
use tabnode_node::snapshot::Snapshot;
use tabnode_node::{FixedEnv, Node, WireMessage};
use tabnode_types::{ContextId, SecretKey};

/// A context on A with `writes` keys written: more deltas than A's snapshot threshold (10).
fn busy_context(writes: usize) -> (TestNode, ContextId) {
    let mut a = common::node(1);
    a.set_snapshot_threshold(Some(10));
    let app = block_on(a.install_app(&common::guest("kv_store"))).unwrap();
    let ctx = block_on(a.create_context(app, json!({}))).unwrap();
    for i in 0..writes {
        let args = json!({"key": format!("k{i}"), "value": format!("v{i}")});
        block_on(a.execute(&ctx, "set", args)).unwrap();
    }
    let _ = block_on(a.execute(&ctx, "remove", json!({"key": "k0"})));
    sent(&mut a);
    (a, ctx)
}

/// B joins on A's invitation; returns B and what A answers B's first sync request with.
fn join(a: &mut TestNode, ctx: &ContextId) -> (TestNode, Messages) {
    let mut b = common::node(2);
    let invitation = a.invite(ctx).unwrap();
    block_on(b.join(&invitation)).unwrap();
    common::handshake(a, &mut b);
    deliver(&sent(&mut b), a);
    let answer = sent(a);
    (b, answer)
}

fn is_snapshot_part(node: &TestNode, ctx: &ContextId, data: &[u8]) -> bool {
    matches!(
        node.open_message(ctx, data),
        Ok(WireMessage::SnapshotPart { .. })
    )
}

/// The snapshot in A's answer, reassembled.
fn snapshot_in(a: &TestNode, ctx: &ContextId, answer: &Messages) -> Snapshot {
    let mut chunks = Vec::new();
    for (_, data) in answer {
        if let Ok(WireMessage::SnapshotPart { index, chunk, .. }) = a.open_message(ctx, data) {
            chunks.push((index, chunk));
        }
    }
    assert!(!chunks.is_empty(), "A answered with a snapshot");
    chunks.sort();
    let bytes: Vec<u8> = chunks.into_iter().flat_map(|(_, c)| c).collect();
    borsh::from_slice(&bytes).unwrap()
}

/// A's answer with its snapshot replaced by `forged` messages (sealed as A sends).
fn with_snapshot(
    a: &TestNode,
    ctx: &ContextId,
    answer: &Messages,
    forged: Vec<WireMessage>,
) -> Messages {
    let topic = answer[0].0.clone();
    let mut messages: Messages = forged
        .iter()
        .map(|m| (topic.clone(), a.seal_for(ctx, m).unwrap()))
        .collect();
    messages.extend(
        answer
            .iter()
            .filter(|(_, data)| !is_snapshot_part(a, ctx, data))
            .cloned(),
    );
    messages
}

fn entries(node: &mut TestNode, ctx: &ContextId) -> serde_json::Value {
    block_on(node.execute(ctx, "entries", json!({})))
        .unwrap()
        .output
}

fn audit_methods(node: &TestNode, ctx: &ContextId) -> Vec<String> {
    block_on(node.audit(ctx))
        .unwrap()
        .into_iter()
        .map(|r| r.entry.method)
        .collect()
}

/// B ends with A's entries, heads and root, and both go on writing to each other.
fn assert_converged(a: &mut TestNode, b: &mut TestNode, ctx: &ContextId) {
    settle(&mut [&mut *a, &mut *b]);
    assert_eq!(entries(b, ctx), entries(a, ctx));
    let (pa, pb) = (a.position(ctx).unwrap(), b.position(ctx).unwrap());
    assert_eq!((pa.heads, pa.root_hash), (pb.heads, pb.root_hash));
    block_on(b.execute(ctx, "set", json!({"key": "from-b", "value": "1"}))).unwrap();
    block_on(a.execute(ctx, "set", json!({"key": "from-a", "value": "2"}))).unwrap();
    settle(&mut [&mut *a, &mut *b]);
    assert_eq!(entries(b, ctx), entries(a, ctx));
    assert_eq!(entries(b, ctx)["from-a"], json!("2"));
    assert_eq!(
        a.position(ctx).unwrap().root_hash,
        b.position(ctx).unwrap().root_hash
    );
}

#[test]
fn a_late_joiner_takes_a_verified_snapshot_instead_of_replaying() {
    let (mut a, ctx) = busy_context(30);
    let (mut b, answer) = join(&mut a, &ctx);
    let snapshot = snapshot_in(&a, &ctx, &answer);
    assert_eq!(snapshot.heads, a.position(&ctx).unwrap().heads);
    assert_eq!(
        snapshot.covered.len(),
        33,
        "genesis, 30 sets, a removal and B's admission"
    );

    deliver(&answer, &mut b);
    assert_eq!(rejections(&mut b), Vec::<String>::new());
    let methods = audit_methods(&b, &ctx);
    assert!(methods.iter().any(|m| m == "sync.snapshot"), "{methods:?}");
    assert!(
        !methods
            .iter()
            .any(|m| m == "__calimero_sync_next" || m == "init"),
        "no delta the snapshot covers ran in the guest: {methods:?}"
    );
    assert_eq!(entries(&mut b, &ctx)["k7"], json!("v7"));
    assert_eq!(entries(&mut b, &ctx).get("k0"), None, "the removal holds");
    assert_converged(&mut a, &mut b, &ctx);

    // Every delta is there: replaying them from nothing gives the snapshot's node the same root.
    let replay = block_on(b.replay(&ctx)).unwrap();
    assert!(replay.matches, "{replay:?}");
    assert!(block_on(b.verify_audit(&ctx)).unwrap().ok);
}

#[test]
fn below_the_threshold_a_joiner_gets_deltas_only() {
    let (mut a, ctx) = busy_context(3);
    let (mut b, answer) = join(&mut a, &ctx);
    assert!(!answer.iter().any(|(_, d)| is_snapshot_part(&a, &ctx, d)));
    deliver(&answer, &mut b);
    assert!(!audit_methods(&b, &ctx).iter().any(|m| m == "sync.snapshot"));
    assert_converged(&mut a, &mut b, &ctx);
}

#[test]
fn a_snapshot_whose_rows_were_changed_is_refused_and_the_deltas_serve() {
    let (mut a, ctx) = busy_context(30);
    let (mut b, answer) = join(&mut a, &ctx);
    let mut snapshot = snapshot_in(&a, &ctx, &answer);
    // A member sends a state in which one value differs, signed as its own.
    let row = snapshot
        .rows
        .iter_mut()
        .find(|(_, v)| v.windows(3).any(|w| w == b"v17"))
        .expect("the row holding k17's value");
    let at = row.1.windows(3).position(|w| w == b"v17").unwrap();
    row.1[at + 2] = b'9';
    let forged = a.sign_snapshot(&ctx, &snapshot).unwrap();
    deliver(&with_snapshot(&a, &ctx, &answer, forged), &mut b);

    let refused = rejections(&mut b);
    assert!(
        refused
            .iter()
            .any(|r| r.contains("snapshot") && r.contains("do not verify")),
        "{refused:?}"
    );
    assert!(!audit_methods(&b, &ctx).iter().any(|m| m == "sync.snapshot"));
    assert_eq!(entries(&mut b, &ctx)["k17"], json!("v17"));
    assert_converged(&mut a, &mut b, &ctx);
}

#[test]
fn a_snapshot_signed_by_a_stranger_is_refused() {
    let (mut a, ctx) = busy_context(30);
    let (mut b, answer) = join(&mut a, &ctx);
    let snapshot = snapshot_in(&a, &ctx, &answer);
    // A's certificate, but the signature of a key that is not A's.
    let a_cert = answer
        .iter()
        .find_map(|(_, data)| match a.open_message(&ctx, data) {
            Ok(WireMessage::Deltas(deltas)) => Some(deltas[0].body.author_cert.clone()),
            _ => None,
        })
        .unwrap();
    let stranger = SecretKey::from_seed([66; 32]);
    let forged = tabnode_node::snapshot::split(&snapshot, &stranger, &a_cert);
    deliver(&with_snapshot(&a, &ctx, &answer, forged), &mut b);

    let refused = rejections(&mut b);
    assert!(
        refused
            .iter()
            .any(|r| r.contains("signature or certificate")),
        "{refused:?}"
    );
    assert!(!audit_methods(&b, &ctx).iter().any(|m| m == "sync.snapshot"));
    assert_converged(&mut a, &mut b, &ctx);
}

#[test]
fn a_snapshot_that_does_not_match_the_deltas_is_dropped_and_the_state_rebuilt() {
    let (mut a, ctx) = busy_context(30);
    let (mut b, answer) = join(&mut a, &ctx);
    let mut snapshot = snapshot_in(&a, &ctx, &answer);
    // It claims to cover one delta fewer than the heads need: B ends holding a delta it does
    // not cover, so the snapshot cannot be the state at those heads.
    let last = snapshot.heads[0];
    snapshot.covered.retain(|id| *id != last);
    let forged = a.sign_snapshot(&ctx, &snapshot).unwrap();
    deliver(&with_snapshot(&a, &ctx, &answer, forged), &mut b);
    settle(&mut [&mut a, &mut b]);

    let refused = rejections(&mut b);
    assert!(
        refused.iter().any(|r| r.contains("heads are not those")),
        "{refused:?}"
    );
    let methods = audit_methods(&b, &ctx);
    assert!(!methods.iter().any(|m| m == "sync.snapshot"), "{methods:?}");
    assert_converged(&mut a, &mut b, &ctx);
    assert!(block_on(b.replay(&ctx)).unwrap().matches);
}

#[test]
fn a_joiner_that_stops_while_covering_rebuilds_from_the_deltas() {
    let (mut a, ctx) = busy_context(30);
    let store = tabnode_store::MemoryStore::default();
    let mut b = common::node_on(store.clone(), 2);
    block_on(b.join(&a.invite(&ctx).unwrap())).unwrap();
    common::handshake(&mut a, &mut b);
    deliver(&sent(&mut b), &mut a);
    let answer = sent(&mut a);
    // The snapshot and the first ten deltas arrive: B records them without running them, and
    // stops before the snapshot can be put in place.
    let mut partial: Messages = Vec::new();
    for (topic, data) in &answer {
        match a.open_message(&ctx, data).unwrap() {
            WireMessage::Deltas(deltas) => {
                let first = WireMessage::Deltas(deltas[..10].to_vec());
                partial.push((topic.clone(), a.seal_for(&ctx, &first).unwrap()));
            }
            _ => partial.push((topic.clone(), data.clone())),
        }
    }
    deliver(&partial, &mut b);
    assert!(
        block_on(b.execute(&ctx, "entries", json!({}))).is_err(),
        "not synced yet"
    );
    drop(b);

    let mut b = common::node_on(store, 2);
    assert_converged(&mut a, &mut b, &ctx);
    assert!(block_on(b.replay(&ctx)).unwrap().matches);
}

#[test]
fn a_member_that_lacks_little_ignores_a_snapshot_sent_for_another() {
    let (mut a, ctx) = busy_context(30);
    // C joined early and has everything.
    let mut c = common::node(3);
    block_on(c.join(&a.invite(&ctx).unwrap())).unwrap();
    settle(&mut [&mut a, &mut c]);
    // A offers a context's state at most every 30 s: C had it.
    a.advance_to(a.now() + 31_000_000_000);
    let (mut b, answer) = join(&mut a, &ctx);
    assert!(answer.iter().any(|(_, d)| is_snapshot_part(&a, &ctx, d)));
    // The network had no way to B alone: C hears A's answer too.
    let snapshots = |n: &TestNode| {
        audit_methods(n, &ctx)
            .iter()
            .filter(|m| *m == "sync.snapshot")
            .count()
    };
    let before = snapshots(&c);
    assert_eq!(before, 1, "C took one itself when it joined");
    deliver(&answer, &mut c);
    deliver(&answer, &mut b);
    assert_eq!(snapshots(&c), before, "C did not take B's");
    assert!(audit_methods(&b, &ctx).iter().any(|m| m == "sync.snapshot"));
    assert_eq!(entries(&mut c, &ctx), entries(&mut a, &ctx));
    assert_converged(&mut a, &mut b, &ctx);
}

/// B holds what A holds: the same root, its deltas replay to it, and its audit trail verifies.
fn assert_whole_and_equal<S: tabnode_store::Store>(
    a: &TestNode,
    b: &mut Node<S, FixedEnv>,
    ctx: &ContextId,
) {
    assert_eq!(
        a.position(ctx).unwrap().root_hash,
        b.position(ctx).unwrap().root_hash
    );
    assert!(block_on(b.replay(ctx)).unwrap().matches);
    assert!(block_on(b.verify_audit(ctx)).unwrap().ok);
}

/// B, on a store that counts its commits, joins A's context and takes A's answer (a snapshot
/// and the deltas it covers).
fn join_counting(
    a: &mut TestNode,
    ctx: &ContextId,
    store: &CountingStore,
) -> (Node<CountingStore, FixedEnv>, Messages) {
    let mut b = common::opened(store.clone(), 2);
    block_on(b.install_app(&common::guest("kv_store"))).unwrap();
    block_on(b.join(&a.invite(ctx).unwrap())).unwrap();
    common::handshake(a, &mut b);
    deliver(&sent(&mut b), a);
    (b, sent(a))
}

#[test]
fn the_deltas_a_snapshot_covers_are_stored_together_not_one_transaction_each() {
    let (mut a, ctx) = busy_context(200);
    let store = CountingStore::default();
    let (mut b, answer) = join_counting(&mut a, &ctx, &store);
    let covered = snapshot_in(&a, &ctx, &answer).covered.len();
    assert!(covered > 200, "{covered}");

    store.reset();
    deliver(&answer, &mut b);
    assert_eq!(rejections(&mut b), Vec::<String>::new());
    let commits = store.commits();
    assert!(
        commits <= 5,
        "{covered} covered deltas took {commits} commits (one each before)"
    );
    assert!(block_on(b.audit(&ctx))
        .unwrap()
        .iter()
        .any(|r| r.entry.method == "sync.snapshot"));
    assert_eq!(
        block_on(b.execute(&ctx, "get", json!({"key": "k150"})))
            .unwrap()
            .output,
        json!("v150")
    );
    assert_whole_and_equal(&a, &mut b, &ctx);
}

#[test]
fn when_the_covered_deltas_cannot_be_stored_nothing_is_lost_and_the_joiner_catches_up_later() {
    let (mut a, ctx) = busy_context(200);
    let store = CountingStore::default();
    let (mut b, answer) = join_counting(&mut a, &ctx, &store);
    store.fail_next_commit_of(100);
    deliver(&answer, &mut b);
    let refused = rejections(&mut b);
    assert!(
        refused.iter().any(|r| r.contains("quota")),
        "the lost write is reported: {refused:?}"
    );
    // B's memory went back to its store: whole, without what was lost.
    assert!(block_on(b.verify_audit(&ctx)).unwrap().ok);

    // Later, A's announcement of its heads brings B to ask again, and B catches up.
    a.advance_to(a.now() + tabnode_node::ANNOUNCE_NANOS);
    b.advance_to(b.now() + tabnode_node::ANNOUNCE_NANOS);
    common::tick(&mut a);
    common::tick(&mut b);
    for _ in 0..4 {
        relay(&mut a, &mut b);
        relay(&mut b, &mut a);
    }
    assert_eq!(rejections(&mut b), Vec::<String>::new());
    assert_eq!(
        a.position(&ctx).unwrap().heads,
        b.position(&ctx).unwrap().heads
    );
    assert_whole_and_equal(&a, &mut b, &ctx);
}

#[test]
fn a_snapshot_listing_deltas_that_never_come_is_dropped_in_time_and_the_deltas_serve() {
    let (mut a, ctx) = busy_context(30);
    let (mut b, answer) = join(&mut a, &ctx);
    // A member's snapshot that names a delta nobody has: B would wait for it forever.
    let mut snapshot = snapshot_in(&a, &ctx, &answer);
    snapshot.covered.push(tabnode_types::DeltaId([42; 32]));
    let forged = a.sign_snapshot(&ctx, &snapshot).unwrap();
    deliver(&with_snapshot(&a, &ctx, &answer, forged), &mut b);
    assert!(
        block_on(b.execute(&ctx, "get", json!({"key": "k7"}))).is_err(),
        "B waits for the delta the snapshot names"
    );
    rejections(&mut b);

    // B's timer drops the snapshot once its deadline has passed, not before, and the deltas
    // serve.
    let since = b.now();
    block_on(b.handle_timeout(since + 119_000_000_000));
    assert!(
        rejections(&mut b)
            .iter()
            .all(|r| !r.contains("did not come")),
        "not before its deadline"
    );
    block_on(b.handle_timeout(since + 121_000_000_000));
    let refused = rejections(&mut b);
    assert!(
        refused.iter().any(|r| r.contains("did not come within")),
        "{refused:?}"
    );
    b.advance_to(b.now() + 121_000_000_000);
    a.advance_to(a.now() + 121_000_000_000);
    common::tick(&mut a);
    relay(&mut a, &mut b);
    assert_eq!(entries(&mut b, &ctx)["k7"], json!("v7"));
    assert_converged(&mut a, &mut b, &ctx);
}

#[test]
fn a_lost_message_of_deltas_does_not_stall_a_joiner_whose_waiting_budget_fills_behind_the_gap() {
    // More deltas after the gap than one author may have waiting (2,500): the page's catch-up
    // over 10,000 deltas lost a message through the relay and stalled here for good.
    let (mut a, ctx) = busy_context(0);
    for i in 0..3_000 {
        let args = json!({"key": format!("k{}", i % 10), "value": format!("v{i}")});
        block_on(a.execute(&ctx, "set", args)).unwrap();
    }
    sent(&mut a);
    let (mut b, answer) = join(&mut a, &ctx);
    let deltas_messages: Vec<usize> = (0..answer.len())
        .filter(|&i| {
            matches!(
                a.open_message(&ctx, &answer[i].1),
                Ok(WireMessage::Deltas(_))
            )
        })
        .collect();
    let lost = deltas_messages[1];
    let arrived: Messages = (0..answer.len())
        .filter(|&i| i != lost)
        .map(|i| answer[i].clone())
        .collect();
    deliver(&arrived, &mut b);
    let refused = refusals(&mut b);
    assert!(
        refused.iter().any(|(kind, _)| kind == "Busy"),
        "the deltas behind the gap filled B's budget: {:?}",
        &refused[..refused.len().min(3)]
    );

    // B asked again (it has deltas waiting): A sends all B lacks, the lost ones first.
    for _ in 0..4 {
        relay(&mut b, &mut a);
        relay(&mut a, &mut b);
    }
    assert_eq!(
        a.position(&ctx).unwrap().heads,
        b.position(&ctx).unwrap().heads,
        "B caught up"
    );
    assert_eq!(
        a.position(&ctx).unwrap().root_hash,
        b.position(&ctx).unwrap().root_hash
    );
    assert_eq!(entries(&mut b, &ctx), entries(&mut a, &ctx));
    assert!(audit_methods(&b, &ctx).iter().any(|m| m == "sync.snapshot"));
    assert!(block_on(b.verify_audit(&ctx)).unwrap().ok);
}
