//! The store's format version (see "Format versions" in docs/storage.md). A store written by a
//! build before event handlers (format 1: no version row, events without a handler field)
//! opens, and its contexts work as before: calls, replay, the audit chain, sync with members
//! old and new. A store marked with a format newer than this build's is refused with a typed
//! error and left exactly as it was.

mod common;

use borsh::{BorshDeserialize, BorshSerialize};
use common::TestNode;
use futures::executor::block_on;
use serde_json::json;
use tabnode_node::{
    Delta, Disclosure, FixedEnv, Genesis, MemberCert, MemberOp, Node, NodeError, Role, STORE_FORMAT,
};
use tabnode_runtime::{Limits, Runtime};
use tabnode_store::{Batch, FileStore, MemoryStore, Namespace, Store};
use tabnode_types::{verify_signature, ContextId, DeltaId, Hash, PublicKey, Signature};

/// Where the node keeps its store's format (a [`Namespace::Meta`] row, u32 LE).
const FORMAT_ROW: &[u8] = b"store-format";

/// An event as builds before handlers encoded it (format 1).
#[derive(BorshSerialize, BorshDeserialize)]
struct EventV1 {
    kind: String,
    data: Vec<u8>,
    withheld: Option<Hash>,
}

/// A delta's content as builds before handlers encoded it: its blake3 hash is the delta's id.
#[derive(BorshSerialize, BorshDeserialize)]
struct DeltaBodyV1 {
    context_id: ContextId,
    parents: Vec<DeltaId>,
    author: PublicKey,
    timestamp: u64,
    artifact: Vec<u8>,
    root_hash: Hash,
    events: Vec<EventV1>,
    genesis: Option<Genesis>,
    author_cert: MemberCert,
    op: Option<MemberOp>,
}

#[derive(BorshSerialize, BorshDeserialize)]
struct DeltaV1 {
    body: DeltaBodyV1,
    signature: Signature,
}

/// `delta` in the format 1 layout, checked to be what its author signed: the bytes a build
/// before handlers stored and sent.
fn encode_v1(delta: Delta) -> Vec<u8> {
    let b = delta.body;
    let events = b.events.into_iter().map(|e| {
        assert_eq!(e.handler, None, "format 1 has no handlers");
        EventV1 {
            kind: e.kind,
            data: e.data,
            withheld: e.withheld,
        }
    });
    let body = DeltaBodyV1 {
        context_id: b.context_id,
        parents: b.parents,
        author: b.author,
        timestamp: b.timestamp,
        artifact: b.artifact,
        root_hash: b.root_hash,
        events: events.collect(),
        genesis: b.genesis,
        author_cert: b.author_cert,
        op: b.op,
    };
    let id = blake3::hash(&borsh::to_vec(&body).unwrap());
    verify_signature(&body.author, id.as_bytes(), &delta.signature)
        .expect("the author signed the format 1 encoding");
    borsh::to_vec(&DeltaV1 {
        body,
        signature: delta.signature,
    })
    .unwrap()
}

/// Turns the store into one a build before handlers left: every delta row in the format 1
/// layout (written by the copy of its structs above), and no version row.
fn make_format_1(store: &MemoryStore) {
    let mut batch = Batch::new();
    for (key, bytes) in block_on(store.scan_prefix(Namespace::Deltas, &[])).unwrap() {
        let delta = Delta::try_from_slice(&bytes).unwrap();
        batch.put_mut(Namespace::Deltas, &key, encode_v1(delta));
    }
    batch.delete_mut(Namespace::Meta, FORMAT_ROW);
    block_on(store.commit(batch)).unwrap();
}

/// Every row of every namespace, to compare a store before and after.
fn dump<S: Store>(store: &S) -> Vec<(Namespace, Vec<u8>, Vec<u8>)> {
    let mut rows = Vec::new();
    for ns in Namespace::ALL {
        for (key, value) in block_on(store.scan_prefix(ns, &[])).unwrap() {
            rows.push((ns, key, value));
        }
    }
    rows
}

fn format_of<S: Store>(store: &S) -> Option<u32> {
    let row = block_on(store.get(Namespace::Meta, FORMAT_ROW)).unwrap()?;
    Some(u32::from_le_bytes(row.try_into().expect("4 bytes")))
}

