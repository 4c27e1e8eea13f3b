//! Audit records of read-only calls may wait and go to the store together
//! (`Node::defer_read_audits`, as the page runs): each is chained and shown at once, goes to the
//! store with the next write, when the most are waiting, or when the driver writes them; a crash
//! loses only those still waiting, and what is stored still verifies.

mod common;

use common::store::CountingStore;
use futures::executor::block_on;
use serde_json::json;
use tabnode_node::{FixedEnv, Node};
use tabnode_store::{Namespace, Store};
use tabnode_types::ContextId;

type CountingNode = Node<CountingStore, FixedEnv>;

fn open(store: &CountingStore) -> CountingNode {
    let mut node = common::opened(store.clone(), 1);
    block_on(node.install_app(&common::guest("kv_store"))).unwrap();
    node
}

/// A node that lets up to `most` read records wait, with a context holding one key.
fn node_with_a_key(store: &CountingStore, most: usize) -> (CountingNode, ContextId) {
    let mut node = open(store);
    node.defer_read_audits(most);
    let app = block_on(node.install_app(&common::guest("kv_store"))).unwrap();
    let ctx = block_on(node.create_context(app, json!({}))).unwrap();
    block_on(node.execute(&ctx, "set", json!({"key": "k", "value": "v"}))).unwrap();
    (node, ctx)
}

fn get(node: &mut CountingNode, ctx: &ContextId) {
    let result = block_on(node.execute(ctx, "get", json!({"key": "k"}))).unwrap();
    assert_eq!(result.output, json!("v"));
}

fn methods(node: &CountingNode, ctx: &ContextId) -> Vec<String> {
    block_on(node.audit(ctx))
        .unwrap()
        .into_iter()
        .map(|r| r.entry.method)
        .collect()
}

fn stored_records(store: &CountingStore, ctx: &ContextId) -> usize {
    block_on(store.scan_prefix(Namespace::Audit, ctx.as_bytes()))
        .unwrap()
        .len()
}

#[test]
fn reads_records_wait_are_shown_at_once_and_go_to_the_store_with_the_next_write() {
    let store = CountingStore::default();
    let (mut a, ctx) = node_with_a_key(&store, 64);
    let before = stored_records(&store, &ctx);
    store.reset();
    for _ in 0..10 {
        get(&mut a, &ctx);
    }
    assert_eq!(store.commits(), 0, "ten reads, no transaction");
    assert_eq!(stored_records(&store, &ctx), before);
    assert!(a.has_unwritten_reads());
    let shown = methods(&a, &ctx);
    assert_eq!(shown.len(), before + 10, "{shown:?}");
    let report = block_on(a.verify_audit(&ctx)).unwrap();
    assert!(
        report.ok && report.records == (before + 10) as u64,
        "{report:?}"
    );

    // The next write takes them first, in its own transaction.
    block_on(a.execute(&ctx, "set", json!({"key": "k2", "value": "w"}))).unwrap();
    assert_eq!(store.commits(), 1);
    assert!(!a.has_unwritten_reads());
    assert_eq!(stored_records(&store, &ctx), before + 11);

    // Stored, chained in call order, and whole after a restart.
    drop(a);
    let mut a = open(&store);
    let mut expected = vec!["get".to_string(); 10];
    expected.push("set".into());
    assert_eq!(methods(&a, &ctx)[before..], expected[..]);
    let report = block_on(a.verify_audit(&ctx)).unwrap();
    assert!(
        report.ok && report.records == (before + 11) as u64,
        "{report:?}"
    );
    assert_eq!(
        block_on(a.execute(&ctx, "get", json!({"key": "k2"})))
            .unwrap()
            .output,
        json!("w")
    );
}

#[test]
fn at_most_the_given_number_wait_and_the_driver_writes_the_rest() {
    let store = CountingStore::default();
    let (mut a, ctx) = node_with_a_key(&store, 8);
    let before = stored_records(&store, &ctx);
    store.reset();
    for _ in 0..20 {
        get(&mut a, &ctx);
    }
    // The 8th and the 16th read wrote those waiting with their own: two transactions.
    assert_eq!(store.commits(), 2);
    assert_eq!(stored_records(&store, &ctx), before + 16);
    block_on(a.write_read_audits()).unwrap();
    assert_eq!(store.commits(), 3);
    assert_eq!(stored_records(&store, &ctx), before + 20);
    assert!(block_on(a.verify_audit(&ctx)).unwrap().ok);
}

