//! Calls made with a call id run at most once: a retry (a tab whose host went while the call was
//! in flight) gets the first answer back and applies nothing twice, also after the node
//! reopens; a call whose transaction failed left no answer, so its retry runs.

mod common;

use common::store::CountingStore;
use futures::executor::block_on;
use serde_json::json;
use tabnode_node::{FixedEnv, Node, NodeError, KEEP_ANSWERS_NANOS};
use tabnode_store::Namespace;
use tabnode_types::ContextId;

type TestNode = Node<CountingStore, FixedEnv>;

fn open(store: &CountingStore) -> TestNode {
    common::opened(store.clone(), 1)
}

fn with_context() -> (CountingStore, TestNode, ContextId) {
    let store = CountingStore::default();
    let mut node = open(&store);
    let app = block_on(node.install_app(&common::guest("kv_store"))).unwrap();
    let ctx = block_on(node.create_context(app, json!({}))).unwrap();
    (store, node, ctx)
}

fn set_once(
    node: &mut TestNode,
    ctx: &ContextId,
    value: &str,
    call_id: &str,
) -> Result<tabnode_node::ExecuteResult, NodeError> {
    block_on(node.execute_once(ctx, "set", json!({"key": "k", "value": value}), call_id))
}

fn deltas(store: &CountingStore, ctx: &ContextId) -> usize {
    common::stored_deltas(store, ctx).len()
}

#[test]
fn a_retried_call_gets_its_first_answer_and_applies_nothing_twice() {
    let (store, mut node, ctx) = with_context();
    let first = set_once(&mut node, &ctx, "v", "call-1").unwrap();
    assert!(!first.repeated);
    assert!(first.delta_id.is_some());
    node.take_outgoing();
    node.take_events();
    let before = deltas(&store, &ctx);

    let again = set_once(&mut node, &ctx, "v", "call-1").unwrap();
    assert!(again.repeated, "the stored answer");
    assert_eq!(
        (
            &again.output,
            &again.events,
            again.delta_id,
            again.root_hash
        ),
        (
            &first.output,
            &first.events,
            first.delta_id,
            first.root_hash
        )
    );
    assert_eq!(deltas(&store, &ctx), before, "no second delta");
    assert!(node.take_outgoing().is_empty(), "nothing sent again");
    assert!(node.take_events().is_empty(), "no second event");

    // Reopened from its store (a new host tab), the node still knows the call.
    drop(node);
    let mut node = open(&store);
    let after_reopen = set_once(&mut node, &ctx, "v", "call-1").unwrap();
    assert!(after_reopen.repeated);
    assert_eq!(after_reopen.delta_id, first.delta_id);
    assert_eq!(deltas(&store, &ctx), before);

    // Another id is another call.
    let other = set_once(&mut node, &ctx, "v", "call-2").unwrap();
    assert!(!other.repeated);
    assert_eq!(deltas(&store, &ctx), before + 1);
}

#[test]
fn an_id_used_for_another_call_or_out_of_bounds_is_refused_and_changes_nothing() {
    let (store, mut node, ctx) = with_context();
    set_once(&mut node, &ctx, "v", "call-1").unwrap();
    let before = deltas(&store, &ctx);
    let err = set_once(&mut node, &ctx, "other value", "call-1").unwrap_err();
    assert!(matches!(err, NodeError::BadArgs(_)), "{err}");
    assert!(err.to_string().contains("used for another call"), "{err}");
    for bad in [
        String::new(),
        "x".repeat(tabnode_node::MAX_CALL_ID_BYTES + 1),
    ] {
        let err = set_once(&mut node, &ctx, "v", &bad).unwrap_err();
        assert!(matches!(err, NodeError::BadArgs(_)), "{err}");
    }
    assert_eq!(deltas(&store, &ctx), before);
    let entries = block_on(node.execute(&ctx, "get", json!({"key": "k"}))).unwrap();
    assert_eq!(entries.output, json!("v"));
}

#[test]
fn a_call_whose_transaction_failed_keeps_no_answer_and_its_retry_runs() {
    let (store, mut node, ctx) = with_context();
    store.fail_next_commit_of(2);
    assert!(set_once(&mut node, &ctx, "v", "call-1").is_err());
    let retried = set_once(&mut node, &ctx, "v", "call-1").unwrap();
    assert!(
        !retried.repeated,
        "the first attempt was not applied, so this one runs"
    );
    assert!(retried.delta_id.is_some());
}

#[test]
fn reads_keep_no_answer_and_answers_are_dropped_after_an_hour() {
    let (store, mut node, ctx) = with_context();
    for _ in 0..2 {
        let read = block_on(node.execute_once(&ctx, "get", json!({"key": "k"}), "read-1")).unwrap();
        assert!(!read.repeated, "a read runs again");
    }
    set_once(&mut node, &ctx, "v", "call-1").unwrap();
    let answers = || {
        block_on(tabnode_store::Store::scan_prefix(
            &store,
            Namespace::Meta,
            b"call:",
        ))
        .unwrap()
        .len()
    };
    assert_eq!(answers(), 1);
    node.advance_to(node.now() + KEEP_ANSWERS_NANOS + 1);
    // Pruning comes with the next call that has an id.
    set_once(&mut node, &ctx, "w", "call-2").unwrap();
    assert_eq!(answers(), 1, "call-1's answer is gone, call-2's is kept");
    let rerun = set_once(&mut node, &ctx, "v", "call-1").unwrap();
    assert!(!rerun.repeated, "an hour later the id is forgotten");
}
