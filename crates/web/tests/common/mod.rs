//! What the page tests share: the guests they install and reading JS values back.
#![allow(dead_code)] // each test file uses a part

use js_sys::Reflect;
use wasm_bindgen::JsValue;
use wasm_bindgen_futures::JsFuture;

pub const PROBE: &[u8] = include_bytes!("../../../../tests/apps/dist/probe.wasm");
pub const KV_STORE: &[u8] = include_bytes!("../../../../tests/apps/dist/kv_store.wasm");

/// A `BrowserNode` method's promise, awaited.
pub async fn resolve(promise: js_sys::Promise) -> Result<JsValue, JsValue> {
    JsFuture::from(promise).await
}

/// `value[field]`.
pub fn get(value: &JsValue, field: &str) -> JsValue {
    Reflect::get(value, &field.into()).unwrap()
}
