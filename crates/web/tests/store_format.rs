//! The store's format version in a page (headless Chromium, IndexedDB; see "Format versions"
//! in docs/storage.md): a store from before handlers (no format row) opens and is marked with
//! this build's format; one marked newer is refused with `StoreFormatTooNew`, by the node and
//! by `BrowserNode.create`, and its database is left as it was.
#![cfg(target_arch = "wasm32")]

use std::rc::Rc;

use js_sys::{Object, Reflect};
use serde_json::json;
use tabnode_node::{FixedEnv, Node, NodeError, STORE_FORMAT};
use tabnode_runtime::{Limits, Runtime};
use tabnode_store::{Batch, IndexedDbStore, Namespace, Store};
use tabnode_web::BrowserNode;
use wasm_bindgen_test::wasm_bindgen_test;

wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

const KV_STORE: &[u8] = include_bytes!("../../../tests/apps/dist/kv_store.wasm");

/// Where the node keeps its store's format (a `meta` row, u32 LE).
const FORMAT_ROW: &[u8] = b"store-format";

fn unique(name: &str) -> String {
    format!("tabnode-test-{name}-{}", js_sys::Math::random())
}

async fn open(store: &Rc<IndexedDbStore>) -> Result<Node<Rc<IndexedDbStore>, FixedEnv>, NodeError> {
    Node::open(
        store.clone(),
        FixedEnv::new(1),
        Runtime::new(Limits::default()),
    )
    .await
}

async fn format_of(store: &Rc<IndexedDbStore>) -> Option<u32> {
    let row = store.get(Namespace::Meta, FORMAT_ROW).await.unwrap()?;
    Some(u32::from_le_bytes(row.try_into().unwrap()))
}

async fn mark(store: &impl Store, format: Option<u32>) {
    let batch = match format {
        Some(f) => Batch::new().put(Namespace::Meta, FORMAT_ROW, f.to_le_bytes().to_vec()),
        None => Batch::new().delete(Namespace::Meta, FORMAT_ROW),
    };
    store.commit(batch).await.unwrap();
}

async fn dump(store: &impl Store) -> Vec<(Namespace, Vec<u8>, Vec<u8>)> {
    let mut rows = Vec::new();
    for ns in Namespace::ALL {
        for (key, value) in store.scan_prefix(ns, &[]).await.unwrap() {
            rows.push((ns, key, value));
        }
    }
    rows
}

#[wasm_bindgen_test]
async fn a_page_store_from_before_handlers_opens_and_a_newer_one_is_refused_untouched() {
    let store = Rc::new(IndexedDbStore::open(&unique("format")).await.unwrap());
    let mut node = open(&store).await.unwrap();
    assert_eq!(format_of(&store).await, Some(STORE_FORMAT));
    let app = node.install_app(KV_STORE).await.unwrap();
    let ctx = node.create_context(app, json!({})).await.unwrap();
    let set = json!({"key": "k", "value": "v"});
    node.execute(&ctx, "set", set).await.unwrap();
    drop(node);

    // As a build before handlers left it: its deltas name no handler, so their bytes are
    // that build's (tests/store_format.rs checks this byte for byte), and no format row.
    mark(&*store, None).await;
    let mut node = open(&store).await.expect("a format 1 store opens");
    assert_eq!(format_of(&store).await, Some(STORE_FORMAT));
    let got = node
        .execute(&ctx, "get", json!({"key": "k"}))
        .await
        .unwrap();
    assert_eq!(got.output, json!("v"));
    assert!(node.replay(&ctx).await.unwrap().matches);
    assert!(node.verify_audit(&ctx).await.unwrap().ok);
    drop(node);

    mark(&*store, Some(STORE_FORMAT + 1)).await;
    let before = dump(&*store).await;
    let err = open(&store).await.err().expect("refused");
    assert_eq!(err.kind(), "StoreFormatTooNew", "{err}");
    assert_eq!(dump(&*store).await, before, "nothing written");
}

#[wasm_bindgen_test]
async fn browser_node_create_names_a_newer_store_format() {
    let name = unique("format-page");
    let store = IndexedDbStore::open(&name).await.unwrap();
    mark(&store, Some(STORE_FORMAT + 1)).await;
    store.close();

    let options = Object::new();
    Reflect::set(&options, &"dbName".into(), &name.clone().into()).unwrap();
    let err = BrowserNode::create(options.into())
        .await
        .err()
        .expect("refused");
    let kind = Reflect::get(&err, &"name".into()).unwrap();
    assert_eq!(kind.as_string().as_deref(), Some("StoreFormatTooNew"));

    let store = IndexedDbStore::open(&name).await.unwrap();
    let rows = dump(&store).await;
    assert_eq!(rows.len(), 1, "only the format row: {rows:?}");
    store.close();
}
