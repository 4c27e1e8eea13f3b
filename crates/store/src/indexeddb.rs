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
//! A value over [`WHOLE_MAX`] (in the state namespace, or else up to [`PARTED_MAX`]) is stored
//! as parts: its row holds its length (a number, where a whole value is a `Uint8Array`), and
//! object store `parts` holds its bytes under `[namespace, key, i]`, [`PART_BYTES`] each (the
//! last may be shorter; older builds wrote bigger parts, read alike), written in the same
//! transaction; any other value is one record. Chromium writes a value over 64 KiB to a blob
//! file of its own, which on disk costs far more than the same bytes in records under it (a
//! kv-store set at 1,000 keys rewrites an 89 KB index row). The store knows which keys may have
//! parts (read from `parts` at open, kept as it writes): a read of one is a transaction over the
//! namespace and `parts` (the row and its parts from one snapshot), and joins them; a read of
//! any other key that meets a length anyway (another connection wrote it) reads again so. Every
//! later write of such a key (a smaller value, fewer parts, a delete) deletes the parts it no
//! longer needs in its own transaction; writes of other keys cost nothing more. Why and what it
//! saves: docs/storage.md, *Values in parts*.
//!
//! A store that is its database's only writer ([`IndexedDbStore::sole_writer`]: the page holds
//! the store's Web Lock) keeps the value of each key in parts it wrote or read last, and a
//! rewrite of it writes only the parts that differ (crate::parted says what keeps that right):
//! calimero-storage rewrites a collection's whole index row for each entry added, where the
//! parts that change are its first (the count) and its last (the new entry, the hashes).
//!
//! Every readwrite transaction names its [`Durability`] (`relaxed` unless the embedder chose
//! otherwise): what a committed batch survives is then the store's choice, not each browser's
//! default. What each promises, and why relaxed: docs/storage.md, *Durability*.

use std::cell::{Cell, RefCell};
use std::future::Future;

use js_sys::{Array, Object, Uint8Array};
use rexie::{Direction, KeyRange, ObjectStore, Rexie, TransactionMode};
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::IdbDatabase;

use crate::parted::{in_parts, Parted};
use crate::{prefix_end, Batch, Namespace, Op, Store, StoreError, PART_BYTES};

/// Bump when object stores change; `open` then upgrades the database, creating the new stores
/// and keeping every existing one's data. History: 1 had meta, keys, apps, contexts, state,
/// private and deltas; 2 added audit and blobs; 3 added parts (values over [`WHOLE_MAX`] are
/// written there; the whole values an older version wrote are read as they are).
pub const SCHEMA_VERSION: u32 = 3;

