//! Fetching a blob announced to a context from its members, for a member that lacks it (as
//! merod serves blobs to members by id).
//!
//! A blob is announced to a context by a guest's `blob_announce_to_context` or the owner's
//! [`Node::put_blob`] with a context; the announcing node records it and serves it to that
//! context's members only. A member whose guest opens a blob it lacks (`blob_open` answers 0,
//! as it did) starts a fetch ([`Node::fetch_blob`]): it asks the context's members, under the
//! context's secret, with its certificate ([`WireMessage::BlobRequest`]); a member that holds
//! the blob and announced it to this context answers with its parts, each sealed to the
//! requester and signed ([`WireMessage::BlobPart`]), checked against the blob id as an app's
//! are (see `parts`). Parts are taken only from members of the context; the whole, once it
//! makes the id, is stored as any blob, and [`NodeEvent::BlobProgress`] shows how far it is.
//! A fetch with no progress asks again after `SYNC_RETRY_NANOS`, at most [`BLOB_ASKS`] times
//! in a row (a blob no member serves is not asked for forever; the guest's next open asks
//! again).

use super::parts::{Content, PartFetch};
use super::*;

/// How many times in a row a fetch asks the members with no part coming before it gives up.
pub const BLOB_ASKS: u32 = 5;

/// A blob this node is fetching for a context's guests.
pub(super) struct BlobFetch {
    fetch: PartFetch,
    last_request: u64,
    /// Requests sent since the last part came.
    asks: u32,
}

/// Where the mark of a blob announced to a context is kept.
pub(super) fn announced_key(context_id: &ContextId, blob_id: &[u8; 32]) -> Vec<u8> {
    [BLOB_ANNOUNCED, context_id.as_bytes(), blob_id].concat()
}

impl<S: Store, E: Env> Node<S, E> {
    /// Fetches blob `blob_id` from the members of `context_id` unless it is here already (or
    /// being fetched). Progress shows as [`NodeEvent::BlobProgress`]; [`Node::blob`] has it
    /// once whole. Only a blob a member announced to this context comes.
    pub async fn fetch_blob(
        &mut self,
        context_id: &ContextId,
        blob_id: Hash,
    ) -> Result<(), NodeError> {
        let ctx = self.context(context_id)?;
        let (cert, secret) = (ctx.record.cert.clone(), ctx.secret);
        self.start_blob_fetch(*context_id, (&cert, &secret), blob_id)
            .await
    }

    /// Whether this node is still fetching `blob_id` for `context_id`: it ends once the blob is
    /// whole ([`Node::blob`] has it) or no member served it after [`BLOB_ASKS`] asks.
    pub fn is_fetching_blob(&self, context_id: &ContextId, blob_id: &Hash) -> bool {
        self.blob_fetches.contains_key(&(*context_id, *blob_id))
    }

    /// Starts fetching `blob_id` for a context whose certificate and secret are given (its
    /// state may be out of the node's map while a call of it runs).
    pub(super) async fn start_blob_fetch(
        &mut self,
        context_id: ContextId,
        (cert, secret): (&MemberCert, &[u8; 32]),
        blob_id: Hash,
    ) -> Result<(), NodeError> {
        let key = (context_id, blob_id);
        if self.blob_fetches.contains_key(&key) || self.blob(&blob_id).await?.is_some() {
            return Ok(());
        }
        let fetch = BlobFetch {
            fetch: PartFetch::default(),
            last_request: self.now,
            asks: 1,
        };
        self.blob_fetches.insert(key, fetch);
        let request = self.blob_request(context_id, cert, blob_id, vec![]);
        self.publish(context_id, secret, request);
        Ok(())
    }

    /// A request for the parts `missing` of a blob (all when empty), signed by this node.
    fn blob_request(
        &self,
        context_id: ContextId,
        cert: &MemberCert,
        blob_id: Hash,
        missing: Vec<u32>,
    ) -> WireMessage {
        let message = WireMessage::blob_request_message(&context_id, &blob_id, &missing);
        WireMessage::BlobRequest {
            context_id,
            blob_id,
            requester: Box::new(cert.clone()),
            missing,
            signature: self.key.sign(&message),
        }
    }

    /// Asks the members again for the parts of a blob this node still lacks.
    fn ask_for_blob(&mut self, context_id: ContextId, blob_id: Hash) {
        let (Some(fetch), Some(ctx)) = (
            self.blob_fetches.get(&(context_id, blob_id)),
            self.contexts.get(&context_id),
        ) else {
            return;
        };
        let missing = fetch.fetch.missing();
        let request = self.blob_request(context_id, &ctx.record.cert, blob_id, missing);
        let secret = ctx.secret;
        self.publish(context_id, &secret, request);
    }

