//! In the page, the browser engine makes the next call's instance while the page waits (after
//! a call, once its task is over): a call that finds it uses it instead of making one, and runs
//! exactly as on an instance made for it. Only in headless Chromium (`scripts/wasm-test.sh -p
//! tabnode-runtime`); natively there is no browser engine.
#![cfg(target_arch = "wasm32")]

wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

mod common;

use common::{guest_app, Replica};
use serde_json::json;
use tabnode_runtime::{EngineKind, Limits, Runtime};
use wasm_bindgen::prelude::wasm_bindgen;

#[wasm_bindgen(inline_js = r#"
export function count_instances() {
  const Instance = WebAssembly.Instance;
  if (Instance.counted) return;
  let made = 0;
  const Counted = function (...args) { made += 1; return new Instance(...args); };
  Counted.prototype = Instance.prototype;
  Counted.counted = () => made;
  WebAssembly.Instance = Counted;
}
export function instances_made() { return WebAssembly.Instance.counted(); }
"#)]
extern "C" {
    fn count_instances();
    fn instances_made() -> u32;
}

#[wasm_bindgen(inline_js = "export function next_task(f) { setTimeout(f, 0); }")]
extern "C" {
    fn next_task(f: &js_sys::Function);
}

/// Lets the tasks queued so far run (the spare is made in one).
async fn a_moment() {
    let done = js_sys::Promise::new(&mut |resolve, _| next_task(&resolve));
    wasm_bindgen_futures::JsFuture::from(done).await.unwrap();
}

#[wasm_bindgen_test::wasm_bindgen_test]
async fn a_call_runs_on_the_spare_instance_as_on_one_made_for_it() {
    count_instances();
    let rt = Runtime::with_engine(Limits::default(), EngineKind::Browser).unwrap();
    let app = guest_app(&rt, "kv_store");
    // A call that writes state (kv-store's `init`), from the same start each time.
    let init = |replica: &mut Replica| replica.call(&rt, &app, "init", json!({}));

    // Two calls in one task: no moment between them for a spare, each makes its instance.
    let before = instances_made();
    let made_for_it = init(&mut Replica::new(1));
    let again = init(&mut Replica::new(1));
    assert_eq!(made_for_it, again);
    assert_eq!(
        instances_made() - before,
        2,
        "each call made its own instance"
    );

    // After a moment the spare is there; the next call takes it and makes none.
    a_moment().await;
    let with_spare = instances_made();
    assert_eq!(
        with_spare - before,
        3,
        "one spare was made while the page waited"
    );
    let on_spare = init(&mut Replica::new(1));
    assert_eq!(instances_made(), with_spare, "the call took the spare");
    assert_eq!(
        on_spare, made_for_it,
        "returns, writes, root and fuel used alike"
    );

    // A spare is used once: the next call in the same task makes its own.
    let after = init(&mut Replica::new(1));
    assert_eq!(instances_made(), with_spare + 1);
    assert_eq!(after, made_for_it);

    // A spare of another module is not taken.
    a_moment().await;
    let other = guest_app(&rt, "handler_counter");
    let spare_of_kv = instances_made();
    Replica::new(1).call(&rt, &other, "init", json!({}));
    assert_eq!(
        instances_made(),
        spare_of_kv + 1,
        "another app made its own instance"
    );
}
