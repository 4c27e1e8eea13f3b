//! The store in the browser: one IndexedDB database, one object store per [`Namespace`],
//! binary keys (IndexedDB orders them bytewise) and `Uint8Array` values.
//!
//! A batch is one readwrite transaction: every request is issued, then the transaction is
//! awaited; nothing else is awaited inside it, since IndexedDB commits a transaction on its own
//! as soon as no request is pending.

use js_sys::Uint8Array;
use rexie::{KeyRange, ObjectStore, Rexie, TransactionMode};
use wasm_bindgen::JsValue;

use crate::{prefix_end, Batch, Namespace, Op, Store, StoreError};

/// Bump when object stores change; `open` then upgrades the database.
const SCHEMA_VERSION: u32 = 1;

pub struct IndexedDbStore {
    db: Rexie,
}

fn bytes(value: &[u8]) -> JsValue {
    Uint8Array::from(value).into()
}

fn to_vec(value: &JsValue) -> Vec<u8> {
    Uint8Array::new(value).to_vec()
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
    /// Opens (creating or upgrading) the database `name`.
    pub async fn open(name: &str) -> Result<Self, StoreError> {
        let mut builder = Rexie::builder(name).version(SCHEMA_VERSION);
        for ns in Namespace::ALL {
            builder = builder.add_object_store(ObjectStore::new(ns.as_str()));
        }
        let db = builder.build().await.map_err(|e| {
            StoreError::Unavailable(format!("cannot open IndexedDB database {name:?}: {e:?}"))
        })?;
        Ok(Self { db })
    }

    /// Closes the connection (tests reopen to check durability).
    pub fn close(self) {
        self.db.close();
    }

    /// Deletes a whole database (tests clean up with it).
    pub async fn delete_database(name: &str) -> Result<(), StoreError> {
        Rexie::delete(name).await.map_err(error)
    }
}

impl Store for IndexedDbStore {
    async fn get(&self, ns: Namespace, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let tx = self
            .db
            .transaction(&[ns.as_str()], TransactionMode::ReadOnly)
            .map_err(error)?;
        let store = tx.store(ns.as_str()).map_err(error)?;
        let value = store.get(bytes(key)).await.map_err(error)?;
        Ok(value.map(|v| to_vec(&v)))
    }

    async fn scan_prefix(
        &self,
        ns: Namespace,
        prefix: &[u8],
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>, StoreError> {
        let range = match (prefix.is_empty(), prefix_end(prefix)) {
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
        .map_err(|e| StoreError::Backend(format!("key range: {e:?}")))?;
        let tx = self
            .db
            .transaction(&[ns.as_str()], TransactionMode::ReadOnly)
            .map_err(error)?;
        let store = tx.store(ns.as_str()).map_err(error)?;
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

    async fn commit(&self, batch: Batch) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let names: Vec<&str> = batch
            .namespaces()
            .into_iter()
            .map(Namespace::as_str)
            .collect();
        let tx = self
            .db
            .transaction(&names, TransactionMode::ReadWrite)
            .map_err(error)?;
        let mut stores = std::collections::HashMap::new();
        for name in &names {
            stores.insert(*name, tx.store(name).map_err(error)?);
        }
        // Each request is awaited in turn; the continuation runs as a microtask of the request's
        // success event, while the transaction is still active, so no other await may come here.
        for op in batch.ops() {
            let outcome = match op {
                Op::Put { ns, key, value } => stores[ns.as_str()]
                    .put(&bytes(value), Some(&bytes(key)))
                    .await
                    .map(|_| ()),
                Op::Delete { ns, key } => stores[ns.as_str()].delete(bytes(key)).await,
            };
            if let Err(e) = outcome {
                let _ = tx.abort().await;
                return Err(error(e));
            }
        }
        let result = tx.done().await.map_err(error)?;
        if result.is_committed() {
            Ok(())
        } else {
            Err(StoreError::Backend("the transaction was aborted".into()))
        }
    }
}
