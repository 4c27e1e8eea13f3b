//! How the node uses its store. Cold start: a node reopening a context with 100,000 stored rows
//! answers its first call after reading a handful of them, not the whole state; a call that needs
//! many rows gets them all in one scan; the first checkpoint reads the state once for its Merkle
//! tree. Once a set's new rows turn out absent, the context's keys are listed once, and later
//! sets of new keys read no rows. A full disk: writes fail with `QuotaExceeded` and store
//! nothing, reads keep answering.

mod common;

use common::store::CountingStore;

use futures::executor::block_on;
use serde_json::json;
use std::collections::BTreeMap;
use tabnode_node::{FixedEnv, MerkleTree, Node};

use tabnode_store::{Batch, Namespace, Op, Store};
use tabnode_types::Hash;

const EXTRA_ROWS: u32 = 100_000;

fn kv_store() -> Vec<u8> {
    common::guest("kv_store")
}

fn open(store: &CountingStore) -> Node<CountingStore, FixedEnv> {
    common::opened(store.clone(), 1)
}

#[test]
fn a_large_context_reopens_and_answers_without_reading_every_row() {
    let store = CountingStore::default();
    let mut node = open(&store);
    let app = block_on(node.install_app(&kv_store())).unwrap();
    let ctx = block_on(node.create_context(app, json!({}))).unwrap();
    for i in 0..100 {
        block_on(node.execute(
            &ctx,
            "set",
            json!({"key": format!("k{i}"), "value": format!("v{i}")}),
        ))
        .unwrap();
    }
    let before = block_on(node.checkpoint(&ctx)).unwrap();
    drop(node);
    // 100,000 more rows of the context's shared state, as a large app would have stored them.
    let mut batch = Batch::new();
    for i in 0..EXTRA_ROWS {
        let mut key = ctx.as_bytes().to_vec();
        key.extend(blake3::hash(&i.to_le_bytes()).as_bytes());
        batch.put_mut(Namespace::State, &key, vec![i as u8; 100]);
    }
    block_on(store.commit(batch)).unwrap();
    let stored = block_on(store.scan_prefix(Namespace::State, ctx.as_bytes())).unwrap();
    assert!(stored.len() > EXTRA_ROWS as usize);

    store.reset();
    let mut node = open(&store);
    let got = block_on(node.execute(&ctx, "get", json!({"key": "k42"}))).unwrap();
    assert_eq!(got.output, json!("v42"));
    assert_eq!(store.scanned(Namespace::State), 0, "no scan of the state");
    assert_eq!(store.scanned(Namespace::Private), 0);
    assert_eq!(
        store.listings(Namespace::State) + store.listings(Namespace::Private),
        0,
        "a get of a stored key finds its rows: no listing"
    );
    let reads = store.gets(Namespace::State) + store.gets(Namespace::Private);
    assert!(reads <= 32, "{reads} rows read for one get");
    let in_memory = node.rows_in_memory(&ctx).unwrap();
    assert!(in_memory <= 32, "{in_memory} rows in memory after one get");
    println!(
        "cold start over {} stored rows: the first get read {reads} rows, holds {in_memory}",
        stored.len()
    );

    // Writes work on a partly read state, and what they wrote is read back. A new key's own
    // rows are not in the store: the set misses them, and reads them together, once.
    store.reset();
    store.slow_reads.set(true);
    block_on(node.execute(&ctx, "set", json!({"key": "new", "value": "n"}))).unwrap();
    store.slow_reads.set(false);
    let missed = store.gets(Namespace::State);
    assert!(missed >= 2, "{missed} rows read for a set of a new key");
    assert_eq!(
        store.most_reads_in_flight(),
        missed,
        "the rows a set of a new key misses are read in one round"
    );
    let got = block_on(node.execute(&ctx, "get", json!({"key": "new"}))).unwrap();
    assert_eq!(got.output, json!("n"));
    assert_eq!(store.scanned(Namespace::State), 0);
    // Its absent rows made the node list the keys, once: over the limit, so rows are still
    // read one by one, and it does not ask again.
    assert_eq!(store.listings(Namespace::State), 1);
    store.reset();
    block_on(node.execute(&ctx, "set", json!({"key": "new2", "value": "n"}))).unwrap();
    assert!(
        store.gets(Namespace::State) >= 2,
        "too many keys to list: rows read"
    );
    assert_eq!(store.listings(Namespace::State), 0);

    // A call that reads every entry asks for more than a few rows: the node reads the state
    // in one scan instead of one row per run.
    assert_eq!(
        node.position(&ctx).unwrap().merkle_root,
        None,
        "not built yet"
    );
    let entries = block_on(node.execute(&ctx, "entries", json!({}))).unwrap();
    assert_eq!(
        entries.output.as_object().unwrap().len(),
        102,
        "100 sets, new and new2"
    );
    assert_eq!(entries.output["k99"], json!("v99"));
    assert!(store.scanned(Namespace::State) > EXTRA_ROWS as usize);
    let built = node.position(&ctx).unwrap().merkle_root;
    assert!(built.is_some(), "a whole read builds the Merkle tree too");

    // The first checkpoint builds the Merkle tree over every stored row.
    let after = block_on(node.checkpoint(&ctx)).unwrap();
    assert_ne!(after.heads, before.heads, "the set made a delta");
    let rows = block_on(store.scan_prefix(Namespace::State, ctx.as_bytes())).unwrap();
    let rows: BTreeMap<Vec<u8>, Vec<u8>> = rows
        .into_iter()
        .map(|(k, v)| (k[32..].to_vec(), v))
        .collect();
    assert_eq!(
        after.merkle_root,
        Some(Hash(MerkleTree::build(&rows).root()))
    );
    assert_eq!(built, after.merkle_root, "no write since");
}

