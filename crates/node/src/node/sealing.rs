//! Sealing and opening messages under a context's secret, and to a member's own key; taking a
//! share of a new secret an admin sent.

use super::*;

impl<S: Store, E: Env> Node<S, E> {
    /// Opens a message that arrived on a context topic: `None` if the context is not ours; with
    /// the operation that replaced the secret it was sealed with, if that was a former one.
    #[allow(clippy::type_complexity)]
    pub(super) fn unseal(
        &self,
        topic: &str,
        data: &[u8],
    ) -> Result<Option<(Vec<u8>, Option<(DeltaId, [u8; 32])>)>, String> {
        if !topic.starts_with(CONTEXT_TOPIC_PREFIX) {
            return Err(format!("a message on {topic}, which is no context topic"));
        }
        let Some(ctx) = self
            .contexts
            .iter()
            .find_map(|(id, ctx)| (context_topic(id) == topic).then_some(ctx))
        else {
            return Ok(None); // a topic of a context this node does not hold
        };
        match ctx.open(data) {
            Some(opened) => Ok(Some(opened)),
            // Removed from the context, this node holds no secret made since: the members'
            // messages under it are expected, not an attack to tell its user of.
            None if ctx.role_now(&self.key.public()).is_none() => {
                tracing::debug!(
                    "a message on {topic} under a secret made after this node's removal"
                );
                Ok(None)
            }
            None => Err(format!(
                "a message on {topic} that the context's key does not open (not from a member)"
            )),
        }
    }

    /// Seals a message for `context_id` as this node would send it (tools and tests).
    pub fn seal_for(
        &self,
        context_id: &ContextId,
        message: &WireMessage,
    ) -> Result<Vec<u8>, NodeError> {
        self.seal_bytes_for(context_id, &message.encode())
    }

    /// A digest of the secret `context_id`'s messages are sealed with now (tools and tests):
    /// members on one secret show the same, and it tells nothing of the secret.
    pub fn secret_digest(&self, context_id: &ContextId) -> Result<Hash, NodeError> {
        let ctx = self.context(context_id)?;
        Ok(Hash(blake3::derive_key(
            "tabnode context secret digest v1",
            &ctx.secret,
        )))
    }

    /// Seals `plain` for `context_id`, whatever it holds (tools and tests: a message no
    /// [`WireMessage`] encodes to).
    pub fn seal_bytes_for(
        &self,
        context_id: &ContextId,
        plain: &[u8],
    ) -> Result<Vec<u8>, NodeError> {
        let ctx = self.context(context_id)?;
        Ok(seal::seal(
            &ctx.secret,
            context_id,
            self.env.random32(),
            plain,
        ))
    }

    /// Seals a join handshake message for `context_id` as a joiner or a member would send it
    /// (tools and tests); the context need not be this node's.
    pub fn seal_handshake(&self, context_id: &ContextId, message: &WireMessage) -> Vec<u8> {
        let key = context_handshake_key(context_id);
        seal::seal(&key, context_id, self.env.random32(), &message.encode())
    }

    /// Opens a join handshake message for `context_id` (tools and tests), as anyone who knows
    /// the context id can.
    pub fn open_handshake(&self, context_id: &ContextId, data: &[u8]) -> Option<WireMessage> {
        let plain = seal::open(&context_handshake_key(context_id), context_id, data)?;
        WireMessage::decode(&plain).ok()
    }

    /// Signs `snapshot` as this node's and splits it into the messages that carry it, as
    /// [`crate::snapshot`] describes (tools and tests).
    pub fn sign_snapshot(
        &self,
        context_id: &ContextId,
        snapshot: &Snapshot,
    ) -> Result<Vec<WireMessage>, NodeError> {
        let ctx = self.context(context_id)?;
        Ok(snapshot::split(snapshot, &self.key, &ctx.record.cert))
    }

    /// Opens a message published for `context_id` (tools and tests).
    pub fn open_message(
        &self,
        context_id: &ContextId,
        data: &[u8],
    ) -> Result<WireMessage, NodeError> {
        let ctx = self.context(context_id)?;
        let (plain, _) = ctx.open(data).ok_or_else(|| {
            NodeError::Unauthorized("the context key does not open this message".into())
        })?;
        WireMessage::decode(&plain).map_err(|e| corrupt("message", e))
    }

    /// Takes a share of the secret an operation made from an admin (see
    /// [`WireMessage::Share`]), if it is for this node, the admin's signature and role hold,
    /// and the operation it names is one of the latest secret-giving operations that count in
    /// this node's log. A share from a removed admin, or one naming a voided removal, changes
    /// nothing. With it, this node may hold every part of the context's secret: it moves to it.
    pub(super) async fn receive_share(
        &mut self,
        context_id: ContextId,
        by: DeltaId,
        share: Share,
        from: MemberCert,
        signature: Signature,
    ) -> Result<(), NodeError> {
        let Some(ctx) = self.contexts.get(&context_id) else {
            return Ok(());
        };
        if share.member != self.key.public() {
            return Ok(());
        }
        from.authenticate(&context_id, &from.member)?;
        if ctx.role_of(&from) != Some(Role::Admin) {
            return Err(NodeError::Unauthorized(format!(
                "{} shared a secret but is no admin of {context_id}",
                from.member
            )));
        }
        let message = WireMessage::share_message(&context_id, &by, &share);
        verify_signature(&from.member, &message, &signature).map_err(|_| {
            NodeError::Unauthorized("a share whose signature does not verify".into())
        })?;
        if !ctx.log.latest_secret_ops(&ctx.dag).contains(&by) {
            return Err(NodeError::Unauthorized(format!(
                "a share for {by}, which is not one of the latest secret-giving operations \
                 that count in this node's log"
            )));
        }
        let Some(made) = seal::open_share(&self.key, &context_id, &share.sealed) else {
            return Err(NodeError::Unauthorized(
                "a share this node's key does not open".into(),
            ));
        };
        if ctx.made.contains_key(&by) {
            return Ok(());
        }
        let mut ctx = self.contexts.remove(&context_id).expect("checked above");
        let mut batch = Batch::new();
        ctx.stage_made(by, made, &mut batch);
        let result = match self.commit(batch).await {
            Ok(()) => self.follow_judged_secret(&mut ctx, by).await,
            Err(e) => Err(e.into()),
        };
        self.contexts.insert(context_id, ctx);
        result
    }

    /// Moves the context to the secret its judged log makes ([`ContextState::judged_secret`]),
    /// if this node holds every part of it and seals with another: the one it sealed with is
    /// kept as a former secret, replaced by `by` (the delta whose taking moved it). Then asks
    /// the members, under the new secret, for what they sent under it.
    pub(super) async fn follow_judged_secret(
        &mut self,
        ctx: &mut ContextState,
        by: DeltaId,
    ) -> Result<(), NodeError> {
        let Some(next) = ctx.judged_secret().filter(|next| *next != ctx.secret) else {
            return Ok(());
        };
        let mut batch = Batch::new();
        ctx.stage_rotation(&next, &by, &mut batch);
        self.commit(batch).await?;
        ctx.rotate(next, by);
        self.publish(ctx.id, &ctx.secret, ctx.sync_request(&self.key));
        Ok(())
    }
}
