//! Anti-entropy: the timer work of [`Node::handle_timeout`], answering sync requests, and state snapshots
//! (offering, receiving and installing them).

use super::*;

impl<S: Store, E: Env> Node<S, E> {
    /// When this node next has timer work (ns since the epoch, on the clock its driver gives
    /// it): the earliest of each context's next announcement of heads ([`ANNOUNCE_NANOS`]),
    /// each join's next request (`SYNC_RETRY_NANOS`), each waiting snapshot's deadline
    /// (`COVERING_NANOS`) and the writing of reads' audit records that wait. `None` when it has
    /// none. A driver calls [`Self::handle_timeout`] then (or later; never needed sooner).
    pub fn poll_timeout(&self) -> Option<u64> {
        let announcements = self.contexts.values().map(|ctx| {
            ctx.last_announce
                .map_or(0, |t| t.saturating_add(ANNOUNCE_NANOS))
        });
        let joins = self.joining.values().map(|j| {
            j.last_request
                .map_or(0, |t| t.saturating_add(SYNC_RETRY_NANOS))
        });
        let snapshots = self
            .contexts
            .values()
            .filter_map(|ctx| match &ctx.snapshot {
                Phase::Covering(covering) => Some(covering.since.saturating_add(COVERING_NANOS)),
                _ => None,
            });
        announcements
            .chain(joins)
            .chain(snapshots)
            .chain(self.read_audits_due())
            .chain(self.blob_fetches_due())
            .chain(self.parts_due())
            .min()
    }

    /// The timer work due at `now` (ns since the epoch). Anti-entropy: every
    /// [`ANNOUNCE_NANOS`] each context tells its members its heads, and members answer with
    /// what it lacks (or ask back for what they lack); this is what repairs gossip that was
    /// lost, e.g. while a connection was down. A context that asked when it was loaded skips
    /// its first announcement (see `asked_on_load`). A join with no answer asks again, a
    /// snapshot whose covered deltas did not come in time is dropped, reads' audit records
    /// that waited [`READ_AUDITS_WAIT_NANOS`] are written, and parts of apps and blobs waiting
    /// for their pace go out (see `pacing`).
    ///
    /// `now` is given as with every input ([`Node::advance_to`]; an earlier one than the last
    /// is taken as the last): a driver (the page, the CLI, the simulator) decides when time
    /// passes, and a run given the same inputs does the same.
    pub async fn handle_timeout(&mut self, now: u64) {
        self.advance_to(now);
        let now = self.now;
        if self.read_audits_due().is_some_and(|due| due <= now) {
            if let Err(e) = self.write_read_audits().await {
                tracing::warn!(%e, "could not write the audit records of reads");
            }
        }
        let due: Vec<(ContextId, [u8; 32], WireMessage)> = self
            .contexts
            .values_mut()
            .filter(|ctx| {
                ctx.last_announce
                    .is_none_or(|t| now.saturating_sub(t) >= ANNOUNCE_NANOS)
            })
            .filter_map(|ctx| {
                ctx.last_announce = Some(now);
                let asked = std::mem::take(&mut ctx.asked_on_load);
                (!asked).then(|| (ctx.id, ctx.secret, ctx.sync_request(&self.key)))
            })
            .collect();
        for (context_id, secret, request) in due {
            self.publish(context_id, &secret, request);
        }
        let unanswered: Vec<ContextId> = self
            .joining
            .iter()
            .filter(|(_, j)| {
                j.last_request
                    .is_none_or(|t| now.saturating_sub(t) >= SYNC_RETRY_NANOS)
            })
            .map(|(id, _)| *id)
            .collect();
        for id in unanswered {
            self.ask_to_join(id, now);
        }
        self.ask_again_for_blobs(now);
        self.release_parts(now);
        let stale: Vec<ContextId> = self
            .contexts
            .values()
            .filter(|ctx| {
                matches!(&ctx.snapshot, Phase::Covering(c)
                    if now.saturating_sub(c.since) >= COVERING_NANOS)
            })
            .map(|ctx| ctx.id)
            .collect();
        for id in stale {
            if let Err(e) = self.end_stale_snapshot(id).await {
                self.reject_as(Some(id), e.kind(), e.to_string());
            }
        }
    }

