//! A memory store that counts what the node asks of it and fails writes on demand.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;

use tabnode_store::{Batch, MemoryStore, Namespace, Store, StoreError};

/// A [`MemoryStore`] that counts reads per namespace and commits, and can refuse writes: all of
/// them (a full disk) or the next one of at least a given size (a write lost mid-way).
#[derive(Clone, Default)]
pub struct CountingStore {
    inner: MemoryStore,
    gets: Rc<RefCell<BTreeMap<Namespace, usize>>>,
    scanned_rows: Rc<RefCell<BTreeMap<Namespace, usize>>>,
    listings: Rc<RefCell<BTreeMap<Namespace, usize>>>,
    commits: Rc<Cell<usize>>,
    last_commit: Rc<RefCell<Batch>>,
    /// Refuse every commit as the browser does when the quota is exhausted.
    pub full: Rc<Cell<bool>>,
    /// Refuse the next commit of at least this many writes, once.
    fail_next_of: Rc<Cell<Option<usize>>>,
    /// Reads wait for one turn of the executor, as IndexedDB's do: reads issued together are
    /// then in flight together.
    pub slow_reads: Rc<Cell<bool>>,
    in_flight: Rc<Cell<usize>>,
    most_in_flight: Rc<Cell<usize>>,
}

impl CountingStore {
    pub fn reset(&self) {
        self.gets.borrow_mut().clear();
        self.scanned_rows.borrow_mut().clear();
        self.listings.borrow_mut().clear();
        self.commits.set(0);
        self.most_in_flight.set(0);
    }

    /// The most reads in flight at once since the last [`CountingStore::reset`] (with
    /// [`CountingStore::slow_reads`]).
    pub fn most_reads_in_flight(&self) -> usize {
        self.most_in_flight.get()
    }

    pub fn gets(&self, ns: Namespace) -> usize {
        self.gets.borrow().get(&ns).copied().unwrap_or(0)
    }

    pub fn scanned(&self, ns: Namespace) -> usize {
        self.scanned_rows.borrow().get(&ns).copied().unwrap_or(0)
    }

    /// Requests for keys alone (`keys_with_prefix`), which read no values.
    pub fn listings(&self, ns: Namespace) -> usize {
        self.listings.borrow().get(&ns).copied().unwrap_or(0)
    }

    /// Commits that reached the store since the last [`CountingStore::reset`].
    pub fn commits(&self) -> usize {
        self.commits.get()
    }

    /// The writes of the last commit that reached the store.
    pub fn last_commit(&self) -> Batch {
        self.last_commit.borrow().clone()
    }

    /// The next commit of at least `writes` writes fails as a full disk does.
    pub fn fail_next_commit_of(&self, writes: usize) {
        self.fail_next_of.set(Some(writes));
    }
}

/// Pending once (waking itself), then ready.
async fn one_turn() {
    let mut waited = false;
    std::future::poll_fn(|cx| {
        if std::mem::replace(&mut waited, true) {
            std::task::Poll::Ready(())
        } else {
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }
    })
    .await
}

impl Store for CountingStore {
    async fn get(&self, ns: Namespace, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        *self.gets.borrow_mut().entry(ns).or_default() += 1;
        if self.slow_reads.get() {
            self.in_flight.set(self.in_flight.get() + 1);
            let most = self.most_in_flight.get().max(self.in_flight.get());
            self.most_in_flight.set(most);
            one_turn().await;
            self.in_flight.set(self.in_flight.get() - 1);
        }
        self.inner.get(ns, key).await
    }

    async fn scan_prefix(
        &self,
        ns: Namespace,
        prefix: &[u8],
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>, StoreError> {
        let rows = self.inner.scan_prefix(ns, prefix).await?;
        *self.scanned_rows.borrow_mut().entry(ns).or_default() += rows.len();
        Ok(rows)
    }

    async fn last_with_prefix(
        &self,
        ns: Namespace,
        prefix: &[u8],
    ) -> Result<Option<(Vec<u8>, Vec<u8>)>, StoreError> {
        *self.gets.borrow_mut().entry(ns).or_default() += 1;
        self.inner.last_with_prefix(ns, prefix).await
    }

    async fn keys_with_prefix(
        &self,
        ns: Namespace,
        prefix: &[u8],
        limit: usize,
    ) -> Result<Option<Vec<Vec<u8>>>, StoreError> {
        *self.listings.borrow_mut().entry(ns).or_default() += 1;
        self.inner.keys_with_prefix(ns, prefix, limit).await
    }

    async fn commit(&self, batch: Batch) -> Result<(), StoreError> {
        if self.full.get() {
            return Err(StoreError::QuotaExceeded);
        }
        if self.fail_next_of.get().is_some_and(|n| batch.len() >= n) {
            self.fail_next_of.set(None);
            return Err(StoreError::QuotaExceeded);
        }
        self.commits.set(self.commits.get() + 1);
        *self.last_commit.borrow_mut() = batch.clone();
        self.inner.commit(batch).await
    }
}
