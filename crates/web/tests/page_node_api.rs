//! What a page node (scripts/page-node.mjs, `tabnode workflow run --nodes browser`) needs of
//! `BrowserNode` beside its calls (headless Chromium, IndexedDB): a call's answer holding an
//! integer beyond 2^53 as an exact `BigInt` (a smaller one stays a number), in an answer and in
//! an event given to `subscribe`; `putBlob`, whose blob a guest opens by its id; `isSynced`.
#![cfg(target_arch = "wasm32")]

mod common;

use common::{get, resolve, PROBE};

use js_sys::{Array, Function, Object, Reflect, Uint8Array, JSON};
use tabnode_types::Hash;
use tabnode_web::BrowserNode;
use wasm_bindgen::{closure::Closure, JsCast, JsValue};
use wasm_bindgen_test::wasm_bindgen_test;

wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

/// A node with probe's context; the node and the context's id.
async fn probe_context(db: &str) -> (BrowserNode, String) {
    let options = Object::new();
    Reflect::set(&options, &"dbName".into(), &db.into()).unwrap();
    let node = BrowserNode::create(options.into()).await.unwrap();
    let app = resolve(node.install_app(Uint8Array::from(PROBE).into()))
        .await
        .unwrap();
    let init = JSON::parse(r#"{"title":"t"}"#).unwrap();
    let ctx = resolve(node.create_context(app.as_string().unwrap(), init))
        .await
        .unwrap()
        .as_string()
        .unwrap();
    (node, ctx)
}

#[wasm_bindgen_test]
async fn an_answer_beyond_2_pow_53_is_an_exact_bigint_and_a_small_one_a_number() {
    let (node, ctx) = probe_context("page-node-api-integers").await;
    let now = resolve(node.execute(ctx.clone(), "now".into(), JsValue::NULL, None))
        .await
        .unwrap();
    let output = get(&now, "output");
    assert!(output.is_bigint(), "{output:?}");
    let ns = u64::try_from(output).unwrap();
    assert!(ns > 1 << 53, "{ns}");

    let visit = resolve(node.execute(ctx.clone(), "visit".into(), JsValue::NULL, None))
        .await
        .unwrap();
    assert_eq!(get(&visit, "output").as_f64(), Some(1.0));
}

#[wasm_bindgen_test]
async fn an_event_holding_an_integer_beyond_2_pow_53_reaches_subscribers_exact() {
    let (node, ctx) = probe_context("page-node-api-event-integers").await;
    let seen = Array::new();
    let keep = seen.clone();
    let callback = Closure::<dyn Fn(JsValue)>::new(move |event: JsValue| {
        keep.push(&event);
    });
    let callback: &Function = callback.as_ref().unchecked_ref();
    node.subscribe(ctx.clone().into(), callback.clone())
        .unwrap();
    let stamp = resolve(node.execute(ctx.clone(), "stamp".into(), JsValue::NULL, None))
        .await
        .unwrap();
    let at = u64::try_from(get(&stamp, "output")).unwrap();
    let stamped: Vec<JsValue> = seen
        .iter()
        .filter(|e| get(e, "kind").as_string().as_deref() == Some("Stamped"))
        .collect();
    assert_eq!(stamped.len(), 1, "the event reached the subscriber");
    let told = get(&get(&stamped[0], "data"), "at");
    assert!(told.is_bigint(), "{told:?}");
    assert_eq!(u64::try_from(told).unwrap(), at);
}

#[wasm_bindgen_test]
async fn a_put_blob_opens_in_a_guest_by_its_id_and_a_context_is_synced_where_it_was_made() {
    let (node, ctx) = probe_context("page-node-api-blobs").await;
    let bytes = Uint8Array::from(&b"hello from the page"[..]);
    let id = resolve(node.put_blob(bytes.into(), Some(ctx.clone())))
        .await
        .unwrap()
        .as_string()
        .unwrap();
    let hash: Hash = id.parse().unwrap();
    let args = JSON::parse(&format!(r#"{{"id":{:?}}}"#, hash.0)).unwrap();
    let read = resolve(node.execute(ctx.clone(), "read_blob".into(), args, None))
        .await
        .unwrap();
    assert_eq!(
        get(&read, "output").as_string().as_deref(),
        Some("hello from the page")
    );

    let not_bytes = resolve(node.put_blob("text".into(), None))
        .await
        .unwrap_err();
    assert_eq!(
        get(&not_bytes, "name").as_string().as_deref(),
        Some("BadArgs")
    );

    let synced = resolve(node.is_synced(ctx.clone())).await.unwrap();
    assert_eq!(synced.as_bool(), Some(true));
    let unknown = Hash([9; 32]).to_string();
    let error = resolve(node.is_synced(unknown)).await.unwrap_err();
    assert_eq!(
        get(&error, "name").as_string().as_deref(),
        Some("UnknownContext")
    );
}
