//! Messages from peers: deltas (applied once their parents are), sync requests, shares and the
//! rest of the context protocol.

use super::*;

impl<S: Store, E: Env> Node<S, E> {
    /// Feeds a message that arrived on `topic`. Anything refused becomes a
    /// [`NodeEvent::SyncRejected`] and changes nothing.
    pub async fn handle_message(&mut self, topic: &str, data: &[u8]) {
        self.handle_message_from(topic, data, None).await
    }

    /// [`Self::handle_message`], knowing which network peer sent it (the gossip source, or a
    /// direct link's peer): answers to its requests go to it alone ([`Outgoing::Reply`]).
    pub async fn handle_message_from(&mut self, topic: &str, data: &[u8], from: Option<&str>) {
        if data.len() > MAX_MESSAGE_BYTES {
            let reason = format!(
                "a message of {} bytes on {topic}, over the limit of {MAX_MESSAGE_BYTES}",
                data.len()
            );
            return self.reject(None, reason);
        }
        if let Some(id) = self.joining.keys().find(|id| context_topic(id) == topic) {
            // Only the handshake is for a joiner; the rest it cannot read yet.
            let id = *id;
            if let Some(plain) = seal::open(&context_handshake_key(&id), &id, data) {
                self.handle_handshake(id, &plain, from).await;
            }
            return;
        }
        let (data, former) = match self.unseal(topic, data) {
            Ok(Some(opened)) => opened,
            Ok(None) => return, // a topic of a context this node does not hold
            Err(reason) => {
                let handshake = self.contexts.keys().find(|id| context_topic(id) == topic);
                if let Some(&id) = handshake {
                    if let Some(plain) = seal::open(&context_handshake_key(&id), &id, data) {
                        return self.handle_handshake(id, &plain, from).await;
                    }
                }
                return self.reject(None, reason);
            }
        };
        let former_secret = former.map(|(by, _)| by);
        let message = match WireMessage::decode(&data) {
            Ok(m) => m,
            Err(e) => {
                let kind = match ChainTooDeep::in_error(&e) {
                    true => "ChainTooDeep",
                    false => "BadMessage",
                };
                let reason = format!("undecodable message on {topic}: {e}");
                return self.reject_as(None, kind, reason);
            }
        };
        if let Some(other) = message
            .contexts()
            .into_iter()
            .find(|id| context_topic(id) != topic)
        {
            return self.reject(
                Some(other),
                format!("a message about {other} on the wrong topic {topic}"),
            );
        }
        // A former secret opens only catching up on what came before the operation that
        // replaced it: a sync request (answered with that alone, see
        // [`Self::answer_sync_request`]), deltas made without knowledge of that operation (a
        // member's who had not received it yet), and a share of a newer secret. A delta that
        // comes after the operation was made by a key that saw it and got no share of the new
        // secret: a removed one (a joiner is given the current secret when it is admitted, in
        // its welcome, so none needs a former one).
        let past_change = |node: &Self, delta: &Delta| match former_secret {
            None => false,
            Some(by) => node.contexts.get(&delta.body.context_id).is_none_or(|ctx| {
                let known = |p: &DeltaId| ctx.dag.contains_key(p);
                let after =
                    with_ancestors(&ctx.dag, delta.body.parents.iter().copied().filter(known));
                after.contains(&by)
            }),
        };
        if let (Some(by), WireMessage::PayloadRequest { context_id, .. })
        | (Some(by), WireMessage::Payload { context_id, .. })
        | (Some(by), WireMessage::BlobRequest { context_id, .. })
        | (Some(by), WireMessage::BlobPart { context_id, .. }) = (former_secret, &message)
        {
            let reason = format!("a payload message sealed with the secret {by} replaced");
            return self.reject(Some(*context_id), reason);
        }
        match message {
            WireMessage::Deltas(deltas) => {
                for delta in deltas {
                    let context_id = delta.body.context_id;
                    if past_change(self, &delta) {
                        let reason = format!(
                            "delta {} sealed with a former secret, after the operation that \
                             replaced it",
                            delta.id()
                        );
                        self.reject(Some(context_id), reason);
                        continue;
                    }
                    // Deltas a snapshot covers are recorded, not run: stored together.
                    let held = match self.is_covering(&context_id) {
                        true => self.hold_writes(context_id).await.map(|_| ()),
                        false => self.release_writes().await,
                    };
                    let received = match held {
                        Ok(()) => self.receive_delta(delta).await,
                        Err(e) => Err(e),
                    };
                    let result = received.and(self.release_if_large().await);
                    self.refuse_on_error(context_id, result);
                }
                if let Err(e) = self.release_writes().await {
                    self.reject_as(None, e.kind(), e.to_string());
                }
            }
            WireMessage::Share {
                context_id,
                by,
                share,
                from,
                signature,
            } => {
                let result = self
                    .receive_share(context_id, by, share, *from, signature)
                    .await;
                self.refuse_on_error(context_id, result);
            }
            WireMessage::BlobRequest {
                context_id,
                blob_id,
                requester,
                missing,
                signature,
            } => {
                let request = (*requester, missing, signature);
                let result = self
                    .answer_blob_request(context_id, blob_id, request, from)
                    .await;
                self.refuse_on_error(context_id, result);
            }
            WireMessage::BlobPart {
                context_id,
                blob_id,
                part,
            } => {
                let result = self.receive_blob_part(context_id, (blob_id, part)).await;
                self.refuse_on_error(context_id, result);
            }
            WireMessage::PayloadRequest {
                context_id,
                hash,
                requester,
                signature,
            } => {
                let result = self
                    .answer_payload_request(context_id, hash, *requester, signature)
                    .await;
                self.refuse_on_error(context_id, result);
            }
            WireMessage::Payload {
                context_id,
                hash,
                to,
                sealed,
            } => {
                let result = self.receive_payload(context_id, hash, to, &sealed);
                self.refuse_on_error(context_id, result);
            }
            WireMessage::SnapshotPart {
                context_id,
                digest,
                index,
                parts,
                chunk,
                provider,
                signature,
            } => {
                if former_secret.is_some() {
                    return; // a snapshot is of the current state, under the current secret
                }
                let part = (digest, index, parts, chunk, *provider, signature);
                if let Err(e) = self.receive_snapshot_part(context_id, part).await {
                    let reason = format!("a state snapshot: {e}");
                    self.reject_as(Some(context_id), e.kind(), reason);
                }
            }
            WireMessage::JoinRequest { context_id, .. }
            | WireMessage::Welcome { context_id, .. }
            | WireMessage::AppRequest { context_id, .. }
            | WireMessage::AppPart { context_id, .. } => {
                self.reject(
                    Some(context_id),
                    "a join handshake sealed with the context's secret".into(),
                );
            }
            WireMessage::SyncRequest {
                context_id,
                heads,
                root_hash,
                requester,
                signature,
            } => {
                let signed = (&heads, &root_hash, &*requester, &signature);
                match self.admit_sync_request(context_id, signed, former_secret) {
                    Ok(true) if former_secret.is_none() => {
                        let ctx = self.contexts.get_mut(&context_id).expect("admitted");
                        ctx.note_announced_heads(&requester, &heads);
                    }
                    Ok(true) => {}
                    Ok(false) => return, // over its budget: dropped
                    Err(e) => return self.reject(Some(context_id), e.to_string()),
                }
                if let (Some(theirs), None) = (root_hash, former_secret) {
                    let claimant = requester.member;
                    let result = self
                        .compare_root(context_id, &heads, theirs, claimant)
                        .await;
                    self.refuse_on_error(context_id, result);
                }
                let result = self
                    .answer_sync_request(context_id, heads, former, from)
                    .await;
                self.refuse_on_error(context_id, result);
                if let Some((_, secret)) = former {
                    self.share_missed_secret(context_id, secret, &requester, from);
                }
            }
        }
    }

