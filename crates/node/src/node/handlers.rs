//! Event handlers: an event a call emits with `emit_with_handler` names a method of the app.
//! As merod 0.10 does (`crates/context/src/handlers/execute.rs` at that tag), the node whose
//! call emitted the event runs that method, once, after the call, as its own member with the
//! event's payload as its arguments; the delta it sends names no handler, so the members that
//! apply it run none. Each run is a local call of its own: its writes make a delta of their own
//! (which reaches the members as any write does), a failure changes nothing and is reported
//! ([`NodeEvent::Handler`]), and the call that named it stands either way.
//!
//! A delta that still names a handler ([`EventRecord::handler`]: written by an older build,
//! which left handlers to the members) has it run by the members that apply it, not its
//! author, as merod 0.10's receivers do (`crates/node/src/handlers/state_delta.rs`): once,
//! after the delta is applied, in the order the deltas were applied and their events emitted.
//! A member runs those of the deltas that are not in the causal past of its admission: the
//! history a joiner catches up on was handled by the members there at the time. Deltas a
//! snapshot covers are recorded, not run, and run no handlers either.
//!
//! A handler's own call may emit events with handlers: they run after it, up to
//! [`HANDLER_DEPTH`] handlers deep (a handler that names itself would otherwise run forever).
//!
//! The queue is kept in the store too, so a node that stops before a handler ran runs it when
//! it opens again: a handler is queued in the transaction of the call or delta that named it,
//! and leaves the queue in the transaction of its own call (or alone, if its call wrote
//! nothing).

use super::*;

/// How many handlers deep a chain of handlers runs (a handler whose call names a handler, …);
/// one past it is reported as failed and does not run.
pub const HANDLER_DEPTH: u8 = 8;

/// The bit of a queued handler's event index that marks a handler of this node's own call:
/// its row never meets one of a member's delta stored at the same `seq`.
const OWN_CALL: u32 = 1 << 31;

/// A handler a call or a member's delta named, waiting to run here.
pub(super) struct HandlerCall {
    context_id: ContextId,
    /// Where it waits in [`Namespace::Meta`] (see [`HANDLER`]).
    row: Vec<u8>,
    call: QueuedHandler,
    /// How many handlers deep it runs: 0 for one an ordinary call or a delta named (and for
    /// any read back from the store), one more than the handler whose call named it.
    depth: u8,
}

/// What a queued handler's row holds.
#[derive(BorshSerialize, BorshDeserialize)]
struct QueuedHandler {
    /// The delta whose event named the handler; all zeros for a call of this node's that
    /// wrote nothing (it made no delta).
    delta_id: DeltaId,
    handler: String,
    /// The event's payload as it arrived: the handler's arguments.
    data: Vec<u8>,
    /// Whether its author withheld the payload (see [`crate::Disclosure`]).
    withheld: bool,
}

/// The handlers `events` name (with each event's index, payload and whether it was
/// withheld), as queue rows of `context_id` after its delta `seq`, staged into `batch`.
fn stage_queue<'e>(
    batch: &mut Batch,
    context_id: ContextId,
    (delta_id, seq): (DeltaId, u64),
    events: impl Iterator<Item = (u32, &'e Option<String>, &'e [u8], bool)>,
    depth: u8,
) -> Vec<HandlerCall> {
    let calls: Vec<_> = events
        .filter_map(|(index, handler, data, withheld)| {
            let at = [&seq.to_be_bytes()[..], &index.to_be_bytes()].concat();
            Some(HandlerCall {
                context_id,
                row: [scoped_meta(HANDLER, &context_id), at].concat(),
                call: QueuedHandler {
                    delta_id,
                    handler: handler.clone()?,
                    data: data.to_vec(),
                    withheld,
                },
                depth,
            })
        })
        .collect();
    for c in &calls {
        batch.put_mut(
            Namespace::Meta,
            &c.row,
            borsh::to_vec(&c.call).expect("encode"),
        );
    }
    calls
}

impl<S: Store, E: Env> Node<S, E> {
    /// The handlers that delta `id` (stored as the context's `seq`th) names, unless this node
    /// wrote it, staged into the batch that applies it; queue them with
    /// [`Self::queue_handlers`] once that batch is written. Those of the history before this
    /// node's admission are dropped once the admission is known (see [`Self::run_handlers`]).
    pub(super) fn stage_handlers(
        &self,
        batch: &mut Batch,
        context_id: ContextId,
        (id, seq): (DeltaId, u64),
        body: &DeltaBody,
    ) -> Vec<HandlerCall> {
        if body.author == self.key.public() {
            return Vec::new();
        }
        let events = body
            .events
            .iter()
            .enumerate()
            .map(|(index, e)| (index as u32, &e.handler, &e.data[..], e.withheld.is_some()));
        stage_queue(batch, context_id, (id, seq), events, 0)
    }

    /// The handlers the events of this node's own call in `context_id` name, staged into the
    /// call's batch: `delta` is the delta the call made (stored as the `seq`th), if any, else
    /// `seq` is the context's next. They run once the call's action is over (see
    /// [`Self::run_queued_handlers`]).
    /// (`depth`: the node's `handler_depth`.)
    pub(super) fn stage_own_handlers(
        batch: &mut Batch,
        context_id: ContextId,
        (delta, seq): (Option<DeltaId>, u64),
        events: &[tabnode_runtime::Event],
        depth: u8,
    ) -> Vec<HandlerCall> {
        let events = events
            .iter()
            .enumerate()
            .map(|(index, e)| (index as u32 | OWN_CALL, &e.handler, &e.data[..], false));
        let named_by = (delta.unwrap_or(DeltaId([0; 32])), seq);
        stage_queue(batch, context_id, named_by, events, depth)
    }

