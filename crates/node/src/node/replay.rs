//! Running a context's stored deltas again: in canonical order for `replay`, and to rebuild the
//! state when the log's judgement of a delta changes or the root disagrees with a member's.

use super::*;

/// How a member applies a delta: the first one replays `init` with the author's record (see
/// [`Genesis`]); every later one is merged by the guest through `__calimero_sync_next`. Either
/// way `time_now` is the author's timestamp.
pub(super) fn merge_call<'a>(delta: &'a Delta, id: &DeltaId) -> Call<'a> {
    let body = &delta.body;
    let (method, input, random_seed) = match &body.genesis {
        Some(genesis) => ("init", genesis.input.as_slice(), genesis.random_seed),
        None => (
            "__calimero_sync_next",
            body.artifact.as_slice(),
            *id.as_bytes(),
        ),
    };
    Call {
        method,
        input,
        context_id: body.context_id.0,
        executor_id: body.author.0,
        time_now_nanos: body.timestamp,
        random_seed,
    }
}

/// The fuel of applying `delta`: a merge's budget ([`Limits::merge_fuel`]), the same on every
/// member and in every replay; the first delta re-runs the author's `init`, a call's.
///
/// [`Limits::merge_fuel`]: tabnode_runtime::Limits::merge_fuel
pub(super) fn merge_fuel(runtime: &Runtime, delta: &Delta) -> u64 {
    let limits = runtime.limits();
    match delta.body.genesis {
        Some(_) => limits.fuel,
        None => limits.merge_fuel,
    }
}

/// A merge that ran out of its fuel is refused as over budget (every member refuses it alike).
pub(super) fn merge_refusal(error: NodeError, id: &DeltaId) -> NodeError {
    match error {
        NodeError::Execution(RuntimeError::OutOfFuel(fuel)) => NodeError::OverBudget(format!(
            "merging delta {id} needs more than a merge's {fuel} fuel: refused, as on every \
             member"
        )),
        other => other,
    }
}

/// The order a replay runs the stored deltas in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Order {
    /// As this node applied them (causal, but arrival decides between concurrent deltas).
    Applied,
    /// Causal, and between concurrent deltas by (timestamp, id): the same on every member.
    Canonical,
}

/// `deltas` (each with its id) in canonical order: every parent before its children, and of
/// the deltas whose parents are all placed, the one with the smallest (timestamp, id) first.
/// Parents not among `deltas` do not hold a delta back.
pub(super) fn canonical_order(deltas: Vec<(DeltaId, Delta)>) -> Vec<(DeltaId, Delta)> {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;
    let ids: HashSet<DeltaId> = deltas.iter().map(|(id, _)| *id).collect();
    let mut waiting: HashMap<DeltaId, usize> = HashMap::new();
    let mut children: HashMap<DeltaId, Vec<DeltaId>> = HashMap::new();
    let mut by_id: HashMap<DeltaId, Delta> = HashMap::new();
    let mut ready = BinaryHeap::new();
    for (id, delta) in deltas {
        let parents: BTreeSet<DeltaId> = delta
            .body
            .parents
            .iter()
            .copied()
            .filter(|p| ids.contains(p))
            .collect();
        for p in &parents {
            children.entry(*p).or_default().push(id);
        }
        if parents.is_empty() {
            ready.push(Reverse((delta.body.timestamp, id)));
        }
        waiting.insert(id, parents.len());
        by_id.insert(id, delta);
    }
    let mut out = Vec::with_capacity(by_id.len());
    while let Some(Reverse((_, id))) = ready.pop() {
        for child in children.remove(&id).unwrap_or_default() {
            let left = waiting.get_mut(&child).expect("a stored delta");
            *left -= 1;
            if *left == 0 {
                ready.push(Reverse((by_id[&child].body.timestamp, child)));
            }
        }
        let delta = by_id.remove(&id).expect("placed once");
        out.push((id, delta));
    }
    out
}

/// How a member runs an upgrade's migration: the new app's export `method`, with no input, as
/// the upgrade's author at its time (so every member runs it alike).
pub(super) fn migration_call<'a>(
    context_id: &ContextId,
    entry: &LogEntry,
    id: &'a DeltaId,
    method: &'a str,
) -> Call<'a> {
    Call {
        method,
        input: &[],
        context_id: context_id.0,
        executor_id: entry.author.0,
        time_now_nanos: entry.timestamp,
        random_seed: *id.as_bytes(),
    }
}

