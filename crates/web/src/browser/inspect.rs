//! What the page can inspect of a context: its audit trail, a replay, its position and what
//! it holds in memory.

use super::*;

#[wasm_bindgen]
impl BrowserNode {
    /// The context's audit records, oldest first.
    #[wasm_bindgen(unchecked_return_type = "Promise<AuditRecord[]>")]
    pub fn audit(&self, context_id: String) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let id: ContextId = parse_id(&context_id)?;
            let records = inner.run(async move |node| node.audit(&id).await).await?;
            to_js(&records.iter().map(|r| r.to_json()).collect::<Vec<_>>())
        })
    }

    /// Checks the audit chain as stored in IndexedDB: `{ok, records, badSeq, reason}`.
    #[wasm_bindgen(js_name = verifyAudit, unchecked_return_type = "Promise<AuditReport>")]
    pub fn verify_audit(&self, context_id: String) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let id: ContextId = parse_id(&context_id)?;
            let report = inner
                .run(async move |node| node.verify_audit(&id).await)
                .await?;
            to_js(&report)
        })
    }

    /// Re-runs every stored delta from an empty state: `{deltas, rootHash, matches}`.
    #[wasm_bindgen(unchecked_return_type = "Promise<ReplayReport>")]
    pub fn replay(&self, context_id: String) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let id: ContextId = parse_id(&context_id)?;
            let report = inner.run(async move |node| node.replay(&id).await).await?;
            to_js(&report)
        })
    }

    /// The context's `{heads, rootHash, merkleRoot}`. The Merkle root needs the whole state:
    /// the first checkpoint of a context reopened from IndexedDB reads it all once.
    #[wasm_bindgen(unchecked_return_type = "Promise<Checkpoint>")]
    pub fn checkpoint(&self, context_id: String) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let id: ContextId = parse_id(&context_id)?;
            let checkpoint = inner
                .run(async move |node| node.checkpoint(&id).await)
                .await?;
            to_js(&checkpoint)
        })
    }

    /// The context's heads and root at once, from what is in memory: a checkpoint whose
    /// `merkleRoot` is null until a `checkpoint()` (or a call that read every row) built it.
    #[wasm_bindgen(unchecked_return_type = "Promise<Checkpoint>")]
    pub fn position(&self, context_id: String) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let id: ContextId = parse_id(&context_id)?;
            let position = inner.run(async move |node| node.position(&id)).await?;
            to_js(&position)
        })
    }

    /// Whether the context's state is here, so its calls run: false while a joiner waits to
    /// be admitted or for the state from members (its calls answer `NotSynced` until then).
    /// `UnknownContext` for one this node neither holds nor joins.
    #[wasm_bindgen(js_name = isSynced, unchecked_return_type = "Promise<boolean>")]
    pub fn is_synced(&self, context_id: String) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let id: ContextId = parse_id(&context_id)?;
            let synced = inner
                .run(async move |node| {
                    if !node.is_synced(&id) && !node.is_joining(&id) {
                        // Neither held nor being joined: the context's own error.
                        node.position(&id)?;
                    }
                    Ok(node.is_synced(&id))
                })
                .await?;
            Ok(JsValue::from(synced))
        })
    }

    /// What the node holds in memory for a context: `rows` of its state read (or written) so
    /// far — a reopened context reads rows as calls touch them — and the size of the node's
    /// whole wasm memory in bytes.
    #[wasm_bindgen(unchecked_return_type = "Promise<MemoryUse>")]
    pub fn memory(&self, context_id: String) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let id: ContextId = parse_id(&context_id)?;
            let rows = inner
                .run(async move |node| node.rows_in_memory(&id))
                .await?;
            let memory: js_sys::WebAssembly::Memory = wasm_bindgen::memory().unchecked_into();
            let bytes = memory
                .buffer()
                .unchecked_into::<js_sys::ArrayBuffer>()
                .byte_length();
            to_js(&serde_json::json!({"rows": rows, "wasmBytes": bytes}))
        })
    }
}
