//! Blobs the page's owner puts in the node (as the CLI's `blob put`): any context's guest opens
//! one by its id, and one put for a context is announced to its members, who may fetch it.

use js_sys::Promise;
use tabnode_types::ContextId;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use super::{bytes_of, parse_id, BrowserNode};

#[wasm_bindgen]
impl BrowserNode {
    /// Stores `bytes` as a blob; resolves to its id (the blake3 of the bytes, base58). With
    /// `contextId` (one this node holds) it is announced to that context's members. Larger than
    /// a guest may read: `BadArgs`, nothing stored.
    #[wasm_bindgen(js_name = putBlob, unchecked_return_type = "Promise<string>")]
    pub fn put_blob(
        &self,
        #[wasm_bindgen(unchecked_param_type = "Uint8Array | ArrayBuffer")] bytes: JsValue,
        #[wasm_bindgen(js_name = contextId)] context_id: Option<String>,
    ) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let data = bytes_of(&bytes, "putBlob", "the blob")?;
            let context: Option<ContextId> = context_id.as_deref().map(parse_id).transpose()?;
            let id = inner
                .run(async move |node| node.put_blob(data, context.as_ref()).await)
                .await?;
            Ok(JsValue::from(id.to_string()))
        })
    }
}
