//! The store in the browser: one IndexedDB database, one object store per [`Namespace`],
//! binary keys (IndexedDB orders them bytewise) and `Uint8Array` values.
//!
//! A batch is one readwrite transaction: every request is issued, then the transaction is
//! committed (`commit()`) and awaited; nothing else is awaited inside it, since IndexedDB
//! commits a transaction on its own as soon as no request is pending. Writes go through a few
//! lines of JS (below), one call per write: rexie does not show why a transaction aborted, and a
//! full quota must be told apart. Reads go through rexie. A batch in two parts
//! ([`Store::commit_parts`]) is one transaction whose first writes are issued before the rest
//! is made.
//!
//! Every readwrite transaction names its [`Durability`] (`relaxed` unless the embedder chose
//! otherwise): what a committed batch survives is then the store's choice, not each browser's
//! default. What each promises, and why relaxed: docs/storage.md, *Durability*.

use js_sys::{Array, Object, Uint8Array};
use rexie::{Direction, KeyRange, ObjectStore, Rexie, TransactionMode};
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::JsValue;
use web_sys::IdbDatabase;

use crate::{prefix_end, Batch, Namespace, Op, Store, StoreError};

/// Bump when object stores change; `open` then upgrades the database, creating the new stores
/// and keeping every existing one's data. History: 1 had meta, keys, apps, contexts, state,
/// private and deltas; 2 added audit and blobs.
pub const SCHEMA_VERSION: u32 = 2;

/// What a committed write survives: IndexedDB's `durability` hint on readwrite transactions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Committed once the browser has handed the write to the operating system: it survives the
    /// tab or the browser crashing, and may be lost if the OS crashes or the power fails. What
    /// RocksDB's default writes (merod's) promise, and what Chromium does with no hint.
    #[default]
    Relaxed,
    /// Committed once the write is flushed to the disk (fsync): it survives a power loss too,
    /// at the cost of a flush per transaction.
    Strict,
}

impl Durability {
    /// The name IndexedDB (and the page's `NodeOptions.durability`) uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Relaxed => "relaxed",
            Self::Strict => "strict",
        }
    }

    /// The durability `name` names, if any.
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Relaxed, Self::Strict]
            .into_iter()
            .find(|d| d.as_str() == name)
    }
}

/// A batch's writes in one readwrite transaction, issued from JS: one call across the boundary
/// per write (the key and value arrive as views of wasm memory and are copied once, into
/// buffers of their own), then `commit()`, resolving to `null` once committed or to the name of
/// the error that aborted it. A write that throws aborts the transaction: nothing of the batch
/// is written.
#[wasm_bindgen(inline_js = r#"
export function begin(db, names, options) { return db.transaction(names, 'readwrite', options); }
export function put(tx, stores, ns, key, value) { tx.objectStore(stores[ns]).put(value.slice(), key.slice()); }
export function remove(tx, stores, ns, key) { tx.objectStore(stores[ns]).delete(key.slice()); }
export function abort(tx) { try { tx.abort(); } catch (_) { /* already over */ } }
export function finish(tx) {
  const done = new Promise((resolve) => {
    tx.oncomplete = () => resolve(null);
    tx.onabort = () => resolve(tx.error ? tx.error.name : 'AbortError');
  });
  tx.commit();
  return done;
}
"#)]
extern "C" {
    /// `db.transaction(names, 'readwrite', options)`.
    #[wasm_bindgen(catch)]
    fn begin(db: &IdbDatabase, names: &Array, options: &Object) -> Result<JsValue, JsValue>;
    /// Puts `value` under `key` in object store `stores[ns]` of `tx`.
    #[wasm_bindgen(catch)]
    fn put(tx: &JsValue, stores: &Array, ns: u32, key: &[u8], value: &[u8]) -> Result<(), JsValue>;
    /// Deletes `key` in object store `stores[ns]` of `tx`.
    #[wasm_bindgen(catch)]
    fn remove(tx: &JsValue, stores: &Array, ns: u32, key: &[u8]) -> Result<(), JsValue>;
    /// Aborts `tx` if it is still under way.
    fn abort(tx: &JsValue);
    /// Commits `tx`; the promise resolves to `null` once committed, else to the error's name.
    #[wasm_bindgen(catch)]
    fn finish(tx: &JsValue) -> Result<js_sys::Promise, JsValue>;
}

pub struct IndexedDbStore {
    db: Rexie,
    /// A second connection, for writes (opened with idb): the JS above makes its transactions.
    writer: IdbDatabase,
    /// The options of every readwrite transaction (`{durability}`).
    write_options: Object,
    /// Every object store's name, in the order of [`Namespace::ALL`] (made once: each write
    /// names its store by index, not by a string decoded anew).
    store_names: Array,
    durability: Durability,
}

