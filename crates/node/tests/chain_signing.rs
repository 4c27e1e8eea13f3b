//! Signing context-config requests for a chain (`Node::sign_context_request`): the context key
//! (kept only by the creator's node, and across a restart) signs `Add` naming this node, this
//! node's key signs member and app changes while it is an admin, and nothing else is signed.

mod common;

use common::{guest, node as open, settle};

use futures::executor::block_on;
use serde_json::{json, Value};
use tabnode_node::{ChainSigner, Node, NodeError, Role};
use tabnode_runtime::{Limits, Runtime};
use tabnode_store::MemoryStore;
use tabnode_types::{verify_signature, ContextId, PublicKey};

/// Calimero's request JSON, as tabnode-chain writes it.
fn request(signer: &impl ToString, ctx: &ContextId, scope: &str, params: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "signerId": signer.to_string(),
        "nonce": 0,
        "scope": "Context",
        "params": {"contextId": ctx.to_string(), "scope": scope, "params": params},
    }))
    .unwrap()
}

fn add(ctx: &ContextId, author: &PublicKey) -> Vec<u8> {
    request(
        ctx,
        ctx,
        "Add",
        json!({"author_id": author.to_string(), "application": {"id": "x"}}),
    )
}

fn kind(result: Result<(PublicKey, tabnode_types::Signature), NodeError>) -> &'static str {
    result.unwrap_err().kind()
}

#[test]
fn the_creator_signs_add_with_the_context_key_and_changes_with_its_own() {
    let store = MemoryStore::default();
    let mut a = common::clocked(
        block_on(Node::open(
            store.clone(),
            tabnode_node::FixedEnv::new(1),
            Runtime::new(Limits::default()),
        ))
        .unwrap(),
    );
    let mut b = open(2);
    let app = block_on(a.install_app(&guest("kv_store"))).unwrap();
    let ctx = block_on(a.create_context(app, json!({}))).unwrap();
    block_on(b.join(&a.invite(&ctx).unwrap())).unwrap();
    settle(&mut [&mut a, &mut b]);
    let (ka, kb) = (a.public_key(), b.public_key());

    // Add: signed by the context key, verifiable with the context id as public key.
    let payload = add(&ctx, &ka);
    let (signer, signature) =
        block_on(a.sign_context_request(&ctx, &payload, ChainSigner::ContextKey)).unwrap();
    assert_eq!(signer, PublicKey(ctx.0));
    verify_signature(&signer, &payload, &signature).unwrap();
    // The context key vouches only for this node.
    assert_eq!(
        kind(block_on(a.sign_context_request(
            &ctx,
            &add(&ctx, &kb),
            ChainSigner::ContextKey
        ))),
        "BadChainRequest"
    );

    // Member changes: signed by A's own key.
    let members = request(
        &ka,
        &ctx,
        "AddMembers",
        json!({"members": [kb.to_string()]}),
    );
    let (signer, signature) =
        block_on(a.sign_context_request(&ctx, &members, ChainSigner::Member)).unwrap();
    assert_eq!(signer, ka);
    verify_signature(&ka, &members, &signature).unwrap();
    // A request naming another signer, or about another context, is refused.
    let as_b = request(&kb, &ctx, "AddMembers", json!({"members": []}));
    assert_eq!(
        kind(block_on(a.sign_context_request(
            &ctx,
            &as_b,
            ChainSigner::Member
        ))),
        "BadChainRequest"
    );
    let other = ContextId([3; 32]);
    assert_eq!(
        kind(block_on(a.sign_context_request(
            &other,
            &members,
            ChainSigner::Member
        ))),
        "UnknownContext"
    );

    // B is a member, not an admin: it signs nothing for the chain.
    let by_b = request(
        &kb,
        &ctx,
        "RemoveMembers",
        json!({"members": [ka.to_string()]}),
    );
    let err = block_on(b.sign_context_request(&ctx, &by_b, ChainSigner::Member)).unwrap_err();
    assert_eq!(err.kind(), "Unauthorized");
    assert!(err.to_string().contains("not an admin"), "{err}");
    // Made an admin, B signs member changes, but has no context key to add the context with.
    block_on(a.set_role(&ctx, kb, Role::Admin)).unwrap();
    settle(&mut [&mut a, &mut b]);
    block_on(b.sign_context_request(&ctx, &by_b, ChainSigner::Member)).unwrap();
    let err = block_on(b.sign_context_request(&ctx, &add(&ctx, &kb), ChainSigner::ContextKey))
        .unwrap_err();
    assert_eq!(err.kind(), "Unauthorized");
    assert!(err.to_string().contains("does not hold the key"), "{err}");

    // The context key is kept: A reopened still signs Add.
    drop(a);
    let a = common::clocked(
        block_on(Node::open(
            store,
            tabnode_node::FixedEnv::new(1),
            Runtime::new(Limits::default()),
        ))
        .unwrap(),
    );
    let (signer, signature) =
        block_on(a.sign_context_request(&ctx, &payload, ChainSigner::ContextKey)).unwrap();
    verify_signature(&signer, &payload, &signature).unwrap();
}

#[test]
fn a_removed_admin_signs_nothing() {
    let (mut a, mut b) = (open(1), open(2));
    let app = block_on(a.install_app(&guest("kv_store"))).unwrap();
    let ctx = block_on(a.create_context(app, json!({}))).unwrap();
    block_on(b.join(&a.invite_as(&ctx, Role::Admin, u64::MAX).unwrap())).unwrap();
    settle(&mut [&mut a, &mut b]);
    let kb = b.public_key();
    let payload = request(&kb, &ctx, "AddMembers", json!({"members": []}));
    block_on(b.sign_context_request(&ctx, &payload, ChainSigner::Member)).unwrap();
    block_on(a.remove_member(&ctx, kb)).unwrap();
    settle(&mut [&mut a, &mut b]);
    assert_eq!(
        kind(block_on(b.sign_context_request(
            &ctx,
            &payload,
            ChainSigner::Member
        ))),
        "Unauthorized"
    );
}
