//! What a hostile member, or anyone holding a leaked context secret, can throw at a node: a
//! flood of orphan deltas whose parents never arrive, junk, oversize messages, forged
//! signatures, a tampered artifact, a wrong root hash. Nothing is applied that should not be,
//! memory stays bounded, and the node keeps working for honest members.

mod common;

use common::{node, rejections, TestNode};

use futures::executor::block_on;
use serde_json::json;
use tabnode_node::{
    context_topic, DeltaBody, NodeEvent, Outgoing, WireMessage, MAX_MESSAGE_BYTES,
    VOID_DELTAS_PER_CONTEXT, VOID_DELTAS_PER_KEY,
};
use tabnode_types::{ContextId, DeltaId, Hash, SecretKey};

/// A's context, and a member key the test controls (certified through a real invitation, and
/// admitted).
fn context_with_rogue() -> (TestNode, ContextId, SecretKey, tabnode_node::MemberCert) {
    let mut a = node(1);
    let app = block_on(a.install_app(&common::guest("kv_store"))).unwrap();
    let ctx = block_on(a.create_context(app, json!({}))).unwrap();
    let rogue = SecretKey::from_seed([66; 32]);
    let invitation = a.invite(&ctx).unwrap();
    let cert = common::admit(&mut a, &invitation, &rogue);
    a.take_outgoing();
    (a, ctx, rogue, cert)
}

fn delta(
    ctx: ContextId,
    key: &SecretKey,
    cert: &tabnode_node::MemberCert,
    parents: Vec<DeltaId>,
    timestamp: u64,
    artifact: Vec<u8>,
) -> tabnode_node::Delta {
    DeltaBody {
        context_id: ctx,
        parents,
        author: key.public(),
        timestamp,
        artifact,
        root_hash: Hash([0; 32]),
        events: vec![],
        genesis: None,
        author_cert: cert.clone(),
        op: None,
    }
    .sign(key)
}

/// Sends `a` 12,000 validly signed deltas by `rogue` whose parents never arrive, 500 to a
/// message, calling `after_each` after each message.
fn flood_with_orphans(
    a: &mut TestNode,
    ctx: ContextId,
    rogue: &SecretKey,
    cert: &tabnode_node::MemberCert,
    after_each: impl Fn(&TestNode),
) {
    for batch in 0..24u32 {
        let deltas = (0..500u32)
            .map(|i| {
                let n = batch * 500 + i;
                let parent = DeltaId(*blake3::hash(&n.to_le_bytes()).as_bytes());
                delta(
                    ctx,
                    rogue,
                    cert,
                    vec![parent],
                    u64::from(n) + 10,
                    vec![1, 2, 3],
                )
            })
            .collect();
        let sealed = a.seal_for(&ctx, &WireMessage::Deltas(deltas)).unwrap();
        block_on(a.handle_message(&context_topic(&ctx), &sealed));
        after_each(a);
    }
}

#[test]
fn a_flood_of_orphans_stays_bounded_and_changes_nothing() {
    let (mut a, ctx, rogue, cert) = context_with_rogue();
    let before = block_on(a.checkpoint(&ctx)).unwrap();
    // 12,000 validly signed deltas whose parents never arrive, 500 to a message.
    flood_with_orphans(&mut a, ctx, &rogue, &cert, |a| {
        assert!(a.pending(&ctx).unwrap() <= 10_000, "bounded");
    });
    assert_eq!(
        block_on(a.checkpoint(&ctx)).unwrap(),
        before,
        "nothing applied"
    );
    // The node asks for the missing parents at most once per retry period, not per message.
    let asks = a
        .take_outgoing()
        .iter()
        .filter(|o| matches!(o, Outgoing::Publish { .. }))
        .count();
    assert!(asks < 24, "{asks} sync requests for 24 messages of orphans");
    // And honest work goes on.
    block_on(a.execute(&ctx, "set", json!({"key": "k", "value": "v"}))).unwrap();
}

