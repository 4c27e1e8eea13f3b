//! Calls made once: a caller that may send one call twice (a tab whose host tab went while the
//! call was in flight, a client that lost its connection) names it with a call id. The node
//! stores the call's answer in the call's own transaction, with its writes, and answers the
//! same id again with that stored answer instead of running the call a second time; so a retry
//! never applies a write twice, and a call that was not applied simply runs.
//!
//! Only calls that write keep an answer (a read runs again, harmlessly). Answers are kept
//! [`KEEP_ANSWERS_NANOS`] (retries come within seconds; an hour is ample) and then dropped.

use super::local::args_hash;
use super::*;

/// The longest call id taken (a UUID is 36 characters).
pub const MAX_CALL_ID_BYTES: usize = 128;

/// How long a call's answer is kept for a retry: an hour.
pub const KEEP_ANSWERS_NANOS: u64 = 3600 * 1_000_000_000;

/// How often old answers are looked for (at the next call with an id).
const PRUNE_EVERY_NANOS: u64 = 600 * 1_000_000_000;

/// The call with an id that runs now: its answer goes into its transaction.
pub(super) struct OnceCall {
    key: Vec<u8>,
    method: String,
    args_hash: Hash,
}

/// What is kept of a call's answer.
#[derive(Serialize, serde::Deserialize)]
struct StoredAnswer {
    /// When it was made (ns since the epoch): answers are dropped an hour later.
    at: u64,
    method: String,
    args_hash: Hash,
    output: serde_json::Value,
    logs: Vec<String>,
    events: Vec<serde_json::Value>,
    root_hash: Option<Hash>,
    delta_id: Option<DeltaId>,
    blobs: Vec<String>,
}

fn answer_key(context_id: &ContextId, call_id: &str) -> Vec<u8> {
    [CALL, context_id.as_bytes(), call_id.as_bytes()].concat()
}

impl<S: Store, E: Env> Node<S, E> {
    /// [`Node::execute`], at most once per `call_id` (see the module's doc): a call id this node
    /// already answered, for this context, gets that answer again (`repeated: true`, its
    /// xcalls and context requests not repeated) and changes nothing. The same id with
    /// another method or other arguments is refused with `BadArgs`.
    pub async fn execute_once(
        &mut self,
        id: &ContextId,
        method: &str,
        args: serde_json::Value,
        call_id: &str,
    ) -> Result<ExecuteResult, NodeError> {
        if call_id.is_empty() || call_id.len() > MAX_CALL_ID_BYTES {
            return Err(NodeError::BadArgs(format!(
                "a call id is 1 to {MAX_CALL_ID_BYTES} bytes, this one {}",
                call_id.len()
            )));
        }
        self.context(id)?;
        let key = answer_key(id, call_id);
        let args_hash = args_hash(&args);
        if let Some(bytes) = self.store.get(Namespace::Meta, &key).await? {
            let stored: StoredAnswer =
                serde_json::from_slice(&bytes).map_err(|e| corrupt("call answer", e))?;
            if stored.method != method || stored.args_hash != args_hash {
                return Err(NodeError::BadArgs(format!(
                    "call id {call_id:?} was used for another call (of {})",
                    stored.method
                )));
            }
            return Ok(stored.into_result());
        }
        self.prune_answers().await?;
        self.once_call = Some(OnceCall {
            key,
            method: method.to_owned(),
            args_hash,
        });
        let result = self.execute(id, method, args).await;
        self.once_call = None;
        result
    }

    /// Stages the answer of the call with an id that runs now, if any, in its transaction.
    /// Taken by the first call to commit, so the calls it makes (xcalls) keep none.
    /// (`once`: the node's `once_call`, taken; `now`: the node's time.)
    pub(super) fn stage_answer(
        once: Option<OnceCall>,
        now: u64,
        batch: &mut Batch,
        result: &ExecuteResult,
    ) {
        let Some(once) = once else {
            return;
        };
        let stored = StoredAnswer {
            at: now,
            method: once.method,
            args_hash: once.args_hash,
            output: result.output.clone(),
            logs: result.logs.clone(),
            events: result.events.clone(),
            root_hash: result.root_hash,
            delta_id: result.delta_id,
            blobs: result.blobs.clone(),
        };
        let bytes = serde_json::to_vec(&stored).expect("JSON encodes");
        batch.put_mut(Namespace::Meta, &once.key, bytes);
    }

    /// Drops the answers older than [`KEEP_ANSWERS_NANOS`], at most every ten minutes.
    async fn prune_answers(&mut self) -> Result<(), NodeError> {
        let now = self.now;
        if self
            .answers_pruned_at
            .is_some_and(|t| now.saturating_sub(t) < PRUNE_EVERY_NANOS)
        {
            return Ok(());
        }
        self.answers_pruned_at = Some(now);
        let mut batch = Batch::new();
        for (key, bytes) in self.store.scan_prefix(Namespace::Meta, CALL).await? {
            let old = serde_json::from_slice::<StoredAnswer>(&bytes)
                .map_or(true, |a| now.saturating_sub(a.at) > KEEP_ANSWERS_NANOS);
            if old {
                batch.delete_mut(Namespace::Meta, &key);
            }
        }
        if !batch.is_empty() {
            self.commit(batch).await?;
        }
        Ok(())
    }
}

impl StoredAnswer {
    fn into_result(self) -> ExecuteResult {
        ExecuteResult {
            output: self.output,
            logs: self.logs,
            events: self.events,
            root_hash: self.root_hash,
            delta_id: self.delta_id,
            blobs: self.blobs,
            repeated: true,
            xcalls: Vec::new(),
            queued_xcalls: Vec::new(),
            context_requests: Vec::new(),
            queued_context_requests: Vec::new(),
        }
    }
}