    /// Answers a member's heads with every delta it lacks, in the order we applied them; if it
    /// knows deltas we do not, asks back.
    ///
    /// A request sealed with a former secret (the asker has not applied the operation that
    /// replaced it, `replaced_by`) is answered, under that former secret, with only what that
    /// secret was for: the deltas up to and including that operation, which carries the new
    /// secret sealed to each remaining member. A removed member thus learns of its removal and
    /// nothing newer; a member who was away catches up, then asks again under the new secret.
    pub(super) async fn answer_sync_request(
        &mut self,
        context_id: ContextId,
        their_heads: Vec<DeltaId>,
        replaced_by: Option<(DeltaId, [u8; 32])>,
        asker: Option<&str>,
    ) -> Result<(), NodeError> {
        let Some(ctx) = self.contexts.get(&context_id) else {
            return Ok(());
        };
        let our_heads = &ctx.record.heads;
        if *our_heads == their_heads {
            return Ok(());
        }
        // (Heads this node refused for good it does not ask for.)
        let unknown_to_us = their_heads
            .iter()
            .any(|h| !ctx.dag.contains_key(h) && !ctx.refused.contains(h));
        let theirs = with_ancestors(&ctx.dag, their_heads.iter().copied());
        let (secret, limit) = match replaced_by {
            None => (ctx.secret, None),
            // The secret that opened the request: a former one, or that of a latest
            // operation this node never sealed with (in no list of former secrets).
            Some((op, secret)) => (secret, Some(with_ancestors(&ctx.dag, [op]))),
        };
        if unknown_to_us && limit.is_none() {
            let request = self.context(&context_id)?.sync_request(&self.key);
            self.publish(context_id, &secret, request);
        }
        if !unknown_to_us && limit.is_none() {
            let lacking = self.context(&context_id)?.dag.len() - theirs.len();
            self.offer_snapshot(context_id, lacking, asker).await?;
        }
        let rows = self
            .store
            .scan_prefix(Namespace::Deltas, context_id.as_bytes())
            .await?;
        let mut chunk = Vec::new();
        let mut chunk_bytes = 0;
        for (_, bytes) in rows {
            let delta = Delta::try_from_slice(&bytes).map_err(|e| corrupt("delta", e))?;
            let id = delta.id();
            if theirs.contains(&id) || limit.as_ref().is_some_and(|upto| !upto.contains(&id)) {
                continue;
            }
            if chunk_bytes + bytes.len() > MAX_BATCH_BYTES && !chunk.is_empty() {
                let deltas = WireMessage::Deltas(std::mem::take(&mut chunk));
                self.reply(context_id, &secret, deltas, asker);
                chunk_bytes = 0;
            }
            chunk_bytes += bytes.len();
            chunk.push(delta);
        }
        if !chunk.is_empty() {
            self.reply(context_id, &secret, WireMessage::Deltas(chunk), asker);
        }
        Ok(())
    }

    /// Offers a member that lacks `lacking` deltas (a joiner, or one that was away) this node's
    /// state at its heads as a snapshot, when running them all would be slow: at least the
    /// threshold, and once per [`SNAPSHOT_OFFER_NANOS`] per context, since a member catching up
    /// asks again while deltas arrive. The rows sent are exactly those calimero-storage's tree
    /// reaches, checked here as the receiver will.
    pub(super) async fn offer_snapshot(
        &mut self,
        context_id: ContextId,
        lacking: usize,
        asker: Option<&str>,
    ) -> Result<(), NodeError> {
        let Some(threshold) = self.snapshot_threshold else {
            return Ok(());
        };
        let now = self.now;
        let ctx = self
            .contexts
            .get_mut(&context_id)
            .expect("checked by the caller");
        let recently = ctx
            .last_snapshot_offer
            .is_some_and(|t| now.saturating_sub(t) < SNAPSHOT_OFFER_NANOS);
        if !ctx.synced() || lacking < threshold.max(1) || recently {
            return Ok(());
        }
        ctx.last_snapshot_offer = Some(now);
        if ctx.merkle.is_none() {
            read_whole(&self.store, ctx, ViewKind::Shared).await?;
        }
        let proven = match tabnode_runtime::prove_state(&*ctx.shared, context_id.as_bytes()) {
            Ok(Some(proven)) if Some(Hash(proven.root_hash)) == ctx.record.root_hash => proven,
            other => {
                tracing::warn!(%context_id, ?other, "this node's state does not prove its root");
                return Ok(());
            }
        };
        let rows = proven
            .rows
            .iter()
            .filter_map(|key| Some((key.to_vec(), ctx.shared.get(key).ok()??)))
            .collect();
        let mut covered: Vec<DeltaId> = ctx.dag.keys().copied().collect();
        covered.sort();
        let snapshot = Snapshot {
            context_id,
            heads: ctx.record.heads.clone(),
            root_hash: Hash(proven.root_hash),
            covered,
            rows,
        };
        let secret = ctx.secret;
        for part in snapshot::split(&snapshot, &self.key, &ctx.record.cert) {
            self.reply(context_id, &secret, part, asker);
        }
        Ok(())
    }

