//! Invitations and joining: making and revoking invitations, asking the members to admit this
//! node, and admitting others (the join handshake).

use super::*;

/// A join under way: the app the invitation names, the certificate redeemed from it, when this
/// node last asked the members (to admit it, or for the app), and the app's parts while it
/// fetches the app (see `app_fetch.rs`).
pub(super) struct Joining {
    pub(super) app_id: AppId,
    pub(super) cert: MemberCert,
    pub(super) last_request: Option<u64>,
    pub(super) fetch: Option<AppFetch>,
}

/// Why the invitation a certificate was redeemed from admits no key now, if it does not: the
/// log says it was revoked or used up, this node's clock says it expired (whatever the joiner
/// claims), or its inviter is no admin now.
pub(super) fn invitation_refusal(
    ctx: &ContextState,
    invitation: &InvitationGrant,
    now: u64,
) -> Option<&'static str> {
    let verdict = ctx.log.verdict();
    let invite_key = invitation.invite_key;
    if verdict.revoked_invitations.contains_key(&invite_key) {
        return Some("the invitation was revoked");
    }
    let uses = verdict.invitation_uses.get(&invite_key).copied();
    if uses.unwrap_or(0) >= invitation.uses {
        return Some("the invitation was already used");
    }
    if now >= invitation.expires_at {
        return Some("the invitation expired before a member saw the join");
    }
    if ctx.role_of(&invitation.inviter) != Some(Role::Admin) {
        return Some("the inviter is no admin of the context now");
    }
    None
}

impl<S: Store, E: Env> Node<S, E> {
    /// An invitation to `context_id` as a member, valid for [`DEFAULT_INVITATION_NANOS`].
    pub fn invite(&self, context_id: &ContextId) -> Result<String, NodeError> {
        let expires_at = self.now.saturating_add(DEFAULT_INVITATION_NANOS);
        self.invite_as(context_id, Role::Member, expires_at)
    }

    /// A single-use invitation with `role`, usable until `expires_at` (ns since the epoch), as
    /// a link-safe string. Only admins invite.
    pub fn invite_as(
        &self,
        context_id: &ContextId,
        role: Role,
        expires_at: u64,
    ) -> Result<String, NodeError> {
        self.invite_for(context_id, role, expires_at, 1)
    }

    /// An invitation with `role`, usable until `expires_at` by `uses` keys (each admitted in
    /// the membership log; see [`MemberOp::Admit`]). It carries no context secret.
    pub fn invite_for(
        &self,
        context_id: &ContextId,
        role: Role,
        expires_at: u64,
        uses: u32,
    ) -> Result<String, NodeError> {
        if uses == 0 {
            return Err(NodeError::BadInvitation(
                "an invitation is for 1 use or more".into(),
            ));
        }
        let ctx = self.context(context_id)?;
        if ctx.role_now(&self.key.public()) != Some(Role::Admin) {
            return Err(NodeError::Unauthorized(format!(
                "only admins invite to {context_id}"
            )));
        }
        let invitation = Invitation::new(
            ctx.record.app_id,
            role,
            (expires_at, uses),
            ctx.record.cert.clone(),
            &self.key,
            self.env.random32(),
        )?;
        Ok(invitation.encode())
    }

    /// Revokes an invitation this node (an admin) or another admin made: a join with it that
    /// no member admitted yet is refused by every member from the operation on. Keys it already
    /// admitted stay (remove them to take their access).
    pub async fn revoke_invitation(
        &mut self,
        context_id: &ContextId,
        invitation: &str,
    ) -> Result<DeltaId, NodeError> {
        let invitation = Invitation::decode(invitation)?;
        if invitation.grant.context_id != *context_id {
            return Err(NodeError::BadInvitation(format!(
                "the invitation is for {}, not {context_id}",
                invitation.grant.context_id
            )));
        }
        let op = MemberOp::RevokeInvitation {
            invitation: invitation.grant.invite_key,
        };
        self.member_op(context_id, op).await
    }