/// A copy of `value` in its own `ArrayBuffer`. Never a view of wasm memory for a value stored:
/// IndexedDB's structured clone keeps a view's whole buffer, so each put would store all of
/// the node's memory (a set took 100 ms on disk, not 4, when tried).
fn bytes(value: &[u8]) -> JsValue {
    Uint8Array::from(value).into()
}

fn to_vec(value: &JsValue) -> Vec<u8> {
    Uint8Array::new(value).to_vec()
}

/// The key range of every key that starts with `prefix` (`None`: the whole store).
fn prefix_range(prefix: &[u8]) -> Result<Option<KeyRange>, StoreError> {
    match (prefix.is_empty(), prefix_end(prefix)) {
        (true, _) => None,
        (false, Some(end)) => Some(KeyRange::bound(
            &bytes(prefix),
            &bytes(&end),
            Some(false),
            Some(true),
        )),
        (false, None) => Some(KeyRange::lower_bound(&bytes(prefix), Some(false))),
    }
    .transpose()
    .map_err(|e| StoreError::Backend(format!("key range: {e:?}")))
}

/// Maps IndexedDB failures, telling a full quota apart (rexie hides the DOMException's name,
/// but keeps it in its debug form).
fn error(err: rexie::Error) -> StoreError {
    let text = format!("{err:?}");
    if text.contains("QuotaExceeded") {
        StoreError::QuotaExceeded
    } else {
        StoreError::Backend(text)
    }
}

impl IndexedDbStore {
    /// Opens (creating or upgrading) the database `name`, its writes [`Durability::Relaxed`].
    pub async fn open(name: &str) -> Result<Self, StoreError> {
        Self::open_with(name, Durability::default()).await
    }

    /// Opens the database `name`, every write committed with `durability`.
    pub async fn open_with(name: &str, durability: Durability) -> Result<Self, StoreError> {
        let mut builder = Rexie::builder(name).version(SCHEMA_VERSION);
        for ns in Namespace::ALL {
            builder = builder.add_object_store(ObjectStore::new(ns.as_str()));
        }
        let db = builder.build().await.map_err(|e| {
            StoreError::Unavailable(format!("cannot open IndexedDB database {name:?}: {e:?}"))
        })?;
        let writer = idb::Factory::new()
            .and_then(|f| f.open(name, None))
            .map_err(|e| {
                StoreError::Unavailable(format!("cannot open IndexedDB database {name:?}: {e}"))
            })?
            .await
            .map_err(|e| {
                StoreError::Unavailable(format!("cannot open IndexedDB database {name:?}: {e}"))
            })?
            .into();
        let write_options = Object::new();
        js_sys::Reflect::set(
            &write_options,
            &"durability".into(),
            &durability.as_str().into(),
        )
        .map_err(|e| StoreError::Backend(format!("transaction options: {e:?}")))?;
        let store_names = Namespace::ALL
            .iter()
            .map(|ns| JsValue::from(ns.as_str()))
            .collect();
        Ok(Self {
            db,
            writer,
            write_options,
            store_names,
            durability,
        })
    }

    /// What this store's writes survive once committed.
    pub fn durability(&self) -> Durability {
        self.durability
    }

    /// One namespace's object store in a new read-only transaction, which lives as long as the
    /// requests made on it.
    fn reader(&self, ns: Namespace) -> Result<rexie::Store, StoreError> {
        let tx = self
            .db
            .transaction(&[ns.as_str()], TransactionMode::ReadOnly)
            .map_err(error)?;
        tx.store(ns.as_str()).map_err(error)
    }

    /// Closes the connection (tests reopen to check durability).
    pub fn close(self) {
        self.writer.close();
        self.db.close();
    }

    /// Deletes a whole database (tests clean up with it).
    pub async fn delete_database(name: &str) -> Result<(), StoreError> {
        Rexie::delete(name).await.map_err(error)
    }
}

impl Store for IndexedDbStore {
    async fn get(&self, ns: Namespace, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let store = self.reader(ns)?;
        let value = store.get(bytes(key)).await.map_err(error)?;
        Ok(value.map(|v| to_vec(&v)))
    }

