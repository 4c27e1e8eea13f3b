//! Apps and contexts: installing apps, creating, reading and dropping contexts.

use super::*;

impl<S: Store, E: Env> Node<S, E> {
    /// Validates, compiles and stores an app binary; its id is its blake3 hash.
    pub async fn install_app(&mut self, wasm: &[u8]) -> Result<AppId, NodeError> {
        let app = self.runtime.compile(wasm).map_err(NodeError::InvalidApp)?;
        let id = AppId::of_wasm(wasm);
        if self
            .store
            .get(Namespace::Apps, id.as_bytes())
            .await?
            .is_none()
        {
            self.commit(Batch::new().put(Namespace::Apps, id.as_bytes(), wasm.to_vec()))
                .await?;
        }
        self.apps.insert(id, app);
        Ok(id)
    }

    /// The compiled app, loaded from the store and checked against its hash on first use.
    pub(super) async fn app(&mut self, id: AppId) -> Result<App, NodeError> {
        if let Some(app) = self.apps.get(&id) {
            return Ok(app.clone());
        }
        let wasm = self
            .store
            .get(Namespace::Apps, id.as_bytes())
            .await?
            .ok_or_else(|| NodeError::AppNotInstalled(id.to_string()))?;
        if AppId::of_wasm(&wasm) != id {
            return Err(corrupt("app binary", format!("hash differs from {id}")));
        }
        let app = self.runtime.compile(&wasm).map_err(NodeError::InvalidApp)?;
        self.apps.insert(id, app.clone());
        Ok(app)
    }

    /// Creates a context running `app_id`, initialised by the app's `init` with `init_args`.
    pub async fn create_context(
        &mut self,
        app_id: AppId,
        init_args: serde_json::Value,
    ) -> Result<ContextId, NodeError> {
        let mut action = self.begin_action(false);
        self.create_context_by(app_id, init_args, None, &mut action)
            .await
    }

    /// [`Self::create_context`] within `action`; `creator` is the context whose guest asked
    /// for it (`context_create`), stored with it.
    pub(super) async fn create_context_by(
        &mut self,
        app_id: AppId,
        init_args: serde_json::Value,
        creator: Option<ContextId>,
        action: &mut Action,
    ) -> Result<ContextId, NodeError> {
        let app = self.app(app_id).await?;
        let context_key = SecretKey::from_seed(self.env.random32());
        let id = ContextId(context_key.public().0);
        let record = ContextRecord {
            app_id,
            heads: vec![],
            root_hash: None,
            next_seq: 0,
            cert: MemberCert::genesis(&context_key, self.key.public()),
        };
        let mut ctx = ContextState {
            merkle: Some(MerkleTree::build([])),
            announced: true,
            created_by: creator,
            ..ContextState::new(id, record, self.env.random32())
        };
        let mut batch = Batch::new()
            .put(
                Namespace::Keys,
                &scoped(&id, CONTEXT_KEY),
                context_key.seed().to_vec(),
            )
            .put(
                Namespace::Keys,
                &scoped(&id, CONTEXT_SECRET),
                ctx.secret.to_vec(),
            );
        if let Some(creator) = creator {
            let key = scoped_meta(CREATED_BY, &id);
            batch.put_mut(Namespace::Meta, &key, creator.as_bytes().to_vec());
        }
        action.take_call(&id)?;
        self.run_local(&app, &mut ctx, "init", init_args, &mut batch, action)
            .await?;
        self.outgoing.push(Outgoing::Subscribe {
            topic: context_topic(&id),
            key: context_topic_key(&id),
        });
        self.contexts.insert(id, ctx);
        self.bind_if_needed(&id).await;
        Ok(id)
    }

    /// The members this node knows for the context, with their roles.
    pub fn members(&self, id: &ContextId) -> Result<Vec<(PublicKey, Role)>, NodeError> {
        let ctx = self.context(id)?;
        Ok(ctx
            .known_members()
            .into_iter()
            .filter_map(|k| Some((k, ctx.role_now(&k)?)))
            .collect())
    }

    /// The binary of the app a context runs, as stored (an anchor compares it with the one it
    /// records).
    pub async fn context_wasm(&self, id: &ContextId) -> Result<Vec<u8>, NodeError> {
        let app_id = self.context(id)?.app_id();
        self.store
            .get(Namespace::Apps, app_id.as_bytes())
            .await?
            .ok_or_else(|| NodeError::AppNotInstalled(app_id.to_string()))
    }