/// What a migration writes: what it stored itself, and the new state it returned in place of
/// the app's state entry (calimero-sdk's `#[app::migrate]` returns the state rather than
/// storing it); with the events it emitted.
pub(super) fn migration_writes(
    outcome: Outcome,
    shared: &dyn StateView,
) -> Result<(WriteSet, Vec<tabnode_runtime::Event>), NodeError> {
    let new_state = match outcome.returns {
        Ok(Some(state)) => state,
        Ok(None) => {
            return Err(NodeError::AppError(
                "the migration returned no state".into(),
            ))
        }
        Err(e) => {
            return Err(NodeError::AppError(
                String::from_utf8_lossy(&e).into_owned(),
            ))
        }
    };
    let key = state_entry_key();
    let old = shared
        .get(&key)
        .ok()
        .flatten()
        .ok_or_else(|| NodeError::AppError("there is no state to migrate".into()))?;
    let entry = migrated_state_entry(&old, &new_state)
        .ok_or_else(|| corrupt("the app's state entry", "shorter than its id"))?;
    let mut writes = outcome.shared_writes;
    writes.insert(key.to_vec(), Some(entry));
    Ok((writes, outcome.events))
}

impl<S: Store, E: Env> Node<S, E> {
    /// Judges the membership log anew after an operation. If it changes which deltas stand, or
    /// which upgrades count other than by one more on top, the state is rebuilt from the
    /// deltas that stand; one more upgrade on top runs its migration on the state as it is.
    pub(super) async fn rejudge(&mut self, ctx: &mut ContextState) -> Result<(), NodeError> {
        let judged = Log::judge(&ctx.dag);
        let (old, new) = (ctx.log.verdict(), judged.verdict());
        let void_changed = new.void != old.void;
        let one_more_upgrade =
            new.upgrades.len() == old.upgrades.len() + 1 && new.upgrades.starts_with(&old.upgrades);
        let upgrades_changed = new.upgrades != old.upgrades;
        ctx.log = judged;
        // A delta that was void may stand now: its records carry its time.
        self.clock = self.clock.max(ctx.latest_standing());
        if !void_changed && one_more_upgrade {
            if matches!(ctx.snapshot, Phase::Covering(_)) {
                return Ok(()); // the snapshot's state is after every upgrade it covers
            }
            let op = *ctx.log.verdict().upgrades.last().expect("one more");
            return self.migrate_in_place(ctx, op).await;
        }
        if !void_changed && !upgrades_changed {
            return Ok(());
        }
        self.rebuild(ctx, Order::Applied).await
    }

    /// Rebuilds the shared state from the deltas that stand (see [`Self::replay_standing`])
    /// and puts it in place of the old one, in one batch.
    /// A snapshot half in place is dropped: the rebuilt state is made from the deltas alone.
    pub(super) async fn rebuild(
        &mut self,
        ctx: &mut ContextState,
        order: Order,
    ) -> Result<(), NodeError> {
        let apps = self.apps_of(ctx).await?;
        let (rows, root_hash, _) = self.replay_standing(&apps, ctx, order, None).await?;
        // A merge refused on the old state is tried again on the new one.
        let mut batch = Batch::new();
        stage_forgotten_refusals(&mut batch, &ctx.id, &ctx.refused.clear());
        self.replace_state(ctx, rows, root_hash, batch).await
    }

    /// Puts `rows` in place of the context's shared state, with its root, in one batch with
    /// what `batch` holds already; a snapshot half in place ends with it.
    pub(super) async fn replace_state(
        &mut self,
        ctx: &mut ContextState,
        rows: Rows,
        root_hash: Option<Hash>,
        mut batch: Batch,
    ) -> Result<(), NodeError> {
        batch.delete_mut(Namespace::Meta, &[COVERING, ctx.id.as_bytes()].concat());
        for (key, _) in self
            .store
            .scan_prefix(Namespace::State, ctx.id.as_bytes())
            .await?
        {
            batch.delete_mut(Namespace::State, &key);
        }
        for (key, value) in rows.present() {
            batch.put_mut(Namespace::State, &scoped(&ctx.id, key), value.clone());
        }
        let mut record = ctx.record.clone();
        record.root_hash = root_hash;
        batch.put_mut(
            Namespace::Contexts,
            ctx.id.as_bytes(),
            borsh::to_vec(&record).expect("encode"),
        );
        self.commit(batch).await?;
        ctx.merkle = Some(MerkleTree::build(rows.present()));
        ctx.shared = Rc::new(rows);
        ctx.record = record;
        ctx.snapshot = Phase::Idle;
        Ok(())
    }

