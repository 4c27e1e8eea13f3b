//! The audit trail: a record per call (ok or not) and per remote delta, hash-chained and signed;
//! any changed, deleted or reordered record is found with its sequence number.

mod common;

use futures::executor::block_on;
use serde_json::json;
use tabnode_node::{AuditKind, FixedEnv, Node, Outgoing};
use tabnode_store::{Batch, MemoryStore, Namespace, Store};
use tabnode_types::ContextId;

fn kv_store() -> Vec<u8> {
    common::guest("kv_store")
}

fn open(store: MemoryStore, seed: u8) -> Node<MemoryStore, FixedEnv> {
    common::opened(store, seed)
}

#[test]
fn every_call_and_remote_delta_is_recorded_and_the_chain_verifies() {
    let store = MemoryStore::default();
    let mut a = open(store.clone(), 1);
    let mut b = open(MemoryStore::default(), 2);
    let app = block_on(a.install_app(&kv_store())).unwrap();
    block_on(b.install_app(&kv_store())).unwrap();
    let ctx = block_on(a.create_context(app, json!({}))).unwrap();
    block_on(b.join(&a.invite(&ctx).unwrap())).unwrap();
    // A admits B, which asks for the state and gets it (B's announcement stays with B).
    common::handshake(&mut a, &mut b);
    common::relay(&mut b, &mut a);
    common::relay(&mut a, &mut b);
    block_on(a.execute(&ctx, "set", json!({"key": "k", "value": "v"}))).unwrap();
    block_on(a.execute(&ctx, "get", json!({"key": "k"}))).unwrap();
    assert!(block_on(a.execute(&ctx, "nope", json!({}))).is_err());
    for out in a.take_outgoing() {
        if let Outgoing::Publish { topic, data } = out {
            block_on(b.handle_message(&topic, &data));
        }
    }

    let records = block_on(a.audit(&ctx)).unwrap();
    let outcomes: Vec<(&str, &str)> = records
        .iter()
        .map(|r| (r.entry.method.as_str(), r.entry.outcome.as_str()))
        .collect();
    assert_eq!(
        outcomes,
        vec![
            ("init", "ok"),
            ("member.admit", "ok"),
            ("set", "ok"),
            ("get", "ok"),
            ("nope", "MethodNotFound")
        ]
    );
    assert!(records
        .iter()
        .all(|r| r.entry.kind == AuditKind::Call && r.entry.executor == a.public_key()));
    assert!(
        records[2].entry.delta_id.is_some() && records[3].entry.delta_id.is_none(),
        "only the write made a delta"
    );
    assert_eq!(block_on(a.verify_audit(&ctx)).unwrap().records, 5);
    assert!(block_on(a.verify_audit(&ctx)).unwrap().ok);

    let on_b = block_on(b.audit(&ctx)).unwrap();
    let seen: Vec<(AuditKind, &str, bool)> = on_b
        .iter()
        .map(|r| {
            (
                r.entry.kind,
                r.entry.method.as_str(),
                r.entry.executor == a.public_key(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            (AuditKind::RemoteDelta, "init", true),
            (AuditKind::RemoteDelta, "member.admit", true),
            (AuditKind::Call, "member.join", false),
            (AuditKind::RemoteDelta, "__calimero_sync_next", true),
        ],
        "B recorded A's three deltas, and announced itself once it had the state and its admission"
    );
    assert!(block_on(b.verify_audit(&ctx)).unwrap().ok);

    // The chain continues across a restart.
    drop(a);
    let mut a = open(store, 1);
    block_on(a.execute(&ctx, "get", json!({"key": "k"}))).unwrap();
    let report = block_on(a.verify_audit(&ctx)).unwrap();
    assert!(report.ok && report.records == 6, "{report:?}");
}

/// Stored rows: (key, value).
type Rows = Vec<(Vec<u8>, Vec<u8>)>;

/// A node with a context and five calls after its creation: six audit records, as stored.
fn five_calls() -> (MemoryStore, Node<MemoryStore, FixedEnv>, ContextId, Rows) {
    let store = MemoryStore::default();
    let mut a = open(store.clone(), 1);
    let app = block_on(a.install_app(&kv_store())).unwrap();
    let ctx = block_on(a.create_context(app, json!({}))).unwrap();
    for i in 0..5 {
        block_on(a.execute(&ctx, "set", json!({"key": format!("k{i}"), "value": "v"}))).unwrap();
    }
    let rows = block_on(store.scan_prefix(Namespace::Audit, ctx.as_bytes())).unwrap();
    (store, a, ctx, rows)
}

#[test]
fn a_flipped_byte_or_a_deleted_record_is_found_with_its_sequence_number() {
    let (store, a, ctx, rows) = five_calls();
    assert_eq!(rows.len(), 6);

    let (key, mut value) = rows[3].clone();
    let i = value.len() - 70; // inside the record, before the signature
    value[i] ^= 1;
    block_on(store.commit(Batch::new().put(Namespace::Audit, &key, value))).unwrap();
    let report = block_on(a.verify_audit(&ctx)).unwrap();
    assert!(!report.ok);
    assert_eq!(report.bad_seq, Some(3), "{report:?}");

    block_on(store.commit(Batch::new().put(Namespace::Audit, &key, rows[3].1.clone()))).unwrap();
    assert!(block_on(a.verify_audit(&ctx)).unwrap().ok, "restored");
    block_on(store.commit(Batch::new().delete(Namespace::Audit, &rows[2].0))).unwrap();
    let report = block_on(a.verify_audit(&ctx)).unwrap();
    assert_eq!(report.bad_seq, Some(2), "{report:?}");
    assert!(report.reason.unwrap().contains("deleted or reordered"));
}

/// Two records swapped in place (each stored under the other's key) are found at the first of
/// them: the trail is read in key order, and each record names its own sequence number and
/// the hash of the one before it, under its signature.
#[test]
fn a_reordered_record_is_found_with_its_sequence_number() {
    let (store, a, ctx, rows) = five_calls();
    assert!(block_on(a.verify_audit(&ctx)).unwrap().ok);

    let swapped = Batch::new()
        .put(Namespace::Audit, &rows[2].0, rows[3].1.clone())
        .put(Namespace::Audit, &rows[3].0, rows[2].1.clone());
    block_on(store.commit(swapped)).unwrap();
    let report = block_on(a.verify_audit(&ctx)).unwrap();
    assert!(!report.ok);
    assert_eq!(report.bad_seq, Some(2), "{report:?}");
    assert_eq!(report.records, 2, "the records before it still verify");
    assert!(
        report
            .reason
            .as_deref()
            .unwrap()
            .contains("record 3 found where 2 belongs"),
        "{report:?}"
    );

    // The last record moved to the front of the trail is found there too.
    let restored = Batch::new()
        .put(Namespace::Audit, &rows[2].0, rows[2].1.clone())
        .put(Namespace::Audit, &rows[3].0, rows[3].1.clone());
    block_on(store.commit(restored)).unwrap();
    assert!(block_on(a.verify_audit(&ctx)).unwrap().ok, "restored");
    let moved = Batch::new()
        .put(Namespace::Audit, &rows[0].0, rows[5].1.clone())
        .put(Namespace::Audit, &rows[5].0, rows[0].1.clone());
    block_on(store.commit(moved)).unwrap();
    let report = block_on(a.verify_audit(&ctx)).unwrap();
    assert_eq!(report.bad_seq, Some(0), "{report:?}");
}