fn open<S: Store>(store: S, seed: u8) -> Result<Node<S, FixedEnv>, NodeError> {
    block_on(Node::open(
        store,
        FixedEnv::new(seed),
        Runtime::new(Limits::default()),
    ))
    .map(common::clocked)
}

fn set(node: &mut TestNode, ctx: &ContextId, key: &str, value: &str) {
    block_on(node.execute(ctx, "set", json!({"key": key, "value": value}))).unwrap();
}

fn entries(node: &mut TestNode, ctx: &ContextId) -> serde_json::Value {
    block_on(node.execute(ctx, "entries", json!({})))
        .unwrap()
        .output
}

/// Heads and app root: what members agree on (the node's Merkle root covers per-member bytes).
fn position(node: &mut TestNode, ctx: &ContextId) -> (Vec<DeltaId>, Option<Hash>) {
    let checkpoint = block_on(node.checkpoint(ctx)).unwrap();
    (checkpoint.heads, checkpoint.root_hash)
}

/// Two members of a kv-store context, each with its own store, that wrote and synced: A
/// withholds the payloads of `Inserted` events (events with a hash), B does not.
fn two_members() -> (MemoryStore, MemoryStore, ContextId) {
    let (store_a, store_b) = (MemoryStore::default(), MemoryStore::default());
    let mut a = common::node_on(store_a.clone(), 1);
    let mut b = common::node_on(store_b.clone(), 2);
    let app = block_on(a.install_app(&common::guest("kv_store"))).unwrap();
    let ctx = block_on(a.create_context(app, json!({}))).unwrap();
    block_on(a.set_disclosure(&ctx, "Inserted", Disclosure::Hash)).unwrap();
    block_on(b.join(&a.invite(&ctx).unwrap())).unwrap();
    common::settle(&mut [&mut a, &mut b]);
    for i in 0..3 {
        set(&mut a, &ctx, &format!("a{i}"), "from a");
        set(&mut b, &ctx, &format!("b{i}"), "from b");
        set(&mut a, &ctx, "shared", &format!("a{i}"));
        common::settle(&mut [&mut a, &mut b]);
    }
    (store_a, store_b, ctx)
}

#[test]
fn a_store_written_before_handlers_opens_and_its_contexts_work() {
    let (store_a, store_b, ctx) = two_members();
    let deltas = common::stored_deltas(&store_a, &ctx);
    assert!(deltas
        .iter()
        .any(|d| d.body.events.iter().any(|e| e.withheld.is_some())));
    assert!(deltas.iter().any(|d| d.body.op.is_some()), "B's admission");
    make_format_1(&store_a);
    make_format_1(&store_b);
    assert_eq!(format_of(&store_a), None);

    let mut a = open(store_a.clone(), 1).expect("a format 1 store opens");
    assert_eq!(format_of(&store_a), Some(STORE_FORMAT));
    // Its deltas are as they were stored and signed: same ids, same signatures.
    assert_eq!(common::stored_deltas(&store_a, &ctx), deltas);
    let before = entries(&mut a, &ctx);
    assert_eq!(before["shared"], "a2");
    assert_eq!(before["b1"], "from b");

    let replay = block_on(a.replay(&ctx)).unwrap();
    assert!(replay.matches, "{replay:?}");
    assert_eq!(replay.deltas, deltas.len());
    let audit = block_on(a.verify_audit(&ctx)).unwrap();
    assert!(audit.ok, "{audit:?}");

    // Calls go on, and B, reopened on its own format 1 store, syncs with A.
    set(&mut a, &ctx, "after", "the upgrade");
    let mut b = open(store_b.clone(), 2).expect("B's format 1 store opens");
    set(&mut b, &ctx, "b after", "the upgrade");
    common::settle(&mut [&mut a, &mut b]);
    assert_eq!(entries(&mut b, &ctx)["after"], "the upgrade");
    assert_eq!(entries(&mut a, &ctx)["b after"], "the upgrade");

    // A fresh node joins through A and converges on the whole history.
    let mut c = common::node(3);
    block_on(c.join(&a.invite(&ctx).unwrap())).unwrap();
    common::settle(&mut [&mut a, &mut b, &mut c]);
    let want = position(&mut a, &ctx);
    assert_eq!(position(&mut b, &ctx), want);
    assert_eq!(position(&mut c, &ctx), want);
    assert_eq!(entries(&mut c, &ctx), entries(&mut a, &ctx));
    let replay = block_on(c.replay(&ctx)).unwrap();
    assert!(replay.matches, "{replay:?}");

    // Migrated once: it opens again in this build's format, with the audit chain whole.
    drop(a);
    let mut a = open(store_a.clone(), 1).unwrap();
    assert_eq!(format_of(&store_a), Some(STORE_FORMAT));
    assert_eq!(entries(&mut a, &ctx)["after"], "the upgrade");
    assert!(block_on(a.verify_audit(&ctx)).unwrap().ok);
}