#[test]
fn a_crash_loses_only_the_records_still_waiting_and_the_chain_goes_on() {
    let store = CountingStore::default();
    let (mut a, ctx) = node_with_a_key(&store, 64);
    let before = stored_records(&store, &ctx);
    get(&mut a, &ctx);
    get(&mut a, &ctx);
    drop(a); // a crash: the two reads' records were waiting

    let mut a = open(&store);
    a.defer_read_audits(64);
    assert_eq!(stored_records(&store, &ctx), before);
    assert!(block_on(a.verify_audit(&ctx)).unwrap().ok);
    get(&mut a, &ctx);
    block_on(a.execute(&ctx, "set", json!({"key": "k", "value": "x"}))).unwrap();
    let report = block_on(a.verify_audit(&ctx)).unwrap();
    assert!(
        report.ok && report.records == (before + 2) as u64,
        "{report:?}"
    );
}

#[test]
fn a_failed_write_keeps_the_waiting_records_first_and_a_full_disk_still_answers_reads() {
    let store = CountingStore::default();
    let (mut a, ctx) = node_with_a_key(&store, 4);
    let before = stored_records(&store, &ctx);
    get(&mut a, &ctx);
    store.full.set(true);
    assert!(block_on(a.execute(&ctx, "set", json!({"key": "k", "value": "y"}))).is_err());
    // Reads still answer; past the most that may wait, their records are not kept.
    for _ in 0..6 {
        get(&mut a, &ctx);
    }
    store.full.set(false);
    block_on(a.write_read_audits()).unwrap();
    let report = block_on(a.verify_audit(&ctx)).unwrap();
    assert!(report.ok, "{report:?}");
    let shown = methods(&a, &ctx);
    assert_eq!(
        shown[before], "get",
        "the read before the failed write is kept: {shown:?}"
    );
    assert!(stored_records(&store, &ctx) > before);
}

#[test]
fn deleting_a_context_leaves_none_of_its_waiting_records_behind() {
    let store = CountingStore::default();
    let (mut a, ctx) = node_with_a_key(&store, 64);
    get(&mut a, &ctx);
    block_on(a.delete_context(&ctx)).unwrap();
    block_on(a.write_read_audits()).unwrap();
    assert_eq!(stored_records(&store, &ctx), 0);
}

#[test]
fn by_default_each_read_is_written_before_it_returns() {
    let store = CountingStore::default();
    let (mut a, ctx) = node_with_a_key(&store, 0);
    let before = stored_records(&store, &ctx);
    get(&mut a, &ctx);
    assert!(!a.has_unwritten_reads());
    assert_eq!(stored_records(&store, &ctx), before + 1);
}

/// The node's own timer writes the records that wait: `poll_timeout` comes due
/// `READ_AUDITS_WAIT_NANOS` after the oldest read's call, not before, and `handle_timeout` then
/// writes them all in one transaction; a driver needs no timer of its own for them.
#[test]
fn the_nodes_timer_writes_reads_records_when_they_are_due() {
    let store = CountingStore::default();
    let (mut a, ctx) = node_with_a_key(&store, 64);
    // Its context's other timer work, done now, is next due seconds from now.
    block_on(a.handle_timeout(a.now()));
    a.take_outgoing();
    let before = stored_records(&store, &ctx);
    store.reset();
    get(&mut a, &ctx);
    let oldest = block_on(a.audit(&ctx)).unwrap().last().unwrap().entry.time;
    get(&mut a, &ctx);
    let due = oldest + tabnode_node::READ_AUDITS_WAIT_NANOS;
    assert_eq!(
        a.poll_timeout(),
        Some(due),
        "due 100 ms after the oldest read"
    );
    block_on(a.handle_timeout(due - 1));
    assert_eq!(store.commits(), 0, "nothing before it is due");
    block_on(a.handle_timeout(due));
    assert_eq!(store.commits(), 1, "both records in one transaction");
    assert_eq!(stored_records(&store, &ctx), before + 2);
    assert!(!a.has_unwritten_reads());
    assert!(a.poll_timeout().unwrap() > due, "nothing left due now");
}
