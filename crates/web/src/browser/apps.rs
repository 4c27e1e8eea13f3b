//! Installing apps from `.mpk` bundles in the page, reading what a bundle says of itself, and
//! the ABI a bundle held.

use js_sys::Promise;
use tabnode_bundle::Bundle;
use tabnode_types::AppId;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use super::{js_error, parse_id, to_js, usage_error, wasm_bytes, BrowserNode, Inner};
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

/// What a bundle says of itself, checked as `installApp` checks it (see [`BrowserNode::bundle_info`]).
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct BundleInfo<'a> {
    app_id: String,
    package: &'a str,
    app_version: &'a str,
    signer_id: Option<&'a str>,
    abi: bool,
}

#[wasm_bindgen]
impl BrowserNode {
    /// What an `.mpk` bundle says of itself, checked as `installApp` checks it (manifest, its
    /// signature, the files it names) without installing anything: the app id its wasm installs
    /// as, `package`, `appVersion`, `signerId` (the did:key that signed the manifest; null if
    /// unsigned) and `abi` (whether it holds one). `null` for a bare wasm module; a bad bundle
    /// throws `BadBundle`.
    #[wasm_bindgen(js_name = bundleInfo, unchecked_return_type = "BundleInfo | null")]
    pub fn bundle_info(
        &self,
        #[wasm_bindgen(unchecked_param_type = "Uint8Array | ArrayBuffer")] bytes: JsValue,
    ) -> Result<JsValue, JsValue> {
        let bytes = wasm_bytes(&bytes, "bundleInfo")?;
        if !tabnode_bundle::is_bundle(&bytes) {
            return Ok(JsValue::NULL);
        }
        let bundle = Bundle::unpack(&bytes).map_err(|e| usage_error(e.kind(), e.to_string()))?;
        to_js(&BundleInfo {
            app_id: AppId::of_wasm(&bundle.wasm).to_string(),
            package: &bundle.manifest.package,
            app_version: &bundle.manifest.app_version,
            signer_id: bundle.signer_id.as_deref(),
            abi: bundle.abi.is_some(),
        })
    }

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