#[test]
fn a_new_store_records_this_builds_format() {
    let store = MemoryStore::default();
    drop(open(store.clone(), 1).unwrap());
    assert_eq!(format_of(&store), Some(STORE_FORMAT));
}

#[test]
fn a_store_in_a_newer_format_is_refused_and_left_as_it_was() {
    let (store, _, ctx) = two_members();
    let newer = STORE_FORMAT + 1;
    let mark = Batch::new().put(Namespace::Meta, FORMAT_ROW, newer.to_le_bytes().to_vec());
    block_on(store.commit(mark)).unwrap();
    let before = dump(&store);

    let err = open(store.clone(), 1).err().expect("refused");
    assert_eq!(err.kind(), "StoreFormatTooNew", "{err}");
    assert!(
        matches!(err, NodeError::StoreFormatTooNew { found, known }
            if found == newer && known == STORE_FORMAT),
        "{err:?}"
    );
    assert_eq!(dump(&store), before, "nothing written");
    assert!(before
        .iter()
        .any(|(ns, key, _)| *ns == Namespace::Deltas && key.starts_with(ctx.as_bytes())));

    // The same on disk (the CLI's store): not a byte of its file changes.
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("store-format-newer");
    let _ = std::fs::remove_dir_all(&dir);
    let file = block_on(FileStore::open(&dir)).unwrap();
    drop(open(file, 1).unwrap());
    let file = block_on(FileStore::open(&dir)).unwrap();
    block_on(file.commit(Batch::new().put(
        Namespace::Meta,
        FORMAT_ROW,
        newer.to_le_bytes().to_vec(),
    )))
    .unwrap();
    let files = |dir: &std::path::Path| -> Vec<(std::path::PathBuf, Vec<u8>)> {
        let mut out: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .map(|p| (p.clone(), std::fs::read(&p).unwrap()))
            .collect();
        out.sort();
        out
    };
    let on_disk = files(&dir);
    let err = open(file, 1).err().expect("refused");
    assert_eq!(err.kind(), "StoreFormatTooNew", "{err}");
    assert_eq!(files(&dir), on_disk, "nothing written");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Members still on a build before handlers read this build's deltas, as stored and as sent:
/// its calls' handlers run on the node that made them, so no delta it makes names one (one
/// that did, from the build between, they refuse as undecodable rather than misread).
#[test]
fn builds_before_handlers_read_deltas_that_name_no_handler() {
    let (store, _, _) = two_members();
    let rows = block_on(store.scan_prefix(Namespace::Deltas, &[])).unwrap();
    assert!(rows.len() > 5);
    for (_, bytes) in rows {
        let old = DeltaV1::try_from_slice(&bytes).expect("a build before handlers reads it");
        assert_eq!(borsh::to_vec(&old).unwrap(), bytes, "byte for byte");
    }

    let store = MemoryStore::default();
    let mut node = common::node_on(store.clone(), 1);
    let app = block_on(node.install_app(&common::guest("handler_counter"))).unwrap();
    let ctx = block_on(node.create_context(app, json!({}))).unwrap();
    block_on(node.execute(&ctx, "set", json!({"key": "k", "value": "v"}))).unwrap();
    let rows = block_on(store.scan_prefix(Namespace::Deltas, ctx.as_bytes())).unwrap();
    let written: Vec<Delta> = rows
        .iter()
        .map(|(_, row)| Delta::try_from_slice(row).unwrap())
        .collect();
    let set = written.iter().find(|d| !d.body.events.is_empty()).unwrap();
    assert_eq!(
        set.body.events[0].handler, None,
        "the set's delta names none"
    );
    for (_, row) in &rows {
        let old = DeltaV1::try_from_slice(row).expect("a build before handlers reads it");
        assert_eq!(&borsh::to_vec(&old).unwrap(), row, "byte for byte");
    }
    let mut named = set.clone();
    named.body.events[0].handler = Some("count".into());
    assert!(DeltaV1::try_from_slice(&borsh::to_vec(&named).unwrap()).is_err());
}

/// Format 2 to 3 (proposal operations) changes no row: a format 2 store opens, is marked 3,
/// and its contexts go on; a build of format 2 would now refuse it instead of meeting a
/// proposal operation it cannot decode.
#[test]
fn a_format_2_store_opens_as_format_3_with_nothing_else_rewritten() {
    let (store, _, ctx) = two_members();
    let mark = Batch::new().put(Namespace::Meta, FORMAT_ROW, 2u32.to_le_bytes().to_vec());
    block_on(store.commit(mark)).unwrap();
    let before: Vec<_> = dump(&store)
        .into_iter()
        .filter(|(ns, key, _)| !(*ns == Namespace::Meta && key.as_slice() == FORMAT_ROW))
        .collect();

    let mut node = open(store.clone(), 1).expect("a format 2 store opens");
    assert_eq!(STORE_FORMAT, 3);
    assert_eq!(format_of(&store), Some(3));
    let after: Vec<_> = dump(&store)
        .into_iter()
        .filter(|(ns, key, _)| !(*ns == Namespace::Meta && key.as_slice() == FORMAT_ROW))
        .collect();
    assert_eq!(after, before, "only the version row changed");
    assert_eq!(entries(&mut node, &ctx)["shared"], "a2");
}

/// Where a node keeps the secret an operation made that it holds from no share in it (a
/// [`Namespace::Keys`] row after the context id).
const MADE_SECRET: &[u8] = b"made-secret";

/// Builds before the context's secret followed the judged log kept no `made-secret` rows: a
/// node held the secret of its own removal only as the one after it among its former secrets.
/// Such a store opens, finds it there, and combines it with a concurrent removal's secret as
/// a store written now does: the two removers end on one secret, which neither removed key
/// holds. (Without the step, A lacks its own removal's secret and keeps sealing with it.)
#[test]
fn a_store_without_the_secrets_operations_made_finds_its_own_removals_secret() {
    let stores: [MemoryStore; 4] = Default::default();
    let mut nodes = [0, 1, 2, 3].map(|i| common::node_on(stores[i].clone(), i as u8 + 1));
    let app = block_on(nodes[0].install_app(&common::guest("kv_store"))).unwrap();
    let ctx = block_on(nodes[0].create_context(app, json!({}))).unwrap();
    for i in 1..4 {
        let role = [Role::Admin, Role::Member][usize::from(i > 1)];
        let link = nodes[0].invite_as(&ctx, role, u64::MAX / 2).unwrap();
        block_on(nodes[i].join(&link)).unwrap();
        let [a, rest @ ..] = &mut nodes;
        common::settle(&mut [a, &mut rest[i - 1]]);
    }
    nodes.iter_mut().for_each(common::announce);
    common::settle(&mut nodes.iter_mut().collect::<Vec<_>>());
    let [a, mut b, x, y] = nodes;
    let mut a = a;
    block_on(a.remove_member(&ctx, x.public_key())).unwrap();
    block_on(b.remove_member(&ctx, y.public_key())).unwrap();
    let (from_a, from_b) = (common::sent(&mut a), common::sent(&mut b));
    drop(a);

    let prefix = [ctx.as_bytes().as_slice(), MADE_SECRET].concat();
    let mut batch = Batch::new();
    for (ns, key, _) in dump(&stores[0]) {
        if ns == Namespace::Keys && key.starts_with(&prefix) {
            batch.delete_mut(ns, &key);
        }
    }
    assert_eq!(batch.len(), 1, "A kept the secret of its removal");
    block_on(stores[0].commit(batch)).unwrap();

    let mut a = common::node_on(stores[0].clone(), 1);
    common::deliver(&from_b, &mut a);
    common::deliver(&from_a, &mut b);
    let secret = a.secret_digest(&ctx).unwrap();
    assert_eq!(b.secret_digest(&ctx).unwrap(), secret);
    for removed in [&x, &y] {
        assert_ne!(removed.secret_digest(&ctx).unwrap(), secret);
    }
    set(&mut a, &ctx, "after", "a");
    common::deliver(&common::sent(&mut a), &mut b);
    assert_eq!(entries(&mut b, &ctx)["after"], "a");
}
