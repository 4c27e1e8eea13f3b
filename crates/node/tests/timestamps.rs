//! Timestamps are the author's to choose, and every delta must be later than its parents: a
//! delta stamped at the end of time would leave no timestamp for anything after it. A remote
//! delta further ahead than `MAX_CLOCK_SKEW_NANOS` is refused until the clock has caught up
//! (and brought again by anti-entropy then), a void delta never moves the clock, and a call
//! that can make no delta fails and changes nothing.

mod common;

use common::{node, node_on, refusals, sent, settle, TestNode};

use futures::executor::block_on;
use serde_json::{json, Value};
use tabnode_node::Clock;
use tabnode_node::{
    context_topic, Checkpoint, DeltaBody, Invitation, MemberCert, MemberOp, Outgoing, Role,
    WireMessage, MAX_CLOCK_SKEW_NANOS,
};
use tabnode_store::{MemoryStore, Namespace, Store};
use tabnode_types::{ContextId, DeltaId, Hash, SecretKey};

fn set(node: &mut TestNode, ctx: &ContextId, key: &str, value: &str) {
    block_on(node.execute(ctx, "set", json!({"key": key, "value": value}))).unwrap();
}

fn entries(node: &mut TestNode, ctx: &ContextId) -> Value {
    block_on(node.execute(ctx, "entries", json!({})))
        .unwrap()
        .output
}

fn checkpoint(node: &mut TestNode, ctx: &ContextId) -> Checkpoint {
    block_on(node.checkpoint(ctx)).unwrap()
}

/// Where a node stands: its heads and its root.
fn position(node: &mut TestNode, ctx: &ContextId) -> (Vec<DeltaId>, Option<Hash>) {
    let cp = checkpoint(node, ctx);
    (cp.heads, cp.root_hash)
}

/// A creates the context and B joins it.
fn pair() -> (TestNode, TestNode, ContextId) {
    let (mut a, mut b) = (node(1), node(2));
    let app = block_on(a.install_app(&common::guest("kv_store"))).unwrap();
    let ctx = block_on(a.create_context(app, json!({}))).unwrap();
    block_on(b.join(&a.invite(&ctx).unwrap())).unwrap();
    settle(&mut [&mut a, &mut b]);
    (a, b, ctx)
}

/// A key the test holds, certified by a real invitation of A's with `role`.
fn invited(a: &TestNode, ctx: &ContextId, role: Role, seed: u8) -> (SecretKey, MemberCert) {
    let key = SecretKey::from_seed([seed; 32]);
    let link = a.invite_as(ctx, role, u64::MAX).unwrap();
    let cert = Invitation::decode(&link)
        .unwrap()
        .redeem(key.public(), 1)
        .unwrap();
    (key, cert)
}

/// A delta by `key` on A's heads, stamped `timestamp`.
fn crafted(
    a: &mut TestNode,
    ctx: &ContextId,
    (key, cert): &(SecretKey, MemberCert),
    timestamp: u64,
    op: Option<MemberOp>,
) -> tabnode_node::Delta {
    DeltaBody {
        context_id: *ctx,
        parents: checkpoint(a, ctx).heads,
        author: key.public(),
        timestamp,
        artifact: if op.is_some() { vec![] } else { vec![0] },
        root_hash: Hash([0; 32]),
        events: vec![],
        genesis: None,
        author_cert: cert.clone(),
        op,
    }
    .sign(key)
}

