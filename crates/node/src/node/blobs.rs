//! Blobs put in and read out by the node's owner (the CLI's `blob put` / `blob get`), stored
//! where guests' own blobs are (`blob_create`): any context's guest can open one by its id.
//! One put with a context is announced to it: its members may fetch it (see `blob_fetch`).

use super::*;

impl<S: Store, E: Env> Node<S, E> {
    /// Stores `data` as a blob and returns its id, the blake3 of its bytes (as a guest's
    /// `blob_close` names it). With `context`, the context must be one this node holds: the
    /// blob is meant for its guests. Larger than the runtime's blob limit: refused, unstored.
    pub async fn put_blob(
        &mut self,
        data: Vec<u8>,
        context: Option<&ContextId>,
    ) -> Result<Hash, NodeError> {
        if let Some(id) = context {
            self.context(id)?;
        }
        let max = self.runtime.limits().max_blob_size;
        if data.len() > max {
            return Err(NodeError::BadArgs(format!(
                "a blob of {} bytes is larger than the {max} a guest may read",
                data.len()
            )));
        }
        let id = *blake3::hash(&data).as_bytes();
        let mut batch = Batch::new().put(Namespace::Blobs, &id, data.clone());
        if let Some(context_id) = context {
            // Announced to the context: served to its members (see `blob_fetch`).
            let announced = blob_fetch::announced_key(context_id, &id);
            batch = batch.put(Namespace::Meta, &announced, Vec::new());
        }
        self.commit(batch).await?;
        Rc::make_mut(&mut self.blobs).learn(id.to_vec(), Some(data));
        Ok(Hash(id))
    }

    /// The blob with id `id`, put here or made by a guest on this node; `None` if it is not here.
    pub async fn blob(&self, id: &Hash) -> Result<Option<Vec<u8>>, NodeError> {
        Ok(self.store.get(Namespace::Blobs, id.as_bytes()).await?)
    }
}

#[cfg(test)]
mod tests {
    use futures::executor::block_on;
    use tabnode_store::MemoryStore;

    use super::*;

    struct FixedEnv;

    impl Env for FixedEnv {
        fn random32(&self) -> [u8; 32] {
            [7; 32]
        }
    }

    fn node(max_blob_size: usize) -> Node<MemoryStore, FixedEnv> {
        let limits = tabnode_runtime::Limits {
            max_blob_size,
            ..Default::default()
        };
        block_on(Node::open(
            MemoryStore::default(),
            FixedEnv,
            Runtime::new(limits),
        ))
        .unwrap()
    }

    #[test]
    fn a_blob_put_is_read_back_by_its_blake3() {
        let mut node = node(1024);
        let id = block_on(node.put_blob(b"hello".to_vec(), None)).unwrap();
        assert_eq!(id.0, *blake3::hash(b"hello").as_bytes());
        assert_eq!(block_on(node.blob(&id)).unwrap().unwrap(), b"hello");
        assert_eq!(block_on(node.blob(&Hash([1; 32]))).unwrap(), None);
    }

    #[test]
    fn a_blob_over_the_limit_or_for_an_unknown_context_is_refused_and_not_stored() {
        let mut node = node(4);
        let err = block_on(node.put_blob(b"hello".to_vec(), None)).unwrap_err();
        assert_eq!(err.kind(), "BadArgs");
        let err = block_on(node.put_blob(b"hi".to_vec(), Some(&ContextId([9; 32])))).unwrap_err();
        assert_eq!(err.kind(), "UnknownContext");
        let hi = Hash(*blake3::hash(b"hi").as_bytes());
        assert_eq!(block_on(node.blob(&hi)).unwrap(), None);
    }
}
