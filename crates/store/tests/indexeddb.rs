//! The store conformance suite on real IndexedDB, in headless Chromium (wasm-bindgen-test).
#![cfg(target_arch = "wasm32")]

use std::cell::Cell;

use tabnode_store::conformance::big;
use tabnode_store::{
    conformance, Batch, Durability, IndexedDbStore, Namespace, Store, PARTED_MAX, PART_BYTES,
    WHOLE_MAX,
};
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::JsValue;
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
async fn indexeddb_as_the_sole_writer_passes_the_conformance_suite() {
    conformance::run_all(|| {
        let name = unique("conformance-sole");
        async move { IndexedDbStore::open(&name).await.unwrap().sole_writer() }
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
    assert_eq!(tabnode_store::INDEXEDDB_SCHEMA_VERSION, 3);
    let name = unique("upgrade");
    // What schema version 1 created, with a value in it.
    let stores = [
        "meta", "keys", "apps", "contexts", "state", "private", "deltas",
    ];
    old_database(&name, 1, &stores, &[(b"kept", b"from v1".to_vec())]).await;

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

#[wasm_bindgen(inline_js = "
export function count_parts(name) {
  return new Promise((resolve, reject) => {
    const open = indexedDB.open(name);
    open.onerror = () => reject(open.error);
    open.onsuccess = () => {
      const db = open.result;
      const count = db.transaction('parts').objectStore('parts').count();
      count.onsuccess = () => { db.close(); resolve(count.result); };
      count.onerror = () => reject(count.error);
    };
  });
}
")]
extern "C" {
    /// How many records object store `parts` of database `name` holds.
    async fn count_parts(name: &str) -> JsValue;
}

#[wasm_bindgen(inline_js = "
function tx(name, run) {
  return new Promise((resolve, reject) => {
    const open = indexedDB.open(name);
    open.onerror = () => reject(open.error);
    open.onsuccess = () => {
      const db = open.result;
      let t;
      try { t = db.transaction(['state', 'parts'], 'readwrite'); run(t); } catch (e) { db.close(); reject(e); return; }
      t.oncomplete = () => { db.close(); resolve(); };
      t.onerror = () => reject(t.error);
    };
  });
}
export function flip_byte_of_part(name, key, i) {
  return tx(name, (t) => {
    const parts = t.objectStore('parts'), at = ['state', key, i];
    parts.get(at).onsuccess = (e) => { const part = e.target.result; part[0] ^= 0xff; parts.put(part, at); };
  });
}
export function write_in_parts_of(name, key, value, size) {
  return tx(name, (t) => {
    let i = 0;
    for (let at = 0; at < value.length; at += size) t.objectStore('parts').put(value.slice(at, at + size), ['state', key, i++]);
    t.objectStore('state').put(value.length, key);
  });
}
")]
extern "C" {
    /// Flips the first byte of part `i` of `key`'s value in `state`, behind the store's back.
    async fn flip_byte_of_part(name: &str, key: &[u8], i: u32);
    /// Writes `value` under `key` in `state` as parts of `size` bytes, as an older build did.
    async fn write_in_parts_of(name: &str, key: &[u8], value: &[u8], size: u32);
}

/// A database as an older schema `version` made it: its object `stores`, and `rows` in `state`.
async fn old_database(name: &str, version: u32, stores: &[&str], rows: &[(&[u8], Vec<u8>)]) {
    use rexie::{ObjectStore, Rexie, TransactionMode};
    let mut builder = Rexie::builder(name).version(version);
    for store in stores {
        builder = builder.add_object_store(ObjectStore::new(store));
    }
    let old = builder.build().await.unwrap();
    let tx = old
        .transaction(&["state"], TransactionMode::ReadWrite)
        .unwrap();
    for (key, value) in rows {
        let key: JsValue = js_sys::Uint8Array::from(*key).into();
        let value: JsValue = js_sys::Uint8Array::from(&value[..]).into();
        tx.store("state")
            .unwrap()
            .put(&value, Some(&key))
            .await
            .unwrap();
    }
    tx.done().await.unwrap();
    old.close();
}

async fn parts_in(name: &str) -> f64 {
    count_parts(name).await.as_f64().unwrap()
}

/// How many parts a value of `len` bytes is stored in.
fn parts(len: usize) -> f64 {
    len.div_ceil(PART_BYTES) as f64
}

#[wasm_bindgen_test]
async fn a_value_in_parts_leaves_no_part_behind_when_overwritten_or_deleted_even_after_reopening() {
    let ns = Namespace::State;
    let name = unique("parts");
    let store = IndexedDbStore::open(&name).await.unwrap();
    store
        .commit(
            Batch::new()
                .put(ns, b"x", big(2 * WHOLE_MAX + 1, 1))
                .put(ns, b"y", big(WHOLE_MAX + 1, 2))
                .put(ns, b"at", big(WHOLE_MAX, 3))
                .put(Namespace::Blobs, b"huge", big(PARTED_MAX + 1, 4)),
        )
        .await
        .unwrap();
    let (x, y) = (parts(2 * WHOLE_MAX + 1), parts(WHOLE_MAX + 1));
    assert_eq!(
        parts_in(&name).await,
        x + y,
        "x's and y's parts; the others whole"
    );
    store
        .commit(Batch::new().put(ns, b"x", big(WHOLE_MAX + 1, 5)))
        .await
        .unwrap();
    assert_eq!(
        parts_in(&name).await,
        2.0 * y,
        "x's parts past its new last went"
    );
    store
        .commit(Batch::new().put(ns, b"y", b"small".to_vec()))
        .await
        .unwrap();
    assert_eq!(parts_in(&name).await, y, "y's parts went");
    store.close();
    // A new connection knows which keys have parts from the database.
    let store = IndexedDbStore::open(&name).await.unwrap();
    assert_eq!(
        store.get(ns, b"x").await.unwrap(),
        Some(big(WHOLE_MAX + 1, 5))
    );
    store.commit(Batch::new().delete(ns, b"x")).await.unwrap();
    assert_eq!(parts_in(&name).await, 0.0, "x's parts went with it");
    store
        .commit(Batch::new().put(Namespace::Blobs, b"huge", big(3 * WHOLE_MAX, 6)))
        .await
        .unwrap();
    assert_eq!(parts_in(&name).await, parts(3 * WHOLE_MAX));
    store.close();
    let store = IndexedDbStore::open(&name).await.unwrap();
    store
        .commit(Batch::new().put(Namespace::Blobs, b"huge", big(PARTED_MAX + 1, 7)))
        .await
        .unwrap();
    assert_eq!(parts_in(&name).await, 0.0, "stored whole again: no parts");
    assert_eq!(
        store.get(Namespace::Blobs, b"huge").await.unwrap(),
        Some(big(PARTED_MAX + 1, 7))
    );
    assert_eq!(store.get(ns, b"y").await.unwrap(), Some(b"small".to_vec()));
    store.close();
    IndexedDbStore::delete_database(&name).await.unwrap();
}

#[wasm_bindgen_test]
async fn a_value_another_connection_wrote_in_parts_reads_whole_and_is_then_rewritten_without_its_parts(
) {
    let ns = Namespace::State;
    let name = unique("two-connections");
    let here = IndexedDbStore::open(&name).await.unwrap();
    let other = IndexedDbStore::open(&name).await.unwrap();
    other
        .commit(Batch::new().put(ns, b"k", big(2 * WHOLE_MAX + 1, 1)).put(
            ns,
            b"j",
            big(WHOLE_MAX + 1, 2),
        ))
        .await
        .unwrap();
    // `here` opened before: it learns of the parts from what it reads.
    assert_eq!(
        here.get(ns, b"k").await.unwrap(),
        Some(big(2 * WHOLE_MAX + 1, 1))
    );
    assert_eq!(
        here.last_with_prefix(ns, b"j").await.unwrap(),
        Some((b"j".to_vec(), big(WHOLE_MAX + 1, 2)))
    );
    here.commit(
        Batch::new()
            .put(ns, b"k", b"small".to_vec())
            .delete(ns, b"j"),
    )
    .await
    .unwrap();
    assert_eq!(parts_in(&name).await, 0.0, "no part left behind");
    assert_eq!(other.get(ns, b"k").await.unwrap(), Some(b"small".to_vec()));
    assert_eq!(other.scan_prefix(ns, b"").await.unwrap().len(), 1);
    here.close();
    other.close();
    IndexedDbStore::delete_database(&name).await.unwrap();
}

#[wasm_bindgen_test]
async fn a_store_of_schema_version_2_opens_upgraded_and_reads_its_big_values_whole() {
    use rexie::{ObjectStore, Rexie};
    let name = unique("upgrade-2");
    // What schema version 2 created, with values over the size now stored in parts, whole.
    let stores = [
        "meta", "keys", "apps", "contexts", "state", "private", "deltas", "audit", "blobs",
    ];
    let rows = [
        (&b"big"[..], big(100_000, 1)),
        (b"bigger", big(3 * WHOLE_MAX, 2)),
        (b"small", b"v2".to_vec()),
    ];
    old_database(&name, 2, &stores, &rows).await;

    let ns = Namespace::State;
    let store = IndexedDbStore::open(&name).await.unwrap();
    assert_eq!(store.get(ns, b"big").await.unwrap(), Some(big(100_000, 1)));
    let rows = store.scan_prefix(ns, b"").await.unwrap();
    assert!(
        rows == vec![
            (b"big".to_vec(), big(100_000, 1)),
            (b"bigger".to_vec(), big(3 * WHOLE_MAX, 2)),
            (b"small".to_vec(), b"v2".to_vec()),
        ],
        "every row as version 2 wrote it"
    );
    assert_eq!(parts_in(&name).await, 0.0);
    // Rewritten, a big value goes in parts; one written whole by version 2 is replaced.
    store
        .commit(Batch::new().put(ns, b"big", big(2 * WHOLE_MAX + 1, 3)).put(
            ns,
            b"bigger",
            b"now small".to_vec(),
        ))
        .await
        .unwrap();
    assert_eq!(parts_in(&name).await, parts(2 * WHOLE_MAX + 1));
    assert_eq!(
        store.get(ns, b"big").await.unwrap(),
        Some(big(2 * WHOLE_MAX + 1, 3))
    );
    assert_eq!(
        store.get(ns, b"bigger").await.unwrap(),
        Some(b"now small".to_vec())
    );
    store.close();
    // A build of version 2 cannot open it (IndexedDB refuses an older version), so it never
    // reads a value in parts as a row.
    let mut builder = Rexie::builder(&name).version(2);
    for store in stores {
        builder = builder.add_object_store(ObjectStore::new(store));
    }
    assert!(
        builder.build().await.is_err(),
        "an older schema version is refused"
    );
    IndexedDbStore::delete_database(&name).await.unwrap();
}

/// Commits `value` under `key` in the state namespace of `store`.
async fn put_state(store: &IndexedDbStore, key: &[u8], value: Vec<u8>) {
    let batch = Batch::new().put(Namespace::State, key, value);
    store.commit(batch).await.unwrap();
}

#[wasm_bindgen_test]
async fn a_sole_writer_rewrites_only_the_parts_of_a_big_value_that_changed() {
    let ns = Namespace::State;
    let old = big(20 * PART_BYTES + 100, 1);
    let mut new = old.clone();
    new[66] ^= 1;
    new.extend_from_slice(&big(500, 2));
    for sole in [true, false] {
        let name = unique("sole-writer");
        let store = IndexedDbStore::open(&name).await.unwrap();
        let store = if sole { store.sole_writer() } else { store };
        put_state(&store, b"k", old.clone()).await;
        // Part 10 changed behind the store's back: the only writer rewrites parts 0 (changed)
        // and 20 (grown) alone, so the change stays; a store that is not rewrites it.
        flip_byte_of_part(&name, b"k", 10).await;
        put_state(&store, b"k", new.clone()).await;
        let mut expected = new.clone();
        if sole {
            expected[10 * PART_BYTES] ^= 0xff;
        }
        assert!(
            store.get(ns, b"k").await.unwrap() == Some(expected),
            "sole: {sole}"
        );
        assert_eq!(parts_in(&name).await, parts(new.len()));
        store.close();
        IndexedDbStore::delete_database(&name).await.unwrap();
    }
}

#[wasm_bindgen_test]
async fn a_sole_writer_compares_against_a_value_it_read_but_not_one_in_an_older_builds_parts() {
    let ns = Namespace::State;
    let name = unique("sole-read");
    let old = big(3 * WHOLE_MAX + 5, 1);
    // As a build with 60 KiB parts wrote it: read whole, then rewritten in every part.
    IndexedDbStore::open(&name).await.unwrap().close();
    write_in_parts_of(&name, b"old", &old, WHOLE_MAX as u32).await;
    let store = IndexedDbStore::open(&name).await.unwrap().sole_writer();
    assert!(store.get(ns, b"old").await.unwrap() == Some(old.clone()));
    let mut edited = old.clone();
    edited[1] ^= 1;
    put_state(&store, b"old", edited.clone()).await;
    assert!(store.get(ns, b"old").await.unwrap() == Some(edited.clone()));
    assert_eq!(
        parts_in(&name).await,
        parts(edited.len()),
        "none of the old parts left"
    );
    store.close();
    // A new connection knows nothing of the value until it reads it, then compares against it.
    let store = IndexedDbStore::open(&name).await.unwrap().sole_writer();
    assert!(store.get(ns, b"old").await.unwrap() == Some(edited.clone()));
    flip_byte_of_part(&name, b"old", 7).await;
    let mut again = edited.clone();
    again[2] ^= 1;
    put_state(&store, b"old", again.clone()).await;
    again[7 * PART_BYTES] ^= 0xff;
    assert!(
        store.get(ns, b"old").await.unwrap() == Some(again),
        "part 7 was not rewritten: compared against the value read"
    );
    store.close();
    IndexedDbStore::delete_database(&name).await.unwrap();
}