    /// A member asks for a blob. Answered only to a member of the context that signed the
    /// request, at the rate sync requests are, and only with a blob announced to this context.
    pub(super) async fn answer_blob_request(
        &mut self,
        context_id: ContextId,
        blob_id: Hash,
        (requester, missing, signature): (MemberCert, Vec<u32>, Signature),
        peer: Option<&str>,
    ) -> Result<(), NodeError> {
        let now = self.now;
        let announced = announced_key(&context_id, blob_id.as_bytes());
        if self.store.get(Namespace::Meta, &announced).await?.is_none() {
            return Ok(()); // not announced here to this context: not served to it
        }
        let Some(blob) = self.blob(&blob_id).await? else {
            return Ok(());
        };
        let Some(ctx) = self.contexts.get_mut(&context_id) else {
            return Ok(());
        };
        let member = requester.member;
        requester.authenticate(&context_id, &member)?;
        let message = WireMessage::blob_request_message(&context_id, &blob_id, &missing);
        verify_signature(&member, &message, &signature).map_err(|_| {
            NodeError::Unauthorized("a blob request whose signature does not verify".into())
        })?;
        if ctx.role_of(&requester).is_none() {
            return Err(NodeError::Unauthorized(format!(
                "{member} asked for blob {blob_id} but is no member of {context_id}"
            )));
        }
        if !ctx.take_sync_token(member, now) {
            return Ok(());
        }
        let (cert, secret) = (ctx.record.cert.clone(), ctx.secret);
        let content = (Content::Blob, &context_id, &blob_id.0);
        for part in self.seal_parts(content, &blob, missing, (&member, &cert))? {
            let key = (member, blob_id.0, part.index);
            let message = WireMessage::BlobPart {
                context_id,
                blob_id,
                part,
            };
            self.send_part(key, (context_id, &secret), message, peer);
        }
        Ok(())
    }

    /// One part of a blob this node is fetching, from a member. Kept if it matches the blob
    /// id; once all have come, the blob is stored.
    pub(super) async fn receive_blob_part(
        &mut self,
        context_id: ContextId,
        (blob_id, part): (Hash, SealedPart),
    ) -> Result<(), NodeError> {
        let me = self.key.public();
        let max = self.runtime.limits().max_blob_size as u64;
        let Some(ctx) = self.contexts.get(&context_id) else {
            return Ok(());
        };
        let Some(fetching) = self.blob_fetches.get_mut(&(context_id, blob_id)) else {
            return Ok(()); // not asked for, or here already
        };
        if part.to != me || fetching.fetch.has(part.index) {
            return Ok(()); // another member's, or a part already here
        }
        if ctx.role_of(&part.provider).is_none() {
            let reason = format!(
                "a part of blob {blob_id} from {}, no member of {context_id}",
                part.provider.member
            );
            return Err(PartError::NotFromMember(Content::Blob, reason).into());
        }
        let bytes = part.open((Content::Blob, &context_id, &blob_id.0), &self.key)?;
        let (size, index) = (part.size, part.index);
        let fetch = &mut fetching.fetch;
        let whole = fetch.take(
            (Content::Blob, &blob_id.0, max),
            (size, index, part.hashes),
            bytes,
        )?;
        fetching.last_request = self.now; // progress: asked again once it stalls
        fetching.asks = 0;
        let received = whole.as_ref().map_or(fetch.received(), |w| w.len() as u64);
        self.events.push(NodeEvent::BlobProgress {
            context_id,
            blob_id,
            received,
            total: size,
        });
        let Some(blob) = whole else {
            return Ok(());
        };
        self.blob_fetches.remove(&(context_id, blob_id));
        self.commit(Batch::new().put(Namespace::Blobs, blob_id.as_bytes(), blob.clone()))
            .await?;
        Rc::make_mut(&mut self.blobs).learn(blob_id.0.to_vec(), Some(blob));
        Ok(())
    }

    /// The fetches with no part for `SYNC_RETRY_NANOS` by `now`: asked for again, or dropped
    /// once asked [`BLOB_ASKS`] times in a row or their context is no longer here.
    pub(super) fn ask_again_for_blobs(&mut self, now: u64) {
        let stalled = |f: &BlobFetch| now.saturating_sub(f.last_request) >= SYNC_RETRY_NANOS;
        let contexts = &self.contexts;
        self.blob_fetches.retain(|(context_id, _), f| {
            contexts.contains_key(context_id) && !(stalled(f) && f.asks >= BLOB_ASKS)
        });
        let stalled: Vec<(ContextId, Hash)> = self
            .blob_fetches
            .iter_mut()
            .filter(|(_, f)| stalled(f))
            .map(|(key, f)| {
                (f.last_request, f.asks) = (now, f.asks + 1);
                *key
            })
            .collect();
        for (context_id, blob_id) in stalled {
            self.ask_for_blob(context_id, blob_id);
        }
    }

    /// When the next stalled blob fetch asks again.
    pub(super) fn blob_fetches_due(&self) -> Option<u64> {
        self.blob_fetches
            .values()
            .map(|f| f.last_request.saturating_add(SYNC_RETRY_NANOS))
            .min()
    }
}
