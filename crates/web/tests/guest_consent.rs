//! A guest's requests that need the user's consent go to the page's `guestConsent` option
//! (headless Chromium, IndexedDB): declined, the request ends `NoConsent`; accepted, it is made.
#![cfg(target_arch = "wasm32")]

mod common;

use common::{get, resolve, PROBE};

use js_sys::{Array, Function, Object, Reflect, Uint8Array, JSON};
use tabnode_types::PublicKey;
use tabnode_web::BrowserNode;
use wasm_bindgen::JsValue;
use wasm_bindgen_test::wasm_bindgen_test;

wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen_test]
async fn a_guests_membership_change_asks_the_pages_guest_consent() {
    // Declines the first request, accepts the next; remembers each.
    let asked = Array::new();
    Reflect::set(&js_sys::global(), &"guestConsentAsked".into(), &asked).unwrap();
    let consent = Function::new_with_args(
        "request",
        "globalThis.guestConsentAsked.push(request); \
         return globalThis.guestConsentAsked.length > 1;",
    );
    let options = Object::new();
    Reflect::set(&options, &"dbName".into(), &"guest-consent-test".into()).unwrap();
    Reflect::set(&options, &"guestConsent".into(), &consent).unwrap();
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
    let member = PublicKey([7; 32]);
    let add = || {
        let args = JSON::parse(&format!(r#"{{"key":{:?}}}"#, [7u8; 32])).unwrap();
        node.execute(ctx.clone(), "add_member".into(), args, None)
    };
    let request_error = |result: &JsValue| {
        let request = Array::from(&get(result, "contextRequests")).get(0);
        get(&request, "errorKind").as_string()
    };

    let declined = resolve(add()).await.unwrap();
    assert_eq!(request_error(&declined).as_deref(), Some("NoConsent"));
    let accepted = resolve(add()).await.unwrap();
    assert_eq!(request_error(&accepted), None);
    let members = resolve(node.members(ctx.clone())).await.unwrap();
    let keys: Vec<_> = Array::from(&members)
        .iter()
        .filter_map(|m| get(&m, "key").as_string())
        .collect();
    assert!(keys.contains(&member.to_string()), "{keys:?}");

    assert_eq!(asked.length(), 2);
    let first = asked.get(0);
    assert_eq!(
        get(&first, "kind").as_string().as_deref(),
        Some("addMember")
    );
    assert_eq!(get(&first, "context").as_string(), Some(ctx.clone()));
    assert_eq!(get(&first, "caller").as_string(), Some(ctx.clone()));
    assert_eq!(get(&first, "member").as_string(), Some(member.to_string()));
}

#[wasm_bindgen_test]
async fn a_guest_consent_that_is_no_function_is_bad_options() {
    let options = Object::new();
    Reflect::set(&options, &"dbName".into(), &"guest-consent-bad".into()).unwrap();
    Reflect::set(&options, &"guestConsent".into(), &true.into()).unwrap();
    let err = match BrowserNode::create(options.into()).await {
        Ok(_) => panic!("a guestConsent that is no function was taken"),
        Err(err) => err,
    };
    assert_eq!(get(&err, "name").as_string().as_deref(), Some("BadOptions"));
}
