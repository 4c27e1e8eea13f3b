//! Blobs between members: a blob announced to a context (by a guest's
//! `blob_announce_to_context` or the owner's `put_blob` with the context) is fetched by a member
//! that lacks it, part by part, each checked against the blob id. Only members get it, only a
//! blob announced to that context is served to it, and a forged part is refused, unstored.

mod common;

use common::{guest, node_on, refusals, sent, settle, stored_node_key, Messages, TestNode};

use futures::executor::block_on;
use serde_json::{json, Value};
use tabnode_node::{
    context_topic, seal_to, Content, MemberCert, NodeEvent, PartPacing, SealedPart, WireMessage,
    APP_PART_BYTES, BLOB_ASKS,
};
use tabnode_store::MemoryStore;
use tabnode_types::{ContextId, SecretKey};

/// A node on `store` (key from `seed`) with the probe app installed.
fn member(store: MemoryStore, seed: u8) -> TestNode {
    let mut node = node_on(store, seed);
    block_on(node.install_app(&guest("probe"))).unwrap();
    node
}

/// A creates a probe context and B joins it; both settled, their events taken.
fn two_members(store_a: MemoryStore) -> (TestNode, TestNode, ContextId) {
    let mut a = member(store_a, 1);
    let probe = tabnode_types::AppId::of_wasm(&guest("probe"));
    let ctx = block_on(a.create_context(probe, json!({"title": "t"}))).unwrap();
    let mut b = member(MemoryStore::default(), 2);
    block_on(b.join(&a.invite(&ctx).unwrap())).unwrap();
    settle(&mut [&mut a, &mut b]);
    a.take_events();
    b.take_events();
    (a, b, ctx)
}

/// Bytes of a blob of `size` bytes, more than one part when `size` is over [`APP_PART_BYTES`].
fn data_of(size: usize) -> Vec<u8> {
    (0..size).map(|i| (i * 7 % 253) as u8).collect()
}

fn progress(node: &mut TestNode) -> Vec<(u64, u64)> {
    node.take_events()
        .into_iter()
        .filter_map(|e| match e {
            NodeEvent::BlobProgress {
                received, total, ..
            } => Some((received, total)),
            _ => None,
        })
        .collect()
}

fn read_blob(node: &mut TestNode, ctx: &ContextId, id: &Value) -> Value {
    block_on(node.execute(ctx, "read_blob", json!({"id": id})))
        .unwrap()
        .output
}

#[test]
fn a_blob_a_guest_announced_is_fetched_when_a_members_guest_opens_it() {
    let (mut a, mut b, ctx) = two_members(MemoryStore::default());
    let text = "0123456789abcdef".repeat(40_000); // 640 000 bytes: three parts
    let stored = block_on(a.execute(&ctx, "store_blob", json!({"data": text}))).unwrap();
    let id = stored.output.clone();
    settle(&mut [&mut a, &mut b]);
    b.take_events();

    assert_eq!(read_blob(&mut b, &ctx, &id), json!(null), "not here yet");
    settle(&mut [&mut a, &mut b]);
    let total = text.len() as u64;
    let part = APP_PART_BYTES as u64;
    assert_eq!(
        progress(&mut b),
        vec![(part, total), (2 * part, total), (total, total)]
    );
    assert_eq!(
        read_blob(&mut b, &ctx, &id),
        json!(text),
        "B's guest reads it"
    );
}

#[test]
fn a_blob_put_with_a_context_is_fetched_by_a_member() {
    let (mut a, mut b, ctx) = two_members(MemoryStore::default());
    let data = data_of(1000);
    let id = block_on(a.put_blob(data.clone(), Some(&ctx))).unwrap();
    block_on(b.fetch_blob(&ctx, id)).unwrap();
    settle(&mut [&mut a, &mut b]);
    assert_eq!(block_on(b.blob(&id)).unwrap(), Some(data));
    assert_eq!(progress(&mut b), vec![(1000, 1000)]);
}

#[test]
fn a_blob_announced_to_another_context_or_none_is_not_served() {
    let (mut a, mut b, x) = two_members(MemoryStore::default());
    let probe = tabnode_types::AppId::of_wasm(&guest("probe"));
    let y = block_on(a.create_context(probe, json!({"title": "y"}))).unwrap();
    let only_y = block_on(a.put_blob(data_of(500), Some(&y))).unwrap();
    let nowhere = block_on(a.put_blob(data_of(600), None)).unwrap();
    for id in [only_y, nowhere] {
        block_on(b.fetch_blob(&x, id)).unwrap();
        settle(&mut [&mut a, &mut b]);
        assert_eq!(block_on(b.blob(&id)).unwrap(), None, "{id}");
        assert!(progress(&mut b).is_empty());
    }
}

