//! A panic in the page: the node ends, and says so.
//!
//! wasm32 has no unwinding: a panic prints its message (console_error_panic_hook), then the
//! module traps where it was. The task that owned the node is never polled again, so an
//! operation waiting for its answer would wait forever, and so would every later one. Instead,
//! the panic hook records the panic and has [`after_crash`] run from a fresh JS task (not from
//! the futures executor, whose tick the trap cut short, and whose dead task traps once more
//! when next woken): each node of the page gives up on its operations in flight, and they and
//! every later one fail with `Crashed` (`NodeSender::abandon`); the node lets go of its
//! store's lock and tells its subscribers `{type: "crashed", message}`, so that another tab can
//! open the node from the same store (`TabNode` hands over to it) or the page can offer a
//! reload. What was committed before the panic stands: a write is acknowledged only once its
//! batch is.

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use tabnode_node::NodeError;
use wasm_bindgen::prelude::*;

use super::{BrowserNode, Inner};

thread_local! {
    /// The first panic's message, once there was one.
    static CRASH: RefCell<Option<String>> = const { RefCell::new(None) };
    /// The page's nodes, to be told of a crash.
    static NODES: RefCell<Vec<Weak<Inner>>> = const { RefCell::new(Vec::new()) };
}

/// Installs the page's panic hook (once): the message to the console, then [`record`].
pub(super) fn install_hook() {
    use std::sync::Once;
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            console_error_panic_hook::hook(info);
            record(info.to_string());
        }));
    });
}

/// Keeps `inner` to be told of a crash.
pub(super) fn watch(inner: &Rc<Inner>) {
    NODES.with(|nodes| {
        let mut nodes = nodes.borrow_mut();
        nodes.retain(|n| n.strong_count() > 0);
        nodes.push(Rc::downgrade(inner));
    });
}

/// Records the first panic and has [`after_crash`] run once the trap is over. Runs inside the
/// panicking code, just before the module traps: it takes the record only if it is free.
fn record(message: String) {
    let first = CRASH.with(|crash| match crash.try_borrow_mut() {
        Ok(mut crash) if crash.is_none() => {
            *crash = Some(message);
            true
        }
        _ => false,
    });
    if !first {
        return;
    }
    let after = Closure::once_into_js(after_crash);
    let global = js_sys::global();
    if let Ok(set_timeout) = js_sys::Reflect::get(&global, &"setTimeout".into()) {
        let set_timeout: js_sys::Function = set_timeout.unchecked_into();
        let _ = set_timeout.call2(&global, &after, &JsValue::from(0));
    }
}

/// Each node of the page gives up on its operations in flight (they fail `Crashed`), lets go
/// of its store (another tab may open it) and tells every subscriber `{type: "crashed",
/// message}`.
fn after_crash() {
    let Some(message) = crash_message() else {
        return;
    };
    let nodes: Vec<Rc<Inner>> = NODES.with(|n| n.take().iter().filter_map(Weak::upgrade).collect());
    for inner in nodes {
        let error_message = message.clone();
        inner
            .node
            .abandon(Box::new(move || crashed_error(&error_message)));
        inner.store_lock.release();
        inner.tell(
            &serde_json::json!({"type": "crashed", "message": message}),
            true,
        );
    }
}

/// The error an operation gets once the page's node task has crashed.
pub(super) fn crashed_error(message: &str) -> NodeError {
    NodeError::Crashed(format!(
        "{message}; what was acknowledged before stands, an operation in flight may or may not have been applied, and this page's node answers nothing more: open it again (reload, or let another tab host it)"
    ))
}

/// The panic's message, if the page has had one.
pub(super) fn crash_message() -> Option<String> {
    CRASH.with(|crash| crash.try_borrow().ok().and_then(|c| c.clone()))
}

#[wasm_bindgen]
impl BrowserNode {
    /// For test suites: makes the task that owns this page's node panic, as a bug would, so
    /// that a suite can check what its app does then (this call and every later one fail with
    /// `Crashed`, subscribers hear `{type: "crashed", message}`, a `TabNode` hands the node to
    /// another tab). The node is gone from this page afterwards; nothing stored is touched.
    #[wasm_bindgen(js_name = crashForTesting, unchecked_return_type = "Promise<void>")]
    pub fn crash_for_testing(&self) -> js_sys::Promise {
        let inner = self.inner.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            inner
                .run(async move |_node| -> Result<(), NodeError> {
                    panic!("crashForTesting: a panic asked for by the page")
                })
                .await?;
            Ok(wasm_bindgen::JsValue::UNDEFINED)
        })
    }
}
