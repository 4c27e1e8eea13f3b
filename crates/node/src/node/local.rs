//! Local calls: running a method of a context's app on this node, its requests to the node
//! (xcalls, contexts it creates) and the delta it makes. What a guest may ask of the node, and
//! the budget of one user action, are in [`super::guest`].

use super::*;

/// What a call's audit record (and a stored answer, `call_once`) names its arguments by.
pub(super) fn args_hash(args: &serde_json::Value) -> Hash {
    Hash(*blake3::hash(&serde_json::to_vec(args).expect("JSON encodes")).as_bytes())
}

/// A run of the guest as the node reports it.
fn ran_call(ran: Result<Outcome, RuntimeError>) -> Result<Outcome, NodeError> {
    match ran {
        Ok(outcome) => Ok(outcome),
        Err(RuntimeError::MethodNotFound(m)) => Err(NodeError::MethodNotFound(m)),
        Err(other) => Err(NodeError::Execution(other)),
    }
}

pub(super) fn json_type(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// The namespaces a local call's own records go to, after its rows (see [`Node::call_records`]).
const CALL_RECORDS: &[Namespace] = &[
    Namespace::Meta,
    Namespace::Contexts,
    Namespace::Deltas,
    Namespace::Audit,
    Namespace::Blobs,
];

/// A local call's own records, staged: its delta and audit record, the context's record after
/// it, its answer and the handlers its events name.
struct CallRecords {
    batch: Batch,
    delta: Option<Delta>,
    audit: AuditRecord,
    record: ContextRecord,
    result: ExecuteResult,
    handlers: Vec<handlers::HandlerCall>,
}

impl<S: Store, E: Env> Node<S, E> {
    /// The time of a local call in `ctx`: the wall clock, but always after every timestamp of
    /// a delta that stands here and after the context's heads (the parents of a delta made
    /// now, void ones included: a delta is later than its parents). When no such timestamp is
    /// left, the call can make no delta ([`NodeError::ClockExhausted`]).
    pub(super) fn next_timestamp(&mut self, ctx: &ContextState) -> Result<u64, NodeError> {
        let latest = ctx
            .record
            .heads
            .iter()
            .filter_map(|head| ctx.dag.get(head))
            .map(|entry| entry.timestamp)
            .fold(self.clock, u64::max);
        let after = latest.checked_add(1).ok_or_else(|| {
            NodeError::ClockExhausted(format!(
                "no timestamp is left after {latest} for a delta of {}",
                ctx.id
            ))
        })?;
        self.clock = self.now.max(after);
        Ok(self.clock)
    }

    /// Runs `method` with `args` (a JSON object) as this node's member; a change becomes a
    /// signed delta, persisted and published before this returns.
    ///
    /// One user action: the xcalls the call queues run after it (and theirs after them), then
    /// the context requests of them all, on one budget (see [`super::guest`]). An action that
    /// runs out of it is [`NodeError::OverBudget`], and none of its calls stands.
    pub async fn execute(
        &mut self,
        id: &ContextId,
        method: &str,
        args: serde_json::Value,
    ) -> Result<ExecuteResult, NodeError> {
        let result = self.execute_action(id, method, args).await;
        // The handlers its calls named run now that its writes stand (see `handlers`).
        self.run_queued_handlers().await;
        result
    }

    /// [`Self::execute`] but for the handlers it names, which wait in the queue: a handler's
    /// own call is one (the run under way takes what it queues).
    pub(super) async fn execute_action(
        &mut self,
        id: &ContextId,
        method: &str,
        args: serde_json::Value,
    ) -> Result<ExecuteResult, NodeError> {
        let mut action = self.begin_action(true);
        let args_hash = args_hash(&args);
        let result = self
            .execute_at_depth(id, method, args, 0, &mut action)
            .await;
        let mut result = self
            .end_action(&mut action, result, id, method, args_hash)
            .await?;
        self.queue_handlers(std::mem::take(&mut action.handlers));
        for (caller, request) in std::mem::take(&mut action.requests) {
            let done = self.context_request(&caller, request, &mut action).await;
            if let Some(error) = done.error {
                tracing::info!(context = %caller, request = done.request, %error, "an xcall's request was not made");
            }
        }
        for request in std::mem::take(&mut result.queued_context_requests) {
            let done = self.context_request(id, request, &mut action).await;
            result.context_requests.push(done);
        }
        Ok(result)
    }

    /// Runs one call of `action` and, after it, its xcalls; the context requests of xcalls
    /// (`depth` > 0) join the action's, those of its first call stay in the result.
    pub(super) fn execute_at_depth<'a>(
        &'a mut self,
        id: &'a ContextId,
        method: &'a str,
        args: serde_json::Value,
        depth: usize,
        action: &'a mut Action,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<ExecuteResult, NodeError>> + 'a>>
    {
        Box::pin(async move {
            let app_id = self.context(id)?.app_id();
            action.take_call(id)?;
            let app = self.app(app_id).await?;
            let args_hash = args_hash(&args);
            let mut ctx = self.contexts.remove(id).expect("checked above");
            let result = if !ctx.synced() || ctx.awaits_admission() {
                Err(NodeError::NotSynced(id.to_string()))
            } else {
                self.run_local(&app, &mut ctx, method, args, &mut Batch::new(), action)
                    .await
            };
            if let Err(e) = &result {
                // The failure stands whether or not its record could be written.
                let _ = self.audit_failure(&mut ctx, method, args_hash, e).await;
            }
            self.contexts.insert(*id, ctx);
            let mut result = result?;
            for request in std::mem::take(&mut result.queued_xcalls) {
                let error = match self.xcall(id, &request, depth, action).await {
                    Ok(()) => None,
                    Err(e @ NodeError::OverBudget(_)) => return Err(e),
                    Err(e) => Some(e),
                };
                result.xcalls.push(XCallResult {
                    context_id: ContextId(request.context_id),
                    function: request.function,
                    error_kind: error.as_ref().map(NodeError::kind),
                    error: error.map(|e| e.to_string()),
                });
            }
            if depth > 0 {
                let requests = std::mem::take(&mut result.queued_context_requests);
                action
                    .requests
                    .extend(requests.into_iter().map(|r| (*id, r)));
            }
            Ok(result)
        })
    }

    /// Makes one request a call queued (see [`ContextRequest`]) as this node, in context `id`.
    pub(super) async fn context_request(
        &mut self,
        id: &ContextId,
        request: ContextRequest,
        action: &mut Action,
    ) -> ContextRequestResult {
        let mut result = ContextRequestResult {
            request: "",
            proposal: None,
            member: None,
            context_id: None,
            op: None,
            error: None,
            error_kind: None,
        };
        let outcome = match request {
            ContextRequest::AddMember(key) => {
                result.request = "addMember";
                result.member = Some(PublicKey(key));
                let request = GuestRequest::AddMember {
                    context: *id,
                    member: PublicKey(key),
                };
                self.member_op_from_guest(request).await.map(Some)
            }
            ContextRequest::RemoveMember(key) => {
                result.request = "removeMember";
                result.member = Some(PublicKey(key));
                let request = GuestRequest::RemoveMember {
                    context: *id,
                    member: PublicKey(key),
                };
                self.member_op_from_guest(request).await.map(Some)
            }
            ContextRequest::Create {
                app_id,
                args,
                alias,
                ..
            } => {
                result.request = "create";
                match self
                    .create_from_guest(id, AppId(app_id), &args, alias, action)
                    .await
                {
                    Ok(created) => {
                        result.context_id = Some(created);
                        Ok(None)
                    }
                    Err(e) => Err(e),
                }
            }
            ContextRequest::Propose {
                id: proposal,
                actions,
            } => {
                result.request = "propose";
                result.proposal = Some(ProposalId(proposal));
                match crate::proposals::decode_actions(&actions) {
                    Ok(actions) => self
                        .propose_as(id, ProposalId(proposal), actions)
                        .await
                        .map(Some),
                    Err(e) => Err(e),
                }
            }
            ContextRequest::Approve(proposal) => {
                result.request = "approve";
                result.proposal = Some(ProposalId(proposal));
                self.approve_proposal(id, &ProposalId(proposal))
                    .await
                    .map(Some)
            }
            ContextRequest::Delete(target) => {
                result.request = "delete";
                result.context_id = Some(ContextId(target));
                self.delete_from_guest(id, &ContextId(target))
                    .await
                    .map(|()| None)
            }
        };
        match outcome {
            Ok(op) => result.op = op,
            Err(e) => {
                result.error_kind = Some(e.kind());
                result.error = Some(e.to_string());
            }
        }
        result
    }

    /// `context_create` from a guest of `creator`: a new context of an app this node has, under
    /// an alias that must be free; its `init` is a call of `action`.
    pub(super) async fn create_from_guest(
        &mut self,
        creator: &ContextId,
        app_id: AppId,
        args: &[u8],
        alias: Option<String>,
        action: &mut Action,
    ) -> Result<ContextId, NodeError> {
        let args: serde_json::Value = match args {
            [] => serde_json::json!({}),
            bytes => serde_json::from_slice(bytes)
                .map_err(|e| NodeError::BadArgs(format!("init args are not JSON ({e})")))?,
        };
        if let Some(alias) = &alias {
            if self.aliases.contains_key(alias) {
                return Err(NodeError::BadArgs(format!("the alias {alias:?} is taken")));
            }
        }
        let created = self
            .create_context_by(app_id, args, Some(*creator), action)
            .await?;
        if let Some(alias) = alias {
            let key = [ALIAS, alias.as_bytes()].concat();
            self.commit(Batch::new().put(Namespace::Meta, &key, created.as_bytes().to_vec()))
                .await?;
            Rc::make_mut(&mut self.aliases).insert(alias, created.0);
        }
        Ok(created)
    }

    /// Runs an xcall a call in `caller` queued, as this node's member, in the target context:
    /// the caller's own or one it created (see [`Self::guest_may_reach`]), or another the
    /// embedder consents to ([`GuestRequest::XCall`]), held by this node (roles come with the
    /// membership log).
    pub(super) async fn xcall(
        &mut self,
        caller: &ContextId,
        request: &XCallRequest,
        depth: usize,
        action: &mut Action,
    ) -> Result<(), NodeError> {
        if depth + 1 > MAX_XCALL_DEPTH {
            return Err(NodeError::BadArgs(format!(
                "xcalls nest deeper than {MAX_XCALL_DEPTH}"
            )));
        }
        let target = ContextId(request.context_id);
        self.context(&target)?;
        if self.guest_may_reach(caller, &target, "xcall into").is_err() {
            self.consent(GuestRequest::XCall {
                caller: *caller,
                target,
            })?;
        }
        let args: serde_json::Value = serde_json::from_slice(&request.params)
            .map_err(|e| NodeError::BadArgs(format!("xcall params are not JSON ({e})")))?;
        self.execute_at_depth(&target, &request.function, args, depth + 1, action)
            .await
            .map(|_| ())
    }

    /// Runs a call on a context's state with `fuel`, reading from the store the rows the call
    /// asks for that are not in memory yet (see [`Rows`]). A run that missed rows goes on as if
    /// they were absent; the node reads them all at once, and only if one exists runs the call
    /// again (a set of a new key on a reopened context misses its own absent rows: one run,
    /// one round of reads).
    pub(super) async fn run_call(
        &mut self,
        app: &App,
        call: &Call<'_>,
        ctx: &mut ContextState,
        fuel: u64,
    ) -> Result<Outcome, NodeError> {
        let mut misses = 0;
        loop {
            let views = ctx.views(&self.blobs, &self.aliases);
            let (mut rows, if_absent) = match self.runtime.call_with_fuel(app, call, views, fuel) {
                Err(RuntimeError::NotLoaded { rows, if_absent }) => (rows, if_absent),
                ran => return ran_call(ran),
            };
            misses += rows.len();
            // Past a few misses, the state is read whole, not row by row. (Not while an
            // action's writes are held: the store lacks them, the view has them.)
            let whole = misses > MAX_ROW_MISSES && self.held.is_none();
            if whole {
                for view in [ViewKind::Shared, ViewKind::Private] {
                    if rows.iter().any(|(v, _)| *v == view) {
                        read_whole(&self.store, ctx, view).await?;
                    }
                }
                rows.retain(|(v, _)| *v == ViewKind::Blob);
            }
            let reads = rows.iter().map(|(view, key)| {
                let (ns, stored_key) = match view {
                    ViewKind::Shared => (Namespace::State, scoped(&ctx.id, key)),
                    ViewKind::Private => (Namespace::Private, scoped(&ctx.id, key)),
                    ViewKind::Blob => (Namespace::Blobs, key.clone()),
                };
                let store = &self.store;
                async move { store.get(ns, &stored_key).await }
            });
            let values = futures::future::try_join_all(reads).await?;
            let all_absent = values.iter().all(Option::is_none);
            // The views in which a missed row does not exist (a new key's rows, say).
            let absent_in = |view| {
                let mut missed = rows.iter().zip(&values).filter(|((v, _), _)| *v == view);
                missed.any(|(_, value)| value.is_none())
            };
            let absent_in = [ViewKind::Shared, ViewKind::Private].map(|v| (v, absent_in(v)));
            for ((view, key), value) in rows.into_iter().zip(values) {
                let known = match view {
                    ViewKind::Shared => &mut ctx.shared,
                    ViewKind::Private => &mut ctx.private,
                    ViewKind::Blob => &mut self.blobs,
                };
                Rc::make_mut(known).learn(key, value);
            }
            // Rows that did not exist (a new key's): the state's keys are listed once, so that
            // later calls' new rows need no read. (Not while an action's writes are held: the
            // store lacks them.)
            for (view, _) in absent_in.into_iter().filter(|(_, absent)| *absent) {
                if self.held.is_none() {
                    list_keys(&self.store, ctx, view).await?;
                }
            }
            if all_absent && !whole {
                return ran_call(*if_absent);
            }
        }
    }

    /// Runs a local call and, if it changed state, commits state, delta and heads in one batch.
    pub(super) async fn run_local(
        &mut self,
        app: &App,
        ctx: &mut ContextState,
        method: &str,
        args: serde_json::Value,
        batch: &mut Batch,
        action: &mut Action,
    ) -> Result<ExecuteResult, NodeError> {
        if let Some(anchor) = &ctx.anchor {
            if !anchor.app_matches {
                return Err(NodeError::Unauthorized(format!(
                    "the app of {} is not the one its anchor records",
                    ctx.id
                )));
            }
            if !anchor.members.contains(&self.key.public()) {
                return Err(NodeError::Unauthorized(format!(
                    "this node is not a member of {} on its anchor",
                    ctx.id
                )));
            }
        }
        let input = match args {
            serde_json::Value::Object(_) => serde_json::to_vec(&args).expect("JSON encodes"),
            serde_json::Value::Null => b"{}".to_vec(),
            other => return Err(NodeError::BadArgs(json_type(&other).into())),
        };
        // A call that changes nothing needs no delta, and runs even when no timestamp is left.
        let stamp = self.next_timestamp(ctx);
        let timestamp = *stamp.as_ref().unwrap_or(&u64::MAX);
        let random_seed = self.env.random32();
        let call = Call {
            method,
            input: &input,
            context_id: ctx.id.0,
            executor_id: self.key.public().0,
            time_now_nanos: timestamp,
            random_seed,
        };
        let ran = self.run_call(app, &call, ctx, action.fuel()).await;
        let mut outcome = action.charge(ran)?;
        let output = match &outcome.returns {
            Ok(Some(bytes)) => json_or_bytes(bytes),
            Ok(None) => serde_json::Value::Null,
            Err(bytes) => {
                return Err(NodeError::AppError(
                    String::from_utf8_lossy(bytes).into_owned(),
                ))
            }
        };
        // What leaves the node of each event; withheld payloads stay here, by hash.
        let mut withheld = Vec::new();
        let events: Vec<EventRecord> = outcome
            .events
            .iter()
            .map(|e| {
                let setting = ctx.disclosure.get(&e.kind).cloned().unwrap_or_default();
                let (data, hash) = setting.apply(&e.data);
                if let Some(hash) = hash {
                    withheld.push((hash, e.data.clone()));
                }
                // This node runs the handler (see `handlers`): the delta names none.
                EventRecord {
                    kind: e.kind.clone(),
                    data,
                    withheld: hash,
                    handler: None,
                }
            })
            .collect();
        let writes = !outcome.artifact.is_empty() || !outcome.shared_writes.is_empty();
        if writes {
            stamp?;
            match ctx.role_now(&self.key.public()) {
                Some(role) if role.can_write() => {}
                Some(_) => {
                    return Err(NodeError::Unauthorized(format!(
                        "{method} changes state, and this node is a reader of {}",
                        ctx.id
                    )))
                }
                None => {
                    return Err(NodeError::Unauthorized(format!(
                        "this node was removed from {}",
                        ctx.id
                    )))
                }
            }
        }
        // The call's rows go to the store first (IndexedDB writes them on its own thread while
        // the node signs and stages its records, in the same transaction: see
        // `Store::commit_parts`); a call that writes none commits as one batch below.
        let mut first = std::mem::take(batch);
        stage_writes(
            &mut first,
            ctx,
            &outcome.shared_writes,
            &outcome.private_writes,
        );
        if action.should_hold(outcome.xcalls.len()) {
            self.hold_action_writes(ctx.id).await?;
        }
        let key = self.key.clone();
        let depth = self.handler_depth;
        let previous_root = ctx.record.root_hash;
        let (shared_ctx, events, withheld_now) = (&*ctx, &events, &withheld);
        let records = move |outcome: &mut Outcome| {
            Self::call_records(
                &key,
                shared_ctx,
                outcome,
                output,
                events,
                withheld_now,
                (&input, random_seed, timestamp),
                method,
                depth,
            )
        };
        let (made, written, read_only) = if first.is_empty() {
            let mut rest = first;
            let mut made = records(&mut outcome);
            rest.append(std::mem::take(&mut made.batch));
            let read_only = made.delta.is_none()
                && outcome.shared_writes.is_empty()
                && outcome.private_writes.is_empty()
                && outcome.blobs.is_empty()
                && outcome.announced_blobs.is_empty();
            // A read whose record is all it writes may let the record wait (see
            // `defer_read_audits`): it is chained now and stored with what comes next.
            let record_only = read_only
                && withheld.is_empty()
                && made.handlers.is_empty()
                && made.record.root_hash == previous_root;
            if !record_only {
                // A call made with an id keeps its answer with its writes (see `call_once`).
                Self::stage_answer(self.once_call.take(), self.now, &mut rest, &made.result);
            }
            let written = match record_only && self.defer_read_audit(ctx.id, &made.audit) {
                true => Ok(()),
                false => self.commit(rest).await,
            };
            (made, written, read_only)
        } else {
            let (once, now) = (self.once_call.take(), self.now);
            let mut made = None;
            let written = self
                .commit_parts(first, CALL_RECORDS, || {
                    let mut call = records(&mut outcome);
                    Self::stage_answer(once, now, &mut call.batch, &call.result);
                    let rest = std::mem::take(&mut call.batch);
                    made = Some(call);
                    rest
                })
                .await;
            // The store may fail before it asks for the records (sealing, or the transaction
            // not starting): then nothing was written.
            let Some(made) = made else {
                let error = written.err().unwrap_or_else(|| {
                    StoreError::Backend("the store wrote a batch without its records".into())
                });
                return Err(error.into());
            };
            (made, written, false)
        };
        let (delta, audit, record, result, handlers) = (
            made.delta,
            made.audit,
            made.record,
            made.result,
            made.handlers,
        );
        *batch = Batch::new();
        action.handlers.extend(handlers);
        let delta_id = result.delta_id;
        {
            match written {
                Ok(()) => ctx.audit = audit.next_head(),
                // A full disk must not stop reads: a call that changed nothing answers even if
                // its audit record could not be stored (the chain goes on from the last one).
                Err(StoreError::QuotaExceeded) if read_only => {
                    tracing::warn!(context = %ctx.id, method, "quota exhausted: a read was not audited");
                }
                Err(e) => return Err(e.into()),
            }
            ctx.apply_shared(outcome.shared_writes);
            apply_writes(&mut ctx.private, outcome.private_writes);
            if !outcome.blobs.is_empty() {
                let blobs = Rc::make_mut(&mut self.blobs);
                for (id, data) in outcome.blobs {
                    blobs.learn(id.to_vec(), Some(data));
                }
            }
            ctx.record = record;
        }
        for e in &outcome.events {
            self.events.push(NodeEvent::Event {
                context_id: ctx.id,
                kind: e.kind.clone(),
                data: json_or_bytes(&e.data),
                author: self.key.public(),
                delta_id,
                local: true,
                withheld: None,
            });
        }
        if let Some(delta) = delta {
            ctx.announced = true;
            ctx.insert_applied(&delta, true);
            self.publish(ctx.id, &ctx.secret, WireMessage::Deltas(vec![delta]));
        }
        // A blob the guest opened and this node lacks is fetched from the members (see
        // `blob_fetch`): the guest opens it on a later call.
        for id in outcome.missing_blobs {
            let started = self
                .start_blob_fetch(ctx.id, (&ctx.record.cert, &ctx.secret), Hash(id))
                .await;
            if let Err(e) = started {
                tracing::warn!(context = %ctx.id, %e, "could not start fetching a blob");
            }
        }
        Ok(result)
    }

    /// Signs and stages a local call's own records (see [`CallRecords`]): what follows its run
    /// once its rows are staged. `key`: the node's; `depth`: its `handler_depth`.
    #[allow(clippy::too_many_arguments)]
    fn call_records(
        key: &SecretKey,
        ctx: &ContextState,
        outcome: &mut Outcome,
        output: serde_json::Value,
        events: &[EventRecord],
        withheld: &[(Hash, Vec<u8>)],
        (input, random_seed, timestamp): (&[u8], [u8; 32], u64),
        method: &str,
        depth: u8,
    ) -> CallRecords {
        let mut batch = Batch::new();
        let delta = (!outcome.artifact.is_empty()).then(|| {
            DeltaBody {
                context_id: ctx.id,
                parents: ctx.record.heads.clone(),
                author: key.public(),
                timestamp,
                // calimero-storage checks the owner's signature on each user-storage
                // action it merges: this node signs its own, as merod does.
                artifact: sign_user_actions(&outcome.artifact, &key.public().0, |p| key.sign(p).0),
                root_hash: Hash(outcome.root_hash.unwrap_or_default()),
                events: events.to_vec(),
                genesis: ctx.record.heads.is_empty().then(|| Genesis {
                    input: input.to_vec(),
                    random_seed,
                }),
                author_cert: ctx.record.cert.clone(),
                op: None,
            }
            .sign(key)
        });
        let root_hash = outcome.root_hash.map(Hash).or(ctx.record.root_hash);
        let audit = AuditRecord::seal(
            AuditEntry {
                random_seed,
                delta_id: delta.as_ref().map(Delta::id),
                ..AuditEntry::call(
                    key.public(),
                    method,
                    Hash(*blake3::hash(input).as_bytes()),
                    "ok",
                    root_hash,
                    timestamp,
                )
            },
            &ctx.audit,
            key,
        );
        stage_audit(&mut batch, ctx.id, &audit);
        for (hash, payload) in withheld {
            let key = [PAYLOAD, ctx.id.as_bytes(), hash.as_bytes()].concat();
            batch.put_mut(Namespace::Meta, &key, payload.clone());
        }
        let blob_ids: Vec<String> = outcome
            .blobs
            .keys()
            .map(|id| bs58::encode(id).into_string())
            .collect();
        for (id, data) in &outcome.blobs {
            batch.put_mut(Namespace::Blobs, id, data.clone());
        }
        for id in &outcome.announced_blobs {
            let announced = blob_fetch::announced_key(&ctx.id, id);
            batch.put_mut(Namespace::Meta, &announced, Vec::new());
        }
        let delta_id = delta.as_ref().map(Delta::id);
        let result = ExecuteResult {
            output,
            logs: std::mem::take(&mut outcome.logs),
            events: outcome
                .events
                .iter()
                .map(|e| serde_json::json!({"kind": e.kind, "data": json_or_bytes(&e.data)}))
                .collect(),
            root_hash,
            delta_id,
            blobs: blob_ids,
            repeated: false,
            xcalls: Vec::new(),
            queued_xcalls: std::mem::take(&mut outcome.xcalls),
            context_requests: Vec::new(),
            queued_context_requests: std::mem::take(&mut outcome.context_requests),
        };
        let mut record = ctx.record.clone();
        record.root_hash = root_hash;
        if let Some(delta) = &delta {
            record.heads = vec![delta.id()];
            stage_delta(&mut batch, ctx.id, &mut record, delta);
        }
        let seq = record.next_seq - delta.is_some() as u64;
        let handlers =
            Self::stage_own_handlers(&mut batch, ctx.id, (delta_id, seq), &outcome.events, depth);
        batch.put_mut(
            Namespace::Contexts,
            ctx.id.as_bytes(),
            borsh::to_vec(&record).expect("encode"),
        );
        CallRecords {
            batch,
            delta,
            audit,
            record,
            result,
            handlers,
        }
    }
}