    /// Takes one part of a snapshot a member sent, from one provider at a time. Once whole and
    /// verified, it is used if this node lacks at least a quarter of the deltas it covers (a
    /// node that lacks less catches up by deltas); then it covers deltas (see
    /// [`crate::snapshot`]).
    pub(super) async fn receive_snapshot_part(
        &mut self,
        context_id: ContextId,
        (digest, index, parts, chunk, provider, signature): (
            Hash,
            u32,
            u32,
            Vec<u8>,
            MemberCert,
            Signature,
        ),
    ) -> Result<(), NodeError> {
        let now = self.now;
        let me = self.key.public();
        let Some(ctx) = self.contexts.get_mut(&context_id) else {
            return Ok(());
        };
        if provider.member == me {
            return Ok(());
        }
        match &ctx.snapshot {
            Phase::Covering(_) => return Ok(()),
            Phase::Assembling(a) if a.digest == digest => {}
            Phase::Assembling(a) if now.saturating_sub(a.started) < snapshot::ASSEMBLY_NANOS => {
                return Ok(()); // another provider's is under way
            }
            _ => {
                let assembly =
                    Assembly::start(&context_id, digest, parts, &provider, signature, now)?;
                ctx.snapshot = Phase::Assembling(assembly);
            }
        }
        let Phase::Assembling(assembly) = &mut ctx.snapshot else {
            unreachable!("set above")
        };
        let (provider, digest) = (assembly.provider, assembly.digest);
        let bytes = match assembly.add(index, parts, chunk, &signature) {
            Ok(None) => return Ok(()),
            Ok(Some(bytes)) => bytes,
            Err(e) => {
                ctx.snapshot = Phase::Idle;
                return Err(e.into());
            }
        };
        ctx.snapshot = Phase::Idle;
        let snapshot = snapshot::open(&bytes, &context_id)?;
        let mut covering = Covering::new(snapshot, provider, digest, 0);
        // Sent for another member (published when the network has no way to it alone): worth
        // taking only to a node that lacks a good part of what it covers. And only to one that
        // has no state yet (a joiner): a node with state goes on serving it and catches up by
        // deltas, so a member's snapshot naming deltas that never come cannot stop its calls.
        let missing = covering
            .covered
            .iter()
            .filter(|id| !ctx.dag.contains_key(id))
            .count();
        if missing == 0 || missing * 4 < covering.covered.len() || !ctx.record.heads.is_empty() {
            return Ok(());
        }
        self.commit(Batch::new().put(
            Namespace::Meta,
            &[COVERING, context_id.as_bytes()].concat(),
            vec![1],
        ))
        .await?;
        covering.since = self.now;
        let ctx = self.contexts.get_mut(&context_id).expect("known context");
        ctx.snapshot = Phase::Covering(covering);
        self.apply_ready(context_id).await
    }

