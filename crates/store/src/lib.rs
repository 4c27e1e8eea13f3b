//! The node's persistence: one async [`Store`] trait, namespaced, with atomic batches.
//!
//! Backends: [`MemoryStore`] (tests, and anywhere nothing must survive), natively `FileStore`
//! (the CLI), and in the browser `IndexedDbStore`. One conformance suite ([`conformance`])
//! runs against every backend. Futures are not `Send`: the browser is single-threaded, and so is the node's core.

pub mod blake3_tree;
#[cfg(not(target_arch = "wasm32"))]
mod file;
#[cfg(target_arch = "wasm32")]
mod indexeddb;
mod memory;
mod merkle;
#[cfg(any(target_arch = "wasm32", test))]
mod parted;
mod same;
mod sealed;

pub mod conformance;

#[cfg(not(target_arch = "wasm32"))]
pub use file::FileStore;
#[cfg(target_arch = "wasm32")]
pub use indexeddb::{Durability, IndexedDbStore, SCHEMA_VERSION as INDEXEDDB_SCHEMA_VERSION};
pub use memory::MemoryStore;
pub use merkle::MerkleTree;
pub use sealed::{SealedStore, Sealer};

/// The largest value IndexedDB keeps in one record: a bigger one (see [`PARTED_MAX`]) is
/// stored as parts of [`PART_BYTES`], since Chromium writes a value whose serialized form is
/// over 64 KiB to a blob file of its own (docs/storage.md, *Values in parts*). Every backend
/// reads and writes values of any size alike; the conformance suite writes them on either side
/// of this one.
pub const WHOLE_MAX: usize = 60 * 1024;

/// The size of each part of a value in parts (the last may be shorter): small, so that a
/// rewrite that changes a few bytes of a big value, or adds some at its end (calimero-storage
/// rewrites a collection's whole index for each entry added), writes only the few parts that
/// changed (docs/storage.md, *Only the parts that changed*).
pub const PART_BYTES: usize = 4 * 1024;

/// The largest value IndexedDB stores as parts outside [`Namespace::State`]; a bigger one (a
/// blob, an app, written once) is one record, which Chromium keeps in a file of its own: written
/// whole each time, parts cost more from about 2.5 MB on disk and 1.5 MB in memory (`node
/// bench/parts.mjs`, docs/storage.md). State values of any size over [`WHOLE_MAX`] go in parts:
/// they are rewritten with small changes, and a sole writer writes only the parts that changed.
pub const PARTED_MAX: usize = 1024 * 1024;

/// The fixed set of namespaces: IndexedDB object stores must be declared when the database opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Namespace {
    Meta,
    Keys,
    Apps,
    Contexts,
    State,
    Private,
    Deltas,
    Audit,
    Blobs,
}

impl Namespace {
    pub const ALL: [Namespace; 9] = [
        Self::Meta,
        Self::Keys,
        Self::Apps,
        Self::Contexts,
        Self::State,
        Self::Private,
        Self::Deltas,
        Self::Audit,
        Self::Blobs,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Meta => "meta",
            Self::Keys => "keys",
            Self::Apps => "apps",
            Self::Contexts => "contexts",
            Self::State => "state",
            Self::Private => "private",
            Self::Deltas => "deltas",
            Self::Audit => "audit",
            Self::Blobs => "blobs",
        }
    }
}

/// One write of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Put {
        ns: Namespace,
        key: Vec<u8>,
        value: Vec<u8>,
    },
    Delete {
        ns: Namespace,
        key: Vec<u8>,
    },
}

/// Writes applied together or not at all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Batch {
    ops: Vec<Op>,
}

impl Batch {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn put(mut self, ns: Namespace, key: &[u8], value: Vec<u8>) -> Self {
        self.put_mut(ns, key, value);
        self
    }

    pub fn delete(mut self, ns: Namespace, key: &[u8]) -> Self {
        self.delete_mut(ns, key);
        self
    }

    pub fn put_mut(&mut self, ns: Namespace, key: &[u8], value: Vec<u8>) {
        self.ops.push(Op::Put {
            ns,
            key: key.to_vec(),
            value,
        });
    }

    pub fn delete_mut(&mut self, ns: Namespace, key: &[u8]) {
        self.ops.push(Op::Delete {
            ns,
            key: key.to_vec(),
        });
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// How many writes the batch holds.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Adds `other`'s writes after this batch's own, so they apply in the order they were made.
    pub fn append(&mut self, mut other: Batch) {
        self.ops.append(&mut other.ops);
    }

    pub fn ops(&self) -> &[Op] {
        &self.ops
    }

    /// The writes, to change values in place (a wrapper that seals some, see [`SealedStore`]).
    pub fn ops_mut(&mut self) -> &mut [Op] {
        &mut self.ops
    }

    /// The namespaces the batch touches, each once.
    pub fn namespaces(&self) -> Vec<Namespace> {
        let mut out: Vec<Namespace> = self
            .ops
            .iter()
            .map(|op| match op {
                Op::Put { ns, .. } | Op::Delete { ns, .. } => *ns,
            })
            .collect();
        out.sort();
        out.dedup();
        out
    }
}

/// Why the store refused; nothing of the failed batch was written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("the browser's storage quota is exhausted; free space or grant persistent storage")]
    QuotaExceeded,
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    #[error("the store failed: {0}")]
    Backend(String),
}

