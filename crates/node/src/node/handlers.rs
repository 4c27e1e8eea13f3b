//! Event handlers: an event a call emits with `emit_with_handler` names a method of the app,
//! which travels with the event in the call's delta ([`EventRecord::handler`]). As merod 0.10
//! does, the members that apply the delta run that method, not its author: as their own member,
//! with the event's payload as its arguments, once, after the delta is applied, in the order
//! the deltas were applied and their events emitted. Each run is a local call of its own: its
//! writes make a delta of their own, a failure changes nothing and is reported
//! ([`NodeEvent::Handler`]), and the delta that named it stands either way.
//!
//! A member runs the handlers of the deltas that are not in the causal past of its admission:
//! the history a joiner catches up on was handled by the members there at the time (merod's
//! joiner takes that history as a snapshot and runs no handlers for it). Deltas a snapshot
//! covers are recorded, not run, and run no handlers either.

use super::*;

/// A handler a member's delta named, waiting to run here.
pub(super) struct HandlerCall {
    context_id: ContextId,
    /// The delta whose event named the handler.
    delta_id: DeltaId,
    handler: String,
    /// The event's payload as it arrived: the handler's arguments.
    data: Vec<u8>,
    /// Whether its author withheld the payload (see [`crate::Disclosure`]).
    withheld: bool,
}

impl<S: Store, E: Env> Node<S, E> {
    /// Queues the handlers that delta `id`'s events name, unless this node wrote it (it applied
    /// the delta by running it). Those of the history before this node's admission are dropped
    /// once the admission is known (see [`Self::run_handlers`]).
    pub(super) fn queue_handlers(&mut self, ctx: &ContextState, id: DeltaId, body: &DeltaBody) {
        if body.author == self.key.public() {
            return;
        }
        let calls = body.events.iter().filter_map(|e| {
            Some(HandlerCall {
                context_id: ctx.id,
                delta_id: id,
                handler: e.handler.clone()?,
                data: e.data.clone(),
                withheld: e.withheld.is_some(),
            })
        });
        self.handler_calls.extend(calls);
    }

    /// Runs the queued handlers of `context_id` in order, once it takes calls (a joiner's wait
    /// until its admission is in its log).
    pub(super) async fn run_handlers(&mut self, context_id: ContextId) {
        loop {
            let Some(ctx) = self.contexts.get(&context_id) else {
                // A context dropped: its handlers go with it.
                self.handler_calls.retain(|c| c.context_id != context_id);
                return;
            };
            if !ctx.synced() || ctx.awaits_admission() {
                return;
            }
            let history = history_before_admission(ctx, &self.handler_calls);
            self.handler_calls
                .retain(|c| !history.contains(&c.delta_id));
            let Some(at) = self
                .handler_calls
                .iter()
                .position(|c| c.context_id == context_id)
            else {
                return;
            };
            let call = self.handler_calls.remove(at).expect("found above");
            let ran = match handler_args(&call) {
                Ok(args) => self
                    .execute(&context_id, &call.handler, args)
                    .await
                    .map(|result| result.delta_id),
                Err(e) => Err(e),
            };
            if let Err(e) = &ran {
                tracing::warn!(%context_id, handler = call.handler, %e, "an event handler failed");
            }
            self.events.push(NodeEvent::Handler {
                context_id,
                delta_id: call.delta_id,
                handler: call.handler,
                handler_delta: ran.as_ref().ok().copied().flatten(),
                error: ran.err().map(|e| format!("{}: {e}", e.kind())),
            });
        }
    }
}

/// A handler's arguments: the event's payload, a JSON object (or `null`, for an event with no
/// fields) as a call's arguments are.
fn handler_args(call: &HandlerCall) -> Result<serde_json::Value, NodeError> {
    if call.withheld {
        return Err(NodeError::BadArgs(
            "the event's payload, the handler's arguments, was withheld by the delta's author"
                .into(),
        ));
    }
    match serde_json::from_slice(&call.data) {
        Ok(args @ (serde_json::Value::Object(_) | serde_json::Value::Null)) => Ok(args),
        Ok(other) => Err(NodeError::BadArgs(format!(
            "the event's payload is {}, not an object of the handler's arguments",
            super::local::json_type(&other)
        ))),
        Err(e) => Err(NodeError::BadArgs(format!(
            "the event's payload is not JSON ({e})"
        ))),
    }
}

/// The deltas among `queued` that are in the causal past of this node's admission to `ctx`
/// (any of them, when members each recorded one): history this node caught up on.
fn history_before_admission(
    ctx: &ContextState,
    queued: &std::collections::VecDeque<HandlerCall>,
) -> HashSet<DeltaId> {
    let Some((_, admissions)) = ctx
        .log
        .verdict()
        .admitted
        .get(&admitted_key(&ctx.record.cert))
    else {
        return HashSet::new(); // the creator, or a key made a member by an admin's operation
    };
    // A delta is later than its parents: one stamped after the latest admission is none's past.
    let stamp = |id: &DeltaId| ctx.dag.get(id).map(|e| e.timestamp);
    let latest = admissions.iter().filter_map(stamp).max().unwrap_or(0);
    let older = |c: &&HandlerCall| c.context_id == ctx.id && stamp(&c.delta_id) < Some(latest);
    if !queued.iter().any(|c| older(&c)) {
        return HashSet::new();
    }
    let past = with_ancestors(&ctx.dag, admissions.iter().copied());
    queued
        .iter()
        .filter(|c| c.context_id == ctx.id && past.contains(&c.delta_id))
        .map(|c| c.delta_id)
        .collect()
}

/// The key an invitation admitted, for `cert` (a rotated key's: the key it replaced, back to
/// the one that joined).
fn admitted_key(cert: &MemberCert) -> PublicKey {
    match &cert.issued {
        Issuance::Rotated { from, .. } => admitted_key(from),
        _ => cert.member,
    }
}