    /// Checks a sync request before anything is done for it: that a member signed it (one the
    /// log counts as a member now, or, under a former secret, when that secret was current),
    /// and that the member has budget left (`Ok(false)`: it has not, the request is dropped).
    #[allow(clippy::type_complexity)]
    pub(super) fn admit_sync_request(
        &mut self,
        context_id: ContextId,
        (heads, root_hash, requester, signature): (
            &Vec<DeltaId>,
            &Option<Hash>,
            &MemberCert,
            &Signature,
        ),
        former_secret: Option<DeltaId>,
    ) -> Result<bool, NodeError> {
        let now = self.now;
        let Some(ctx) = self.contexts.get_mut(&context_id) else {
            return Ok(false);
        };
        let member = requester.member;
        let message = WireMessage::sync_request_message(&context_id, heads, root_hash);
        verify_signature(&member, &message, signature).map_err(|_| {
            NodeError::Unauthorized("a sync request whose signature does not verify".into())
        })?;
        // Under a former secret: a member when that secret was current (a removed member
        // catches up to its removal, and no further). Judged before the chain is checked (and
        // kept): a stranger's certificates cost a lookup, not signatures or memory.
        let parents = former_secret
            .and_then(|op| ctx.dag.get(&op))
            .map_or_else(|| ctx.record.heads.clone(), |e| e.parents.clone());
        let entry = LogEntry::new(parents, member, u64::MAX, requester, None);
        // Or, under a former secret, a member now: one admitted concurrently with the change
        // (by a member that had not applied it) holds that secret from its welcome, and no
        // share of the new one (see [`Self::share_missed_secret`]).
        let member_now = || {
            let parents = ctx.record.heads.clone();
            ctx.log.member_at(&LogEntry {
                parents,
                ..entry.clone()
            })
        };
        if ctx.log.member_at(&entry).is_none()
            && (former_secret.is_none() || member_now().is_none())
        {
            return Err(NodeError::Unauthorized(format!(
                "{member} is no member of {context_id}: its sync request gets nothing"
            )));
        }
        let cert_hash = *blake3::hash(&borsh::to_vec(requester).expect("encode")).as_bytes();
        if !ctx.verified_certs.contains(&cert_hash) {
            requester.authenticate(&context_id, &member)?;
            ctx.verified_certs.insert(cert_hash);
        }
        if !ctx.take_sync_token(member, now) {
            tracing::debug!(%context_id, %member, "a sync request over its budget");
            return Ok(false);
        }
        Ok(true)
    }

