//! User and frozen storage between members (the user-notes guest): a member's own slot, which
//! every member merges only with its owner's signature (calimero-storage 0.10 checks it; the
//! executing node signs, as merod 0.10's `sign_user_actions` does), and frozen entries.

mod common;

use common::{refusals, settle, stored_deltas, stored_node_key, two_members_of, TestNode};

use futures::executor::block_on;
use serde_json::{json, Value};
use tabnode_node::WireMessage;
use tabnode_store::MemoryStore;
use tabnode_types::{ContextId, DeltaId, Hash};

fn call(node: &mut TestNode, ctx: &ContextId, method: &str, args: Value) -> Value {
    block_on(node.execute(ctx, method, args))
        .unwrap_or_else(|e| panic!("{method}: {e}"))
        .output
}

fn note_of(node: &mut TestNode, ctx: &ContextId, owner: &TestNode) -> Value {
    let owner = owner.public_key().to_string();
    call(node, ctx, "note_of", json!({ "owner": owner }))
}

fn position(node: &mut TestNode, ctx: &ContextId) -> (Vec<DeltaId>, Option<Hash>) {
    let cp = block_on(node.checkpoint(ctx)).unwrap();
    (cp.heads, cp.root_hash)
}

/// A (on `store`) creates a user-notes context and B joins it; both settled.
fn two_members(store: MemoryStore) -> (TestNode, TestNode, ContextId) {
    two_members_of("user_notes", store)
}

#[test]
fn each_members_note_and_the_frozen_notes_reach_every_member() {
    let (mut a, mut b, ctx) = two_members(MemoryStore::default());
    call(&mut a, &ctx, "set_mine", json!({"note": "a's note"}));
    let hash = call(&mut a, &ctx, "freeze", json!({"note": "pinned"}));
    settle(&mut [&mut a, &mut b]);
    assert_eq!(
        refusals(&mut b),
        vec![],
        "B merges A's user and frozen writes"
    );
    assert_eq!(note_of(&mut b, &ctx, &a), json!("a's note"));
    assert_eq!(
        call(&mut b, &ctx, "frozen", json!({ "hash": hash })),
        json!("pinned")
    );

    call(&mut b, &ctx, "set_mine", json!({"note": "b's note"}));
    call(&mut a, &ctx, "set_mine", json!({"note": "a's second"}));
    settle(&mut [&mut a, &mut b]);
    assert_eq!(refusals(&mut a), vec![]);
    assert_eq!(refusals(&mut b), vec![]);
    assert_eq!(note_of(&mut a, &ctx, &b), json!("b's note"));
    assert_eq!(note_of(&mut b, &ctx, &a), json!("a's second"));
    assert_eq!(call(&mut b, &ctx, "mine", json!({})), json!("b's note"));
    assert_eq!(position(&mut a, &ctx), position(&mut b, &ctx));
    // Replay merges every delta through the guest again, the user actions' signatures checked.
    for n in [&mut a, &mut b] {
        let replay = block_on(n.replay(&ctx)).unwrap();
        assert!(replay.matches, "{replay:?}");
    }
}

#[test]
fn an_altered_user_action_is_refused_and_changes_nothing() {
    let store = MemoryStore::default();
    let (mut a, mut b, ctx) = two_members(store.clone());
    call(&mut a, &ctx, "set_mine", json!({"note": "original"}));
    let genuine = common::sent(&mut a);
    // A's delta with its note changed after the call: signed again by A's own node key (a
    // valid delta), but the user action's signature is over the original.
    let mut altered = stored_deltas(&store, &ctx).pop().unwrap();
    let artifact = &mut altered.body.artifact;
    let at = artifact
        .windows(8)
        .position(|w| w == b"original")
        .expect("the note is in the artifact");
    artifact[at..at + 8].copy_from_slice(b"forgery!");
    let altered = altered.body.sign(&stored_node_key(&store));
    let before = position(&mut b, &ctx);
    let sealed = b
        .seal_for(&ctx, &WireMessage::Deltas(vec![altered]))
        .unwrap();
    block_on(b.handle_message(&tabnode_node::context_topic(&ctx), &sealed));
    let refused = refusals(&mut b);
    // The guest's merge fails on the signature (calimero-storage panics: a trap).
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0].0, "ExecutionFailed", "{refused:?}");
    assert_eq!(position(&mut b, &ctx), before, "nothing applied");
    assert_eq!(note_of(&mut b, &ctx, &a), Value::Null);

    // The genuine delta still merges.
    common::deliver(&genuine, &mut b);
    assert_eq!(refusals(&mut b), vec![]);
    assert_eq!(note_of(&mut b, &ctx, &a), json!("original"));
    assert_eq!(position(&mut a, &ctx), position(&mut b, &ctx));
}
