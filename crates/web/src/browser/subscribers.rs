//! The page's subscribers: callbacks told of the node's events, the network's peers coming and
//! going, and what the page itself tells (a crash, a proposal sent on its own).

use super::*;

/// A JS callback subscribed to one context (or to all, for `None`).
pub(super) struct Subscriber {
    id: u32,
    context: Option<ContextId>,
    callback: Function,
}

impl Inner {
    /// Gives each of `events` to the subscribers of its context and of every context.
    pub(super) fn notify(&self, events: &[NodeEvent]) {
        if events.is_empty() {
            return;
        }
        // Clone the callbacks first: a callback may subscribe or unsubscribe.
        let subscribers: Vec<(Option<ContextId>, Function)> = self
            .subscribers
            .borrow()
            .iter()
            .map(|s| (s.context, s.callback.clone()))
            .collect();
        for event in events {
            // A guest's event may hold an integer beyond 2^53 (a timestamp in ns).
            let value = match to_js_exact(event) {
                Ok(value) => value,
                Err(e) => {
                    tracing::warn!("an event could not be given to the page: {e:?}");
                    continue;
                }
            };
            for (context, callback) in &subscribers {
                if context.is_none() || *context == event.context_id() {
                    if let Err(e) = callback.call1(&JsValue::NULL, &value) {
                        tracing::warn!("a subscriber threw: {e:?}");
                    }
                }
            }
        }
    }

    /// Tells the subscribers of every context that `peer` came or went (`kind`).
    pub(super) fn notify_peer(&self, kind: &str, peer: &str) {
        self.tell(&serde_json::json!({"type": kind, "peer": peer}), false);
    }

    /// Gives `event` to the subscribers of every context (`null`), or with `everyone` to all.
    pub(super) fn tell(&self, event: &serde_json::Value, everyone: bool) {
        self.tell_those(event, |s| everyone || s.context.is_none());
    }

    /// Gives `event` to the subscribers of `context` and of every context.
    pub(super) fn tell_context(&self, context: &ContextId, event: &serde_json::Value) {
        self.tell_those(event, |s| {
            s.context.is_none() || s.context.as_ref() == Some(context)
        });
    }

    fn tell_those(&self, event: &serde_json::Value, to: impl Fn(&Subscriber) -> bool) {
        let value = to_js(event).unwrap_or(JsValue::NULL);
        let all: Vec<Function> = self
            .subscribers
            .borrow()
            .iter()
            .filter(|s| to(s))
            .map(|s| s.callback.clone())
            .collect();
        for callback in all {
            let _ = callback.call1(&JsValue::NULL, &value);
        }
    }
}

#[wasm_bindgen]
impl BrowserNode {
    /// Calls `callback(event)` for every event of the context (`null` for every context and
    /// peer changes); returns a function that unsubscribes.
    #[wasm_bindgen(unchecked_return_type = "() => void")]
    pub fn subscribe(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string | null")] context_id: JsValue,
        #[wasm_bindgen(unchecked_param_type = "(event: NodeEvent) => void")] callback: Function,
    ) -> Result<Function, JsValue> {
        let context = match context_id.as_string() {
            Some(text) => Some(parse_id::<ContextId>(&text)?),
            None if context_id.is_null() || context_id.is_undefined() => None,
            None => {
                return Err(usage_error(
                    "BadArgs",
                    "contextId must be a string or null".into(),
                ))
            }
        };
        let id = self.inner.next_subscriber.get();
        self.inner.next_subscriber.set(id + 1);
        self.inner.subscribers.borrow_mut().push(Subscriber {
            id,
            context,
            callback,
        });
        let weak = Rc::downgrade(&self.inner);
        let unsubscribe = Closure::once_into_js(move || {
            if let Some(inner) = weak.upgrade() {
                inner.subscribers.borrow_mut().retain(|s| s.id != id);
            }
        });
        Ok(unsubscribe.unchecked_into())
    }
}
