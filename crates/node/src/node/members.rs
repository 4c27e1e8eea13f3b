//! Membership operations this node makes: removals, role changes and app upgrades.

use super::*;

impl<S: Store, E: Env> Node<S, E> {
    /// Upgrades the app a context runs to `wasm` (an admin's operation, replicated to every
    /// member with the binary). With `migrate`, the new app's `#[app::migrate]` export of that
    /// name turns the state into the new app's shape, on every member alike. The migration is
    /// tried first: if it fails, nothing changes.
    pub async fn upgrade_app(
        &mut self,
        id: &ContextId,
        wasm: &[u8],
        migrate: Option<String>,
    ) -> Result<DeltaId, NodeError> {
        if wasm.len() > MAX_UPGRADE_BYTES {
            return Err(NodeError::BadArgs(format!(
                "an app of {} bytes is too large to send to members (at most {MAX_UPGRADE_BYTES})",
                wasm.len()
            )));
        }
        let current = self.context(id)?.app_id();
        let app_id = self.install_app(wasm).await?;
        if app_id == current {
            return Err(NodeError::BadArgs(format!("{id} already runs {app_id}")));
        }
        let app = self.app(app_id).await?;
        if let Some(method) = &migrate {
            if !app.has_method(method) {
                return Err(NodeError::MethodNotFound(format!(
                    "{method} (the migration named is not exported by {app_id})"
                )));
            }
        }
        let op = MemberOp::SetApp {
            app_id,
            migrate,
            wasm: wasm.to_vec(),
        };
        if let MemberOp::SetApp {
            migrate: Some(method),
            ..
        } = &op
        {
            self.try_migration(id, &app, method).await?;
        }
        self.member_op(id, op).await
    }

    /// Runs a migration on the context's state without keeping anything, to refuse an upgrade
    /// whose migration fails before any member sees it.
    pub(super) async fn try_migration(
        &mut self,
        id: &ContextId,
        app: &App,
        method: &str,
    ) -> Result<(), NodeError> {
        let mut ctx = self.contexts.remove(id).expect("checked by the caller");
        let me = self.key.public();
        let call = Call {
            method,
            input: &[],
            context_id: id.0,
            executor_id: me.0,
            time_now_nanos: self.now,
            random_seed: [0; 32],
        };
        let fuel = self.runtime.limits().fuel;
        let result = match self.run_call(app, &call, &mut ctx, fuel).await {
            Ok(outcome) => migration_writes(outcome, &*ctx.shared).map(drop),
            Err(e) => Err(e),
        };
        self.contexts.insert(*id, ctx);
        result
    }

    /// Removes `member` from the context, and every certificate issued through its key: an
    /// admin's operation, replicated to every member (see [`MemberOp::Remove`]).
    pub async fn remove_member(
        &mut self,
        id: &ContextId,
        member: PublicKey,
    ) -> Result<DeltaId, NodeError> {
        if member == self.key.public() {
            return Err(NodeError::BadArgs(
                "an admin cannot remove itself; another admin can".into(),
            ));
        }
        self.member_op(
            id,
            MemberOp::Remove {
                member,
                shares: Vec::new(),
            },
        )
        .await
    }

    /// Gives `member` a new role: an admin's operation, replicated to every member.
    pub async fn set_role(
        &mut self,
        id: &ContextId,
        member: PublicKey,
        role: Role,
    ) -> Result<DeltaId, NodeError> {
        self.member_op(id, MemberOp::SetRole { member, role }).await
    }

    pub(super) async fn member_op(
        &mut self,
        id: &ContextId,
        op: MemberOp,
    ) -> Result<DeltaId, NodeError> {
        self.context(id)?;
        let mut ctx = self.contexts.remove(id).expect("checked above");
        let result = self.member_op_in(&mut ctx, op).await;
        self.contexts.insert(*id, ctx);
        result
    }