#[test]
fn once_a_reopened_context_lists_its_keys_sets_of_new_keys_read_no_rows() {
    let store = CountingStore::default();
    let mut node = open(&store);
    let app = block_on(node.install_app(&kv_store())).unwrap();
    let ctx = block_on(node.create_context(app, json!({}))).unwrap();
    let set = |node: &mut Node<CountingStore, FixedEnv>, key: &str, value: &str| {
        block_on(node.execute(&ctx, "set", json!({"key": key, "value": value}))).unwrap();
    };
    for i in 0..100 {
        set(&mut node, &format!("k{i}"), &format!("v{i}"));
    }
    drop(node);
    let mut node = open(&store);

    // The first set of a new key reads the rows it misses, finds them absent, and lists the
    // state's keys: one request, no values.
    store.reset();
    set(&mut node, "new-0", "n0");
    assert!(store.gets(Namespace::State) >= 2);
    assert_eq!(store.listings(Namespace::State), 1);
    assert_eq!(store.scanned(Namespace::State), 0);

    // The next sets of new keys read no row and list nothing again.
    store.reset();
    for i in 1..10 {
        set(&mut node, &format!("new-{i}"), &format!("n{i}"));
    }
    assert_eq!(store.gets(Namespace::State), 0, "new rows are known absent");
    assert_eq!(store.listings(Namespace::State), 0);

    // A listed row not yet read is still read when a call needs it.
    store.reset();
    set(&mut node, "k5", "changed");
    assert!(
        store.gets(Namespace::State) > 0,
        "k5's rows are listed, not read"
    );
    let removed = block_on(node.execute(&ctx, "remove", json!({"key": "k6"}))).unwrap();
    assert_eq!(removed.output, json!("v6"));

    // Every write is there, in memory and for a node that opens the store afresh.
    let expected: BTreeMap<String, String> = (0..100)
        .filter(|i| *i != 6)
        .map(|i| (format!("k{i}"), format!("v{i}")))
        .chain((0..10).map(|i| (format!("new-{i}"), format!("n{i}"))))
        .chain([("k5".to_string(), "changed".to_string())])
        .collect();
    let entries = |node: &mut Node<CountingStore, FixedEnv>| {
        block_on(node.execute(&ctx, "entries", json!({})))
            .unwrap()
            .output
    };
    assert_eq!(entries(&mut node), json!(expected));
    let root = block_on(node.checkpoint(&ctx)).unwrap();
    drop(node);
    let mut again = open(&store);
    assert_eq!(entries(&mut again), json!(expected));
    assert_eq!(block_on(again.checkpoint(&ctx)).unwrap(), root);
}