    /// A member announced `heads` with root `theirs`. If ours are the same heads with another
    /// root, the states differ although the deltas are the same: they were merged in another
    /// order (calimero-storage 0.10 can reach different roots for concurrent writes of one
    /// key), or one state is damaged. Either way, rebuilding from the deltas in their canonical
    /// order gives every member that holds them the same state, so this node does that once
    /// per heads (and at most once per [`REPAIR_NANOS`]), reports it, and announces its root
    /// again; a mismatch that remains is reported as not repaired. The `claimant` whose root
    /// the canonical state does not give is not heard about roots for [`DISPROVEN_NANOS`]: a
    /// member announcing false roots costs one rebuild and one report, not one every
    /// [`REPAIR_NANOS`]. (An honest member in that case rebuilds on this node's announcement.)
    pub(super) async fn compare_root(
        &mut self,
        id: ContextId,
        heads: &[DeltaId],
        theirs: Hash,
        claimant: PublicKey,
    ) -> Result<(), NodeError> {
        let Some(ctx) = self.contexts.get(&id) else {
            return Ok(());
        };
        let same_heads = heads.iter().collect::<BTreeSet<_>>()
            == ctx.record.heads.iter().collect::<BTreeSet<_>>();
        if !same_heads || ctx.record.root_hash == Some(theirs) || !ctx.synced() {
            return Ok(());
        }
        // Read only here: every clock reading is an input of the node (see `Env`).
        let now = self.now;
        let ctx = self.contexts.get_mut(&id).expect("checked above");
        ctx.disproven.retain(|_, until| *until > now);
        if ctx.disproven.contains_key(&claimant) {
            return Ok(());
        }
        if ctx.canonical_at.as_deref() == Some(&ctx.record.heads[..]) {
            ctx.disproven
                .insert(claimant, now.saturating_add(DISPROVEN_NANOS));
            self.events.push(NodeEvent::RootMismatch {
                context_id: id,
                ours: ctx.record.root_hash,
                theirs,
                repaired: false,
            });
            return Ok(());
        }
        if ctx
            .last_repair
            .is_some_and(|t| now.saturating_sub(t) < REPAIR_NANOS)
        {
            return Ok(()); // a later announcement will ask again
        }
        let mut ctx = self.contexts.remove(&id).expect("checked above");
        ctx.last_repair = Some(now);
        let before = ctx.record.root_hash;
        let result = self.rebuild(&mut ctx, Order::Canonical).await;
        if result.is_ok() {
            ctx.canonical_at = Some(ctx.record.heads.clone());
            if ctx.record.root_hash != Some(theirs) {
                ctx.disproven
                    .insert(claimant, now.saturating_add(DISPROVEN_NANOS));
            }
            let args = borsh::to_vec(&(before, theirs)).expect("encode");
            let entry = AuditEntry::call(
                self.key.public(),
                "sync.repair",
                Hash(*blake3::hash(&args).as_bytes()),
                "ok",
                ctx.record.root_hash,
                self.now,
            );
            let _ = self.audit_alone(&mut ctx, entry).await;
            self.events.push(NodeEvent::RootMismatch {
                context_id: id,
                ours: ctx.record.root_hash,
                theirs,
                repaired: true,
            });
            let (secret, request) = (ctx.secret, ctx.sync_request(&self.key));
            self.publish(id, &secret, request);
        }
        self.contexts.insert(id, ctx);
        result
    }

    /// Runs the migration of the upgrade `op` (the last that counts) on the context's state,
    /// and commits what it writes; an upgrade that names no migration changes no state.
    pub(super) async fn migrate_in_place(
        &mut self,
        ctx: &mut ContextState,
        op: DeltaId,
    ) -> Result<(), NodeError> {
        let entry = ctx.dag[&op].clone();
        let Some(MemberOp::SetApp {
            app_id,
            migrate: Some(method),
            ..
        }) = &entry.op
        else {
            return Ok(());
        };
        let app = self.app(*app_id).await?;
        let call = migration_call(&ctx.id, &entry, &op, method);
        let fuel = self.runtime.limits().fuel;
        let outcome = self.run_call(&app, &call, ctx, fuel).await?;
        let (shared_writes, events) = migration_writes(outcome, &*ctx.shared)?;
        let mut batch = Batch::new();
        stage_writes(&mut batch, ctx, &shared_writes, &WriteSet::new());
        ctx.apply_shared(shared_writes);
        let mut record = ctx.record.clone();
        record.root_hash = tabnode_runtime::root_hash(&*ctx.shared, &ctx.id.0)
            .map(Hash)
            .or(record.root_hash);
        batch.put_mut(
            Namespace::Contexts,
            ctx.id.as_bytes(),
            borsh::to_vec(&record).expect("encode"),
        );
        self.commit(batch).await?;
        ctx.record = record;
        for e in events {
            self.events.push(NodeEvent::Event {
                context_id: ctx.id,
                kind: e.kind,
                data: json_or_bytes(&e.data),
                author: entry.author,
                delta_id: Some(op),
                local: entry.author == self.key.public(),
                withheld: None,
            });
        }
        Ok(())
    }