    pub(super) fn reject(&mut self, context_id: Option<ContextId>, reason: String) {
        self.reject_as(context_id, "BadMessage", reason);
    }

    /// Refuses a remote message for a reason of `kind` (see [`NodeEvent::SyncRejected`]).
    /// Tells the driver a remote message of `context_id` was refused, if `result` failed.
    fn refuse_on_error(&mut self, context_id: ContextId, result: Result<(), NodeError>) {
        if let Err(e) = result {
            self.reject_as(Some(context_id), e.kind(), e.to_string());
        }
    }

    pub(super) fn reject_as(&mut self, context_id: Option<ContextId>, kind: &str, reason: String) {
        tracing::warn!(?context_id, kind, %reason, "refused a remote message");
        self.events.push(NodeEvent::SyncRejected {
            context_id,
            kind: kind.to_owned(),
            reason,
        });
    }

    pub(super) async fn receive_delta(&mut self, delta: Delta) -> Result<(), NodeError> {
        let context_id = delta.body.context_id;
        let id = match delta.verify() {
            Ok(id) => id,
            Err(e) => {
                self.reject(
                    Some(context_id),
                    format!("delta from {}: {e}", delta.body.author),
                );
                return Ok(());
            }
        };
        if !self.contexts.contains_key(&context_id) {
            return Ok(()); // not ours: gossip may deliver topics we left
        }
        let ctx = self.contexts.get_mut(&context_id).expect("checked above");
        let cert = &delta.body.author_cert;
        let cert_hash = *blake3::hash(&borsh::to_vec(cert).expect("encode")).as_bytes();
        if !ctx.verified_certs.contains(&cert_hash) {
            if let Err(e) = cert.authenticate(&context_id, &delta.body.author) {
                let entry =
                    AuditEntry::refused_delta(&delta, id, e.kind(), ctx.record.root_hash, self.now);
                let mut ctx = self.contexts.remove(&context_id).expect("present");
                let _ = self.audit_alone(&mut ctx, entry).await;
                self.contexts.insert(context_id, ctx);
                self.reject_as(Some(context_id), e.kind(), format!("delta {id}: {e}"));
                return Ok(());
            }
            ctx.verified_certs.insert(cert_hash);
        }
        if ctx.dag.contains_key(&id) || ctx.pending.contains_key(&id) || ctx.refused.contains(&id) {
            return Ok(());
        }
        // Built on a delta refused for good, it can never be applied here: refused for good too
        // (its signature and certificate verified above).
        if let Some(parent) = delta.body.parents.iter().find(|p| ctx.refused.contains(p)) {
            let mut batch = Batch::new();
            ctx.remember_refused(id, &mut batch);
            self.commit(batch).await?;
            return Err(NodeError::OverBudget(format!(
                "delta {id} builds on {parent}, refused for good (its merge needs more than a \
                 merge's fuel)"
            )));
        }
        let now = self.now;
        if delta.body.timestamp > now.saturating_add(MAX_CLOCK_SKEW_NANOS) {
            return Err(NodeError::FutureDelta(format!(
                "delta {id} by {} is stamped {} ns ahead of this node's clock, over the {} ns allowed",
                delta.body.author,
                delta.body.timestamp - now,
                MAX_CLOCK_SKEW_NANOS
            )));
        }
        // One that can be applied now is kept whatever the budget: it may be the parent that
        // the waiting deltas need (a lost message leaves a gap that fills the budget behind it).
        let ready = delta.body.parents.iter().all(|p| ctx.dag.contains_key(p))
            && (!matches!(ctx.snapshot, Phase::Covering(_)) || ctx.covers(&id));
        match ready {
            true => ctx.pending.insert_ready(id, delta),
            false => ctx.pending.insert(id, delta).map_err(NodeError::Busy)?,
        }
        self.apply_ready(context_id).await
    }