/// The object store of values' parts (keys `[namespace name, key, part number]`).
const PARTS: &str = "parts";

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
function dropParts(tx, name, key, from) { tx.objectStore('parts').delete(IDBKeyRange.bound([name, key, from], [name, key, Infinity])); }
export function put(tx, stores, ns, key, value, parted) {
  const k = key.slice();
  if (parted) dropParts(tx, stores[ns], k, 0);
  tx.objectStore(stores[ns]).put(value.slice(), k);
}
export function remove(tx, stores, ns, key, parted) {
  const k = key.slice();
  if (parted) dropParts(tx, stores[ns], k, 0);
  tx.objectStore(stores[ns]).delete(k);
}
export function put_parts(tx, stores, ns, key, value, size, all, only, trim) {
  const name = stores[ns], k = key.slice(), parts = tx.objectStore('parts');
  const count = Math.ceil(value.length / size);
  const write = (i) => parts.put(value.slice(i * size, (i + 1) * size), [name, k, i]);
  if (all) for (let i = 0; i < count; i++) write(i); else for (const i of only) write(i);
  if (trim) dropParts(tx, name, k, count);
  tx.objectStore(name).put(value.length, k);
}
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
    /// Puts `value` under `key` in object store `stores[ns]` of `tx`, first deleting the key's
    /// parts if `parted`.
    #[wasm_bindgen(catch)]
    fn put(
        tx: &JsValue,
        stores: &Array,
        ns: u32,
        key: &[u8],
        value: &[u8],
        parted: bool,
    ) -> Result<(), JsValue>;
    /// Deletes `key` in object store `stores[ns]` of `tx`, and its parts if `parted`.
    #[wasm_bindgen(catch)]
    fn remove(
        tx: &JsValue,
        stores: &Array,
        ns: u32,
        key: &[u8],
        parted: bool,
    ) -> Result<(), JsValue>;
    /// Puts `value` under `key` as parts of `size` bytes (`all` of them, or those numbered in
    /// `only`; then, if `trim`, deletes any parts after the last), and its length in object
    /// store `stores[ns]`.
    #[wasm_bindgen(catch)]
    #[allow(clippy::too_many_arguments)]
    fn put_parts(
        tx: &JsValue,
        stores: &Array,
        ns: u32,
        key: &[u8],
        value: &[u8],
        size: u32,
        all: bool,
        only: &[u32],
        trim: bool,
    ) -> Result<(), JsValue>;
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
    /// Every key that may have parts (read at open; a key is added when its parts are written,
    /// and stays until the store is closed): a write of one of them deletes its parts. With
    /// `sole_writer`, each one's value too, when known.
    parted: RefCell<Parted>,
    /// Whether no other connection writes the database (see [`IndexedDbStore::sole_writer`]).
    sole_writer: bool,
    /// Readwrite transactions begun and not yet over.
    writing: Cell<u32>,
    /// Readwrite transactions ever begun (a read keeps a value only if none began meanwhile).
    writes: Cell<u64>,
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

/// A row's value when it is whole (bytes, not the length of a value in parts).
fn whole(value: &JsValue) -> Result<Vec<u8>, StoreError> {
    match value.is_instance_of::<Uint8Array>() {
        true => Ok(to_vec(value)),
        false => Err(StoreError::Backend(format!(
            "a row holds neither bytes nor a length: {value:?}"
        ))),
    }
}

/// The key of part `i` of `key`'s value in `ns`.
fn part_key(ns: Namespace, key: &[u8], i: f64) -> JsValue {
    Array::of3(&ns.as_str().into(), &bytes(key), &i.into()).into()
}

/// The value of `len` bytes stored in parts under `key` in `ns`, joined, and whether its parts
/// are laid out in [`PART_BYTES`] (older builds wrote bigger ones).
async fn joined(
    parts: &rexie::Store,
    ns: Namespace,
    key: &[u8],
    len: f64,
) -> Result<(Vec<u8>, bool), StoreError> {
    let all = KeyRange::bound(
        &part_key(ns, key, 0.0),
        &part_key(ns, key, f64::INFINITY),
        None,
        None,
    )
    .map_err(|e| StoreError::Backend(format!("key range: {e:?}")))?;
    let mut out = Vec::with_capacity(len as usize);
    let mut laid_out = true;
    for part in parts.get_all(Some(all), None).await.map_err(error)? {
        let part = Uint8Array::new(&part);
        let at = out.len();
        laid_out &= at % PART_BYTES == 0 && part.length() as usize <= PART_BYTES;
        out.resize(at + part.length() as usize, 0);
        part.copy_to(&mut out[at..]);
    }
    match out.len() as f64 == len {
        true => Ok((out, laid_out)),
        false => Err(StoreError::Backend(format!(
            "a value in parts has {} of its {len} bytes",
            out.len()
        ))),
    }
}