/// A key and its certificate of another context: no member of the tests' contexts.
fn stranger() -> (SecretKey, MemberCert) {
    let key = SecretKey::from_seed([9; 32]);
    let mut other = member(MemoryStore::default(), 3);
    let probe = tabnode_types::AppId::of_wasm(&guest("probe"));
    let own = block_on(other.create_context(probe, json!({"title": "o"}))).unwrap();
    let invitation = other.invite(&own).unwrap();
    let cert = common::admit(&mut other, &invitation, &key);
    (key, cert)
}

#[test]
fn a_key_that_is_no_member_gets_nothing() {
    let (mut a, _b, ctx) = two_members(MemoryStore::default());
    let id = block_on(a.put_blob(data_of(1000), Some(&ctx))).unwrap();
    // A stranger (a member of another context only) that learned this context's secret.
    let (key, cert) = stranger();
    let missing: Vec<u32> = vec![];
    let signed = WireMessage::blob_request_message(&ctx, &id, &missing);
    let request = WireMessage::BlobRequest {
        context_id: ctx,
        blob_id: id,
        requester: Box::new(cert),
        missing,
        signature: key.sign(&signed),
    };
    let sealed = a.seal_for(&ctx, &request).unwrap();
    sent(&mut a);
    block_on(a.handle_message(&context_topic(&ctx), &sealed));
    assert!(sent(&mut a).is_empty(), "no part is sent");
    let refused = refusals(&mut a);
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0].0, "Unauthorized", "{refused:?}");
}

/// The blob parts among `messages`, as `node` (a member) opens them.
fn blob_parts(node: &TestNode, ctx: &ContextId, messages: &Messages) -> Vec<WireMessage> {
    messages
        .iter()
        .filter_map(|(_, data)| match node.open_message(ctx, data).ok()? {
            part @ WireMessage::BlobPart { .. } => Some(part),
            _ => None,
        })
        .collect()
}

#[test]
fn a_forged_part_is_refused_and_nothing_is_stored() {
    let store_a = MemoryStore::default();
    let (mut a, mut b, ctx) = two_members(store_a.clone());
    let data = data_of(1000);
    let id = block_on(a.put_blob(data.clone(), Some(&ctx))).unwrap();
    block_on(b.fetch_blob(&ctx, id)).unwrap();
    common::relay(&mut b, &mut a);
    let answer = sent(&mut a);
    let parts = blob_parts(&b, &ctx, &answer);
    assert_eq!(parts.len(), 1);
    let WireMessage::BlobPart { part, .. } = parts[0].clone() else {
        unreachable!()
    };
    let provider = part.provider.clone();
    // A's own part, its bytes changed, sealed to B and signed by A's key.
    let mut wrong = data.clone();
    wrong[10] ^= 1;
    let forge = |key: &SecretKey, provider| {
        let sealed = seal_to(&part.to, &ctx, [7; 32], &wrong).unwrap();
        let signed = SealedPart::signed_message(
            Content::Blob,
            (&ctx, &id.0),
            (part.size, part.index, &part.to, &sealed),
        );
        WireMessage::BlobPart {
            context_id: ctx,
            blob_id: id,
            part: SealedPart {
                sealed,
                provider,
                signature: key.sign(&signed),
                ..part.clone()
            },
        }
    };
    let forged = a
        .seal_for(&ctx, &forge(&stored_node_key(&store_a), provider.clone()))
        .unwrap();
    block_on(b.handle_message(&context_topic(&ctx), &forged));
    let refused = refusals(&mut b);
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0].0, "BlobHashMismatch");
    assert_eq!(block_on(b.blob(&id)).unwrap(), None, "nothing stored");

    // The same part from a key that is no member of the context.
    let (key, cert) = stranger();
    let from_stranger = a.seal_for(&ctx, &forge(&key, Box::new(cert))).unwrap();
    block_on(b.handle_message(&context_topic(&ctx), &from_stranger));
    let refused = refusals(&mut b);
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0].0, "BlobPartNotFromMember");
    assert_eq!(block_on(b.blob(&id)).unwrap(), None, "nothing stored");

    // The member's true part is then taken.
    common::deliver(&answer, &mut b);
    assert_eq!(block_on(b.blob(&id)).unwrap(), Some(data));
}