    /// Applies every pending delta whose parents are all applied, until none is left.
    pub(super) async fn apply_ready(&mut self, context_id: ContextId) -> Result<(), NodeError> {
        self.context(&context_id)?;
        let mut began_hold = false;
        loop {
            let ctx = self.contexts.get_mut(&context_id).expect("known context");
            // While a snapshot is half in place, only the deltas it covers can be recorded.
            let covering = matches!(ctx.snapshot, Phase::Covering(_));
            let ready = ctx
                .pending
                .iter()
                .filter(|(id, d)| {
                    d.body.parents.iter().all(|p| ctx.dag.contains_key(p))
                        && (!covering || ctx.covers(id))
                })
                .map(|(id, d)| (d.body.timestamp, *id))
                .min();
            let Some((_, id)) = ready else {
                if covering && self.install_snapshot(context_id).await? {
                    continue;
                }
                break;
            };
            let delta = ctx.pending.remove(&id).expect("present");
            // An upgrade applied in this loop changes the app for the deltas after it.
            let app_id = ctx.app_id();
            let app = self.app(app_id).await?;
            // Covered deltas are recorded, not run: their writes go to the store together.
            if covering && self.hold_writes(context_id).await? {
                began_hold = true;
            }
            let mut ctx = self.contexts.remove(&context_id).expect("known context");
            let result = self.apply_remote(&app, &mut ctx, id, delta).await;
            self.contexts.insert(context_id, ctx);
            if let Err(e) = result {
                self.reject_as(Some(context_id), e.kind(), format!("delta {id}: {e}"));
            }
            self.release_if_large().await?;
        }
        // A hold begun by whoever passed these deltas in is theirs to end.
        if began_hold {
            self.release_writes().await?;
        }
        let ctx = self.contexts.get_mut(&context_id).expect("known context");
        // A joiner announces itself once its admission is in its log (it acts only after it).
        if !ctx.announced && ctx.synced() && ctx.role_now(&self.key.public()).is_some() {
            ctx.announced = true;
            let mut ctx = self.contexts.remove(&context_id).expect("known context");
            let result = self.member_op_in(&mut ctx, MemberOp::Join).await;
            self.contexts.insert(context_id, ctx);
            if let Err(e) = result {
                tracing::warn!(%context_id, %e, "could not announce this node's membership");
            }
            self.bind_if_needed(&context_id).await;
        }
        self.run_handlers(context_id).await;
        let now = self.now;
        let ctx = self.contexts.get_mut(&context_id).expect("known context");
        let due = ctx
            .last_sync_request
            .is_none_or(|t| now.saturating_sub(t) >= SYNC_RETRY_NANOS);
        if !ctx.pending.is_empty() && due {
            ctx.last_sync_request = Some(now);
            let (secret, request) = (ctx.secret, ctx.sync_request(&self.key));
            self.publish(context_id, &secret, request);
        }
        Ok(())
    }