#[test]
fn junk_oversize_forged_and_tampered_messages_are_refused() {
    let (mut a, ctx, rogue, cert) = context_with_rogue();
    let topic = context_topic(&ctx);
    let before = block_on(a.checkpoint(&ctx)).unwrap();
    a.take_events();

    // Junk: not sealed, sealed but not a message, and too large to read.
    block_on(a.handle_message(&topic, b"junk"));
    let sealed_junk = a.seal_for(&ctx, &WireMessage::Deltas(vec![])).unwrap();
    let mut not_a_message = sealed_junk.clone();
    not_a_message.truncate(10);
    block_on(a.handle_message(&topic, &not_a_message));
    block_on(a.handle_message(&topic, &vec![7u8; MAX_MESSAGE_BYTES + 1]));
    let reasons = rejections(&mut a);
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    assert!(reasons[2].contains("over the limit"), "{reasons:?}");

    // A forged signature: a member's delta whose content was changed after signing.
    let heads = before.heads.clone();
    let now = a.now();
    let mut forged = delta(ctx, &rogue, &cert, heads.clone(), now, vec![0]);
    forged.body.artifact = vec![9, 9, 9];
    let sealed = a
        .seal_for(&ctx, &WireMessage::Deltas(vec![forged]))
        .unwrap();
    block_on(a.handle_message(&topic, &sealed));
    // A tampered artifact, validly signed: the guest refuses to merge it.
    let tampered = delta(ctx, &rogue, &cert, heads.clone(), now, vec![0xff; 40]);
    let sealed = a
        .seal_for(&ctx, &WireMessage::Deltas(vec![tampered]))
        .unwrap();
    block_on(a.handle_message(&topic, &sealed));
    // A delta that claims to be older than its parents.
    let backdated = delta(ctx, &rogue, &cert, heads, 0, vec![0]);
    let sealed = a
        .seal_for(&ctx, &WireMessage::Deltas(vec![backdated]))
        .unwrap();
    block_on(a.handle_message(&topic, &sealed));
    let reasons = rejections(&mut a);
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    assert!(reasons[0].contains("signature"), "{reasons:?}");
    assert!(
        reasons[2].contains("not later than its parents"),
        "{reasons:?}"
    );
    assert_eq!(
        block_on(a.checkpoint(&ctx)).unwrap(),
        before,
        "nothing applied"
    );
}

#[test]
fn a_wrong_root_hash_on_exactly_our_heads_is_reported_as_divergence() {
    let (mut a, ctx, rogue, cert) = context_with_rogue();
    let mut b = node(2);
    block_on(b.join(&a.invite(&ctx).unwrap())).unwrap();
    common::settle(&mut [&mut a, &mut b]);
    let heads = block_on(b.checkpoint(&ctx)).unwrap().heads;
    assert_eq!(heads, block_on(a.checkpoint(&ctx)).unwrap().heads);
    b.take_events();
    // The rogue member takes a real change (A's, not delivered to B) and claims a false root.
    block_on(a.execute(&ctx, "set", json!({"key": "k", "value": "v"}))).unwrap();
    let real = a
        .take_outgoing()
        .into_iter()
        .find_map(|o| match o {
            Outgoing::Publish { data, .. } => match a.open_message(&ctx, &data).ok()? {
                WireMessage::Deltas(mut d) => d.pop(),
                _ => None,
            },
            _ => None,
        })
        .expect("A published its delta");
    let lying = delta(
        ctx,
        &rogue,
        &cert,
        heads,
        real.body.timestamp,
        real.body.artifact,
    );
    let sealed = a.seal_for(&ctx, &WireMessage::Deltas(vec![lying])).unwrap();
    block_on(b.handle_message(&context_topic(&ctx), &sealed));
    let events = b.take_events();
    assert!(
        events.iter().any(
            |e| matches!(e, NodeEvent::Divergence { expected, .. } if *expected == Hash([0; 32]))
        ),
        "{events:?}"
    );
}