/// The node's persistence.
#[allow(async_fn_in_trait)]
pub trait Store {
    async fn get(&self, ns: Namespace, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
    /// Every entry whose key starts with `prefix`, in key order (bytewise).
    async fn scan_prefix(
        &self,
        ns: Namespace,
        prefix: &[u8],
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>, StoreError>;
    /// The entry with the greatest key that starts with `prefix` (e.g. the head of a log kept
    /// in key order), without reading the others.
    async fn last_with_prefix(
        &self,
        ns: Namespace,
        prefix: &[u8],
    ) -> Result<Option<(Vec<u8>, Vec<u8>)>, StoreError>;
    /// Applies every op of the batch, in order, or none; returns once it is durable.
    async fn commit(&self, batch: Batch) -> Result<(), StoreError>;
    /// Commits `first`'s writes and then the ones `rest` makes, as one batch: all or none. A
    /// store that can write before it holds the whole batch (IndexedDB) starts on `first`, then
    /// calls `rest` (synchronously: nothing else runs in between) while its own thread writes;
    /// `later` names every namespace `rest` may write (IndexedDB declares a transaction's object
    /// stores when it begins). If `rest` fails, or writes a namespace `later` does not name,
    /// nothing is written.
    async fn commit_parts(
        &self,
        first: Batch,
        later: &[Namespace],
        rest: impl FnOnce() -> Result<Batch, StoreError>,
    ) -> Result<(), StoreError> {
        let rest = rest()?;
        within(&rest, later)?;
        let mut batch = first;
        batch.append(rest);
        self.commit(batch).await
    }
    /// The keys (not the values) that start with `prefix`, in key order, or `None` if there are
    /// more than `limit`: one bulk request where values need not be read (IndexedDB).
    async fn keys_with_prefix(
        &self,
        ns: Namespace,
        prefix: &[u8],
        limit: usize,
    ) -> Result<Option<Vec<Vec<u8>>>, StoreError> {
        let rows = self.scan_prefix(ns, prefix).await?;
        Ok((rows.len() <= limit).then(|| rows.into_iter().map(|(k, _)| k).collect()))
    }
}

/// A store shared between the node and code beside it (the page and the CLI keep an app's ABI
/// next to the node's own records).
impl<S: Store> Store for std::rc::Rc<S> {
    async fn get(&self, ns: Namespace, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        S::get(self, ns, key).await
    }
    async fn scan_prefix(
        &self,
        ns: Namespace,
        prefix: &[u8],
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>, StoreError> {
        S::scan_prefix(self, ns, prefix).await
    }
    async fn last_with_prefix(
        &self,
        ns: Namespace,
        prefix: &[u8],
    ) -> Result<Option<(Vec<u8>, Vec<u8>)>, StoreError> {
        S::last_with_prefix(self, ns, prefix).await
    }
    async fn commit(&self, batch: Batch) -> Result<(), StoreError> {
        S::commit(self, batch).await
    }
    async fn commit_parts(
        &self,
        first: Batch,
        later: &[Namespace],
        rest: impl FnOnce() -> Result<Batch, StoreError>,
    ) -> Result<(), StoreError> {
        S::commit_parts(self, first, later, rest).await
    }
    async fn keys_with_prefix(
        &self,
        ns: Namespace,
        prefix: &[u8],
        limit: usize,
    ) -> Result<Option<Vec<Vec<u8>>>, StoreError> {
        S::keys_with_prefix(self, ns, prefix, limit).await
    }
}

/// Refuses a later part of a batch (see [`Store::commit_parts`]) that writes a namespace
/// `later` does not name.
pub fn within(batch: &Batch, later: &[Namespace]) -> Result<(), StoreError> {
    match batch
        .namespaces()
        .into_iter()
        .find(|ns| !later.contains(ns))
    {
        Some(ns) => Err(StoreError::Backend(format!(
            "a later part of a batch writes {}, which it did not name",
            ns.as_str()
        ))),
        None => Ok(()),
    }
}

/// The first key after every key that starts with `prefix`, or `None` if there is none
/// (the prefix is empty or all `0xFF`).
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xFF {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_covers_the_edges() {
        assert_eq!(prefix_end(b""), None);
        assert_eq!(prefix_end(&[0xFF, 0xFF]), None);
        assert_eq!(prefix_end(&[1, 2]), Some(vec![1, 3]));
        assert_eq!(prefix_end(&[1, 0xFF]), Some(vec![2]));
    }

    #[test]
    fn memory_store_passes_the_conformance_suite() {
        futures::executor::block_on(conformance::run_all(|| async { MemoryStore::default() }));
    }
}