/// The keys with parts in the database (every part's key names its row's).
async fn parted_keys(db: &Rexie) -> Result<Parted, StoreError> {
    let tx = db
        .transaction(&[PARTS], TransactionMode::ReadOnly)
        .map_err(error)?;
    let keys = tx
        .store(PARTS)
        .map_err(error)?
        .get_all_keys(None, None)
        .await
        .map_err(error)?;
    let mut parted = Parted::default();
    for key in keys {
        let key = Array::from(&key);
        let name = key.get(0).as_string();
        let ns = Namespace::ALL
            .into_iter()
            .find(|ns| name.as_deref() == Some(ns.as_str()))
            .ok_or_else(|| StoreError::Backend(format!("a part names no namespace: {name:?}")))?;
        parted.note(ns, &to_vec(&key.get(1)));
    }
    Ok(parted)
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
        for store in Namespace::ALL.iter().map(|ns| ns.as_str()).chain([PARTS]) {
            builder = builder.add_object_store(ObjectStore::new(store));
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
        let parted = RefCell::new(parted_keys(&db).await?);
        Ok(Self {
            db,
            writer,
            write_options,
            store_names,
            durability,
            parted,
            sole_writer: false,
            writing: Cell::new(0),
            writes: Cell::new(0),
        })
    }

    /// Tells the store that no other connection writes its database while it is open (the
    /// page holds the store's Web Lock): a rewrite of a value in parts then writes only the
    /// parts that changed since this store last wrote or read it. Another writer would leave
    /// such a value wrong, so this is only for a store that is sure.
    pub fn sole_writer(mut self) -> Self {
        self.sole_writer = true;
        self
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

    /// The rows `read` reads from `ns`'s object store, each value whole, in a new read-only
    /// transaction: over `ns` and the parts (a row and its parts from one snapshot) if `parted`
    /// may be, else over `ns` alone, and then if a value read is in parts (another connection
    /// wrote it), `read` reads again as if `parted`, and the store knows that key has parts.
    async fn read_whole<F, Fut>(
        &self,
        ns: Namespace,
        parted: bool,
        read: F,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>, StoreError>
    where
        F: Fn(rexie::Store) -> Fut,
        Fut: Future<Output = Result<Vec<(Vec<u8>, JsValue)>, StoreError>>,
    {
        let writes = self.writes.get();
        if !parted {
            let rows = read(self.reader(ns)?).await?;
            if rows.iter().all(|(_, value)| value.as_f64().is_none()) {
                return rows
                    .iter()
                    .map(|(key, value)| Ok((key.clone(), whole(value)?)))
                    .collect();
            }
        }
        let tx = self
            .db
            .transaction(&[ns.as_str(), PARTS], TransactionMode::ReadOnly)
            .map_err(error)?;
        let rows = read(tx.store(ns.as_str()).map_err(error)?).await?;
        let parts = tx.store(PARTS).map_err(error)?;
        let mut out = Vec::with_capacity(rows.len());
        for (key, value) in rows {
            let value = match value.as_f64() {
                None => whole(&value)?,
                Some(len) => {
                    let (value, laid_out) = joined(&parts, ns, &key, len).await?;
                    // Known from now on, if another connection wrote it: a write of it here
                    // then deletes its parts. Its bytes are what the parts hold if no write
                    // began since this read did.
                    let mut parted = self.parted.borrow_mut();
                    match self.sole_writer && laid_out && self.writes.get() == writes {
                        true => parted.keep(ns, &key, &value),
                        false => parted.note(ns, &key),
                    }
                    value
                }
            };
            out.push((key, value));
        }
        Ok(out)
    }

    /// Whether a key of `ns` that starts with `prefix` may have parts.
    fn parts_under(&self, ns: Namespace, prefix: &[u8]) -> bool {
        self.parted.borrow().any_under(ns, prefix)
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
        let parted = self.parted.borrow().may_have(ns, key);
        let rows = self
            .read_whole(ns, parted, |store| async move {
                let value = store.get(bytes(key)).await.map_err(error)?;
                Ok(value.map(|v| (key.to_vec(), v)).into_iter().collect())
            })
            .await?;
        Ok(rows.into_iter().next().map(|(_, value)| value))
    }

    async fn scan_prefix(
        &self,
        ns: Namespace,
        prefix: &[u8],
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>, StoreError> {
        let range = prefix_range(prefix)?;
        self.read_whole(ns, self.parts_under(ns, prefix), |store| {
            let range = range.clone();
            async move {
                // Two bulk requests over the same range in one transaction: keys and values
                // line up.
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
                Ok(keys.iter().map(to_vec).zip(values).collect())
            }
        })
        .await
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
        let last = self
            .read_whole(ns, self.parts_under(ns, prefix), |store| {
                let range = range.clone();
                async move {
                    // A cursor from the end of the range, one step.
                    let last = store
                        .scan(range, Some(1), None, Some(Direction::Prev))
                        .await
                        .map_err(error)?;
                    Ok(last.into_iter().map(|(k, v)| (to_vec(&k), v)).collect())
                }
            })
            .await?;
        Ok(last.into_iter().next())
    }

    async fn commit(&self, batch: Batch) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let writing = Writing::begin(self);
        let tx = self.begin(&batch.namespaces())?;
        self.issue(&tx, &batch, writing.compare)?;
        finish_transaction(&tx).await?;
        writing.committed();
        Ok(())
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
        let writing = Writing::begin(self);
        let tx = self.begin(&scope)?;
        self.issue(&tx, &first, writing.compare)?;
        let rest = rest().and_then(|rest| crate::within(&rest, later).map(|()| rest));
        match rest {
            Ok(rest) => self.issue(&tx, &rest, writing.compare)?,
            Err(e) => {
                abort(&tx);
                return Err(e);
            }
        }
        finish_transaction(&tx).await?;
        writing.committed();
        Ok(())
    }
}

impl IndexedDbStore {
    /// A readwrite transaction over `scope`.
    fn begin(&self, scope: &[Namespace]) -> Result<JsValue, StoreError> {
        // Every write may write or delete parts.
        let names: Array = scope
            .iter()
            .map(|ns| self.store_names.get(index(ns)))
            .chain([JsValue::from(PARTS)])
            .collect();
        begin(&self.writer, &names, &self.write_options)
            .map_err(|e| StoreError::Backend(format!("cannot start a transaction: {e:?}")))
    }

    /// Issues every write of `batch` in `tx`; one that cannot be issued aborts the transaction
    /// (nothing of it is written). A value over [`WHOLE_MAX`] goes in parts (if `compare`,
    /// only those that differ from the value kept for its key); any other write of a key that
    /// may have parts deletes them.
    fn issue(&self, tx: &JsValue, batch: &Batch, compare: bool) -> Result<(), StoreError> {
        let mut parted = self.parted.borrow_mut();
        let names = &self.store_names;
        for op in batch.ops() {
            let issued = match op {
                Op::Put { ns, key, value } if in_parts(*ns, value.len()) => {
                    let writes = parted.rewrite(*ns, key, value, compare, self.sole_writer);
                    let only = writes.only.as_deref();
                    put_parts(
                        tx,
                        names,
                        index(ns),
                        key,
                        value,
                        PART_BYTES as u32,
                        only.is_none(),
                        only.unwrap_or_default(),
                        writes.trim,
                    )
                }
                Op::Put { ns, key, value } => {
                    put(tx, names, index(ns), key, value, parted.forget(*ns, key))
                }
                Op::Delete { ns, key } => {
                    remove(tx, names, index(ns), key, parted.forget(*ns, key))
                }
            };
            if let Err(e) = issued {
                abort(tx);
                return Err(StoreError::Backend(format!("a write was refused: {e:?}")));
            }
        }
        Ok(())
    }
}

/// A readwrite transaction under way, as the parts' bookkeeping sees it: values kept are
/// compared against only when no other is under way (an earlier one may still abort), and all
/// are forgotten if it does not commit (it may have kept values it never wrote).
struct Writing<'a> {
    store: &'a IndexedDbStore,
    /// Whether its writes may compare against kept values.
    compare: bool,
    committed: bool,
}

impl<'a> Writing<'a> {
    fn begin(store: &'a IndexedDbStore) -> Self {
        let compare = store.sole_writer && store.writing.get() == 0;
        store.writing.set(store.writing.get() + 1);
        store.writes.set(store.writes.get() + 1);
        Self {
            store,
            compare,
            committed: false,
        }
    }

    fn committed(mut self) {
        self.committed = true;
    }
}

impl Drop for Writing<'_> {
    fn drop(&mut self) {
        self.store.writing.set(self.store.writing.get() - 1);
        if !self.committed {
            self.store.parted.borrow_mut().forget_values();
        }
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
