//! A store in memory. Clones share the same data, so a test can "restart" a node on it.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use crate::{prefix_end, Batch, Namespace, Op, Store, StoreError};

type Rows = BTreeMap<(Namespace, Vec<u8>), Vec<u8>>;

#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    data: Rc<RefCell<Rows>>,
}

impl Store for MemoryStore {
    async fn get(&self, ns: Namespace, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.data.borrow().get(&(ns, key.to_vec())).cloned())
    }

    async fn scan_prefix(
        &self,
        ns: Namespace,
        prefix: &[u8],
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>, StoreError> {
        let data = self.data.borrow();
        let start = (ns, prefix.to_vec());
        let rows = data
            .range(start..)
            .take_while(|((n, k), _)| *n == ns && k.starts_with(prefix));
        Ok(rows.map(|((_, k), v)| (k.clone(), v.clone())).collect())
    }

    async fn last_with_prefix(
        &self,
        ns: Namespace,
        prefix: &[u8],
    ) -> Result<Option<(Vec<u8>, Vec<u8>)>, StoreError> {
        let data = self.data.borrow();
        let start = (ns, prefix.to_vec());
        let last = match prefix_end(prefix) {
            Some(end) => data.range(start..(ns, end)).next_back(),
            None => data
                .range(start..)
                .take_while(|((n, _), _)| *n == ns)
                .last(),
        };
        Ok(last.map(|((_, k), v)| (k.clone(), v.clone())))
    }

    async fn commit(&self, batch: Batch) -> Result<(), StoreError> {
        let mut data = self.data.borrow_mut();
        for op in batch.ops() {
            match op {
                Op::Put { ns, key, value } => {
                    data.insert((*ns, key.clone()), value.clone());
                }
                Op::Delete { ns, key } => {
                    data.remove(&(*ns, key.clone()));
                }
            }
        }
        Ok(())
    }
}
