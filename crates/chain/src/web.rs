//! The page's transport: the browser's `fetch`, aborted by an `AbortController` when the
//! timeout passes. Works in a window and in a worker.

use std::time::Duration;

use js_sys::{Promise, Uint8Array};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortController, Headers, Request, RequestInit, Response};

use crate::client::{HttpAnswer, Transport, TransportError};

/// POSTs JSON with `fetch`. CORS applies: NEAR's public RPC endpoints allow any origin.
#[derive(Debug, Clone, Copy, Default)]
pub struct FetchTransport;

impl FetchTransport {
    pub fn new() -> Self {
        Self
    }
}

/// The global scope: `fetch` and timers live on `window` or on the worker's scope.
enum Scope {
    Window(web_sys::Window),
    Worker(web_sys::WorkerGlobalScope),
}

impl Scope {
    fn get() -> Result<Self, TransportError> {
        let global = js_sys::global();
        if let Ok(w) = global.clone().dyn_into::<web_sys::Window>() {
            return Ok(Scope::Window(w));
        }
        global
            .dyn_into::<web_sys::WorkerGlobalScope>()
            .map(Scope::Worker)
            .map_err(|_| TransportError::Failed("no window or worker scope to fetch from".into()))
    }

    fn fetch(&self, request: &Request) -> Promise {
        match self {
            Scope::Window(w) => w.fetch_with_request(request),
            Scope::Worker(w) => w.fetch_with_request(request),
        }
    }

    fn set_timeout(&self, f: &js_sys::Function, ms: i32) -> Result<i32, JsValue> {
        match self {
            Scope::Window(w) => w.set_timeout_with_callback_and_timeout_and_arguments_0(f, ms),
            Scope::Worker(w) => w.set_timeout_with_callback_and_timeout_and_arguments_0(f, ms),
        }
    }

    fn clear_timeout(&self, handle: i32) {
        match self {
            Scope::Window(w) => w.clear_timeout_with_handle(handle),
            Scope::Worker(w) => w.clear_timeout_with_handle(handle),
        }
    }
}

/// Clears the timer before its closure is dropped, even when the request's future is dropped
/// half-way (a timer firing into a dropped closure would throw).
struct Timer<'a> {
    scope: &'a Scope,
    handle: i32,
    _closure: Closure<dyn FnMut()>,
}

impl Drop for Timer<'_> {
    fn drop(&mut self) {
        self.scope.clear_timeout(self.handle);
    }
}

fn describe(value: &JsValue) -> String {
    if let Some(e) = value.dyn_ref::<js_sys::Error>() {
        return String::from(e.message());
    }
    if let Some(e) = value.dyn_ref::<web_sys::DomException>() {
        return format!("{}: {}", e.name(), e.message());
    }
    value.as_string().unwrap_or_else(|| format!("{value:?}"))
}

fn failed(value: JsValue) -> TransportError {
    TransportError::Failed(describe(&value))
}

impl Transport for FetchTransport {
    async fn post(
        &self,
        url: &str,
        body: &[u8],
        timeout: Duration,
    ) -> Result<HttpAnswer, TransportError> {
        let scope = Scope::get()?;
        let controller = AbortController::new().map_err(failed)?;
        let headers = Headers::new().map_err(failed)?;
        headers
            .set("content-type", "application/json")
            .map_err(failed)?;
        let init = RequestInit::new();
        init.set_method("POST");
        init.set_headers(&headers);
        init.set_body(&Uint8Array::from(body));
        init.set_signal(Some(&controller.signal()));
        let request = Request::new_with_str_and_init(url, &init).map_err(failed)?;

        let abort = controller.clone();
        let closure = Closure::once(move || abort.abort());
        let ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
        let handle = scope
            .set_timeout(closure.as_ref().unchecked_ref(), ms)
            .map_err(failed)?;
        let timer = Timer {
            scope: &scope,
            handle,
            _closure: closure,
        };

        let exchange = async {
            let response: Response = JsFuture::from(scope.fetch(&request)).await?.dyn_into()?;
            let status = response.status();
            let buffer = JsFuture::from(response.array_buffer()?).await?;
            Ok::<_, JsValue>(HttpAnswer {
                status,
                body: Uint8Array::new(&buffer).to_vec(),
            })
        };
        let outcome = exchange.await;
        drop(timer);
        outcome.map_err(|e| {
            if controller.signal().aborted() {
                TransportError::Timeout
            } else {
                failed(e)
            }
        })
    }
}