/// How many blob requests `node` published since it was last asked.
fn blob_requests(node: &mut TestNode, ctx: &ContextId) -> usize {
    let published = sent(node);
    published
        .iter()
        .filter(|(_, data)| {
            matches!(
                node.open_message(ctx, data),
                Ok(WireMessage::BlobRequest { .. })
            )
        })
        .count()
}

#[test]
fn a_lost_request_is_asked_again_and_a_blob_no_member_serves_is_given_up() {
    let (mut a, mut b, ctx) = two_members(MemoryStore::default());
    let data = data_of(1000);
    let id = block_on(a.put_blob(data.clone(), Some(&ctx))).unwrap();
    block_on(b.fetch_blob(&ctx, id)).unwrap();
    assert_eq!(blob_requests(&mut b, &ctx), 1, "lost");
    let retry = 3_000_000_000; // over the wait for a part before asking again
    b.advance_to(b.now() + retry);
    common::tick(&mut b);
    settle(&mut [&mut a, &mut b]);
    assert_eq!(block_on(b.blob(&id)).unwrap(), Some(data));

    let nowhere = tabnode_types::Hash(*blake3::hash(b"on no member").as_bytes());
    block_on(b.fetch_blob(&ctx, nowhere)).unwrap();
    let mut asked = blob_requests(&mut b, &ctx);
    for _ in 0..2 * BLOB_ASKS {
        b.advance_to(b.now() + retry);
        common::tick(&mut b);
        asked += blob_requests(&mut b, &ctx);
    }
    assert_eq!(asked, BLOB_ASKS as usize, "asked, then given up");
}

/// The parts among what `from` sent since last asked, delivered to `to`; their indexes.
fn pass_parts(from: &mut TestNode, to: &mut TestNode, ctx: &ContextId) -> Vec<u32> {
    let messages = sent(from);
    let indexes = blob_parts(to, ctx, &messages)
        .into_iter()
        .map(|p| match p {
            WireMessage::BlobPart { part, .. } => part.index,
            _ => unreachable!(),
        })
        .collect();
    common::deliver(&messages, to);
    indexes
}

#[test]
fn a_large_blob_goes_out_at_its_pace_and_a_part_asked_for_again_while_it_waits_goes_once() {
    let (mut a, mut b, ctx) = two_members(MemoryStore::default());
    // 600 KiB of burst (two parts), then 1 MiB a second (a part about every quarter second).
    a.set_part_pacing(PartPacing {
        burst_bytes: 600 << 10,
        bytes_per_minute: 60 << 20,
    });
    let data = data_of(8 * APP_PART_BYTES);
    let id = block_on(a.put_blob(data.clone(), Some(&ctx))).unwrap();
    sent(&mut a);
    block_on(b.fetch_blob(&ctx, id)).unwrap();
    let request = sent(&mut b);
    common::deliver(&request, &mut a);
    let mut came = pass_parts(&mut a, &mut b, &ctx);
    assert_eq!(came, vec![0, 1], "the burst: two parts");

    // B asks again for everything while six parts wait: none is queued twice.
    common::deliver(&request, &mut a);
    assert!(
        pass_parts(&mut a, &mut b, &ctx).is_empty(),
        "the bucket is empty"
    );

    // A's timer lets the rest out at the pace, at most two a round of a quarter second.
    let mut rounds = 0;
    while came.len() < 8 && rounds < 100 {
        a.advance_to(a.now() + 250_000_000);
        let now = a.now();
        assert!(
            a.poll_timeout().is_some_and(|due| due <= now),
            "a part is due"
        );
        block_on(a.handle_timeout(now));
        let round = pass_parts(&mut a, &mut b, &ctx);
        assert!(round.len() <= 2, "round {rounds}: {round:?}");
        came.extend(round);
        rounds += 1;
    }
    assert_eq!(
        came,
        (0..8).collect::<Vec<u32>>(),
        "each part once, in order"
    );
    assert!(rounds >= 5, "paced over {rounds} rounds");
    assert_eq!(block_on(b.blob(&id)).unwrap(), Some(data));
}
