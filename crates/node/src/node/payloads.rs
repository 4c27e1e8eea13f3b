//! Disclosure: which event payloads a context withholds, and asking members for them.

use super::*;

impl<S: Store, E: Env> Node<S, E> {
    /// How this node sends events of `kind` in the context to other members from now on (see
    /// [`Disclosure`]); kept with the node's store.
    pub async fn set_disclosure(
        &mut self,
        id: &ContextId,
        kind: &str,
        disclosure: Disclosure,
    ) -> Result<(), NodeError> {
        self.context(id)?;
        let key = [DISCLOSE, id.as_bytes(), kind.as_bytes()].concat();
        let value = borsh::to_vec(&disclosure).expect("encode");
        self.commit(Batch::new().put(Namespace::Meta, &key, value))
            .await?;
        let ctx = self.contexts.get_mut(id).expect("checked above");
        ctx.disclosure.insert(kind.to_owned(), disclosure);
        Ok(())
    }

    /// Asks the author of an event for the payload it withheld (`hash`, from the event's
    /// `withheld`); the answer arrives as a [`NodeEvent::Payload`], sealed to this node's key.
    pub fn request_payload(&mut self, id: &ContextId, hash: Hash) -> Result<(), NodeError> {
        let ctx = self.context(id)?;
        let signature = self
            .key
            .sign(&WireMessage::payload_request_message(id, &hash));
        let request = WireMessage::PayloadRequest {
            context_id: *id,
            hash,
            requester: Box::new(ctx.record.cert.clone()),
            signature,
        };
        let secret = ctx.secret;
        self.publish(*id, &secret, request);
        Ok(())
    }

    /// Gives a withheld payload this node holds to a current member who asked, sealed to its
    /// key; anyone else gets nothing.
    pub(super) async fn answer_payload_request(
        &mut self,
        context_id: ContextId,
        hash: Hash,
        requester: MemberCert,
        signature: Signature,
    ) -> Result<(), NodeError> {
        let Some(ctx) = self.contexts.get(&context_id) else {
            return Ok(());
        };
        let key = [PAYLOAD, context_id.as_bytes(), hash.as_bytes()].concat();
        let Some(payload) = self.store.get(Namespace::Meta, &key).await? else {
            return Ok(()); // another member's event
        };
        requester.authenticate(&context_id, &requester.member)?;
        let message = WireMessage::payload_request_message(&context_id, &hash);
        verify_signature(&requester.member, &message, &signature).map_err(|_| {
            NodeError::Unauthorized("a payload request whose signature does not verify".into())
        })?;
        if ctx.role_of(&requester).is_none() {
            return Err(NodeError::Unauthorized(format!(
                "{} asked for a withheld payload but is no member of {context_id}",
                requester.member
            )));
        }
        let to = requester.member;
        let sealed = seal::seal_to(&to, &context_id, self.env.random32(), &payload)
            .ok_or_else(|| NodeError::BadId(format!("{to} is not a valid key")))?;
        let secret = ctx.secret;
        let answer = WireMessage::Payload {
            context_id,
            hash,
            to,
            sealed,
        };
        self.publish(context_id, &secret, answer);
        Ok(())
    }

    /// A withheld payload sealed to this node: given to subscribers if it matches its hash.
    pub(super) fn receive_payload(
        &mut self,
        context_id: ContextId,
        hash: Hash,
        to: PublicKey,
        sealed: &[u8],
    ) -> Result<(), NodeError> {
        if to != self.key.public() {
            return Ok(());
        }
        let payload = seal::open_sealed_to(&self.key, &context_id, sealed).ok_or_else(|| {
            NodeError::Unauthorized("a payload this node's key does not open".into())
        })?;
        if blake3::hash(&payload).as_bytes() != hash.as_bytes() {
            return Err(NodeError::Unauthorized(
                "a payload that does not match its hash".into(),
            ));
        }
        self.events.push(NodeEvent::Payload {
            context_id,
            hash,
            data: json_or_bytes(&payload),
        });
        Ok(())
    }
}