    /// Signs a request to Calimero's context-config contract about context `id`, as `signer`,
    /// without the key leaving the node: `payload` is the request's JSON, and the answer is the
    /// signing key and its ed25519 signature of exactly those bytes (what `mutate` verifies).
    ///
    /// Not a signing oracle: the payload must be a context-config request about `id` naming
    /// the signing key as `signerId`, and of a kind that key signs (see
    /// `chain_request.rs`); anything else is [`NodeError::BadChainRequest`]. The node
    /// also checks its own standing, as the log says: it must be an admin of the context (only
    /// admins change members or the app), and the context key (held only by the creator's
    /// node, else [`NodeError::Unauthorized`]) vouches on chain only for this node's own key.
    pub async fn sign_context_request(
        &self,
        id: &ContextId,
        payload: &[u8],
        signer: ChainSigner,
    ) -> Result<(PublicKey, Signature), NodeError> {
        let ctx = self.context(id)?;
        let me = self.key.public();
        if ctx.role_now(&me) != Some(Role::Admin) {
            return Err(NodeError::Unauthorized(format!(
                "{me} is not an admin of {id}: only admins change what a chain records of it"
            )));
        }
        match signer {
            ChainSigner::Member => {
                chain_request::check(payload, id, signer, &me)?;
                Ok((me, self.key.sign(payload)))
            }
            ChainSigner::ContextKey => {
                let context_public = PublicKey(id.0);
                let request = chain_request::check(payload, id, signer, &context_public)?;
                if request.author != Some(me) {
                    return Err(NodeError::BadChainRequest(format!(
                        "the context key vouches on chain only for this node's key {me}"
                    )));
                }
                let seed: [u8; 32] = self
                    .store
                    .get(Namespace::Keys, &scoped(id, CONTEXT_KEY))
                    .await?
                    .ok_or_else(|| {
                        NodeError::Unauthorized(format!(
                            "this node does not hold the key of context {id}: only the node that created it does"
                        ))
                    })?
                    .try_into()
                    .map_err(|_| corrupt("context key", "not 32 bytes"))?;
                let key = SecretKey::from_seed(seed);
                if key.public() != context_public {
                    return Err(corrupt("context key", format!("not the key of {id}")));
                }
                Ok((context_public, key.sign(payload)))
            }
        }
    }

    /// Sets (or, with `None`, clears) what the context's anchor says. From then on a member's
    /// deltas are accepted only if it is on the anchor as well as in the membership log, and
    /// this node runs calls only if it is on the anchor and its app binary is the anchored one;
    /// a mismatch is refused and reported ([`NodeEvent::AnchorMismatch`]). A delta refused for
    /// want of a member on the anchor is asked for again by anti-entropy once the anchor lists it.
    /// The view is stored, and holds after the node opens again until it is set anew: give it
    /// only what the chain answered, never a failure to ask.
    pub async fn set_anchor(
        &mut self,
        id: &ContextId,
        anchor: Option<AnchorView>,
    ) -> Result<(), NodeError> {
        self.context(id)?;
        let key = scoped_meta(ANCHOR, id);
        let batch = match &anchor {
            Some(view) => {
                Batch::new().put(Namespace::Meta, &key, borsh::to_vec(view).expect("encode"))
            }
            None => Batch::new().delete(Namespace::Meta, &key),
        };
        self.commit(batch).await?;
        let ctx = self
            .contexts
            .get_mut(id)
            .ok_or_else(|| NodeError::UnknownContext(id.to_string()))?;
        if anchor.as_ref().is_some_and(|a| !a.app_matches) {
            self.events.push(NodeEvent::AnchorMismatch {
                context_id: *id,
                reason: format!("the app of {id} is not the one its anchor records"),
            });
        }
        ctx.anchor = anchor;
        Ok(())
    }

    /// How many deltas of the context wait for parents this node has not seen (bounded: a
    /// flood of orphans cannot exhaust memory).
    pub fn pending(&self, id: &ContextId) -> Result<usize, NodeError> {
        Ok(self.context(id)?.pending.len())
    }

    /// How many rows of the context's state (shared and private) this node holds in memory:
    /// those its calls read or wrote since it opened, or all of them once a call or a
    /// checkpoint needed the whole state.
    pub fn rows_in_memory(&self, id: &ContextId) -> Result<usize, NodeError> {
        let ctx = self.context(id)?;
        Ok(ctx.shared.len() + ctx.private.len())
    }

