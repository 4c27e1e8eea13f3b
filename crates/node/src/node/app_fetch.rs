//! Fetching a context's app from its members, for a joiner that lacks it: a link alone is
//! enough to join (see [`Node::join`]).
//!
//! The joiner asks on the context's topic, under the handshake key (it holds no secret yet),
//! with the certificate it redeemed from its invitation ([`WireMessage::AppRequest`]). A member
//! that holds the app the invitation names, and finds the invitation still good (what it checks
//! before it admits a join), answers with the binary in parts of [`APP_PART_BYTES`], each sealed
//! to the joiner's key and signed by the member ([`WireMessage::AppPart`]). Every part carries
//! the chaining values of all parts in blake3's tree, which merge to the app id (the blake3 of
//! the binary): the joiner checks each part against the app id as it comes, keeps only parts
//! that match, and installs the binary once whole; then it asks to be admitted as before. A
//! part lost or refused is asked for again when nothing has come for [`SYNC_RETRY_NANOS`].
//! The parts are made and checked as a blob's are (see `parts`).

use super::parts::{Content, PartFetch};
use super::*;

/// The largest app binary a joiner fetches from members (16 MiB): larger ones are refused
/// before any part is kept.
pub const MAX_FETCHED_APP_BYTES: u64 = 16 * 1024 * 1024;

/// The app binary a joiner is fetching.
pub(super) type AppFetch = PartFetch;

impl<S: Store, E: Env> Node<S, E> {
    /// Asks the members for the parts of the app a join lacks (all of it, the first time).
    pub(super) fn ask_for_app(&mut self, id: ContextId) {
        let Some(joining) = self.joining.get(&id) else {
            return;
        };
        let Some(fetch) = &joining.fetch else {
            return;
        };
        let missing = fetch.missing();
        let message = WireMessage::app_request_message(&id, &missing);
        let request = WireMessage::AppRequest {
            context_id: id,
            requester: Box::new(joining.cert.clone()),
            missing,
            signature: self.key.sign(&message),
        };
        self.publish(id, &context_handshake_key(&id), request);
    }

    /// A joiner asks for the app its invitation names. Answered only for a key that signed the
    /// request and holds a certificate redeemed from an invitation a member would admit now
    /// (or was admitted with), at the rate sync requests are, and only with that app.
    pub(super) async fn answer_app_request(
        &mut self,
        context_id: ContextId,
        (requester, missing, signature): (MemberCert, Vec<u32>, Signature),
        peer: Option<&str>,
    ) -> Result<(), NodeError> {
        let now = self.now;
        let Some(ctx) = self.contexts.get_mut(&context_id) else {
            return Ok(());
        };
        let member = requester.member;
        let message = WireMessage::app_request_message(&context_id, &missing);
        verify_signature(&member, &message, &signature).map_err(|_| {
            NodeError::Unauthorized("an app request whose signature does not verify".into())
        })?;
        let Issuance::Invited { invitation, .. } = &requester.issued else {
            return Err(NodeError::Unauthorized(format!(
                "{member} asks for the app with no certificate redeemed from an invitation"
            )));
        };
        let admitted_with = ctx
            .log
            .verdict()
            .admitted
            .get(&member)
            .map(|(with, _)| *with);
        if admitted_with != Some(invitation.invite_key) {
            if let Some(why) = invitation_refusal(ctx, invitation, now) {
                return Err(NodeError::BadInvitation(format!(
                    "{member}'s app request: {why}"
                )));
            }
        }
        if !ctx.take_sync_token(member, now) {
            return Ok(());
        }
        requester.authenticate(&context_id, &member)?;
        let app_id = invitation.app_id;
        let Some(wasm) = self.store.get(Namespace::Apps, app_id.as_bytes()).await? else {
            return Ok(()); // a member that has it answers
        };
        let cert = self.context(&context_id)?.record.cert.clone();
        let content = (Content::App, &context_id, &app_id.0);
        let handshake = context_handshake_key(&context_id);
        for part in self.seal_parts(content, &wasm, missing, (&member, &cert))? {
            let key = (member, app_id.0, part.index);
            let message = WireMessage::AppPart {
                context_id,
                app_id,
                part,
            };
            self.send_part(key, (context_id, &handshake), message, peer);
        }
        Ok(())
    }

    /// One part of the app this node's join lacks, from a member. Kept if it matches the app
    /// id; once all have come, the app is installed and this node asks to be admitted.
    pub(super) async fn receive_app_part(
        &mut self,
        context_id: ContextId,
        (part_of, part): (AppId, SealedPart),
    ) -> Result<(), NodeError> {
        let me = self.key.public();
        let now = self.now;
        let Some(joining) = self.joining.get_mut(&context_id) else {
            return Ok(()); // a member already, or never asked
        };
        let app_id = joining.app_id;
        let Some(fetch) = &mut joining.fetch else {
            return Ok(()); // the app is here already
        };
        if part.to != me || part_of != app_id || fetch.has(part.index) {
            return Ok(()); // another joiner's, or a part already here
        }
        let bytes = part.open((Content::App, &context_id, &app_id.0), &self.key)?;
        let (size, index) = (part.size, part.index);
        let taken = fetch.take(
            (Content::App, &app_id.0, MAX_FETCHED_APP_BYTES),
            (size, index, part.hashes),
            bytes,
        );
        joining.last_request = Some(now); // progress: asked again only once it stalls
        let (received, total) = (fetch.received(), size);
        let wasm = match taken {
            Ok(Some(wasm)) => {
                joining.fetch = None;
                wasm
            }
            Ok(None) => {
                self.events.push(NodeEvent::AppProgress {
                    context_id,
                    app_id,
                    received,
                    total,
                });
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        };
        self.events.push(NodeEvent::AppProgress {
            context_id,
            app_id,
            received: total,
            total,
        });
        if let Err(e) = self.install_app(&wasm).await {
            // The bytes make the app id, so it is the app the invitation names: it does not
            // compile here. Asking again would bring the same.
            self.joining.remove(&context_id);
            let marker = scoped_meta(JOINING, &context_id);
            self.commit(Batch::new().delete(Namespace::Meta, &marker))
                .await?;
            return Err(e);
        }
        self.ask_to_join(context_id, now);
        Ok(())
    }
}
