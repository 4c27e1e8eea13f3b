//! Invitations as an attacker holds them: a link that leaked, a link used twice, a link used
//! after it expired (by a joiner whose clock says otherwise), a link its admin revoked, and sync
//! requests from someone who is no member. The link carries no context secret; a member seals
//! the secret to the joiner's key once the join is valid, and records the use in the log.

mod common;

use common::{node, node_on, rejections, settle, TestNode};

use futures::executor::block_on;
use serde_json::{json, Value};
use tabnode_node::{Invitation, MemberCert, NodeEvent, Role, WireMessage};
use tabnode_store::{MemoryStore, Namespace, Store};
use tabnode_types::{ContextId, SecretKey};

fn set(node: &mut TestNode, ctx: &ContextId, key: &str, value: &str) {
    block_on(node.execute(ctx, "set", json!({"key": key, "value": value}))).unwrap();
}

fn entries(node: &mut TestNode, ctx: &ContextId) -> Result<Value, String> {
    block_on(node.execute(ctx, "entries", json!({})))
        .map(|r| r.output)
        .map_err(|e| e.kind().to_owned())
}

fn position(
    node: &mut TestNode,
    ctx: &ContextId,
) -> (Vec<tabnode_types::DeltaId>, Option<tabnode_types::Hash>) {
    let cp = block_on(node.checkpoint(ctx)).unwrap();
    (cp.heads, cp.root_hash)
}

/// A (on `store`) creates a context with kv-store.
fn context(store: MemoryStore) -> (TestNode, ContextId) {
    let mut a = node_on(store, 1);
    let app = block_on(a.install_app(&common::guest("kv_store"))).unwrap();
    let ctx = block_on(a.create_context(app, json!({}))).unwrap();
    (a, ctx)
}

/// Every 32-byte window of every base58 part of a link: what a link holder has to try.
fn link_bytes(link: &str) -> Vec<Vec<u8>> {
    let body = link.split(':').nth(1).unwrap();
    body.split('.')
        .filter_map(|part| bs58::decode(part).into_vec().ok())
        .collect()
}

#[test]
fn a_link_holder_who_never_joined_cannot_read_traffic() {
    let store = MemoryStore::default();
    let (mut a, ctx) = context(store.clone());
    let link = a.invite(&ctx).unwrap();
    // What seals the context's traffic is nowhere in the link.
    let secret = block_on(store.get(Namespace::Keys, &[&ctx.0[..], b"context-secret"].concat()))
        .unwrap()
        .expect("the creator keeps the context secret");
    for part in link_bytes(&link) {
        assert!(
            !part.windows(32).any(|w| w == secret.as_slice()),
            "the link carries the context secret"
        );
    }
    // The invitee joins with it; another who saw the link tries too, after.
    let mut invitee = node(2);
    block_on(invitee.join(&link)).unwrap();
    settle(&mut [&mut a, &mut invitee]);
    let mut holder = node(3);
    let _ = block_on(holder.join(&link));
    set(&mut a, &ctx, "private", "for members");
    for _ in 0..3 {
        common::tick(&mut holder);
        common::tick(&mut a);
        settle(&mut [&mut a, &mut invitee, &mut holder]);
    }
    assert_eq!(
        entries(&mut invitee, &ctx).unwrap()["private"],
        "for members"
    );
    let read = entries(&mut holder, &ctx);
    assert!(read.is_err(), "the link holder read {read:?}");
    let messages = common::sent(&mut a);
    set(&mut a, &ctx, "later", "still private");
    for (_, data) in messages.iter().chain(common::sent(&mut a).iter()) {
        assert!(holder.open_message(&ctx, data).is_err());
    }
}