#[test]
fn a_member_announcing_false_roots_costs_one_rebuild_not_one_every_period() {
    let (mut a, ctx, rogue, cert) = context_with_rogue();
    let topic = context_topic(&ctx);
    a.take_events();
    for round in 0..3 {
        // A's heads move on, and the rogue claims a root of its own for them.
        block_on(a.execute(
            &ctx,
            "set",
            json!({"key": format!("k{round}"), "value": "v"}),
        ))
        .unwrap();
        a.advance_to(a.now() + 31_000_000_000);
        let heads = block_on(a.checkpoint(&ctx)).unwrap().heads;
        let root_hash = Some(Hash([round; 32]));
        let signature = rogue.sign(&WireMessage::sync_request_message(&ctx, &heads, &root_hash));
        let request = WireMessage::SyncRequest {
            context_id: ctx,
            heads,
            root_hash,
            requester: Box::new(cert.clone()),
            signature,
        };
        let sealed = a.seal_for(&ctx, &request).unwrap();
        block_on(a.handle_message(&topic, &sealed));
    }
    let repairs = block_on(a.audit(&ctx))
        .unwrap()
        .iter()
        .filter(|r| r.entry.method == "sync.repair")
        .count();
    assert_eq!(repairs, 1, "rebuilds for three false roots");
    let reports = a
        .take_events()
        .into_iter()
        .filter(|e| matches!(e, NodeEvent::RootMismatch { .. }))
        .count();
    assert_eq!(reports, 1, "root mismatches reported");
    // And A's own work goes on.
    block_on(a.execute(&ctx, "set", json!({"key": "after", "value": "v"}))).unwrap();
}

#[test]
fn a_flood_of_orphans_does_not_push_out_an_honest_members_waiting_delta() {
    let (mut a, ctx, rogue, cert) = context_with_rogue();
    let mut b = node(2);
    block_on(b.join(&a.invite(&ctx).unwrap())).unwrap();
    common::settle(&mut [&mut a, &mut b]);
    // B writes twice; A gets the second first, so it waits for its parent.
    block_on(b.execute(&ctx, "set", json!({"key": "first", "value": "1"}))).unwrap();
    let first = common::sent(&mut b);
    block_on(b.execute(&ctx, "set", json!({"key": "second", "value": "2"}))).unwrap();
    common::deliver(&common::sent(&mut b), &mut a);
    assert_eq!(a.pending(&ctx).unwrap(), 1);

    // The rogue floods A with 12,000 orphans; A keeps what it may of them and refuses the rest.
    flood_with_orphans(&mut a, ctx, &rogue, &cert, |_| {});
    let refused = common::refusals(&mut a);
    assert!(
        refused.iter().any(|(kind, _)| kind == "Busy"),
        "the flood is refused once over its author's share"
    );

    // B's first delta arrives: both of B's writes apply, with no need to ask again.
    common::deliver(&first, &mut a);
    let got = block_on(a.execute(&ctx, "get", json!({"key": "second"}))).unwrap();
    assert_eq!(got.output, json!("2"));
}

/// What a node stored of `author`'s deltas in `ctx`.
fn stored_by(
    store: &tabnode_store::MemoryStore,
    ctx: &ContextId,
    author: &tabnode_types::PublicKey,
) -> usize {
    common::stored_deltas(store, ctx)
        .iter()
        .filter(|d| d.body.author == *author)
        .count()
}

