//! Revocation that cascades from the root: a member shows the root that granted its key; that
//! root's signed revocation, carried by any member, voids everything the key signs afterwards on
//! every node (what it signed before stays), and the key's node reads nothing new. A revocation
//! from another root, or one whose signature does not verify, changes nothing.

mod common;

use common::{local_grant, local_revocation, node as open, rejections, settle, TestNode};

use futures::executor::block_on;
use serde_json::{json, Value};
use tabnode_identity::grant::{Proof, Root, SignedGrant};
use tabnode_types::{ContextId, SecretKey};

fn entries(node: &mut TestNode, ctx: &ContextId) -> Value {
    block_on(node.execute(ctx, "entries", json!({})))
        .unwrap()
        .output
}

/// A's kv-store context, with B and C joined and caught up.
fn three_members() -> (TestNode, TestNode, TestNode, ContextId) {
    let (mut a, mut b, mut c) = (open(1), open(2), open(3));
    let app = block_on(a.install_app(&common::guest("kv_store"))).unwrap();
    let ctx = block_on(a.create_context(app, json!({}))).unwrap();
    block_on(b.join(&a.invite(&ctx).unwrap())).unwrap();
    block_on(c.join(&a.invite(&ctx).unwrap())).unwrap();
    settle(&mut [&mut a, &mut b, &mut c]);
    (a, b, c, ctx)
}

#[test]
fn a_roots_revocation_voids_what_its_key_signs_afterwards_on_every_node() {
    let root = SecretKey::from_seed([50; 32]);
    let (mut a, mut b, mut c, ctx) = three_members();

    // B shows its root (the grant has long expired: the log judges signatures, not clocks).
    let err = block_on(b.bind_root(&ctx, local_grant(c.public_key(), &root))).unwrap_err();
    assert_eq!(err.kind(), "Unauthorized", "someone else's grant: {err}");
    block_on(b.bind_root(&ctx, local_grant(b.public_key(), &root))).unwrap();
    block_on(b.execute(&ctx, "set", json!({"key": "k1", "value": "before"}))).unwrap();
    settle(&mut [&mut a, &mut b, &mut c]);

    // Another root's revocation, or a forged one, changes nothing.
    let other = SecretKey::from_seed([51; 32]);
    let err = block_on(c.revoke(&ctx, local_revocation(b.public_key(), &other))).unwrap_err();
    assert_eq!(err.kind(), "BadArgs", "{err}");
    let mut forged = local_revocation(b.public_key(), &other);
    forged.root = Root::Local {
        public_key: root.public(),
    };
    let err = block_on(c.revoke(&ctx, forged)).unwrap_err();
    assert_eq!(err.kind(), "Unauthorized", "{err}");

    // C, a plain member, carries the root's revocation while B writes on, not yet told.
    block_on(c.revoke(&ctx, local_revocation(b.public_key(), &root))).unwrap();
    block_on(b.execute(&ctx, "set", json!({"key": "k2", "value": "after"}))).unwrap();
    settle(&mut [&mut a, &mut b, &mut c]);
    for node in [&mut a, &mut b, &mut c] {
        assert_eq!(entries(node, &ctx), json!({"k1": "before"}));
        assert!(block_on(node.replay(&ctx)).unwrap().matches);
    }
    let err = block_on(b.execute(&ctx, "set", json!({"key": "k3", "value": "x"}))).unwrap_err();
    assert!(err.to_string().contains("removed"), "{err}");
    assert!(!a
        .members(&ctx)
        .unwrap()
        .iter()
        .any(|(k, _)| *k == b.public_key()));

    // The context got a new secret: B, still listening, reads nothing new.
    block_on(a.execute(&ctx, "set", json!({"key": "k4", "value": "new"}))).unwrap();
    settle(&mut [&mut a, &mut b, &mut c]);
    assert_eq!(entries(&mut c, &ctx), json!({"k1": "before", "k4": "new"}));
    assert_eq!(entries(&mut b, &ctx), json!({"k1": "before"}));
}

/// A node that signed in shows its root in every context it holds, and in those it creates or
/// joins later; the root's revocation then reaches all of them in one call.
#[test]
fn a_signed_in_node_is_bound_everywhere_and_revoked_everywhere() {
    let root = SecretKey::from_seed([52; 32]);
    let (mut a, mut b) = (open(1), open(2));
    let app = block_on(a.install_app(&common::guest("kv_store"))).unwrap();
    let first = block_on(a.create_context(app, json!({}))).unwrap();
    block_on(b.join(&a.invite(&first).unwrap())).unwrap();
    settle(&mut [&mut a, &mut b]);
    assert_eq!(
        block_on(b.use_root_grant(local_grant(a.public_key(), &root)))
            .unwrap_err()
            .kind(),
        "BadArgs",
        "another node's grant"
    );
    block_on(b.use_root_grant(local_grant(b.public_key(), &root))).unwrap();
    // A context B creates after signing in, and one it joins.
    let own = block_on(b.create_context(app, json!({}))).unwrap();
    let second = block_on(a.create_context(app, json!({}))).unwrap();
    block_on(b.join(&a.invite(&second).unwrap())).unwrap();
    settle(&mut [&mut a, &mut b]);

    let revoked = block_on(a.revoke_everywhere(local_revocation(b.public_key(), &root))).unwrap();
    let mut expected = vec![first, second];
    expected.sort();
    assert_eq!(revoked, expected, "A holds these two of B's contexts");
    settle(&mut [&mut a, &mut b]);
    for ctx in [first, second] {
        let err = block_on(b.execute(&ctx, "set", json!({"key": "k", "value": "v"}))).unwrap_err();
        assert!(err.to_string().contains("removed"), "{err}");
    }
    assert!(
        block_on(b.execute(&own, "set", json!({"key": "k", "value": "v"}))).is_ok(),
        "B alone holds this one"
    );
}