/// calimero-storage writes some rows of a set again as they were; the node stores only the
/// rows a call changes (every put costs the page's main thread), and the state stays whole.
#[test]
fn a_call_stores_only_the_rows_it_changes() {
    let store = CountingStore::default();
    let mut node = open(&store);
    let app = block_on(node.install_app(&kv_store())).unwrap();
    let ctx = block_on(node.create_context(app, json!({}))).unwrap();
    for i in 0..20 {
        let args = json!({"key": format!("k{i}"), "value": format!("v{i}")});
        block_on(node.execute(&ctx, "set", args)).unwrap();
    }
    let rows = |store: &CountingStore| -> BTreeMap<Vec<u8>, Vec<u8>> {
        let rows = block_on(store.scan_prefix(Namespace::State, ctx.as_bytes())).unwrap();
        rows.into_iter().collect()
    };
    let before = rows(&store);
    block_on(node.execute(&ctx, "set", json!({"key": "new", "value": "n"}))).unwrap();
    let puts: Vec<(Vec<u8>, Vec<u8>)> = store
        .last_commit()
        .ops()
        .iter()
        .filter_map(|op| match op {
            Op::Put {
                ns: Namespace::State,
                key,
                value,
            } => Some((key.clone(), value.clone())),
            _ => None,
        })
        .collect();
    assert!(!puts.is_empty());
    for (key, value) in &puts {
        assert_ne!(before.get(key), Some(value), "a row put again unchanged");
    }
    // What was not put is what the set left as it was: a node reading the store sees the same.
    let after = rows(&store);
    assert_eq!(
        after.len(),
        before.len() + puts.iter().filter(|(k, _)| !before.contains_key(k)).count()
    );
    drop(node);
    let mut node = open(&store);
    let got = block_on(node.execute(&ctx, "get", json!({"key": "new"}))).unwrap();
    assert_eq!(got.output, json!("n"));
    let entries = block_on(node.execute(&ctx, "entries", json!({}))).unwrap();
    assert_eq!(entries.output.as_object().unwrap().len(), 21);
}

#[test]
fn a_reopened_context_checkpoints_as_before() {
    let store = CountingStore::default();
    let mut node = open(&store);
    let app = block_on(node.install_app(&kv_store())).unwrap();
    let ctx = block_on(node.create_context(app, json!({}))).unwrap();
    for i in 0..10 {
        block_on(node.execute(&ctx, "set", json!({"key": format!("k{i}"), "value": "v"}))).unwrap();
    }
    let before = block_on(node.checkpoint(&ctx)).unwrap();
    drop(node);
    let mut node = open(&store);
    assert_eq!(block_on(node.checkpoint(&ctx)).unwrap(), before);
    // The audit chain continues where it stopped (its head is read, not the whole trail).
    block_on(node.execute(&ctx, "set", json!({"key": "k", "value": "v"}))).unwrap();
    assert!(block_on(node.verify_audit(&ctx)).unwrap().ok);
}

#[test]
fn on_a_full_disk_writes_fail_and_store_nothing_and_reads_still_answer() {
    let store = CountingStore::default();
    let mut node = open(&store);
    let app = block_on(node.install_app(&kv_store())).unwrap();
    let ctx = block_on(node.create_context(app, json!({}))).unwrap();
    block_on(node.execute(&ctx, "set", json!({"key": "k", "value": "v"}))).unwrap();
    let before = block_on(node.checkpoint(&ctx)).unwrap();
    let audited = block_on(node.audit(&ctx)).unwrap().len();

    store.full.set(true);
    let err = block_on(node.execute(&ctx, "set", json!({"key": "k2", "value": "w"}))).unwrap_err();
    assert_eq!(err.kind(), "QuotaExceeded");
    assert_eq!(block_on(node.checkpoint(&ctx)).unwrap(), before);
    let got = block_on(node.execute(&ctx, "get", json!({"key": "k"}))).unwrap();
    assert_eq!(got.output, json!("v"), "a read answers on a full disk");
    let got = block_on(node.execute(&ctx, "get", json!({"key": "k2"}))).unwrap();
    assert_eq!(got.output, json!(null), "the refused write is nowhere");

    store.full.set(false);
    block_on(node.execute(&ctx, "set", json!({"key": "k3", "value": "x"}))).unwrap();
    let report = block_on(node.verify_audit(&ctx)).unwrap();
    assert!(
        report.ok,
        "the chain goes on past the unaudited reads: {report:?}"
    );
    assert_eq!(block_on(node.audit(&ctx)).unwrap().len(), audited + 1);
    let mut node = open(&store);
    let got = block_on(node.execute(&ctx, "get", json!({"key": "k2"}))).unwrap();
    assert_eq!(got.output, json!(null));
}