    /// Asks to join the context an invitation names, and returns its id. The invitation holds
    /// no secret: this node sends the members a request (sealed with the context's handshake
    /// key, [`crate::context_handshake_key`]) with the certificate it redeemed, and asks again
    /// every few seconds (from [`Node::handle_timeout`]) until a member admits it (records the use in the
    /// membership log) and seals the context's secret to this node's key
    /// ([`WireMessage::Welcome`], then [`NodeEvent::Joined`]). The state arrives from members
    /// after that; until then calls answer [`NodeError::NotSynced`]. Joining again with
    /// another invitation while the first is not answered replaces it.
    ///
    /// A node that lacks the app the invitation names first fetches it from the members (see
    /// `app_fetch.rs`, [`NodeEvent::AppProgress`]), checked against the app id, and installs
    /// it; then it asks to be admitted.
    pub async fn join(&mut self, invitation: &str) -> Result<ContextId, NodeError> {
        let invitation = Invitation::decode(invitation)?;
        let (id, app_id) = (invitation.grant.context_id, invitation.grant.app_id);
        if self.contexts.contains_key(&id) {
            return Ok(id);
        }
        let now = self.now;
        let cert = invitation.redeem(self.key.public(), now)?;
        let value = borsh::to_vec(&(app_id, &cert)).expect("encode");
        self.commit(Batch::new().put(Namespace::Meta, &scoped_meta(JOINING, &id), value))
            .await?;
        self.start_joining(id, app_id, cert).await?;
        self.ask_to_join(id, now);
        Ok(id)
    }

    /// Whether this node asked to join `id` and no member has admitted it yet.
    pub fn is_joining(&self, id: &ContextId) -> bool {
        self.joining.contains_key(id)
    }

    /// Whether this node holds `id` with a state its calls can use (a joiner's arrives from
    /// members after it was admitted).
    pub fn is_synced(&self, id: &ContextId) -> bool {
        self.contexts.get(id).is_some_and(|ctx| ctx.synced())
    }

    /// Subscribes to `id`'s topic and keeps the join under way, fetching the app first if this
    /// node lacks it; the request itself goes out from [`Self::ask_to_join`] (at once from
    /// [`Self::join`], on the next timer after a restart).
    pub(super) async fn start_joining(
        &mut self,
        id: ContextId,
        app_id: AppId,
        cert: MemberCert,
    ) -> Result<(), NodeError> {
        let fetch = match self.app(app_id).await {
            Ok(_) => None,
            Err(NodeError::AppNotInstalled(_)) => Some(AppFetch::default()),
            Err(e) => return Err(e),
        };
        self.outgoing.push(Outgoing::Subscribe {
            topic: context_topic(&id),
            key: context_topic_key(&id),
        });
        let joining = Joining {
            app_id,
            cert,
            last_request: None,
            fetch,
        };
        self.joining.insert(id, joining);
        Ok(())
    }

    /// Sends the members this node's request to join `id` (or, while it fetches the app, its
    /// request for the parts still missing).
    pub(super) fn ask_to_join(&mut self, id: ContextId, now: u64) {
        let Some(joining) = self.joining.get_mut(&id) else {
            return;
        };
        joining.last_request = Some(now);
        if joining.fetch.is_some() {
            return self.ask_for_app(id);
        }
        let request = WireMessage::JoinRequest {
            context_id: id,
            cert: Box::new(joining.cert.clone()),
        };
        self.publish(id, &context_handshake_key(&id), request);
    }

    /// A message sealed with a context's handshake key: a joiner's request (for members) or a
    /// member's welcome (for a joiner). Anything else under that key is refused.
    pub(super) async fn handle_handshake(
        &mut self,
        id: ContextId,
        data: &[u8],
        from: Option<&str>,
    ) {
        let result = match WireMessage::decode(data) {
            Err(e) => Err(NodeError::BadInvitation(format!(
                "an undecodable join handshake: {e}"
            ))),
            Ok(m) if m.contexts() != [id] => Err(NodeError::BadInvitation(
                "a join handshake about another context".into(),
            )),
            Ok(WireMessage::JoinRequest { cert, .. }) => {
                self.receive_join_request(id, *cert, from).await
            }
            Ok(WireMessage::AppRequest {
                requester,
                missing,
                signature,
                ..
            }) => {
                let request = (*requester, missing, signature);
                self.answer_app_request(id, request, from).await
            }
            Ok(WireMessage::AppPart { app_id, part, .. }) => {
                self.receive_app_part(id, (app_id, part)).await
            }
            Ok(WireMessage::Welcome {
                admit,
                share,
                parts,
                from: member,
                signature,
                ..
            }) => {
                self.receive_welcome(id, admit, (share, parts), *member, signature)
                    .await
            }
            Ok(_) => Err(NodeError::Unauthorized(
                "only a join handshake is sealed with the handshake key".into(),
            )),
        };
        match result {
            Err(e @ NodeError::BadAppPart(_)) => self.reject_as(Some(id), e.kind(), e.to_string()),
            Err(e) => self.reject(Some(id), e.to_string()),
            Ok(()) => {}
        }
    }

