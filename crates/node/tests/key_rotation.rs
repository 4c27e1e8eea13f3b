//! Key rotation in one step: a node whose key is bound to a root moves to a new key the root
//! granted as it revoked the old one. In every context the new key takes the old one's place
//! and role; members accept its writes; the old key signs nothing more; the node's audit trail
//! verifies across both keys; a restart keeps the new key. A rotation by a key not bound to
//! that root, or with statements for other keys, is refused and changes nothing.

mod common;

use common::{local_grant, local_revocation, node as open, sent, settle, TestNode};

use futures::executor::block_on;
use serde_json::{json, Value};
use tabnode_node::{NodeEvent, Role};
use tabnode_types::{ContextId, PublicKey, SecretKey};

fn entries(node: &mut TestNode, ctx: &ContextId) -> Value {
    block_on(node.execute(ctx, "entries", json!({})))
        .unwrap()
        .output
}

fn role(node: &TestNode, ctx: &ContextId, key: &PublicKey) -> Option<Role> {
    let members = node.members(ctx).unwrap();
    members.into_iter().find(|(k, _)| k == key).map(|(_, r)| r)
}

#[test]
fn a_rotated_key_takes_the_old_keys_place_in_every_context() {
    let root = SecretKey::from_seed([50; 32]);
    let (mut a, mut b) = (open(1), open(2));
    let app = block_on(a.install_app(&common::guest("kv_store"))).unwrap();
    let ctx = block_on(a.create_context(app, json!({}))).unwrap();
    let other = block_on(a.create_context(app, json!({}))).unwrap();
    block_on(b.join(&a.invite(&ctx).unwrap())).unwrap();
    settle(&mut [&mut a, &mut b]);
    block_on(a.use_root_grant(local_grant(a.public_key(), &root))).unwrap();
    block_on(a.execute(&ctx, "set", json!({"key": "k1", "value": "old key"}))).unwrap();
    settle(&mut [&mut a, &mut b]);
    let old = a.public_key();

    // Statements for other keys, or from another root, are refused and change nothing.
    let new = a.prepare_rotation();
    let stranger = SecretKey::from_seed([51; 32]);
    let err = block_on(a.rotate_key(
        local_grant(new, &root),
        local_revocation(b.public_key(), &root),
    ))
    .unwrap_err();
    assert_eq!(err.kind(), "Unauthorized", "{err}");
    let new = a.prepare_rotation();
    let err = block_on(a.rotate_key(
        local_grant(new, &stranger),
        local_revocation(old, &stranger),
    ))
    .unwrap_err();
    assert_eq!(
        err.kind(),
        "Unauthorized",
        "not the root A is bound to: {err}"
    );
    assert_eq!(a.public_key(), old);
    assert!(sent(&mut a).is_empty());

    let new = a.prepare_rotation();
    let rotated =
        block_on(a.rotate_key(local_grant(new, &root), local_revocation(old, &root))).unwrap();
    assert_eq!(rotated.len(), 2, "both contexts");
    assert_eq!(a.public_key(), new);
    b.take_events();
    settle(&mut [&mut a, &mut b]);
    assert!(b.take_events().iter().any(|e| matches!(
        e,
        NodeEvent::Membership {
            op: tabnode_node::MemberOp::Rotate { .. },
            counted: true,
            ..
        }
    )));
    // The new key is an admin where the old one was; the old key is gone.
    assert_eq!(role(&b, &ctx, &new), Some(Role::Admin));
    assert_eq!(role(&b, &ctx, &old), None);
    // B, whom the old key invited, keeps its place: it holds it through the new key now.
    assert_eq!(role(&b, &ctx, &b.public_key()), Some(Role::Member));
    block_on(b.execute(&ctx, "set", json!({"key": "b", "value": "still a member"}))).unwrap();
    settle(&mut [&mut a, &mut b]);
    assert_eq!(role(&a, &other, &new), Some(Role::Admin));

    // A writes and acts as admin with the new key; B accepts it.
    block_on(a.execute(&ctx, "set", json!({"key": "k2", "value": "new key"}))).unwrap();
    block_on(a.set_role(&ctx, b.public_key(), Role::Reader)).unwrap();
    settle(&mut [&mut a, &mut b]);
    let both = json!({"b": "still a member", "k1": "old key", "k2": "new key"});
    assert_eq!(entries(&mut b, &ctx), both);
    assert_eq!(role(&b, &ctx, &b.public_key()), Some(Role::Reader));
    for node in [&mut a, &mut b] {
        assert!(block_on(node.replay(&ctx)).unwrap().matches);
    }
    let audit = block_on(a.verify_audit(&ctx)).unwrap();
    assert!(
        audit.ok,
        "the audit trail verifies across both keys: {audit:?}"
    );
    assert_eq!(
        block_on(a.checkpoint(&ctx)).unwrap().heads,
        block_on(b.checkpoint(&ctx)).unwrap().heads
    );
}

#[test]
fn the_new_key_survives_a_restart() {
    let root = SecretKey::from_seed([50; 32]);
    let store = tabnode_store::MemoryStore::default();
    let reopen = |store: &tabnode_store::MemoryStore| common::opened(store.clone(), 7);
    let mut a = reopen(&store);
    let app = block_on(a.install_app(&common::guest("kv_store"))).unwrap();
    let ctx = block_on(a.create_context(app, json!({}))).unwrap();
    block_on(a.use_root_grant(local_grant(a.public_key(), &root))).unwrap();
    let old = a.public_key();
    let new = a.prepare_rotation();
    block_on(a.rotate_key(local_grant(new, &root), local_revocation(old, &root))).unwrap();
    drop(a);
    let mut a = reopen(&store);
    assert_eq!(a.public_key(), new);
    block_on(a.execute(&ctx, "set", json!({"key": "k", "value": "v"}))).unwrap();
    assert!(block_on(a.verify_audit(&ctx)).unwrap().ok);
    assert!(block_on(a.replay(&ctx)).unwrap().matches);
}

#[test]
fn a_context_this_key_was_removed_from_does_not_stop_a_rotation() {
    let root = SecretKey::from_seed([50; 32]);
    let (mut a, mut b) = (open(1), open(2));
    let app = block_on(a.install_app(&common::guest("kv_store"))).unwrap();
    let ctx = block_on(a.create_context(app, json!({}))).unwrap();
    block_on(b.join(&a.invite(&ctx).unwrap())).unwrap();
    settle(&mut [&mut a, &mut b]);
    block_on(b.use_root_grant(local_grant(b.public_key(), &root))).unwrap();
    settle(&mut [&mut a, &mut b]);
    block_on(a.remove_member(&ctx, b.public_key())).unwrap();
    settle(&mut [&mut a, &mut b]);
    let own = block_on(b.create_context(app, json!({}))).unwrap();
    block_on(b.use_root_grant(local_grant(b.public_key(), &root))).unwrap();
    let old = b.public_key();
    let new = b.prepare_rotation();
    let rotated = block_on(b.rotate_key(local_grant(new, &root), local_revocation(old, &root)))
        .expect("the context B was removed from is skipped");
    assert_eq!(rotated, vec![own]);
    assert_eq!(role(&b, &own, &new), Some(Role::Admin));
}