/// A removed member goes on signing deltas on a point from before its removal (sealed with the
/// secret it held): each is void, and used to be stored and replicated by every member, without
/// bound. Now each member keeps at most a budget of them (per key answerable for them) and
/// refuses the rest before storing them, unless another member built on them; members that
/// kept different ones take each other's when they build on them, and converge.
#[test]
fn a_removed_member_spamming_void_deltas_grows_no_members_store_without_bound() {
    const SPAM: usize = 3 * VOID_DELTAS_PER_KEY;
    let (a_store, b_store) = (
        tabnode_store::MemoryStore::default(),
        tabnode_store::MemoryStore::default(),
    );
    let mut a = common::node_on(a_store.clone(), 1);
    let app = block_on(a.install_app(&common::guest("kv_store"))).unwrap();
    let ctx = block_on(a.create_context(app, json!({}))).unwrap();
    let mut b = common::node_on(b_store.clone(), 2);
    block_on(b.join(&a.invite(&ctx).unwrap())).unwrap();
    common::settle(&mut [&mut a, &mut b]);
    let rogue = SecretKey::from_seed([66; 32]);
    let invitation = a.invite(&ctx).unwrap();
    let cert = common::admit(&mut a, &invitation, &rogue);
    common::settle(&mut [&mut a, &mut b]);

    // Signed and sealed on the point before its removal, as the removed key can.
    let before = block_on(a.checkpoint(&ctx)).unwrap().heads;
    // Time passes between the steps (nodes read no clock: the test gives it): the spam is
    // stamped after everything before it, and the removal after the spam.
    a.advance_to(a.now() + 1_000_000_000);
    let now = a.now();
    let spam: Vec<Vec<u8>> = (0..SPAM)
        .map(|i| {
            let artifact = format!("void {i}").into_bytes();
            let d = delta(ctx, &rogue, &cert, before.clone(), now + i as u64, artifact);
            a.seal_bytes_for(&ctx, &WireMessage::Deltas(vec![d]).encode())
                .unwrap()
        })
        .collect();
    a.advance_to(now + 1_000_000_000);
    block_on(a.remove_member(&ctx, rogue.public())).unwrap();
    common::settle(&mut [&mut a, &mut b]);
    let position = |n: &mut TestNode| block_on(n.checkpoint(&ctx)).unwrap();
    let a_before = position(&mut a);

    // A hears them in one order, B in the other: each keeps a different budget's worth.
    let topic = context_topic(&ctx);
    for sealed in &spam {
        block_on(a.handle_message(&topic, sealed));
    }
    for sealed in spam.iter().rev() {
        block_on(b.handle_message(&topic, sealed));
    }
    for (node, store) in [(&mut a, &a_store), (&mut b, &b_store)] {
        assert_eq!(stored_by(store, &ctx, &rogue.public()), VOID_DELTAS_PER_KEY);
        let refused = common::refusals(node);
        let busy = refused.iter().filter(|(kind, _)| kind == "Busy").count();
        assert_eq!(busy, SPAM - VOID_DELTAS_PER_KEY, "{:?}", refused.first());
    }
    assert_eq!(position(&mut a).root_hash, a_before.root_hash);

    // Each builds on its own; the other takes what it built on, and both converge.
    block_on(a.execute(&ctx, "set", json!({"key": "a", "value": "1"}))).unwrap();
    block_on(b.execute(&ctx, "set", json!({"key": "b", "value": "2"}))).unwrap();
    let start = a.now();
    for round in 1..=3 {
        for node in [&mut a, &mut b] {
            block_on(node.handle_timeout(start + round * 10 * tabnode_node::ANNOUNCE_NANOS));
        }
        common::settle(&mut [&mut a, &mut b]);
    }
    let (at_a, at_b) = (position(&mut a), position(&mut b));
    assert_eq!((at_a.heads, at_a.root_hash), (at_b.heads, at_b.root_hash));
    for (node, store) in [(&mut a, &a_store), (&mut b, &b_store)] {
        let got = block_on(node.execute(&ctx, "entries", json!({}))).unwrap();
        assert_eq!(got.output, json!({"a": "1", "b": "2"}));
        assert_eq!(
            stored_by(store, &ctx, &rogue.public()),
            2 * VOID_DELTAS_PER_KEY
        );
    }
}

/// Junk on a context's topic (bytes no secret opens: random, or sealed to a key) changes no log: the node must not work out its latest secret-giving
/// operations again for each one (it did: `ContextState::open` tried every latest operation's
/// secret, judging them anew for each message no secret opened). Counted, not timed.
#[test]
fn junk_messages_do_not_make_a_node_work_out_its_secrets_again() {
    let (mut a, ctx, rogue, _) = context_with_rogue();
    block_on(a.remove_member(&ctx, rogue.public())).unwrap();
    a.take_outgoing();
    rejections(&mut a);
    let heads = block_on(a.checkpoint(&ctx)).unwrap().heads;
    let topic = context_topic(&ctx);
    let junk: Vec<Vec<u8>> = (0..200u32)
        .map(|n| match n % 2 {
            0 => blake3::hash(&n.to_le_bytes()).as_bytes().repeat(4),
            _ => tabnode_node::seal_to(&rogue.public(), &ctx, [n as u8; 32], b"junk").unwrap(),
        })
        .collect();
    let before = tabnode_node::latest_secret_ops_computed();
    for data in &junk {
        block_on(a.handle_message(&topic, data));
    }
    let computed = tabnode_node::latest_secret_ops_computed() - before;
    assert_eq!(rejections(&mut a).len(), 200);
    assert!(
        computed <= 1,
        "200 junk messages worked the latest secret operations out {computed} times"
    );
    assert_eq!(block_on(a.checkpoint(&ctx)).unwrap().heads, heads);

    // A change of the log is worked out again: A writes on, and a new removal counts.
    let mut b = node(2);
    block_on(b.join(&a.invite(&ctx).unwrap())).unwrap();
    common::settle(&mut [&mut a, &mut b]);
    let before = tabnode_node::latest_secret_ops_computed();
    block_on(a.remove_member(&ctx, b.public_key())).unwrap();
    assert!(tabnode_node::latest_secret_ops_computed() > before);
}