#[test]
fn a_second_join_on_a_used_invitation_is_refused_by_every_member() {
    let (mut a, ctx) = context(MemoryStore::default());
    let mut c = node(3);
    block_on(c.join(&a.invite(&ctx).unwrap())).unwrap();
    settle(&mut [&mut a, &mut c]);
    let link = a.invite(&ctx).unwrap();
    let mut b = node(2);
    block_on(b.join(&link)).unwrap();
    settle(&mut [&mut a, &mut b, &mut c]);
    set(&mut b, &ctx, "b", "joined");
    settle(&mut [&mut a, &mut b, &mut c]);
    rejections(&mut a);
    rejections(&mut b);
    rejections(&mut c);

    let mut d = node(4);
    let _ = block_on(d.join(&link));
    for _ in 0..3 {
        common::tick(&mut d);
        settle(&mut [&mut a, &mut b, &mut c, &mut d]);
    }
    assert!(entries(&mut d, &ctx).is_err(), "the second joiner reads");
    for member in [&mut a, &mut b, &mut c] {
        let refused = rejections(member);
        assert!(
            refused.iter().any(|r| r.contains("already used")),
            "{refused:?}"
        );
        assert_eq!(entries(member, &ctx).unwrap(), json!({"b": "joined"}));
        assert!(!member
            .members(&ctx)
            .unwrap()
            .iter()
            .any(|(k, _)| *k == d.public_key()));
    }
}

#[test]
fn an_expired_invitation_joined_late_is_refused_even_if_the_joiner_lies_about_the_time() {
    let (mut a, ctx) = context(MemoryStore::default());
    let expires_at = a.now() + 1_000_000_000;
    let link = a.invite_as(&ctx, Role::Member, expires_at).unwrap();
    // A second later for the members; the joiner's clock still says it is early, and it stamps
    // its certificate with that.
    a.advance_to(a.now() + 2_000_000_000);
    let mut late = node(2);
    assert!(late.now() < expires_at, "the joiner's clock lies");
    let _ = block_on(late.join(&link));
    for _ in 0..3 {
        common::tick(&mut late);
        settle(&mut [&mut a, &mut late]);
    }
    let refused = rejections(&mut a);
    assert!(refused.iter().any(|r| r.contains("expired")), "{refused:?}");
    assert!(entries(&mut late, &ctx).is_err(), "the late joiner reads");
    assert!(!a
        .members(&ctx)
        .unwrap()
        .iter()
        .any(|(k, _)| *k == late.public_key()));
}

#[test]
fn a_revoked_invitation_is_refused() {
    let (mut a, ctx) = context(MemoryStore::default());
    let mut c = node(3);
    block_on(c.join(&a.invite(&ctx).unwrap())).unwrap();
    settle(&mut [&mut a, &mut c]);
    let link = a.invite(&ctx).unwrap();
    block_on(a.revoke_invitation(&ctx, &link)).unwrap();
    settle(&mut [&mut a, &mut c]);
    // A is away: C, a plain member, hears the join and refuses it from the log it shares.
    let mut b = node(2);
    let _ = block_on(b.join(&link));
    for _ in 0..3 {
        common::tick(&mut b);
        settle(&mut [&mut c, &mut b]);
    }
    let refused = rejections(&mut c);
    assert!(refused.iter().any(|r| r.contains("revoked")), "{refused:?}");
    assert!(entries(&mut b, &ctx).is_err());
    // B gives up asking.
    assert!(b.is_joining(&ctx));
    block_on(b.leave(&ctx)).unwrap();
    assert!(!b.is_joining(&ctx));
    common::tick(&mut b);
    assert!(common::sent(&mut b).is_empty(), "B still asks");
    // Only admins revoke.
    let other = a.invite(&ctx).unwrap();
    assert_eq!(
        block_on(c.revoke_invitation(&ctx, &other))
            .unwrap_err()
            .kind(),
        "Unauthorized"
    );
}