    pub(super) async fn member_op_in(
        &mut self,
        ctx: &mut ContextState,
        op: MemberOp,
    ) -> Result<DeltaId, NodeError> {
        if !ctx.synced() {
            return Err(NodeError::NotSynced(ctx.id.to_string()));
        }
        if !ctx
            .role_now(&self.key.public())
            .is_some_and(|role| op.allowed_for(role))
        {
            return Err(NodeError::Unauthorized(if op.is_proposal() {
                format!("only writers of {} propose and approve", ctx.id)
            } else {
                format!("only admins change the membership of {}", ctx.id)
            }));
        }
        // A removal gives the context a new secret, sealed to each member who remains.
        op.verify_root_statement(&self.key.public())
            .map_err(NodeError::Unauthorized)?;
        let timestamp = self.next_timestamp(ctx)?;
        let mut op = op;
        let mut rotation = None;
        if let Some(member) = op.removes(&self.key.public()) {
            let next = self.env.random32();
            let member = &member;
            let mut shares = Vec::new();
            for key in ctx.known_members() {
                // A rotation keeps what others hold through the replaced key (it carries on
                // through the new one); a removal cascades.
                let through_removed = !matches!(op, MemberOp::Rotate { .. })
                    && ctx
                        .members
                        .get(&key)
                        .is_some_and(|(_, chain, _)| chain.contains(member))
                    && !ctx.log.verdict().roles.contains_key(&key);
                if key == *member || key == self.key.public() || through_removed {
                    continue;
                }
                if ctx.role_now(&key).is_none() {
                    continue;
                }
                if let Some(sealed) = seal::seal_to(&key, &ctx.id, self.env.random32(), &next) {
                    shares.push(Share {
                        member: key,
                        sealed,
                    });
                }
            }
            if let MemberOp::Rotate { new, .. } = &op {
                if let Some(sealed) = seal::seal_to(new, &ctx.id, self.env.random32(), &next) {
                    shares.push(Share {
                        member: *new,
                        sealed,
                    });
                }
            }
            *op.shares_mut().expect("a removal carries shares") = shares;
            rotation = Some(next);
        }
        let delta = DeltaBody {
            context_id: ctx.id,
            parents: ctx.record.heads.clone(),
            author: self.key.public(),
            timestamp,
            artifact: Vec::new(),
            root_hash: ctx.record.root_hash.unwrap_or_default(),
            events: Vec::new(),
            genesis: None,
            author_cert: ctx.record.cert.clone(),
            op: Some(op.clone()),
        }
        .sign(&self.key);
        let delta_id = delta.id();
        let mut record = ctx.record.clone();
        record.heads = vec![delta_id];
        let mut batch = Batch::new();
        stage_delta(&mut batch, ctx.id, &mut record, &delta);
        batch.put_mut(
            Namespace::Contexts,
            ctx.id.as_bytes(),
            borsh::to_vec(&record).expect("encode"),
        );
        let audit = AuditRecord::seal(
            AuditEntry {
                delta_id: Some(delta_id),
                ..AuditEntry::call(
                    self.key.public(),
                    op.method(),
                    Hash(*blake3::hash(&borsh::to_vec(&op).expect("encode")).as_bytes()),
                    "ok",
                    record.root_hash,
                    delta.body.timestamp,
                )
            },
            &ctx.audit,
            &self.key,
        );
        stage_audit(&mut batch, ctx.id, &audit);
        if let Some(next) = &rotation {
            ctx.stage_rotation(next, &delta_id, &mut batch);
            ctx.stage_made(delta_id, *next, &mut batch);
        }
        self.commit(batch).await?;
        // The operation itself goes out under the secret it replaces: members who have not
        // applied it yet can read it, and find their share of the new one in it.
        let sealing = ctx.secret;
        if let Some(next) = rotation {
            ctx.rotate(next, delta_id);
        }
        ctx.record = record;
        ctx.audit = audit.next_head();
        ctx.announced = true;
        ctx.insert_applied(&delta, true);
        self.rejudge(ctx).await?;
        self.follow_judged_secret(ctx, delta_id).await?;
        self.events.push(NodeEvent::Membership {
            context_id: ctx.id,
            delta_id,
            by: self.key.public(),
            op,
            counted: true,
        });
        self.publish(ctx.id, &sealing, WireMessage::Deltas(vec![delta]));
        Ok(delta_id)
    }
}