/// An admin in good standing mints keys of its own (each admitted on an invitation it made),
/// removes them, and has each sign a budget's worth of void deltas on the point before the
/// removals: per key answerable for them, a member kept them all, one budget per minted key.
/// A context keeps at most `VOID_DELTAS_PER_CONTEXT` in all: the rest are refused as `Busy`
/// before they are stored, whoever answers for them.
#[test]
fn an_admin_minting_keys_gets_no_more_void_deltas_kept_than_the_contexts_budget() {
    let keys = VOID_DELTAS_PER_CONTEXT / VOID_DELTAS_PER_KEY + 1;
    let b_store = tabnode_store::MemoryStore::default();
    let mut a = node(1);
    let app = block_on(a.install_app(&common::guest("kv_store"))).unwrap();
    let ctx = block_on(a.create_context(app, json!({}))).unwrap();
    let mut b = common::node_on(b_store.clone(), 2);
    block_on(b.join(&a.invite(&ctx).unwrap())).unwrap();
    common::settle(&mut [&mut a, &mut b]);
    let minted: Vec<(SecretKey, tabnode_node::MemberCert)> = (0..keys)
        .map(|i| {
            let key = SecretKey::from_seed([100 + i as u8; 32]);
            let link = a.invite(&ctx).unwrap();
            let cert = common::admit(&mut a, &link, &key);
            (key, cert)
        })
        .collect();
    common::settle(&mut [&mut a, &mut b]);
    let before = block_on(a.checkpoint(&ctx)).unwrap().heads;
    a.advance_to(a.now() + 1_000_000_000);
    let now = a.now();
    let mut spam = Vec::new();
    for (k, (key, cert)) in minted.iter().enumerate() {
        for i in 0..VOID_DELTAS_PER_KEY {
            let n = (k * VOID_DELTAS_PER_KEY + i) as u64;
            let artifact = format!("void {k} {i}").into_bytes();
            spam.push(delta(ctx, key, cert, before.clone(), now + n, artifact));
        }
    }
    a.advance_to(now + 1_000_000_000);
    for (key, _) in &minted {
        block_on(a.remove_member(&ctx, key.public())).unwrap();
    }
    common::settle(&mut [&mut a, &mut b]);
    common::refusals(&mut b);

    let topic = context_topic(&ctx);
    for d in spam {
        let sealed = a
            .seal_bytes_for(&ctx, &WireMessage::Deltas(vec![d]).encode())
            .unwrap();
        block_on(b.handle_message(&topic, &sealed));
    }
    let kept: usize = minted
        .iter()
        .map(|(key, _)| stored_by(&b_store, &ctx, &key.public()))
        .sum();
    assert_eq!(kept, VOID_DELTAS_PER_CONTEXT, "one budget per minted key");
    let busy = common::refusals(&mut b)
        .into_iter()
        .filter(|(kind, _)| kind == "Busy")
        .count();
    assert_eq!(busy, keys * VOID_DELTAS_PER_KEY - VOID_DELTAS_PER_CONTEXT);
    // B still takes A's writes.
    block_on(a.execute(&ctx, "set", json!({"key": "a", "value": "1"}))).unwrap();
    common::settle(&mut [&mut a, &mut b]);
    let got = block_on(b.execute(&ctx, "entries", json!({}))).unwrap();
    assert_eq!(got.output, json!({"a": "1"}));
}
