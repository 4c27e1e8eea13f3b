//! An anchored context: a member must be on the anchor (what a chain records of the context) as
//! well as in the membership log, and this node runs calls only with the anchored app; a
//! mismatch is refused and reported. (The chain itself is read by the embedding layer; here the
//! anchor's view is set directly.)

mod common;

use common::{node as open, node_on, relay, TestNode};

use std::collections::BTreeSet;

use futures::executor::block_on;
use serde_json::json;
use tabnode_node::{AnchorView, NodeEvent, ANNOUNCE_NANOS};
use tabnode_store::MemoryStore;

fn settle(a: &mut TestNode, b: &mut TestNode) {
    for _ in 0..6 {
        relay(a, b);
        relay(b, a);
    }
}

#[test]
fn members_off_the_anchor_and_a_different_app_are_refused_and_reported() {
    let (mut a, mut b) = (open(1), open(2));
    let app = block_on(a.install_app(&common::guest("kv_store"))).unwrap();
    let ctx = block_on(a.create_context(app, json!({}))).unwrap();
    block_on(b.join(&a.invite(&ctx).unwrap())).unwrap();
    settle(&mut a, &mut b);

    // The chain lists A alone: B's write is refused by A, and reported.
    let only_a = AnchorView {
        members: BTreeSet::from([a.public_key()]),
        app_matches: true,
    };
    block_on(a.set_anchor(&ctx, Some(only_a))).unwrap();
    a.take_events();
    block_on(b.execute(&ctx, "set", json!({"key": "k", "value": "v"}))).unwrap();
    settle(&mut a, &mut b);
    let events = a.take_events();
    assert!(events.iter().any(|e| matches!(e, NodeEvent::AnchorMismatch { reason, .. } if reason.contains("on its anchor"))));
    assert!(events
        .iter()
        .any(|e| matches!(e, NodeEvent::SyncRejected { .. })));
    let got = block_on(a.execute(&ctx, "get", json!({"key": "k"}))).unwrap();
    assert_eq!(got.output, json!(null));

    // Once the chain lists B too, anti-entropy brings B's write.
    let both = AnchorView {
        members: BTreeSet::from([a.public_key(), b.public_key()]),
        app_matches: true,
    };
    block_on(a.set_anchor(&ctx, Some(both))).unwrap();
    for node in [&mut a, &mut b] {
        node.advance_to(node.now() + ANNOUNCE_NANOS);
        common::tick(node);
    }
    settle(&mut a, &mut b);
    let got = block_on(a.execute(&ctx, "get", json!({"key": "k"}))).unwrap();
    assert_eq!(got.output, json!("v"));

    // An app that is not the anchored one does not run here.
    let wrong_app = AnchorView {
        members: BTreeSet::from([a.public_key(), b.public_key()]),
        app_matches: false,
    };
    block_on(a.set_anchor(&ctx, Some(wrong_app))).unwrap();
    assert!(a
        .take_events()
        .iter()
        .any(|e| matches!(e, NodeEvent::AnchorMismatch { .. })));
    let err = block_on(a.execute(&ctx, "get", json!({"key": "k"}))).unwrap_err();
    assert!(err.to_string().contains("anchor records"), "{err}");
    // Without an anchor, the membership log alone decides.
    block_on(a.set_anchor(&ctx, None)).unwrap();
    assert!(block_on(a.execute(&ctx, "get", json!({"key": "k"}))).is_ok());
}

#[test]
fn the_anchor_view_is_kept_when_the_node_opens_again() {
    let store = MemoryStore::default();
    let mut a = node_on(store.clone(), 1);
    let app = block_on(a.install_app(&common::guest("kv_store"))).unwrap();
    let ctx = block_on(a.create_context(app, json!({}))).unwrap();
    // The chain lists someone else: this node may not run calls.
    let others = AnchorView {
        members: BTreeSet::from([open(2).public_key()]),
        app_matches: true,
    };
    block_on(a.set_anchor(&ctx, Some(others))).unwrap();
    assert!(block_on(a.execute(&ctx, "get", json!({"key": "k"}))).is_err());
    drop(a);
    // Reopened, before any chain has answered: the last view still holds (it used to be none,
    // so a node whose chain could not be reached ran as if unanchored).
    let mut a = node_on(store.clone(), 1);
    let err = block_on(a.execute(&ctx, "get", json!({"key": "k"}))).unwrap_err();
    assert!(err.to_string().contains("on its anchor"), "{err}");
    // A view cleared (the chain says the context is not anchored) is cleared for good too.
    block_on(a.set_anchor(&ctx, None)).unwrap();
    drop(a);
    let mut a = node_on(store, 1);
    assert!(block_on(a.execute(&ctx, "get", json!({"key": "k"}))).is_ok());
}
