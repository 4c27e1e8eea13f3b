//! Secrets at rest: a [`Store`] wrapper that seals every value of the [`Namespace::Keys`]
//! namespace with a [`Sealer`] before it reaches the backend. In the browser the sealer is a
//! non-extractable WebCrypto key, so no script can read key bytes out of IndexedDB.

use crate::{Batch, Namespace, Op, Store, StoreError};

/// Encrypts and decrypts values (async: WebCrypto is).
#[allow(async_fn_in_trait)]
pub trait Sealer {
    async fn seal(&self, plain: &[u8]) -> Result<Vec<u8>, StoreError>;
    async fn open(&self, sealed: &[u8]) -> Result<Vec<u8>, StoreError>;
}

/// `inner`, with the values of [`Namespace::Keys`] sealed.
pub struct SealedStore<S, K> {
    inner: S,
    sealer: K,
}

impl<S, K> SealedStore<S, K> {
    pub fn new(inner: S, sealer: K) -> Self {
        Self { inner, sealer }
    }
}

fn sealed(ns: Namespace) -> bool {
    ns == Namespace::Keys
}

impl<S: Store, K: Sealer> Store for SealedStore<S, K> {
    async fn get(&self, ns: Namespace, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        match self.inner.get(ns, key).await? {
            Some(value) if sealed(ns) => Ok(Some(self.sealer.open(&value).await?)),
            other => Ok(other),
        }
    }

    async fn scan_prefix(
        &self,
        ns: Namespace,
        prefix: &[u8],
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>, StoreError> {
        let rows = self.inner.scan_prefix(ns, prefix).await?;
        if !sealed(ns) {
            return Ok(rows);
        }
        let mut out = Vec::with_capacity(rows.len());
        for (key, value) in rows {
            out.push((key, self.sealer.open(&value).await?));
        }
        Ok(out)
    }

    async fn last_with_prefix(
        &self,
        ns: Namespace,
        prefix: &[u8],
    ) -> Result<Option<(Vec<u8>, Vec<u8>)>, StoreError> {
        match self.inner.last_with_prefix(ns, prefix).await? {
            Some((key, value)) if sealed(ns) => Ok(Some((key, self.sealer.open(&value).await?))),
            other => Ok(other),
        }
    }

    /// Keys are not sealed: they pass on as they are.
    async fn keys_with_prefix(
        &self,
        ns: Namespace,
        prefix: &[u8],
        limit: usize,
    ) -> Result<Option<Vec<Vec<u8>>>, StoreError> {
        self.inner.keys_with_prefix(ns, prefix, limit).await
    }

    /// Seals `first`'s keys' values, then lets `inner` write it while `rest` is made; `rest`
    /// may not write keys (sealing awaits, a transaction must not): if it does, nothing is
    /// written.
    async fn commit_parts(
        &self,
        mut first: Batch,
        later: &[Namespace],
        rest: impl FnOnce() -> Result<Batch, StoreError>,
    ) -> Result<(), StoreError> {
        self.seal(&mut first).await?;
        let rest = || {
            let rest = rest()?;
            match rest.namespaces().into_iter().any(sealed) {
                true => Err(StoreError::Backend(
                    "a later part of a batch may not write keys (they are sealed first)".into(),
                )),
                false => Ok(rest),
            }
        };
        self.inner.commit_parts(first, later, rest).await
    }

    /// Seals first, then commits the whole batch at once (sealing awaits, a transaction must not).
    async fn commit(&self, mut batch: Batch) -> Result<(), StoreError> {
        self.seal(&mut batch).await?;
        self.inner.commit(batch).await
    }
}

impl<S: Store, K: Sealer> SealedStore<S, K> {
    /// Seals the values the batch puts in [`Namespace::Keys`], in place.
    async fn seal(&self, batch: &mut Batch) -> Result<(), StoreError> {
        // Only keys' values are sealed, in place; the rest pass on as they are, not copied (a
        // set at 1,000 keys writes an index row of 84 KiB).
        for op in batch.ops_mut() {
            if let Op::Put { ns, value, .. } = op {
                if sealed(*ns) {
                    *value = self.sealer.seal(value).await?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryStore;
    use futures::executor::block_on;

    /// A toy sealer for the test: xor and a marker (the real ones are AEADs).
    struct Xor;

    impl Sealer for Xor {
        async fn seal(&self, plain: &[u8]) -> Result<Vec<u8>, StoreError> {
            let mut out = b"sealed:".to_vec();
            out.extend(plain.iter().map(|b| b ^ 0x5a));
            Ok(out)
        }

        async fn open(&self, sealed: &[u8]) -> Result<Vec<u8>, StoreError> {
            let body = sealed
                .strip_prefix(b"sealed:")
                .ok_or_else(|| StoreError::Backend("not sealed".into()))?;
            Ok(body.iter().map(|b| b ^ 0x5a).collect())
        }
    }

    #[test]
    fn keys_are_sealed_at_rest_and_other_namespaces_are_not() {
        let raw = MemoryStore::default();
        let store = SealedStore::new(raw.clone(), Xor);
        block_on(
            store.commit(
                Batch::new()
                    .put(Namespace::Keys, b"node", b"secret seed".to_vec())
                    .put(Namespace::State, b"k", b"v".to_vec()),
            ),
        )
        .unwrap();
        assert_eq!(
            block_on(store.get(Namespace::Keys, b"node")).unwrap(),
            Some(b"secret seed".to_vec())
        );
        let at_rest = block_on(raw.get(Namespace::Keys, b"node"))
            .unwrap()
            .unwrap();
        assert!(at_rest.starts_with(b"sealed:") && !at_rest.windows(6).any(|w| w == b"secret"));
        assert_eq!(
            block_on(raw.get(Namespace::State, b"k")).unwrap(),
            Some(b"v".to_vec())
        );
        assert_eq!(
            block_on(store.scan_prefix(Namespace::Keys, b"")).unwrap(),
            vec![(b"node".to_vec(), b"secret seed".to_vec())]
        );
    }

    #[test]
    fn sealed_store_passes_the_conformance_suite() {
        block_on(crate::conformance::run_all(|| async {
            SealedStore::new(MemoryStore::default(), Xor)
        }));
    }
}