#[test]
fn a_delta_stamped_near_the_end_of_time_stalls_nobody() {
    let (mut a, mut b, ctx) = pair();
    let member = invited(&a, &ctx, Role::Member, 60);
    let reader = invited(&a, &ctx, Role::Reader, 61);
    let removed = invited(&a, &ctx, Role::Member, 62);
    block_on(a.remove_member(&ctx, removed.0.public())).unwrap();
    settle(&mut [&mut a, &mut b]);
    let end = u64::MAX - 1;
    // A member's and a reader's announcement (which would stand) and a removed member's write
    // (which would be void), each stamped at the end of time, on the heads everyone holds.
    let hostile = [
        crafted(&mut a, &ctx, &member, end, Some(MemberOp::Join)),
        crafted(&mut a, &ctx, &reader, end, Some(MemberOp::Join)),
        crafted(&mut a, &ctx, &removed, end, None),
    ];
    let before = checkpoint(&mut a, &ctx);
    refusals(&mut a);
    refusals(&mut b);
    for delta in hostile {
        let message = WireMessage::Deltas(vec![delta]);
        let sealed = a.seal_for(&ctx, &message).unwrap();
        for node in [&mut a, &mut b] {
            block_on(node.handle_message(&context_topic(&ctx), &sealed));
            let refused = refusals(node);
            assert_eq!(refused.len(), 1, "{refused:?}");
            assert_eq!(refused[0].0, "FutureDelta", "{refused:?}");
        }
    }
    assert_eq!(checkpoint(&mut a, &ctx), before, "nothing kept");
    assert_eq!(checkpoint(&mut b, &ctx), before, "nothing kept");

    // Honest members keep writing, and every write reaches the other.
    for round in 0..3 {
        set(&mut a, &ctx, &format!("a{round}"), "from a");
        settle(&mut [&mut a, &mut b]);
        set(&mut b, &ctx, &format!("b{round}"), "from b");
        settle(&mut [&mut a, &mut b]);
    }
    for node in [&mut a, &mut b] {
        assert!(refusals(node).is_empty());
        let all = entries(node, &ctx);
        assert_eq!(all.as_object().unwrap().len(), 6, "{all}");
    }
    assert_eq!(position(&mut a, &ctx), position(&mut b, &ctx));
}

#[test]
fn a_delta_from_the_future_is_refused_until_its_time_has_come() {
    let (mut a, mut b, ctx) = pair();
    // B's clock runs ahead of A's by less than the skew allowed: its writes go through.
    b.advance_to(b.now() + MAX_CLOCK_SKEW_NANOS / 2);
    set(&mut b, &ctx, "near", "ok");
    settle(&mut [&mut a, &mut b]);
    assert_eq!(entries(&mut a, &ctx)["near"], json!("ok"));
    assert!(refusals(&mut a).is_empty());

    // An hour ahead, they are refused, with their reason, and nothing is kept...
    b.advance_to(b.now() + 3600 * 1_000_000_000);
    set(&mut b, &ctx, "far", "later");
    let before = checkpoint(&mut a, &ctx);
    common::relay(&mut b, &mut a);
    let refused = refusals(&mut a);
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0].0, "FutureDelta", "{refused:?}");
    assert!(refused[0].1.contains("ahead"), "{refused:?}");
    assert_eq!(checkpoint(&mut a, &ctx), before);
    assert_eq!(entries(&mut a, &ctx).get("far"), None);

    // ... until A's clock has caught up: anti-entropy brings the delta again, and it stands.
    a.advance_to(a.now() + 3600 * 1_000_000_000);
    common::tick(&mut a);
    common::tick(&mut b);
    settle(&mut [&mut a, &mut b]);
    assert!(refusals(&mut a).is_empty());
    assert_eq!(entries(&mut a, &ctx)["far"], json!("later"));
    assert_eq!(position(&mut a, &ctx), position(&mut b, &ctx));
}

#[test]
fn a_call_that_can_make_no_delta_fails_and_changes_nothing() {
    let store = MemoryStore::default();
    let mut a = node_on(store.clone(), 1);
    let app = block_on(a.install_app(&common::guest("kv_store"))).unwrap();
    let ctx = block_on(a.create_context(app, json!({}))).unwrap();
    // The wall clock reaches the end of `u64` (a stored delta could leave it there before the
    // skew was checked): the last timestamp is used once...
    a.advance_to(u64::MAX);
    set(&mut a, &ctx, "last", "written");
    sent(&mut a);

    // ... and then no delta can be later than it: the call fails, typed, and changes nothing.
    let exhausted = |a: &mut TestNode| {
        let before = checkpoint(a, &ctx);
        let err = block_on(a.execute(&ctx, "set", json!({"key": "k", "value": "v"}))).unwrap_err();
        assert_eq!(err.kind(), "ClockExhausted", "{err}");
        let err = block_on(a.set_role(&ctx, SecretKey::from_seed([9; 32]).public(), Role::Reader))
            .unwrap_err();
        assert_eq!(err.kind(), "ClockExhausted", "{err}");
        assert_eq!(checkpoint(a, &ctx), before);
        let deltas_sent = a.take_outgoing().iter().any(|o| match o {
            Outgoing::Publish { data, .. } => {
                matches!(a.open_message(&ctx, data), Ok(WireMessage::Deltas(_)))
            }
            _ => false,
        });
        assert!(!deltas_sent, "no delta left the node");
        // Reads need no delta, and still answer.
        assert_eq!(entries(a, &ctx), json!({"last": "written"}));
    };
    exhausted(&mut a);
    // Reopened with a clock back in its time, the stored delta still leaves no timestamp.
    drop(a);
    let mut a = node_on(store, 1);
    exhausted(&mut a);
}

