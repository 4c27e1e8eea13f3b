//! A member's persistence: a memory store that survives its node, and can crash it at a commit.

use std::cell::RefCell;
use std::rc::Rc;

use futures::executor::block_on;
use tabnode_store::{Batch, MemoryStore, Namespace, Store, StoreError};

/// How a crash meets a commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitFault {
    /// The process dies while the batch is written: none of it is kept (batches are atomic),
    /// and the node's call fails.
    Lost,
    /// The process dies just after the batch is durable: it is kept, but nothing the node
    /// meant to do next (send the delta, answer) happens.
    Kept,
}

#[derive(Debug, Default)]
struct Plan {
    /// Commits to let through before the fault, and the fault.
    armed: Option<(u32, CommitFault)>,
    /// The fault struck: this process is dead, and writes nothing more.
    crashed: bool,
}

/// A [`MemoryStore`] (clones share its data, so a member restarts on what it persisted) that
/// can crash its process at a chosen commit ([`SimStore::crash_at_commit`]).
#[derive(Debug, Clone, Default)]
pub struct SimStore {
    data: MemoryStore,
    plan: Rc<RefCell<Plan>>,
}

impl SimStore {
    /// The store a restarted process opens: the same data, no fault armed.
    pub fn reopen(&self) -> Self {
        Self {
            data: self.data.clone(),
            plan: Rc::default(),
        }
    }

    /// The `nth` commit from now (1: the next) meets `fault`.
    pub fn crash_at_commit(&self, nth: u32, fault: CommitFault) {
        self.plan.borrow_mut().armed = Some((nth.max(1), fault));
    }

    /// Takes back a fault armed and not yet struck.
    pub fn disarm(&self) {
        self.plan.borrow_mut().armed = None;
    }

    /// Whether an armed fault struck: the node on this store must be restarted.
    pub fn crashed(&self) -> bool {
        self.plan.borrow().crashed
    }

    pub fn data(&self) -> &MemoryStore {
        &self.data
    }
}

impl Store for SimStore {
    async fn get(&self, ns: Namespace, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.data.get(ns, key).await
    }

    async fn scan_prefix(
        &self,
        ns: Namespace,
        prefix: &[u8],
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>, StoreError> {
        self.data.scan_prefix(ns, prefix).await
    }

    async fn last_with_prefix(
        &self,
        ns: Namespace,
        prefix: &[u8],
    ) -> Result<Option<(Vec<u8>, Vec<u8>)>, StoreError> {
        self.data.last_with_prefix(ns, prefix).await
    }

    async fn commit(&self, batch: Batch) -> Result<(), StoreError> {
        let fault = {
            let mut plan = self.plan.borrow_mut();
            if plan.crashed {
                return Err(StoreError::Unavailable("the process crashed".into()));
            }
            match &mut plan.armed {
                Some((1, fault)) => {
                    let fault = *fault;
                    plan.armed = None;
                    plan.crashed = true;
                    Some(fault)
                }
                Some((n, _)) => {
                    *n -= 1;
                    None
                }
                None => None,
            }
        };
        match fault {
            None => self.data.commit(batch).await,
            Some(CommitFault::Lost) => Err(StoreError::Unavailable(
                "the process crashed during the commit".into(),
            )),
            Some(CommitFault::Kept) => self.data.commit(batch).await,
        }
    }
}

/// A copy of everything in `store` that no longer shares its data: a node opened on it starts
/// where the original stood, and what either does next stays its own.
pub fn fork(store: &MemoryStore) -> MemoryStore {
    let copy = MemoryStore::default();
    let mut batch = Batch::new();
    for ns in Namespace::ALL {
        for (key, value) in block_on(store.scan_prefix(ns, &[])).expect("a memory store reads") {
            batch.put_mut(ns, &key, value);
        }
    }
    block_on(copy.commit(batch)).expect("a memory store writes");
    copy
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(n: u8) -> Batch {
        Batch::new().put(Namespace::Meta, &[n], vec![n])
    }

    fn has(store: &impl Store, n: u8) -> bool {
        block_on(store.get(Namespace::Meta, &[n]))
            .unwrap()
            .is_some()
    }

    #[test]
    fn a_crash_at_a_commit_loses_or_keeps_its_batch_and_nothing_after_is_written() {
        for (fault, kept) in [(CommitFault::Lost, false), (CommitFault::Kept, true)] {
            let store = SimStore::default();
            store.crash_at_commit(2, fault);
            block_on(store.commit(put(1))).unwrap();
            assert!(!store.crashed());
            assert_eq!(block_on(store.commit(put(2))).is_ok(), kept);
            assert!(store.crashed());
            assert!(
                block_on(store.commit(put(3))).is_err(),
                "the process is dead"
            );
            let reopened = store.reopen();
            assert!(has(&reopened, 1) && !has(&reopened, 3));
            assert_eq!(has(&reopened, 2), kept);
            block_on(reopened.commit(put(4))).unwrap();
            assert!(!reopened.crashed());
        }
    }

    #[test]
    fn a_disarmed_crash_never_strikes_and_a_fork_shares_nothing() {
        let store = SimStore::default();
        store.crash_at_commit(1, CommitFault::Lost);
        store.disarm();
        block_on(store.commit(put(1))).unwrap();
        let copy = fork(store.data());
        block_on(copy.commit(put(2))).unwrap();
        assert!(has(&copy, 1) && !has(store.data(), 2));
    }
}
