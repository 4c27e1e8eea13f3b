//! This node's identity: its key, the root grant of a signed-in account, revocation and key
//! rotation.

use super::*;

/// The NEP-413 recipients (sites) of the root statements `op` carries.
fn nep413_recipients(op: &MemberOp) -> Vec<&str> {
    match op {
        MemberOp::Bind { grant, .. } => vec![grant.proof.recipient()],
        MemberOp::Revoke { revocation, .. } => vec![revocation.proof.recipient()],
        MemberOp::Rotate {
            grant, revocation, ..
        } => vec![grant.proof.recipient(), revocation.proof.recipient()],
        _ => Vec::new(),
    }
    .into_iter()
    .flatten()
    .collect()
}

impl<S: Store, E: Env> Node<S, E> {
    /// The sites (NEP-413 `recipient`s, a page's origin) whose wallet signatures this node takes
    /// in a member's root statement (`Bind`, `Revoke`, `Rotate`): a NEAR wallet signs for
    /// whichever site asks, naming it, so a grant another site obtained from the user's wallet
    /// must not bind a key to the account here. `None` (the default) takes any.
    pub fn set_nep413_recipients(&mut self, accepted: Option<BTreeSet<String>>) {
        self.nep413_recipients = accepted;
    }

    /// A recipient of `op`'s NEAR signatures that this node does not take, if any.
    pub(super) fn foreign_recipient(&self, op: &MemberOp) -> Option<String> {
        let accepted = self.nep413_recipients.as_ref()?;
        nep413_recipients(op)
            .into_iter()
            .find(|r| !accepted.contains(*r))
            .map(str::to_owned)
    }

    /// Keeps the record of who this node acts for (a root's signed grant of its key), beside
    /// the node's own key (sealed at rest in the browser).
    pub async fn save_root_grant(&mut self, record: Vec<u8>) -> Result<(), NodeError> {
        self.commit(Batch::new().put(Namespace::Keys, ROOT_GRANT, record))
            .await?;
        Ok(())
    }

    /// The record [`Node::save_root_grant`] kept, if any.
    pub async fn root_grant(&self) -> Result<Option<Vec<u8>>, NodeError> {
        Ok(self.store.get(Namespace::Keys, ROOT_GRANT).await?)
    }

    /// Takes the root's grant of this node's key (after sign-in) and shows it in every context
    /// this node holds, now and in each it creates or joins later, so that the root's
    /// revocation of this key reaches every member.
    pub async fn use_root_grant(&mut self, grant: SignedGrant) -> Result<(), NodeError> {
        if grant.grant.client_key != self.key.public() {
            return Err(NodeError::BadArgs("the grant is for another key".into()));
        }
        grant
            .verify_signature()
            .map_err(|e| NodeError::Unauthorized(e.to_string()))?;
        self.root = Some(grant);
        for id in self.context_ids() {
            self.bind_if_needed(&id).await;
        }
        Ok(())
    }

    /// Shows this node's root in the context if it has one, the context has state, and the log
    /// does not bind this key yet.
    pub(super) async fn bind_if_needed(&mut self, id: &ContextId) {
        let Some(grant) = self.root.clone() else {
            return;
        };
        let Some(ctx) = self.contexts.get(id) else {
            return;
        };
        let me = self.key.public();
        if ctx.record.heads.is_empty() || ctx.log.verdict().roots.contains_key(&me) {
            return;
        }
        if let Err(e) = self.bind_root(id, grant).await {
            tracing::warn!(context = %id, %e, "could not show this node's root");
        }
    }

    /// Carries a root's revocation into every context of this node where the key is bound to
    /// that root; returns those contexts.
    pub async fn revoke_everywhere(
        &mut self,
        revocation: SignedRevocation,
    ) -> Result<Vec<ContextId>, NodeError> {
        let (key, root) = (
            revocation.revocation.client_key,
            revocation.root.public_key(),
        );
        let mut done = Vec::new();
        for id in self.context_ids() {
            if self.contexts[&id].log.verdict().roots.get(&key) == Some(&root) {
                self.revoke(&id, revocation.clone()).await?;
                done.push(id);
            }
        }
        Ok(done)
    }

    /// Shows, in the context, the root that granted this node's key (a NEAR account or a local
    /// root key), so that root's revocation reaches it: any member may.
    pub async fn bind_root(
        &mut self,
        id: &ContextId,
        grant: SignedGrant,
    ) -> Result<DeltaId, NodeError> {
        let root = grant.root.public_key();
        let op = MemberOp::Bind {
            root,
            grant: Box::new(grant),
        };
        self.member_op(id, op).await
    }

    /// Carries a root's revocation of one of its client keys into the context: the key, bound
    /// to that root here, loses all authority for what follows (as a removal, cascading, with a
    /// new secret). Any member may carry it; the authority is the root's signature.
    pub async fn revoke(
        &mut self,
        id: &ContextId,
        revocation: SignedRevocation,
    ) -> Result<DeltaId, NodeError> {
        let (key, root) = (
            revocation.revocation.client_key,
            revocation.root.public_key(),
        );
        if self.context(id)?.log.verdict().roots.get(&key) != Some(&root) {
            return Err(NodeError::BadArgs(format!(
                "{key} is not bound to that root in {id}"
            )));
        }
        let op = MemberOp::Revoke {
            key,
            root,
            revocation: Box::new(revocation),
            shares: Vec::new(),
        };
        self.member_op(id, op).await
    }