/// Every row of a store: namespace, key, value.
type Rows = Vec<(Namespace, Vec<u8>, Vec<u8>)>;

/// Every row of `store`, namespace by namespace.
fn rows(store: &MemoryStore) -> Rows {
    Namespace::ALL
        .into_iter()
        .flat_map(|ns| {
            let rows = block_on(store.scan_prefix(ns, &[])).unwrap();
            rows.into_iter().map(move |(k, v)| (ns, k, v))
        })
        .collect()
}

/// A seeded run on two nodes the test drives (create, join, writes from both, a read, timer
/// work, a second later more writes): every row each store ends with, what each sent and
/// each told. With `read_clocks`, the edge reads every clock between inputs, as a log line
/// would.
fn run_of_two(read_clocks: bool) -> Vec<(Rows, String)> {
    let stores = [MemoryStore::default(), MemoryStore::default()];
    let (mut a, mut b) = (node_on(stores[0].clone(), 1), node_on(stores[1].clone(), 2));
    let look = |nodes: [&TestNode; 2]| {
        if read_clocks {
            for node in nodes {
                for _ in 0..3 {
                    std::hint::black_box(node.env().now_nanos());
                }
            }
        }
    };
    let mut said = [String::new(), String::new()];
    let hear = |from: &mut TestNode, to: &mut TestNode, said: &mut String| {
        let messages = sent(from);
        said.push_str(&format!("{messages:?}{:?}", from.take_events()));
        common::deliver(&messages, to);
    };
    let app = block_on(a.install_app(&common::guest("kv_store"))).unwrap();
    let ctx = block_on(a.create_context(app, json!({}))).unwrap();
    look([&a, &b]);
    block_on(b.join(&a.invite(&ctx).unwrap())).unwrap();
    settle(&mut [&mut a, &mut b]);
    for round in 0..3 {
        look([&a, &b]);
        set(&mut a, &ctx, &format!("a{round}"), "from a");
        look([&a, &b]);
        entries(&mut a, &ctx);
        hear(&mut a, &mut b, &mut said[0]);
        set(&mut b, &ctx, &format!("b{round}"), "from b");
        hear(&mut b, &mut a, &mut said[1]);
        for node in [&mut a, &mut b] {
            let later = node.now() + 1_000_000_000;
            node.advance_to(later);
            common::tick(node);
        }
    }
    settle(&mut [&mut a, &mut b]);
    assert_eq!(position(&mut a, &ctx), position(&mut b, &ctx));
    let [said_a, said_b] = said;
    vec![(rows(&stores[0]), said_a), (rows(&stores[1]), said_b)]
}

#[test]
fn a_run_does_not_depend_on_how_often_anyone_reads_the_clock() {
    // The node reads no clock: time is what its driver gave it. Extra readings at the edge
    // (a log line, a progress bar) leave every stored byte and every message the same.
    let quiet = run_of_two(false);
    let looked = run_of_two(true);
    assert!(!quiet[0].0.is_empty() && !quiet[0].1.is_empty());
    assert_eq!(quiet, looked);
}

/// The timestamps of the deltas `node` published since it was last asked.
fn published_stamps(node: &mut TestNode, ctx: &ContextId) -> Vec<u64> {
    let mut stamps = Vec::new();
    for (_, data) in sent(node) {
        if let Ok(WireMessage::Deltas(deltas)) = node.open_message(ctx, &data) {
            stamps.extend(deltas.iter().map(|d| d.body.timestamp));
        }
    }
    stamps
}

#[test]
fn a_local_call_stamps_its_delta_from_the_time_given() {
    let (mut a, _b, ctx) = pair();
    sent(&mut a);
    let given = a.now() + 42_000_000_000;
    a.advance_to(given);
    set(&mut a, &ctx, "k", "v");
    assert_eq!(published_stamps(&mut a, &ctx), [given]);
    // An earlier time is taken as the last one: time never goes back inside the node, and the
    // next delta is later still (the hybrid logical clock).
    a.advance_to(given - 5_000_000_000);
    assert_eq!(a.now(), given);
    set(&mut a, &ctx, "k", "w");
    assert_eq!(published_stamps(&mut a, &ctx), [given + 1]);
}