#[test]
fn a_normal_join_gets_the_secret_from_a_member_and_converges() {
    let (mut a, ctx) = context(MemoryStore::default());
    set(&mut a, &ctx, "k", "before");
    let mut b = node(2);
    assert_eq!(block_on(b.join(&a.invite(&ctx).unwrap())).unwrap(), ctx);
    assert_eq!(entries(&mut b, &ctx), Err("NotSynced".into()));
    settle(&mut [&mut a, &mut b]);
    assert_eq!(entries(&mut b, &ctx).unwrap(), json!({"k": "before"}));
    set(&mut b, &ctx, "b", "writes");
    settle(&mut [&mut a, &mut b]);
    assert_eq!(position(&mut a, &ctx), position(&mut b, &ctx));
    assert!(a
        .members(&ctx)
        .unwrap()
        .contains(&(b.public_key(), Role::Member)));
    // The use is on the log, where every member sees it.
    let admitted = a.take_events().into_iter().chain(b.take_events()).any(|e| {
        matches!(&e, NodeEvent::Membership { op, counted: true, .. }
            if serde_json::to_value(op).unwrap()["op"] == "admit")
    });
    assert!(admitted);
}

/// The deltas among what `node` queued, opened as a member of `ctx` (`reader`) sees them.
fn deltas_sent(node: &mut TestNode, reader: &TestNode, ctx: &ContextId) -> usize {
    common::sent(node)
        .iter()
        .filter_map(|(_, data)| reader.open_message(ctx, data).ok())
        .filter(|m| matches!(m, WireMessage::Deltas(_)))
        .count()
}

#[test]
fn an_unsigned_or_non_member_sync_request_gets_no_history() {
    let (mut a, ctx) = context(MemoryStore::default());
    set(&mut a, &ctx, "k", "history");
    let mut b = node(2);
    block_on(b.join(&a.invite(&ctx).unwrap())).unwrap();
    settle(&mut [&mut a, &mut b]);
    // B's own request, as its node signs it; then A writes on, so B lacks something.
    common::announce(&mut b);
    let (topic, b_request) = common::sent(&mut b)
        .into_iter()
        .find(|(_, d)| matches!(b.open_message(&ctx, d), Ok(WireMessage::SyncRequest { .. })))
        .expect("B announces its heads");
    let Ok(WireMessage::SyncRequest { requester, .. }) = b.open_message(&ctx, &b_request) else {
        unreachable!()
    };
    set(&mut a, &ctx, "k2", "more");
    common::sent(&mut a);
    rejections(&mut a);
    let ask_for_everything = |key: &SecretKey, cert: &MemberCert| {
        let signature = key.sign(&WireMessage::sync_request_message(&ctx, &[], &None));
        let request = WireMessage::SyncRequest {
            context_id: ctx,
            heads: vec![],
            root_hash: None,
            requester: Box::new(cert.clone()),
            signature,
        };
        b.seal_for(&ctx, &request).unwrap()
    };

    // B's certificate, signed by another key: no history.
    let forged = ask_for_everything(&SecretKey::from_seed([77; 32]), &requester);
    block_on(a.handle_message(&topic, &forged));
    assert_eq!(
        deltas_sent(&mut a, &b, &ctx),
        0,
        "a forged request got history"
    );
    let refused = rejections(&mut a);
    assert!(
        refused.iter().any(|r| r.contains("signature")),
        "{refused:?}"
    );

    // A key redeemed from an invitation no member admitted, signing its own request, sealed
    // with the context's secret (leaked): no member, no history.
    let rogue = SecretKey::from_seed([66; 32]);
    let invitation = Invitation::decode(&a.invite(&ctx).unwrap()).unwrap();
    let rogue_cert = invitation.redeem(rogue.public(), a.now()).unwrap();
    block_on(a.handle_message(&topic, &ask_for_everything(&rogue, &rogue_cert)));
    assert_eq!(deltas_sent(&mut a, &b, &ctx), 0, "a non-member got history");
    let refused = rejections(&mut a);
    assert!(
        refused.iter().any(|r| r.contains("no member")),
        "{refused:?}"
    );

    // B's own request is answered, but only so often when it asks again and again.
    let answered: usize = (0..100)
        .map(|_| {
            block_on(a.handle_message(&topic, &b_request));
            deltas_sent(&mut a, &b, &ctx)
        })
        .sum();
    assert!(answered >= 1, "a member is answered");
    assert!(answered <= 20, "{answered} answers to 100 requests");
    assert!(rejections(&mut a).is_empty());
}