    /// Applies one verified delta whose parents are all applied. The membership log decides
    /// whether it stands: a delta that does not is kept in the DAG (members who applied it
    /// before they learnt why must agree on the DAG) but its changes are not applied. A
    /// membership operation judges the log anew; data deltas are merged by the guest.
    pub(super) async fn apply_remote(
        &mut self,
        app: &App,
        ctx: &mut ContextState,
        id: DeltaId,
        delta: Delta,
    ) -> Result<(), NodeError> {
        let body = &delta.body;
        if body.genesis.is_some() && (!ctx.dag.is_empty() || !body.parents.is_empty()) {
            return Err(NodeError::Corrupt(format!(
                "{id} claims to be a genesis but the context has one"
            )));
        }
        if body.parents.iter().any(|p| {
            ctx.dag
                .get(p)
                .is_some_and(|e| e.timestamp >= body.timestamp)
        }) {
            return Err(NodeError::Corrupt(format!(
                "{id} is not later than its parents"
            )));
        }
        let entry = LogEntry::new(
            body.parents.clone(),
            body.author,
            body.timestamp,
            &body.author_cert,
            body.op.clone(),
        );
        let allows = |role: Role| match &body.op {
            Some(op) => op.allowed_for(role),
            None => role.can_write(),
        };
        let stands = ctx.log.role_of_new(&entry).is_some_and(allows)
            && (body.op.is_some() || ctx.log.made_by_running_app(&ctx.dag, &entry));
        let covered = ctx.covers(&id);
        // Refused outright (not kept): a root statement that does not verify, or what neither
        // the author's certificate nor its role where it made the delta allows (a reader's
        // write; not an operation of a promoted admin that a concurrent demotion voids, which
        // members that heard it first keep).
        let refusal = match body
            .op
            .as_ref()
            .map(|op| op.verify_root_statement(&body.author))
        {
            Some(Err(why)) => Some(format!("a root statement that does not verify: {why}")),
            _ if body
                .op
                .as_ref()
                .is_some_and(|op| self.foreign_recipient(op).is_some()) =>
            {
                let site = body.op.as_ref().and_then(|op| self.foreign_recipient(op));
                Some(format!(
                    "a root statement signed by a NEAR wallet for another site ({})",
                    site.unwrap_or_default()
                ))
            }
            _ if matches!(&body.op, Some(MemberOp::Admit { cert, .. }) if cert.context_id != ctx.id) => {
                Some("an admission with another context's invitation".into())
            }
            _ if ctx
                .anchor
                .as_ref()
                .is_some_and(|a| !a.members.contains(&body.author)) =>
            {
                let reason = format!(
                    "{} is not a member of {} on its anchor",
                    body.author, ctx.id
                );
                self.events.push(NodeEvent::AnchorMismatch {
                    context_id: ctx.id,
                    reason: reason.clone(),
                });
                Some(reason)
            }
            _ if !stands
                && !allows(body.author_cert.role)
                && !ctx
                    .log
                    .role_in_own_past(&ctx.dag, &entry)
                    .is_some_and(allows) =>
            {
                Some(format!(
                    "{} is a {:?} of {} and may not {}",
                    body.author,
                    body.author_cert.role,
                    ctx.id,
                    if body.op.is_some() {
                        "change membership"
                    } else {
                        "write"
                    }
                ))
            }
            _ => None,
        };
        // A void delta its author may not make now (a removed key's, say) is kept within a
        // budget per answerable key (see [`super::bounds`]), unless another member in good
        // standing vouches for it or a snapshot covers it: then the DAG needs it.
        let budgeted = !stands && !covered && !ctx.role_of(&body.author_cert).is_some_and(allows);
        let (answerable, size) = match budgeted {
            true => (
                ctx.log.answerable_for(&entry),
                borsh::object_length(&delta).unwrap_or(usize::MAX),
            ),
            false => (body.author, 0),
        };
        if refusal.is_none() && budgeted {
            if let Some(why) = ctx.void_taken.over_budget(&answerable, size) {
                if !ctx.vouched_by_another(id, &body.author) {
                    return Err(NodeError::Busy(format!("void delta {id}: {why}")));
                }
            }
        }
        if let Some(why) = refusal {
            let e = NodeError::Unauthorized(why);
            let refused =
                AuditEntry::refused_delta(&delta, id, e.kind(), ctx.record.root_hash, self.now);
            let _ = self.audit_alone(ctx, refused).await;
            return Err(e);
        }
        // The binary its hash names (checked above), whether or not the upgrade stands now: a
        // delta that arrives later may make it count, and the node then runs it.
        if let Some(MemberOp::SetApp { wasm, .. }) = &body.op {
            self.install_app(wasm).await?;
        }
        let call = merge_call(&delta, &id);
        let outcome = match (stands, &body.op) {
            (true, None) if !covered => {
                let fuel = merge_fuel(&self.runtime, &delta);
                let ran = self.run_call(app, &call, ctx, fuel).await;
                match ran.map_err(|e| merge_refusal(e, &id)) {
                    Ok(outcome) => Some(outcome),
                    Err(e @ NodeError::OverBudget(_)) => {
                        let batch = ctx.refuse_for_good(id);
                        self.commit(batch).await?;
                        return Err(e);
                    }
                    Err(e) => return Err(e),
                }
            }
            _ => None,
        };
        if let Some(Err(e)) = outcome.as_ref().map(|o| &o.returns) {
            return Err(NodeError::AppError(String::from_utf8_lossy(e).into_owned()));
        }
        let ran = outcome.is_some();
        let root_hash = outcome
            .as_ref()
            .and_then(|o| o.root_hash)
            .map(Hash)
            .or(ctx.record.root_hash);

        let mut heads: BTreeSet<DeltaId> = ctx.record.heads.iter().copied().collect();
        let on_parents = heads == body.parents.iter().copied().collect();
        for parent in &body.parents {
            heads.remove(parent);
        }
        heads.insert(id);
        let mut record = ctx.record.clone();
        record.heads = heads.into_iter().collect();
        record.root_hash = root_hash;

        let mut batch = Batch::new();
        if let Some(outcome) = &outcome {
            stage_writes(
                &mut batch,
                ctx,
                &outcome.shared_writes,
                &outcome.private_writes,
            );
        }
        stage_delta(&mut batch, ctx.id, &mut record, &delta);
        batch.put_mut(
            Namespace::Contexts,
            ctx.id.as_bytes(),
            borsh::to_vec(&record).expect("encode"),
        );
        let (method, input, random_seed) = match (&body.op, &outcome) {
            (Some(op), _) => (op.method(), body.artifact.as_slice(), [0; 32]),
            (None, Some(_)) => (call.method, call.input, call.random_seed),
            (None, None) => ("delta", body.artifact.as_slice(), [0; 32]),
        };
        let audit = AuditRecord::seal(
            AuditEntry {
                kind: if stands {
                    AuditKind::RemoteDelta
                } else {
                    AuditKind::Refused
                },
                executor: body.author,
                method: method.to_owned(),
                args_hash: Hash(*blake3::hash(input).as_bytes()),
                outcome: if stands { "ok" } else { "Void" }.into(),
                root_hash,
                time: body.timestamp,
                random_seed,
                delta_id: Some(id),
            },
            &ctx.audit,
            &self.key,
        );
        stage_audit(&mut batch, ctx.id, &audit);
        let handlers = match ran {
            true => self.stage_handlers(&mut batch, ctx.id, (id, record.next_seq - 1), body),
            false => Vec::new(),
        };
        self.commit(batch).await?;

        if let Some(outcome) = outcome {
            ctx.apply_shared(outcome.shared_writes);
            apply_writes(&mut ctx.private, outcome.private_writes);
        }
        ctx.record = record;
        ctx.audit = audit.next_head();
        ctx.learn_member(&body.author_cert);
        ctx.insert_applied(&delta, stands);
        // An operation may carry this node's share of the secret it made: kept whether or not
        // it counts, and sealed with only while it is one of the latest secret-giving
        // operations that count (a removal that counts for nothing, a removed admin's of its
        // own inviter say, changes no member's secret, see [`ContextState::judged_secret`]).
        ctx.keep_share(&self.key, id, &entry);
        if budgeted {
            ctx.void_taken.charge(answerable, size);
        }
        if stands {
            self.clock = self.clock.max(body.timestamp);
        }

        // An operation, or a write that vouches for an operation racing a removal, may
        // change the verdict.
        if body.op.is_some() || ctx.log.needs_judging() {
            self.rejudge(ctx).await?;
            self.follow_judged_secret(ctx, id).await?;
        }
        if let Some(op) = &body.op {
            self.events.push(NodeEvent::Membership {
                context_id: ctx.id,
                delta_id: id,
                by: body.author,
                op: op.clone(),
                counted: ctx.log.verdict().applied_ops.contains(&id),
            });
        }
        if !stands {
            self.events.push(NodeEvent::Voided {
                context_id: ctx.id,
                delta_id: id,
                author: body.author,
            });
            return Ok(());
        }
        if body.op.is_none() && on_parents && !covered && root_hash != Some(body.root_hash) {
            self.events.push(NodeEvent::Divergence {
                context_id: ctx.id,
                delta_id: id,
                expected: body.root_hash,
                actual: root_hash,
            });
        }
        self.events.push(NodeEvent::DeltaApplied {
            context_id: ctx.id,
            delta_id: id,
            author: body.author,
            root_hash,
        });
        for e in &body.events {
            self.events.push(NodeEvent::Event {
                context_id: ctx.id,
                kind: e.kind.clone(),
                data: json_or_bytes(&e.data),
                author: body.author,
                delta_id: Some(id),
                local: false,
                withheld: e.withheld,
            });
        }
        self.queue_handlers(handlers);
        Ok(())
    }
}