/// A member that skips `revoke`'s check and signs a delta carrying a forged revocation (another
/// root's signature, claiming the bound root) removes nobody: every node judges the revocation
/// inside the delta, the revoked key's writes go on standing, and the nodes agree.
#[test]
fn a_forged_revocation_inside_a_delta_removes_nobody() {
    use tabnode_node::{DeltaBody, MemberOp, WireMessage};
    let root = SecretKey::from_seed([53; 32]);
    let (mut a, mut b, mut c, ctx) = three_members();
    block_on(b.bind_root(&ctx, local_grant(b.public_key(), &root))).unwrap();
    settle(&mut [&mut a, &mut b, &mut c]);

    // M, an admitted member whose key the test holds, carries the forgery.
    let m_key = SecretKey::from_seed([54; 32]);
    let invitation = a.invite(&ctx).unwrap();
    let m_cert = common::admit(&mut a, &invitation, &m_key);
    settle(&mut [&mut a, &mut b, &mut c]);
    let other = SecretKey::from_seed([55; 32]);
    let mut forged = local_revocation(b.public_key(), &other);
    forged.root = Root::Local {
        public_key: root.public(),
    };
    let heads = block_on(a.checkpoint(&ctx)).unwrap().heads;
    // A second passes (nodes read no clock: the test gives it): the forgery is stamped later
    // than its parents.
    a.advance_to(a.now() + 1_000_000_000);
    let now = a.now();
    let delta = DeltaBody {
        context_id: ctx,
        parents: heads,
        author: m_key.public(),
        timestamp: now,
        artifact: Vec::new(),
        root_hash: tabnode_types::Hash([0; 32]),
        events: Vec::new(),
        genesis: None,
        author_cert: m_cert,
        op: Some(MemberOp::Revoke {
            key: b.public_key(),
            root: root.public(),
            revocation: Box::new(forged),
            shares: Vec::new(),
        }),
    }
    .sign(&m_key);
    let sealed = a.seal_for(&ctx, &WireMessage::Deltas(vec![delta])).unwrap();
    for node in [&mut a, &mut b, &mut c] {
        block_on(node.handle_message(&tabnode_node::context_topic(&ctx), &sealed));
        let refused = common::rejections(node);
        assert!(
            refused
                .iter()
                .any(|r| r.contains("a root statement that does not verify")),
            "{refused:?}"
        );
    }
    settle(&mut [&mut a, &mut b, &mut c]);

    block_on(b.execute(&ctx, "set", json!({"key": "k", "value": "still a member"}))).unwrap();
    settle(&mut [&mut a, &mut b, &mut c]);
    let revoked = b.public_key();
    for node in [&mut a, &mut b, &mut c] {
        assert!(node
            .members(&ctx)
            .unwrap()
            .iter()
            .any(|(k, _)| *k == revoked));
        assert_eq!(entries(node, &ctx), json!({"k": "still a member"}));
        assert!(block_on(node.replay(&ctx)).unwrap().matches);
    }
}

/// `client_key` granted by a NEAR account's key (`account`) through its wallet, NEP-413, for
/// the site `recipient`.
fn near_grant(
    client_key: tabnode_types::PublicKey,
    account: &SecretKey,
    recipient: &str,
) -> SignedGrant {
    let grant = common::admin_grant(client_key);
    let signature = grant.payload(recipient, None).unwrap().sign(account);
    SignedGrant {
        grant,
        root: Root::Near {
            account_id: "alice.near".into(),
            public_key: account.public(),
        },
        proof: Proof::Nep413 {
            recipient: recipient.into(),
            callback_url: None,
            signature,
        },
    }
}

#[test]
fn a_nep413_grant_signed_for_another_site_binds_nothing_where_the_site_is_checked() {
    let account = SecretKey::from_seed([60; 32]);
    let site = "https://board.example";
    let (mut a, mut b) = (open(1), open(2));
    a.set_nep413_recipients(Some([site.to_owned()].into()));
    let app = block_on(a.install_app(&common::guest("kv_store"))).unwrap();
    let ctx = block_on(a.create_context(app, json!({}))).unwrap();
    block_on(b.join(&a.invite(&ctx).unwrap())).unwrap();
    settle(&mut [&mut a, &mut b]);
    rejections(&mut a);

    // The signature verifies (the wallet did sign it), but for a site that is not A's.
    let foreign = near_grant(b.public_key(), &account, "https://evil.example");
    assert!(foreign.verify_signature().is_ok());
    block_on(b.bind_root(&ctx, foreign)).unwrap();
    settle(&mut [&mut a, &mut b]);
    let refused = rejections(&mut a);
    assert!(
        refused
            .iter()
            .any(|r| r.contains("for another site (https://evil.example)")),
        "{refused:?}"
    );

    // The same account's grant for A's site is taken.
    let (mut c, mut d) = (open(3), open(4));
    c.set_nep413_recipients(Some([site.to_owned()].into()));
    let ctx = block_on(c.create_context(app, json!({}))).unwrap();
    block_on(d.join(&c.invite(&ctx).unwrap())).unwrap();
    settle(&mut [&mut c, &mut d]);
    rejections(&mut c);
    block_on(d.bind_root(&ctx, near_grant(d.public_key(), &account, site))).unwrap();
    block_on(d.execute(&ctx, "set", json!({"key": "k", "value": "v"}))).unwrap();
    settle(&mut [&mut c, &mut d]);
    assert_eq!(rejections(&mut c), Vec::<String>::new());
    assert_eq!(entries(&mut c, &ctx), json!({"k": "v"}));
}