    /// The context's heads, state root and Merkle root. The first checkpoint of a context this
    /// node reopened reads its whole state once to build the Merkle tree.
    pub async fn checkpoint(&mut self, id: &ContextId) -> Result<Checkpoint, NodeError> {
        if self.context(id)?.merkle.is_none() {
            let ctx = self.contexts.get_mut(id).expect("checked above");
            read_whole(&self.store, ctx, ViewKind::Shared).await?;
        }
        self.position(id)
    }

    /// The context's heads and state root, and its Merkle root if the tree is built: what
    /// [`Self::checkpoint`] gives without reading a reopened context's whole state.
    pub fn position(&self, id: &ContextId) -> Result<Checkpoint, NodeError> {
        let ctx = self.context(id)?;
        Ok(Checkpoint {
            heads: ctx.record.heads.clone(),
            root_hash: ctx.record.root_hash,
            merkle_root: ctx.merkle.as_ref().map(|tree| Hash(tree.root())),
        })
    }

    /// Deletes a context from this node (see [`Self::drop_context`]); only an admin of the
    /// context may. Its members elsewhere are not affected.
    pub async fn delete_context(&mut self, id: &ContextId) -> Result<(), NodeError> {
        self.check_may_delete(id)?;
        self.drop_context(id).await
    }

    /// Whether this node may delete the context: it is an admin of it.
    pub(super) fn check_may_delete(&self, id: &ContextId) -> Result<(), NodeError> {
        match self.context(id)?.role_now(&self.key.public()) {
            Some(Role::Admin) => Ok(()),
            _ => Err(NodeError::Unauthorized(format!(
                "only an admin of {id} may delete it"
            ))),
        }
    }

    /// Leaves a context: tells its members (a [`MemberOp::Leave`], which gives them a new
    /// secret this node does not keep, so it reads nothing written after), then drops it here.
    /// A join no member has answered yet is given up.
    pub async fn leave(&mut self, id: &ContextId) -> Result<(), NodeError> {
        if self.joining.contains_key(id) {
            let batch = Batch::new().delete(Namespace::Meta, &scoped_meta(JOINING, id));
            self.commit(batch).await?;
            self.joining.remove(id);
            return Ok(());
        }
        self.member_op(id, MemberOp::Leave { shares: Vec::new() })
            .await?;
        self.drop_context(id).await
    }

    /// Drops a context from this node: its state, deltas, audit trail, keys, aliases, disclosure
    /// settings, withheld payloads, handlers still to run and refused ids, in one batch.
    pub(super) async fn drop_context(&mut self, id: &ContextId) -> Result<(), NodeError> {
        // Records that wait are written first, so the scan below finds them to delete.
        self.write_read_audits().await?;
        let mut batch = Batch::new();
        for ns in [
            Namespace::State,
            Namespace::Private,
            Namespace::Deltas,
            Namespace::Audit,
            Namespace::Keys,
        ] {
            for (key, _) in self.store.scan_prefix(ns, id.as_bytes()).await? {
                batch.delete_mut(ns, &key);
            }
        }
        for prefix in [
            DISCLOSE,
            PAYLOAD,
            COVERING,
            ANCHOR,
            CALL,
            CREATED_BY,
            HANDLER,
            BLOB_ANNOUNCED,
            REFUSED,
        ] {
            let prefix = [prefix, id.as_bytes()].concat();
            for (key, _) in self.store.scan_prefix(Namespace::Meta, &prefix).await? {
                batch.delete_mut(Namespace::Meta, &key);
            }
        }
        batch.delete_mut(Namespace::Contexts, id.as_bytes());
        let aliases: Vec<String> = self
            .aliases
            .iter()
            .filter(|(_, target)| **target == id.0)
            .map(|(alias, _)| alias.clone())
            .collect();
        for alias in &aliases {
            batch.delete_mut(Namespace::Meta, &[ALIAS, alias.as_bytes()].concat());
        }
        self.commit(batch).await?;
        self.contexts.remove(id);
        let map = Rc::make_mut(&mut self.aliases);
        for alias in aliases {
            map.remove(&alias);
        }
        Ok(())
    }

    /// Every app the context has run (its first, and each upgrade that counts), compiled.
    pub(super) async fn apps_of(
        &mut self,
        ctx: &ContextState,
    ) -> Result<HashMap<AppId, App>, NodeError> {
        let mut apps = HashMap::new();
        for id in std::iter::once(ctx.record.app_id).chain(ctx.upgrade_apps()) {
            apps.insert(id, self.app(id).await?);
        }
        Ok(apps)
    }
}