    pub(super) fn queue_handlers(&mut self, calls: Vec<HandlerCall>) {
        self.handler_calls.extend(calls);
    }

    /// Reads the handlers that waited when the node stopped (see [`Node::open`]), in order.
    pub(super) async fn load_handlers(&mut self) -> Result<(), NodeError> {
        for (row, value) in self.store.scan_prefix(Namespace::Meta, HANDLER).await? {
            let context_id = row
                .get(HANDLER.len()..HANDLER.len() + 32)
                .and_then(|id| id.try_into().ok())
                .map(ContextId)
                .ok_or_else(|| corrupt("queued handler", "no context id"))?;
            let call =
                QueuedHandler::try_from_slice(&value).map_err(|e| corrupt("queued handler", e))?;
            self.handler_calls.push_back(HandlerCall {
                context_id,
                row,
                call,
                depth: 0,
            });
        }
        Ok(())
    }

    /// Runs, in each context that takes calls, the handlers waiting: those that waited when
    /// the node stopped, and those a call of this node just named.
    pub(super) async fn run_queued_handlers(&mut self) {
        let mut contexts: Vec<_> = self.handler_calls.iter().map(|c| c.context_id).collect();
        contexts.dedup();
        for context_id in contexts {
            self.run_handlers(context_id).await;
        }
    }

    /// Takes `calls` off the queue in the store (they will not run here).
    async fn unqueue(&mut self, calls: impl Iterator<Item = HandlerCall>) {
        let mut batch = Batch::new();
        for call in calls {
            batch.delete_mut(Namespace::Meta, &call.row);
        }
        if batch.is_empty() {
            return;
        }
        if let Err(e) = self.commit(batch).await {
            tracing::warn!(%e, "could not take handlers that will not run off the stored queue");
        }
    }

    /// Runs the queued handlers of `context_id` in order, once it takes calls (a joiner's wait
    /// until its admission is in its log).
    /// A handler's own call may queue more: the loop takes them too.
    pub(super) async fn run_handlers(&mut self, context_id: ContextId) {
        loop {
            let Some(ctx) = self.contexts.get(&context_id) else {
                // A context dropped: its handlers go with it (its rows went with its drop).
                self.handler_calls.retain(|c| c.context_id != context_id);
                return;
            };
            if !ctx.synced() || ctx.awaits_admission() {
                return;
            }
            let history = history_before_admission(ctx, &self.handler_calls);
            if !history.is_empty() {
                let (dropped, kept) = std::mem::take(&mut self.handler_calls)
                    .into_iter()
                    .partition(|c| {
                        c.context_id == context_id && history.contains(&c.call.delta_id)
                    });
                self.handler_calls = kept;
                self.unqueue(Vec::from(dropped).into_iter()).await;
            }
            let Some(at) = self
                .handler_calls
                .iter()
                .position(|c| c.context_id == context_id)
            else {
                return;
            };
            let HandlerCall {
                row, call, depth, ..
            } = self.handler_calls.remove(at).expect("found above");
            // The call's own transaction takes it off the stored queue (see `Node::commit`).
            self.handler_ran = Some(row);
            let ran = match handler_args(&call, depth) {
                Ok(args) => {
                    self.handler_depth = depth + 1;
                    let ran = self.execute_action(&context_id, &call.handler, args).await;
                    self.handler_depth = 0;
                    ran.map(|result| result.delta_id)
                }
                Err(e) => Err(e),
            };
            if let Some(row) = self.handler_ran.take() {
                let batch = Batch::new().delete(Namespace::Meta, &row);
                if let Err(e) = self.commit(batch).await {
                    tracing::warn!(%context_id, %e, "could not take a handler off the stored queue");
                }
            }
            if let Err(e) = &ran {
                tracing::warn!(%context_id, handler = call.handler, %e, "an event handler failed");
            }
            self.events.push(NodeEvent::Handler {
                context_id,
                delta_id: Some(call.delta_id).filter(|id| id.0 != [0; 32]),
                handler: call.handler,
                handler_delta: ran.as_ref().ok().copied().flatten(),
                error: ran.err().map(|e| format!("{}: {e}", e.kind())),
            });
        }
    }
}

/// A handler's arguments: the event's payload, a JSON object (or `null`, for an event with no
/// fields) as a call's arguments are.
/// Refused past [`HANDLER_DEPTH`].
fn handler_args(call: &QueuedHandler, depth: u8) -> Result<serde_json::Value, NodeError> {
    if depth >= HANDLER_DEPTH {
        return Err(NodeError::OverBudget(format!(
            "{} is a handler named {HANDLER_DEPTH} handlers deep: it does not run",
            call.handler
        )));
    }
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
    let older = |c: &&HandlerCall| c.context_id == ctx.id && stamp(&c.call.delta_id) < Some(latest);
    if !queued.iter().any(|c| older(&c)) {
        return HashSet::new();
    }
    let past = with_ancestors(&ctx.dag, admissions.iter().copied());
    queued
        .iter()
        .filter(|c| c.context_id == ctx.id && past.contains(&c.call.delta_id))
        .map(|c| c.call.delta_id)
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