    async fn scan_prefix(
        &self,
        ns: Namespace,
        prefix: &[u8],
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>, StoreError> {
        let range = prefix_range(prefix)?;
        let store = self.reader(ns)?;
        // Two bulk requests over the same range in one transaction: keys and values line up.
        let keys = store
            .get_all_keys(range.clone(), None)
            .await
            .map_err(error)?;
        let values = store.get_all(range, None).await.map_err(error)?;
        if keys.len() != values.len() {
            return Err(StoreError::Backend(
                "keys and values of one range differ in number".into(),
            ));
        }
        Ok(keys
            .iter()
            .zip(values.iter())
            .map(|(k, v)| (to_vec(k), to_vec(v)))
            .collect())
    }

    async fn keys_with_prefix(
        &self,
        ns: Namespace,
        prefix: &[u8],
        limit: usize,
    ) -> Result<Option<Vec<Vec<u8>>>, StoreError> {
        let range = prefix_range(prefix)?;
        let store = self.reader(ns)?;
        // One more than the limit tells "more than `limit`" apart without reading them all.
        let asked = u32::try_from(limit.saturating_add(1)).unwrap_or(u32::MAX);
        let keys = store
            .get_all_keys(range, Some(asked))
            .await
            .map_err(error)?;
        Ok((keys.len() <= limit).then(|| keys.iter().map(to_vec).collect()))
    }

    async fn last_with_prefix(
        &self,
        ns: Namespace,
        prefix: &[u8],
    ) -> Result<Option<(Vec<u8>, Vec<u8>)>, StoreError> {
        let range = prefix_range(prefix)?;
        let store = self.reader(ns)?;
        // A cursor from the end of the range, one step.
        let last = store
            .scan(range, Some(1), None, Some(Direction::Prev))
            .await
            .map_err(error)?;
        Ok(last.first().map(|(k, v)| (to_vec(k), to_vec(v))))
    }

    async fn commit(&self, batch: Batch) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let tx = self.begin(&batch.namespaces())?;
        self.issue(&tx, &batch)?;
        finish_transaction(&tx).await
    }

    /// One transaction over `first`'s namespaces and `later`: `first`'s writes are issued
    /// before `rest` is made, so IndexedDB's thread writes them meanwhile.
    async fn commit_parts(
        &self,
        first: Batch,
        later: &[Namespace],
        rest: impl FnOnce() -> Result<Batch, StoreError>,
    ) -> Result<(), StoreError> {
        let mut scope = first.namespaces();
        scope.extend_from_slice(later);
        scope.sort();
        scope.dedup();
        let tx = self.begin(&scope)?;
        self.issue(&tx, &first)?;
        let rest = rest().and_then(|rest| crate::within(&rest, later).map(|()| rest));
        match rest {
            Ok(rest) => self.issue(&tx, &rest)?,
            Err(e) => {
                abort(&tx);
                return Err(e);
            }
        }
        finish_transaction(&tx).await
    }
}

impl IndexedDbStore {
    /// A readwrite transaction over `scope`.
    fn begin(&self, scope: &[Namespace]) -> Result<JsValue, StoreError> {
        let names: Array = scope
            .iter()
            .map(|ns| self.store_names.get(index(ns)))
            .collect();
        begin(&self.writer, &names, &self.write_options)
            .map_err(|e| StoreError::Backend(format!("cannot start a transaction: {e:?}")))
    }

    /// Issues every write of `batch` in `tx`; one that cannot be issued aborts the transaction
    /// (nothing of it is written).
    fn issue(&self, tx: &JsValue, batch: &Batch) -> Result<(), StoreError> {
        for op in batch.ops() {
            let issued = match op {
                Op::Put { ns, key, value } => put(tx, &self.store_names, index(ns), key, value),
                Op::Delete { ns, key } => remove(tx, &self.store_names, index(ns), key),
            };
            if let Err(e) = issued {
                abort(tx);
                return Err(StoreError::Backend(format!("a write was refused: {e:?}")));
            }
        }
        Ok(())
    }
}

/// A namespace's place in [`Namespace::ALL`] (and in `store_names`).
fn index(ns: &Namespace) -> u32 {
    Namespace::ALL.iter().position(|n| n == ns).unwrap_or(0) as u32
}

/// Commits `tx` (now, not once the page has had every put's success event, for which
/// IndexedDB's own commit waits: one round trip to the main thread fewer) and waits until it is
/// committed or aborted.
async fn finish_transaction(tx: &JsValue) -> Result<(), StoreError> {
    let done = finish(tx).map_err(|e| {
        abort(tx);
        StoreError::Backend(format!("cannot commit: {e:?}"))
    })?;
    let outcome = wasm_bindgen_futures::JsFuture::from(done)
        .await
        .map_err(|e| StoreError::Backend(format!("the transaction failed: {e:?}")))?;
    match outcome.as_string().as_deref() {
        None => Ok(()),
        Some("QuotaExceededError") => Err(StoreError::QuotaExceeded),
        Some(name) => Err(StoreError::Backend(format!(
            "the transaction was aborted: {name}"
        ))),
    }
}
