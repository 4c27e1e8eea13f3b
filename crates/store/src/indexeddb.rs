//! The store in the browser: one IndexedDB database, one object store per [`Namespace`],
//! binary keys (IndexedDB orders them bytewise) and `Uint8Array` values.
//!
//! A batch is one readwrite transaction: every request is issued, then the transaction is
//! awaited; nothing else is awaited inside it, since IndexedDB commits a transaction on its own
//! as soon as no request is pending. Writes go through `idb` directly (rexie is built on it):
//! rexie does not show why a transaction aborted, and a full quota must be told apart.
//!
//! Every readwrite transaction names its [`Durability`] (`relaxed` unless the embedder chose
//! otherwise): what a committed batch survives is then the store's choice, not each browser's
//! default. What each promises, and why relaxed: docs/storage.md, *Durability*.

use idb::request::Request;
use js_sys::{Array, Object, Uint8Array};
use rexie::{Direction, KeyRange, ObjectStore, Rexie, TransactionMode};
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{IdbDatabase, IdbTransaction};

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

#[wasm_bindgen]
extern "C" {
    /// An `IDBDatabase`, for the one method web-sys has only behind `web_sys_unstable_apis`.
    #[wasm_bindgen(js_name = IDBDatabase)]
    type Connection;

    /// `IDBDatabase.transaction(names, mode, options)`.
    #[wasm_bindgen(method, catch, js_name = transaction)]
    fn transaction_with_options(
        this: &Connection,
        names: &Array,
        mode: &str,
        options: &Object,
    ) -> Result<IdbTransaction, JsValue>;
}

pub struct IndexedDbStore {
    db: Rexie,
    /// A second connection for writes, through idb, which shows why a transaction aborted.
    writer: IdbDatabase,
    /// The options of every readwrite transaction (`{durability}`).
    write_options: Object,
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
        Ok(Self {
            db,
            writer,
            write_options,
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
        let names: Array = batch
            .namespaces()
            .into_iter()
            .map(|ns| JsValue::from(ns.as_str()))
            .collect();
        let backend = |e: idb::Error| StoreError::Backend(e.to_string());
        let tx: idb::Transaction = self
            .writer
            .unchecked_ref::<Connection>()
            .transaction_with_options(&names, "readwrite", &self.write_options)
            .map_err(|e| StoreError::Backend(format!("cannot start a transaction: {e:?}")))?
            .into();
        // Every request is issued before the transaction is awaited (idb issues them on call),
        // and one is kept to read the transaction's error if it aborts.
        let mut witness = None;
        for op in batch.ops() {
            let (ns, key) = match op {
                Op::Put { ns, key, .. } | Op::Delete { ns, key } => (ns, key),
            };
            let store = tx.object_store(ns.as_str()).map_err(backend)?;
            let request_tx = match op {
                Op::Put { value, .. } => store
                    .put(&bytes(value), Some(&bytes(key)))
                    .map_err(backend)?
                    .transaction(),
                Op::Delete { .. } => store.delete(bytes(key)).map_err(backend)?.transaction(),
            };
            witness = witness.or(request_tx);
        }
        let outcome = tx.await;
        if matches!(outcome, Ok(idb::TransactionResult::Committed)) {
            return Ok(());
        }
        let reason = witness.and_then(|t| t.error()).map(|e| e.name());
        match reason.as_deref() {
            Some("QuotaExceededError") => Err(StoreError::QuotaExceeded),
            Some(name) => Err(StoreError::Backend(format!(
                "the transaction was aborted: {name}"
            ))),
            None => Err(StoreError::Backend(format!(
                "the transaction did not commit: {outcome:?}"
            ))),
        }
    }
}
