//! The store conformance suite on real IndexedDB, in headless Chromium (wasm-bindgen-test).
#![cfg(target_arch = "wasm32")]

use std::cell::Cell;

use tabnode_store::{conformance, Batch, IndexedDbStore, Namespace, Store};
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
