//! Installing apps from `.mpk` bundles in the page, and reading the ABI a bundle held.

use js_sys::Promise;
use tabnode_bundle::Bundle;
use tabnode_types::AppId;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use super::{js_error, parse_id, usage_error, BrowserNode, Inner};
use std::rc::Rc;
use tabnode_node::NodeError;

/// Installs `bytes`: a bundle (gzip data) unpacked and checked first, or a bare wasm module.
pub(super) async fn install(inner: &Rc<Inner>, bytes: Vec<u8>) -> Result<AppId, JsValue> {
    if !tabnode_bundle::is_bundle(&bytes) {
        return inner
            .run(async move |node| node.install_app(&bytes).await)
            .await;
    }
    let bundle = Bundle::unpack(&bytes).map_err(|e| usage_error(e.kind(), e.to_string()))?;
    let store = inner.store.clone();
    inner
        .run(async move |node| tabnode_bundle::install(node, &store, &bundle).await)
        .await
}

#[wasm_bindgen]
impl BrowserNode {
    /// The ABI (parsed JSON) of an app installed from a bundle that held one; `null` for an app
    /// installed from a bare module, or not installed.
    #[wasm_bindgen(js_name = appAbi, unchecked_return_type = "Promise<unknown>")]
    pub fn app_abi(&self, app_id: String) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let app: AppId = parse_id(&app_id)?;
            let abi = tabnode_bundle::abi(&inner.store, &app)
                .await
                .map_err(|e| js_error(NodeError::Store(e)))?;
            match abi {
                None => Ok(JsValue::NULL),
                Some(bytes) => js_sys::JSON::parse(&String::from_utf8_lossy(&bytes)),
            }
        })
    }
}
