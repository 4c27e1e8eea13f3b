//! The page's node is owned by one task (`tabnode_driver::own`) that takes `BrowserNode`'s
//! calls in the order they were made (headless Chromium, IndexedDB): many at once, writes,
//! reads and a failing call mixed, each is answered, each write's event reaches subscribers in
//! the order the writes were made and before the write resolves, and calls still in flight
//! when the page lets go of its `BrowserNode` finish all the same.
#![cfg(target_arch = "wasm32")]

mod common;

use common::{get, KV_STORE};

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Array, Promise, Uint8Array, JSON};
use tabnode_web::BrowserNode;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::wasm_bindgen_test;

wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

fn json(text: &str) -> JsValue {
    JSON::parse(text).unwrap()
}

/// What each call should come to.
enum Expect {
    /// A write of this key: resolves once subscribers were told of it.
    Set(String),
    /// A read of this key (written just before).
    Get,
    /// The context's members: this node alone.
    Members,
    /// A call on a context this node does not hold.
    Unknown,
}

#[wasm_bindgen_test]
async fn many_calls_at_once_are_each_answered_and_writes_are_told_in_the_order_made() {
    let options = json(r#"{"dbName":"node-task-test"}"#);
    let node = BrowserNode::create(options).await.unwrap();
    let app = JsFuture::from(node.install_app(Uint8Array::from(KV_STORE).into()))
        .await
        .unwrap();
    let ctx = JsFuture::from(node.create_context(app.as_string().unwrap(), json("{}")))
        .await
        .unwrap()
        .as_string()
        .unwrap();
    // The keys subscribers were told of, in order.
    let told = Rc::new(RefCell::new(Vec::<String>::new()));
    let callback = {
        let told = told.clone();
        Closure::<dyn Fn(JsValue)>::new(move |event: JsValue| {
            if get(&event, "type").as_string().as_deref() == Some("event") {
                let key = get(&get(&event, "data"), "key").as_string().unwrap();
                told.borrow_mut().push(key);
            }
        })
    };
    let _unsubscribe = node
        .subscribe(
            ctx.clone().into(),
            callback
                .as_ref()
                .unchecked_ref::<js_sys::Function>()
                .clone(),
        )
        .unwrap();

    // All made at once, before any is answered.
    let unknown = "11111111111111111111111111111111".to_string();
    let mut calls: Vec<(Promise, Expect)> = Vec::new();
    for i in 0..30 {
        let key = format!("k{i:02}");
        let set = json(&format!(r#"{{"key":"{key}","value":"v{i}"}}"#));
        calls.push((
            node.execute(ctx.clone(), "set".into(), set, None),
            Expect::Set(key.clone()),
        ));
        let read = json(&format!(r#"{{"key":"{key}"}}"#));
        calls.push((
            node.execute(ctx.clone(), "get".into(), read, None),
            Expect::Get,
        ));
        calls.push((node.members(ctx.clone()), Expect::Members));
        if i % 10 == 5 {
            let args = json(r#"{"key":"x","value":"y"}"#);
            let call = node.execute(unknown.clone(), "set".into(), args, None);
            calls.push((call, Expect::Unknown));
        }
    }
    // The page lets go of its node with all of them in flight.
    drop(node);

    let mut made = Vec::new();
    for (i, (call, expect)) in calls.into_iter().enumerate() {
        let answer = JsFuture::from(call).await;
        match expect {
            Expect::Set(key) => {
                answer.unwrap_or_else(|e| panic!("call {i}: {e:?}"));
                assert!(
                    told.borrow().contains(&key),
                    "{key} resolved before it was told"
                );
                made.push(key);
            }
            Expect::Get => {
                let output = get(&answer.unwrap(), "output").as_string();
                assert_eq!(
                    output.as_deref(),
                    Some(format!("v{}", made.len() - 1).as_str())
                );
            }
            Expect::Members => assert_eq!(Array::from(&answer.unwrap()).length(), 1),
            Expect::Unknown => {
                let err = answer.unwrap_err();
                assert_eq!(
                    get(&err, "name").as_string().as_deref(),
                    Some("UnknownContext")
                );
            }
        }
    }
    assert_eq!(*told.borrow(), made);
}