    /// A joiner asks to be admitted with `cert`. A member checks the invitation against the
    /// log it shares with every other member (not used up, not revoked), its own clock (not
    /// expired now, whatever the joiner claims), and the inviter (an admin still); then records
    /// the admission ([`MemberOp::Admit`]) and welcomes the joiner with the context's secret
    /// sealed to its key. A joiner already admitted with this invitation (asking again: the
    /// welcome was lost) is welcomed again.
    pub(super) async fn receive_join_request(
        &mut self,
        context_id: ContextId,
        cert: MemberCert,
        peer: Option<&str>,
    ) -> Result<(), NodeError> {
        let Some(ctx) = self.contexts.get_mut(&context_id) else {
            return Ok(());
        };
        let member = cert.member;
        let bad = |why: &str| Err(NodeError::BadInvitation(format!("{member}'s join: {why}")));
        let Issuance::Invited { invitation, .. } = &cert.issued else {
            return bad("not a certificate redeemed from an invitation");
        };
        // What the log says comes first, and the chain is checked without keeping it: anyone
        // holding a link can make certificates for any number of keys.
        let invite_key = invitation.invite_key;
        let now = self.now;
        let verdict = ctx.log.verdict();
        if let Some((with, admissions)) = verdict.admitted.get(&member) {
            // Asking again: the welcome was lost. As often as a sync request.
            let (admit, same) = (admissions[0], *with == invite_key);
            if !same || !ctx.take_sync_token(member, now) {
                return Ok(());
            }
            cert.authenticate(&context_id, &member)?;
            return self.welcome(context_id, member, admit, peer);
        }
        if let Some(why) = invitation_refusal(ctx, invitation, now) {
            return bad(why);
        }
        cert.authenticate(&context_id, &member)?;
        if !ctx.synced() {
            return Ok(()); // a member with the state records it
        }
        let op = MemberOp::Admit {
            member,
            cert: Box::new(cert),
        };
        let admit = self.member_op(&context_id, op).await?;
        let ctx = &self.contexts[&context_id];
        if !ctx.log.verdict().admitted.contains_key(&member) {
            return bad("the admission does not count (stamped after the invitation expired)");
        }
        self.welcome(context_id, member, admit, peer)
    }

    /// Gives an admitted joiner the context's current secret, sealed to its key.
    pub(super) fn welcome(
        &mut self,
        context_id: ContextId,
        member: PublicKey,
        admit: DeltaId,
        peer: Option<&str>,
    ) -> Result<(), NodeError> {
        let ctx = self.context(&context_id)?;
        let seal_to = |secret: &[u8; 32]| {
            let sealed = seal::seal_to(&member, &context_id, self.env.random32(), secret)
                .ok_or_else(|| NodeError::BadInvitation(format!("{member} is not a valid key")))?;
            Ok::<_, NodeError>(Share { member, sealed })
        };
        let share = seal_to(&ctx.secret)?;
        // The parts, only when they make the secret this node seals with (it holds them all).
        let parts = match ctx.judged_secret() == Some(ctx.secret) {
            true => ctx
                .log
                .latest_secret_ops(&ctx.dag)
                .into_iter()
                .map(|op| Ok((op, seal_to(&ctx.made[&op])?)))
                .collect::<Result<Vec<_>, NodeError>>()?,
            false => Vec::new(),
        };
        let signature = self.key.sign(&WireMessage::welcome_message(
            &context_id,
            &admit,
            &share,
            &parts,
        ));
        let message = WireMessage::Welcome {
            context_id,
            admit,
            share,
            parts,
            from: Box::new(ctx.record.cert.clone()),
            signature,
        };
        self.reply(
            context_id,
            &context_handshake_key(&context_id),
            message,
            peer,
        );
        Ok(())
    }

