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
    ) -> Result<Option<(Vec<u8>, Option<DeltaId>)>, String> {
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
        ctx.open(data).map(Some).ok_or_else(|| {
            format!("a message on {topic} that the context's key does not open (not from a member)")
        })
    }

    /// Seals a message for `context_id` as this node would send it (tools and tests).
    pub fn seal_for(
        &self,
        context_id: &ContextId,
        message: &WireMessage,
    ) -> Result<Vec<u8>, NodeError> {
        self.seal_bytes_for(context_id, &message.encode())
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

    /// Takes a share of the context's current secret from an admin (see
    /// [`WireMessage::Share`]), if it is for this node, the admin's signature and role hold,
    /// and the operation it names made the latest secret: it stands in this node's log (its
    /// author's authority with it), and no other such operation comes after it. A share from
    /// a removed admin, or one naming a voided removal, changes nothing.
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
        if !ctx.makes_latest_secret(&by) {
            return Err(NodeError::Unauthorized(format!(
                "a share for {by}, which is not the operation that made the latest secret \
                 standing in this node's log"
            )));
        }
        let Some(next) = seal::open_share(&self.key, &context_id, &share.sealed) else {
            return Err(NodeError::Unauthorized(
                "a share this node's key does not open".into(),
            ));
        };
        if ctx.knows_secret(&next) {
            return Ok(());
        }
        let mut batch = Batch::new();
        ctx.stage_rotation(&next, &by, &mut batch);
        self.commit(batch).await?;
        let ctx = self.contexts.get_mut(&context_id).expect("checked above");
        ctx.rotate(next, by);
        let (secret, request) = (ctx.secret, ctx.sync_request(&self.key));
        self.publish(context_id, &secret, request);
        Ok(())
    }
}
