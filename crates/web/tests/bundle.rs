//! `installApp` and `bundleInfo` with an `.mpk` bundle in a page (headless Chromium,
//! IndexedDB): the bundle is built here as Calimero's build scripts make it, from the kv-store
//! guest.
#![cfg(target_arch = "wasm32")]

mod common;

use common::{resolve, KV_STORE};

use js_sys::{Object, Reflect, Uint8Array};
use serde_json::json;
use tabnode_types::AppId;
use tabnode_web::BrowserNode;
use wasm_bindgen_test::wasm_bindgen_test;

wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

const ABI: &str = r#"{"schema_version":"wasm-abi/1","methods":[{"name":"get"}]}"#;

fn pack(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    for (path, bytes) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        tar.append_data(&mut header, path, *bytes).unwrap();
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, &tar.into_inner().unwrap()).unwrap();
    gz.finish().unwrap()
}

async fn node(db: &str) -> BrowserNode {
    let options = Object::new();
    Reflect::set(&options, &"dbName".into(), &db.into()).unwrap();
    BrowserNode::create(options.into()).await.unwrap()
}

/// kv-store's manifest, as Calimero's build scripts write it (unsigned).
fn manifest() -> serde_json::Value {
    json!({
        "version": "1.0", "package": "com.calimero.kv-store", "appVersion": "1.0.0",
        "minRuntimeVersion": "0.1.0",
        "wasm": {"path": "app.wasm", "size": KV_STORE.len(), "hash": null},
        "abi": {"path": "abi.json", "size": ABI.len(), "hash": null},
        "migrations": []
    })
}

/// kv-store's bundle with `manifest`.
fn bundle_of(manifest: &serde_json::Value) -> Vec<u8> {
    pack(&[
        ("manifest.json", manifest.to_string().as_bytes()),
        ("app.wasm", KV_STORE),
        ("abi.json", ABI.as_bytes()),
    ])
}

#[wasm_bindgen_test]
async fn install_app_takes_an_mpk_and_keeps_its_abi() {
    let bundle = bundle_of(&manifest());
    let node = node("bundle-test").await;
    let id = resolve(node.install_app(Uint8Array::from(&bundle[..]).into()))
        .await
        .unwrap();
    assert_eq!(
        id.as_string().unwrap(),
        AppId::of_wasm(KV_STORE).to_string()
    );
    let abi = resolve(node.app_abi(id.as_string().unwrap()))
        .await
        .unwrap();
    let abi = js_sys::JSON::stringify(&abi).unwrap().as_string().unwrap();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&abi).unwrap(),
        serde_json::from_str::<serde_json::Value>(ABI).unwrap()
    );

    // A bad bundle: a typed error, and the bare module still has no ABI.
    let no_manifest = pack(&[("app.wasm", KV_STORE)]);
    let err = resolve(node.install_app(Uint8Array::from(&no_manifest[..]).into()))
        .await
        .unwrap_err();
    let name = Reflect::get(&err, &"name".into()).unwrap();
    assert_eq!(name.as_string().as_deref(), Some("BadBundle"));
    let other = AppId::of_wasm(b"not installed").to_string();
    assert!(resolve(node.app_abi(other)).await.unwrap().is_null());
}

#[wasm_bindgen_test]
async fn bundle_info_says_what_a_bundle_holds_and_who_signed_it_and_installs_nothing() {
    let node = node("bundle-info-test").await;
    let info = |bytes: &[u8]| node.bundle_info(Uint8Array::from(bytes).into());
    let field =
        |info: &wasm_bindgen::JsValue, name: &str| Reflect::get(info, &name.into()).unwrap();

    let mut signed = manifest();
    let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
    let signer = tabnode_bundle::signature::sign(&mut signed, &key).unwrap();
    let got = info(&bundle_of(&signed)).unwrap();
    assert_eq!(field(&got, "signerId").as_string(), Some(signer));
    assert_eq!(
        field(&got, "appId").as_string(),
        Some(AppId::of_wasm(KV_STORE).to_string())
    );
    assert_eq!(
        field(&got, "package").as_string().as_deref(),
        Some("com.calimero.kv-store")
    );
    assert_eq!(
        field(&got, "appVersion").as_string().as_deref(),
        Some("1.0.0")
    );
    assert_eq!(field(&got, "abi").as_bool(), Some(true));
    // Nothing was installed: the app has no ABI here.
    let abi = resolve(node.app_abi(AppId::of_wasm(KV_STORE).to_string()))
        .await
        .unwrap();
    assert!(abi.is_null(), "bundleInfo installs nothing");

    let unsigned = info(&bundle_of(&manifest())).unwrap();
    assert!(field(&unsigned, "signerId").is_null());
    assert!(
        info(KV_STORE).unwrap().is_null(),
        "a bare module is no bundle"
    );

    // A manifest altered after it was signed: a typed error.
    signed["appVersion"] = json!("9.9.9");
    let err = info(&bundle_of(&signed)).unwrap_err();
    assert_eq!(
        field(&err, "name").as_string().as_deref(),
        Some("BadBundle")
    );
}