    /// Gives `requester`, which asked to catch up under `former` (a secret this node moved
    /// off, or one of the latest operations' it never sealed with), the secret of each of the latest secret-giving operations that carries no
    /// share for it: a member admitted concurrently with such an operation (by a member that
    /// had not applied it yet), whom its author did not know, holds only a former secret and
    /// would otherwise never read on. Only an admin gives it (a member takes a share from an
    /// admin alone), only to a key the log counts as a member now, only a secret this node
    /// holds, and as often as its sync requests are answered; the receiver takes each while
    /// the operation is one of the latest in its own log, and moves to the context's secret
    /// once it holds every part.
    pub(super) fn share_missed_secret(
        &mut self,
        context_id: ContextId,
        former: [u8; 32],
        requester: &MemberCert,
        peer: Option<&str>,
    ) {
        let Some(ctx) = self.contexts.get(&context_id) else {
            return;
        };
        let member = requester.member;
        if ctx.role_now(&self.key.public()) != Some(Role::Admin) || ctx.role_of(requester).is_none()
        {
            return;
        }
        let has_share = |op: &DeltaId| {
            ctx.dag
                .get(op)
                .and_then(|e| e.op.as_ref())
                .is_none_or(|o| o.shares().iter().any(|s| s.member == member))
        };
        let mut messages = Vec::new();
        for op in ctx.log.latest_secret_ops(&ctx.dag) {
            let Some(made) = ctx.made.get(&op).filter(|_| !has_share(&op)) else {
                continue;
            };
            let Some(sealed) = seal::seal_to(&member, &context_id, self.env.random32(), made)
            else {
                return;
            };
            let share = Share { member, sealed };
            let signature = self
                .key
                .sign(&WireMessage::share_message(&context_id, &op, &share));
            messages.push(WireMessage::Share {
                context_id,
                by: op,
                share,
                from: Box::new(ctx.record.cert.clone()),
                signature,
            });
        }
        for message in messages {
            self.reply(context_id, &former, message, peer);
        }
    }

    /// A member admitted this node's join: takes the context's secret it sealed to this node's
    /// key, with the secrets of the operations it is made of (kept as a share in each would be,
    /// so that an operation concurrent with them, joining them later, combines here without an
    /// admin's help), and asks the members for the state. The first welcome that opens is
    /// taken; one whose parts do not make its secret is refused.
    pub(super) async fn receive_welcome(
        &mut self,
        context_id: ContextId,
        admit: DeltaId,
        (share, parts): (Share, Vec<(DeltaId, Share)>),
        from: MemberCert,
        signature: Signature,
    ) -> Result<(), NodeError> {
        let Some(joining) = self.joining.get(&context_id) else {
            return Ok(()); // a member already, or never asked
        };
        if share.member != self.key.public() {
            return Ok(()); // another joiner's
        }
        from.authenticate(&context_id, &from.member)?;
        let message = WireMessage::welcome_message(&context_id, &admit, &share, &parts);
        verify_signature(&from.member, &message, &signature).map_err(|_| {
            NodeError::Unauthorized("a welcome whose signature does not verify".into())
        })?;
        let open = |share: &Share| {
            seal::open_share(&self.key, &context_id, &share.sealed).ok_or_else(|| {
                NodeError::Unauthorized("a welcome this node's key does not open".into())
            })
        };
        let secret = open(&share)?;
        let parts: Vec<(DeltaId, [u8; 32])> = parts
            .iter()
            .map(|(op, share)| Ok((*op, open(share)?)))
            .collect::<Result<_, NodeError>>()?;
        let made = match parts.as_slice() {
            [] => None,
            [(_, alone)] => Some(*alone),
            several => Some(seal::combine_secrets(several)),
        };
        let in_order = parts.windows(2).all(|w| w[0].0 < w[1].0);
        if made.is_some_and(|made| made != secret) || !in_order {
            return Err(NodeError::Unauthorized(
                "a welcome whose parts do not make its secret".into(),
            ));
        }
        let record = ContextRecord {
            app_id: joining.app_id,
            heads: vec![],
            root_hash: None,
            next_seq: 0,
            cert: joining.cert.clone(),
        };
        let mut batch = Batch::new();
        for (op, part) in &parts {
            batch.put_mut(
                Namespace::Keys,
                &scoped(&context_id, &[MADE_SECRET, op.as_bytes()].concat()),
                part.to_vec(),
            );
        }
        self.commit(
            batch
                .put(
                    Namespace::Keys,
                    &scoped(&context_id, CONTEXT_SECRET),
                    secret.to_vec(),
                )
                .put(
                    Namespace::Contexts,
                    context_id.as_bytes(),
                    borsh::to_vec(&record).expect("encode"),
                )
                .delete(Namespace::Meta, &scoped_meta(JOINING, &context_id)),
        )
        .await?;
        self.joining.remove(&context_id);
        self.load_context(context_id, record).await?;
        self.events.push(NodeEvent::Joined {
            context_id,
            admitted_by: from.member,
        });
        Ok(())
    }
}