    /// Makes the key a rotation will move this node to, and gives its public half (for the root
    /// to grant). The secret stays in the node.
    pub fn prepare_rotation(&mut self) -> PublicKey {
        let key = SecretKey::from_seed(self.env.random32());
        let public = key.public();
        self.next_key = Some(key);
        public
    }

    /// Rotates this node's key in one step: in every context, an operation by the current key
    /// (see [`MemberOp::Rotate`]) hands its place to the key [`Self::prepare_rotation`] made,
    /// which the root granted (`grant`) as it revoked the current one (`revocation`); then the
    /// node signs with the new key. Every context where this key is still a member must have
    /// it bound to that root (sign in first) and have its state. A crash midway is finished on the next open. Returns the
    /// contexts.
    pub async fn rotate_key(
        &mut self,
        grant: SignedGrant,
        revocation: SignedRevocation,
    ) -> Result<Vec<ContextId>, NodeError> {
        let next = match self.next_key.take() {
            Some(key) if key.public() == grant.grant.client_key => key,
            other => {
                self.next_key = other;
                return Err(NodeError::BadArgs(
                    "the grant is not for the key prepare_rotation made".into(),
                ));
            }
        };
        let me = self.key.public();
        crate::membership::rotation_matches(&me, &next.public(), &grant, &revocation)
            .map_err(NodeError::Unauthorized)?;
        let root = grant.root.public_key();
        for id in self.context_ids() {
            let ctx = &self.contexts[&id];
            if ctx.log.verdict().removed.contains_key(&me) {
                continue; // no longer a member there: nothing to hand over
            }
            if !ctx.synced() {
                return Err(NodeError::NotSynced(id.to_string()));
            }
            if ctx.log.verdict().roots.get(&me) != Some(&root) {
                return Err(NodeError::Unauthorized(format!(
                    "this node's key is not bound to that root in {id}: sign in with it first"
                )));
            }
        }
        let pending = borsh::to_vec(&(next.seed(), &grant, &revocation)).expect("encode");
        self.commit(Batch::new().put(Namespace::Keys, NEXT_NODE_KEY, pending))
            .await?;
        self.finish_rotation(next, grant, revocation).await
    }

    /// Makes the rotation's operation in each context that lacks it, then moves the node to
    /// the new key (key, former keys, certificates) in one batch.
    pub(super) async fn finish_rotation(
        &mut self,
        next: SecretKey,
        grant: SignedGrant,
        revocation: SignedRevocation,
    ) -> Result<Vec<ContextId>, NodeError> {
        let (old, new, root) = (self.key.public(), next.public(), grant.root.public_key());
        let mut done = Vec::new();
        for id in self.context_ids() {
            let verdict = self.contexts[&id].log.verdict();
            if verdict.removed.contains_key(&old) || verdict.roots.get(&old) != Some(&root) {
                continue; // rotated already (before a crash), or not this root's key here
            }
            let op = MemberOp::Rotate {
                new,
                root,
                grant: Box::new(grant.clone()),
                revocation: Box::new(revocation.clone()),
                shares: Vec::new(),
            };
            self.member_op(&id, op).await?;
            done.push(id);
        }
        let mut former = self.former_keys().await?;
        former.push(old);
        let mut batch = Batch::new()
            .put(Namespace::Keys, NODE_KEY, next.seed().to_vec())
            .put(
                Namespace::Keys,
                FORMER_NODE_KEYS,
                borsh::to_vec(&former).expect("encode"),
            )
            .delete(Namespace::Keys, NEXT_NODE_KEY);
        let mut records = Vec::new();
        for (id, ctx) in &self.contexts {
            let mut record = ctx.record.clone();
            if record.cert.member == old {
                record.cert = record.cert.rotated(grant.clone(), revocation.clone());
            }
            batch.put_mut(
                Namespace::Contexts,
                id.as_bytes(),
                borsh::to_vec(&record).expect("encode"),
            );
            records.push((*id, record));
        }
        self.commit(batch).await?;
        self.key = next;
        self.root = Some(grant);
        for (id, record) in records {
            let ctx = self.contexts.get_mut(&id).expect("listed above");
            ctx.learn_member(&record.cert);
            ctx.record = record;
        }
        Ok(done)
    }

    /// The keys this node signed with before its current one, oldest first.
    pub(super) async fn former_keys(&self) -> Result<Vec<PublicKey>, NodeError> {
        match self.store.get(Namespace::Keys, FORMER_NODE_KEYS).await? {
            Some(bytes) => {
                Vec::<PublicKey>::try_from_slice(&bytes).map_err(|e| corrupt("former keys", e))
            }
            None => Ok(Vec::new()),
        }
    }
}