    /// Runs every stored delta of the context that stands under the membership log, in the
    /// order it was applied, on an empty state, checking each signature; each upgrade that
    /// counts switches the app (from `apps`) and runs its migration. Returns the state, its
    /// root and how many deltas are stored. Private state is not part of it (it never travels
    /// in deltas).
    ///
    /// From a `base` (a snapshot's state and the deltas it covers), it starts from that state
    /// and runs only the deltas the snapshot does not cover.
    pub(super) async fn replay_standing(
        &self,
        apps: &HashMap<AppId, App>,
        ctx: &ContextState,
        order: Order,
        base: Option<&Covering>,
    ) -> Result<(Rows, Option<Hash>, usize), NodeError> {
        let (mut shared, mut root_hash, mut app) = match base {
            None => (Rc::new(Rows::complete([])), None, &apps[&ctx.record.app_id]),
            Some(base) => (
                Rc::new(Rows::complete(base.snapshot.rows.iter().cloned())),
                Some(base.snapshot.root_hash),
                &apps[&ctx.app_id_at(&base.covered)],
            ),
        };
        let private = Rc::new(Rows::complete([]));
        let mut stored = Vec::new();
        for (_, bytes) in self
            .store
            .scan_prefix(Namespace::Deltas, ctx.id.as_bytes())
            .await?
        {
            let delta = Delta::try_from_slice(&bytes).map_err(|e| corrupt("delta", e))?;
            let delta_id = delta
                .verify()
                .map_err(|e| corrupt("stored delta", format!("{}: {e}", delta.id())))?;
            if base.is_some_and(|b| b.covered.contains(&delta_id)) {
                continue;
            }
            stored.push((delta_id, delta));
        }
        let deltas = stored.len();
        if order == Order::Canonical {
            stored = canonical_order(stored);
        }
        for (delta_id, delta) in stored {
            let upgrade = match &delta.body.op {
                Some(MemberOp::SetApp {
                    app_id, migrate, ..
                }) if ctx.log.verdict().upgrades.contains(&delta_id) => Some((app_id, migrate)),
                Some(_) => continue,
                None if ctx.log.verdict().void.contains(&delta_id) => continue,
                None => None,
            };
            let (call, fuel);
            if let Some((app_id, migrate)) = upgrade {
                app = &apps[app_id];
                let Some(method) = migrate else { continue };
                let entry = &ctx.dag[&delta_id];
                call = migration_call(&ctx.id, entry, &delta_id, method);
                fuel = self.runtime.limits().fuel;
            } else {
                call = merge_call(&delta, &delta_id);
                fuel = merge_fuel(&self.runtime, &delta);
            }
            let views = Views::new(shared.clone(), private.clone());
            let outcome = self
                .runtime
                .call_with_fuel(app, &call, views, fuel)
                .map_err(|e| merge_refusal(NodeError::Execution(e), &delta_id))?;
            let writes = if upgrade.is_some() {
                migration_writes(outcome, &*shared)?.0
            } else {
                root_hash = outcome.root_hash.map(Hash).or(root_hash);
                outcome.shared_writes
            };
            apply_writes(&mut shared, writes);
            if upgrade.is_some() {
                root_hash = tabnode_runtime::root_hash(&*shared, &ctx.id.0)
                    .map(Hash)
                    .or(root_hash);
            }
        }
        Ok((Rc::unwrap_or_clone(shared), root_hash, deltas))
    }

    /// Re-runs every stored delta that stands on an empty state (see the membership log), and
    /// says whether it reaches the root the node holds: in the order this node applied them,
    /// or, once it rebuilt its state in canonical order (see [`Self::compare_root`]), in that.
    pub async fn replay(&mut self, id: &ContextId) -> Result<ReplayReport, NodeError> {
        let ctx = self
            .contexts
            .remove(id)
            .ok_or_else(|| NodeError::UnknownContext(id.to_string()))?;
        let apps = self.apps_of(&ctx).await;
        let result = match apps {
            Ok(apps) => match self
                .replay_standing(&apps, &ctx, Order::Applied, None)
                .await
            {
                Ok(replayed)
                    if replayed.1 != ctx.record.root_hash && ctx.canonical_at.is_some() =>
                {
                    self.replay_standing(&apps, &ctx, Order::Canonical, None)
                        .await
                }
                other => other,
            },
            Err(e) => Err(e),
        };
        let matches = |root_hash: &Option<Hash>| *root_hash == ctx.record.root_hash;
        let report = result.map(|(_, root_hash, deltas)| ReplayReport {
            deltas,
            matches: matches(&root_hash),
            root_hash,
        });
        self.contexts.insert(*id, ctx);
        report
    }
}