    /// Drops a snapshot whose covered deltas have not all come within [`COVERING_NANOS`] (the
    /// timer found it due), and rebuilds the state from the deltas held: a snapshot listing
    /// deltas that do not exist would otherwise leave the context not synced until the node
    /// restarts.
    async fn end_stale_snapshot(&mut self, id: ContextId) -> Result<(), NodeError> {
        let Some(ctx) = self.contexts.get(&id) else {
            return Ok(());
        };
        let Phase::Covering(covering) = &ctx.snapshot else {
            return Ok(());
        };
        let missing = covering
            .covered
            .iter()
            .filter(|d| !ctx.dag.contains_key(d))
            .count();
        let reason = format!(
            "a state snapshot from {}: {missing} of the deltas it covers did not come within {} s",
            covering.provider,
            COVERING_NANOS / 1_000_000_000
        );
        self.reject_as(Some(id), "BadSnapshot", reason);
        let mut ctx = self.contexts.remove(&id).expect("checked above");
        ctx.snapshot = Phase::Idle;
        let result = self.rebuild(&mut ctx, Order::Applied).await;
        self.contexts.insert(id, ctx);
        result?;
        self.apply_ready(id).await
    }

    /// Puts a covering snapshot in place once this node holds exactly the deltas it covers:
    /// its heads must be the snapshot's and its provider must still stand in the membership
    /// log. If either fails, the snapshot is dropped and the state rebuilt from the deltas.
    /// Whether the snapshot's phase ended.
    pub(super) async fn install_snapshot(
        &mut self,
        context_id: ContextId,
    ) -> Result<bool, NodeError> {
        let ctx = self.contexts.get_mut(&context_id).expect("known context");
        let Phase::Covering(covering) = &ctx.snapshot else {
            return Ok(false);
        };
        if covering.covered.iter().any(|id| !ctx.dag.contains_key(id)) {
            return Ok(false);
        }
        // The snapshot goes in place over what is in the store: what is held goes first.
        self.release_writes().await?;
        let ctx = self.contexts.get_mut(&context_id).expect("known context");
        let Phase::Covering(covering) = std::mem::take(&mut ctx.snapshot) else {
            unreachable!("matched above")
        };
        let problem = if heads_of(&ctx.dag, &covering.covered)
            != covering.snapshot.heads.iter().copied().collect()
        {
            Some("its heads are not those of the deltas it covers".to_owned())
        } else if ctx.role_now(&covering.provider).is_none() {
            Some(format!(
                "its provider {} is no longer a member",
                covering.provider
            ))
        } else {
            None
        };
        let mut ctx = self.contexts.remove(&context_id).expect("known context");
        let result = match problem {
            Some(why) => {
                self.reject_as(
                    Some(context_id),
                    "BadSnapshot",
                    format!("a state snapshot: {why}"),
                );
                self.rebuild(&mut ctx, Order::Applied).await
            }
            None => self.put_snapshot_in_place(&mut ctx, covering).await,
        };
        self.contexts.insert(context_id, ctx);
        result.map(|()| true)
    }

    /// Replaces the context's shared state with a verified snapshot's rows, and the deltas this
    /// node holds that it does not cover (from other members, or its own) merged on top, in one
    /// batch with its audit record.
    pub(super) async fn put_snapshot_in_place(
        &mut self,
        ctx: &mut ContextState,
        covering: Covering,
    ) -> Result<(), NodeError> {
        let (rows, root_hash) = if ctx.dag.len() > covering.covered.len() {
            let apps = self.apps_of(ctx).await?;
            let (rows, root_hash, _) = self
                .replay_standing(&apps, ctx, Order::Applied, Some(&covering))
                .await?;
            (rows, root_hash)
        } else {
            let Snapshot {
                rows, root_hash, ..
            } = covering.snapshot;
            (Rows::complete(rows), Some(root_hash))
        };
        let audit = AuditRecord::seal(
            AuditEntry {
                kind: AuditKind::RemoteDelta,
                executor: covering.provider,
                method: "sync.snapshot".into(),
                args_hash: covering.digest,
                outcome: "ok".into(),
                root_hash,
                time: self.now,
                random_seed: [0; 32],
                delta_id: None,
            },
            &ctx.audit,
            &self.key,
        );
        let mut batch = Batch::new();
        stage_audit(&mut batch, ctx.id, &audit);
        self.replace_state(ctx, rows, root_hash, batch).await?;
        ctx.audit = audit.next_head();
        Ok(())
    }
}
