//! The store conformance suite on real IndexedDB, in headless Chromium (wasm-bindgen-test).
#![cfg(target_arch = "wasm32")]

use std::cell::Cell;

use tabnode_store::{conformance, Batch, Durability, IndexedDbStore, Namespace, Store};
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

thread_local!(static N: Cell<u32> = const { Cell::new(0) });

fn unique(name: &str) -> String {
    let n = N.with(|n| {
        n.set(n.get() + 1);
        n.get()
    });
    format!("tabnode-test-{name}-{n}-{}", js_sys::Math::random())
}

#[wasm_bindgen_test]
async fn indexeddb_passes_the_conformance_suite() {
    // Each check gets its own database; the test browser's profile is thrown away afterwards
    // (deleting a database would wait for connections the suite does not close).
    conformance::run_all(|| {
        let name = unique("conformance");
        async move { IndexedDbStore::open(&name).await.unwrap() }
    })
    .await;
}

#[wasm_bindgen_test]
async fn committed_data_survives_closing_and_reopening() {
    let name = unique("reopen");
    let store = IndexedDbStore::open(&name).await.unwrap();
    store
        .commit(
            Batch::new()
                .put(Namespace::State, &[0, 1, 255], vec![9; 100_000])
                .put(Namespace::Keys, b"node", vec![7; 32]),
        )
        .await
        .unwrap();
    store.close();
    let store = IndexedDbStore::open(&name).await.unwrap();
    assert_eq!(
        store.get(Namespace::State, &[0, 1, 255]).await.unwrap(),
        Some(vec![9; 100_000])
    );
    assert_eq!(
        store.get(Namespace::Keys, b"node").await.unwrap(),
        Some(vec![7; 32])
    );
    store.close();
    IndexedDbStore::delete_database(&name).await.unwrap();
}

#[wasm_bindgen(inline_js = "
export function watch_write_durability() {
  if (globalThis.__writeDurability) return;
  const seen = (globalThis.__writeDurability = {});
  const transaction = IDBDatabase.prototype.transaction;
  IDBDatabase.prototype.transaction = function (...args) {
    const tx = transaction.apply(this, args);
    if (tx.mode === 'readwrite') (seen[this.name] ??= []).push(tx.durability);
    return tx;
  };
}
export function write_durability(name) { return (globalThis.__writeDurability[name] ?? []).join(','); }
")]
extern "C" {
    /// Records the `durability` of every readwrite transaction the page opens, by database.
    fn watch_write_durability();
    /// The durabilities of database `name`'s readwrite transactions so far, comma-separated.
    fn write_durability(name: &str) -> String;
}

#[wasm_bindgen_test]
async fn writes_name_the_durability_chosen_and_a_committed_batch_survives_reopening_under_each() {
    watch_write_durability();
    assert_eq!(Durability::default(), Durability::Relaxed);
    for (durability, name) in [
        (Durability::Relaxed, "relaxed"),
        (Durability::Strict, "strict"),
    ] {
        assert_eq!(Durability::from_name(name), Some(durability));
        let db = unique(name);
        let store = IndexedDbStore::open_with(&db, durability).await.unwrap();
        assert_eq!(store.durability(), durability);
        store
            .commit(
                Batch::new()
                    .put(Namespace::State, b"row", vec![3; 70_000])
                    .put(Namespace::Audit, b"record", vec![4; 300])
                    .delete(Namespace::State, b"never-there"),
            )
            .await
            .unwrap();
        assert_eq!(
            write_durability(&db),
            name,
            "one readwrite transaction, {name}"
        );
        // The commit was acknowledged: a new connection (what a reloaded page opens) reads it.
        store.close();
        let store = IndexedDbStore::open(&db).await.unwrap();
        assert_eq!(
            store.get(Namespace::State, b"row").await.unwrap(),
            Some(vec![3; 70_000])
        );
        assert_eq!(
            store.get(Namespace::Audit, b"record").await.unwrap(),
            Some(vec![4; 300])
        );
        store.close();
        IndexedDbStore::delete_database(&db).await.unwrap();
    }
    assert_eq!(Durability::from_name("default"), None);
}

#[wasm_bindgen_test]
async fn a_store_written_by_the_previous_schema_version_opens_upgraded_with_its_data() {
    use rexie::{ObjectStore, Rexie, TransactionMode};
    assert_eq!(tabnode_store::INDEXEDDB_SCHEMA_VERSION, 2);
    let name = unique("upgrade");
    // What schema version 1 created, with a value in it.
    let mut builder = Rexie::builder(&name).version(1);
    for store in [
        "meta", "keys", "apps", "contexts", "state", "private", "deltas",
    ] {
        builder = builder.add_object_store(ObjectStore::new(store));
    }
    let old = builder.build().await.unwrap();
    let tx = old
        .transaction(&["state"], TransactionMode::ReadWrite)
        .unwrap();
    let key: wasm_bindgen::JsValue = js_sys::Uint8Array::from(&b"kept"[..]).into();
    let value: wasm_bindgen::JsValue = js_sys::Uint8Array::from(&b"from v1"[..]).into();
    tx.store("state")
        .unwrap()
        .put(&value, Some(&key))
        .await
        .unwrap();
    tx.done().await.unwrap();
    old.close();

    let store = IndexedDbStore::open(&name).await.unwrap();
    assert_eq!(
        store.get(Namespace::State, b"kept").await.unwrap(),
        Some(b"from v1".to_vec())
    );
    store
        .commit(Batch::new().put(Namespace::Audit, b"a", vec![1]).put(
            Namespace::Blobs,
            b"b",
            vec![2],
        ))
        .await
        .unwrap();
    assert_eq!(
        store.get(Namespace::Audit, b"a").await.unwrap(),
        Some(vec![1])
    );
    store.close();
}
