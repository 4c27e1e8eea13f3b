//! The account's client keys: revoking one (another device's node key, or this one's), and
//! rotating this node's key in one step (the wallet grants a new key and revokes the current
//! one; every context then moves to the new key).

use tabnode_identity::grant::Grant;
use tabnode_identity::grant::{hex_nonce, Revocation, SignedGrant, SignedRevocation};
use tabnode_identity::nep413::{Payload, SignedMessage};
use tabnode_identity::wallet::Wallet;
use tabnode_node::{Clock, Env};
use tabnode_types::{ContextId, PublicKey};

use crate::{
    Account, FlowError, IdentityView, KeyCheck, NodeHandle, RootGrantRecord, GRANT_VALID_MS,
};

/// A revocation asked of the wallet, not yet answered.
#[derive(Debug, Clone)]
pub struct RevokeFlow {
    revocation: Revocation,
    recipient: String,
    payload: Payload,
}

impl RevokeFlow {
    /// The revocation of `client_key` over `nonce`, for the wallet to sign for `recipient`.
    pub fn start(
        client_key: PublicKey,
        recipient: &str,
        nonce: [u8; 32],
    ) -> Result<Self, FlowError> {
        let revocation = Revocation {
            client_key,
            nonce: hex_nonce(nonce),
        };
        let payload = revocation
            .payload(recipient)
            .map_err(|e| FlowError::RevocationFailed(e.to_string()))?;
        Ok(Self {
            revocation,
            recipient: recipient.to_owned(),
            payload,
        })
    }

    pub fn payload(&self) -> &Payload {
        &self.payload
    }

    /// The revocation signed by the account, if `answer` is the wallet's signature over it
    /// (or with `page_url` as the callbackUrl a wallet added).
    pub fn finish(
        self,
        answer: &SignedMessage,
        page_url: &str,
    ) -> Result<SignedRevocation, FlowError> {
        SignedRevocation::from_wallet(self.revocation, &self.recipient, answer, Some(page_url))
            .map_err(|e| FlowError::SignatureInvalid(e.to_string()))
    }
}

/// A rotation's first step: the new key's grant, asked of the wallet.
#[derive(Debug, Clone)]
pub struct RotateFlow {
    account: String,
    recipient: String,
    grant: Grant,
    grant_payload: Payload,
    revocation: Revocation,
}

/// A rotation's second step: the grant signed, the current key's revocation asked.
#[derive(Debug, Clone)]
pub struct RotateRevocation {
    flow: RotateFlow,
    grant: SignedGrant,
    answer: SignedMessage,
    revocation_payload: Payload,
}

/// A rotation both statements of which the account signed: what the node carries out, and
/// the record it keeps from then on.
#[derive(Debug, Clone)]
pub struct Rotation {
    pub grant: SignedGrant,
    pub revocation: SignedRevocation,
    pub record: RootGrantRecord,
}

impl RotateFlow {
    /// The record of the sign-in a rotation starts from, if `stored` is one valid at `now_ms`.
    pub fn signed_in(stored: Option<&[u8]>, now_ms: u64) -> Result<RootGrantRecord, FlowError> {
        stored
            .and_then(RootGrantRecord::from_bytes)
            .filter(|record| record.view(now_ms).is_some())
            .ok_or(FlowError::NotSignedIn)
    }

    /// Asks for the grant of `new` (the same scope and capabilities as the current grant in
    /// `record`, from `now_ms`) over `grant_nonce`, and prepares the revocation of `old` over
    /// `revocation_nonce`: both to be signed by the account `record` names, for `recipient`.
    pub fn start(
        record: &RootGrantRecord,
        old: PublicKey,
        new: PublicKey,
        recipient: &str,
        now_ms: u64,
        [grant_nonce, revocation_nonce]: [[u8; 32]; 2],
    ) -> Result<Self, FlowError> {
        let grant = record
            .grant
            .successor(new, now_ms, GRANT_VALID_MS, hex_nonce(grant_nonce));
        let grant_payload = grant
            .payload(recipient, None)
            .map_err(|e| FlowError::RotationFailed(e.to_string()))?;
        Ok(Self {
            account: record.answer.account_id.clone(),
            recipient: recipient.to_owned(),
            grant,
            grant_payload,
            revocation: Revocation {
                client_key: old,
                nonce: hex_nonce(revocation_nonce),
            },
        })
    }

    /// What the wallet is asked to sign first: the new key's grant.
    pub fn grant_payload(&self) -> &Payload {
        &self.grant_payload
    }

    /// Takes the wallet's signature of the grant: by the same account, over exactly the grant
    /// (or with `page_url` as an added callbackUrl). Then the revocation is asked.
    pub fn grant_signed(
        self,
        answer: SignedMessage,
        page_url: &str,
    ) -> Result<RotateRevocation, FlowError> {
        FlowError::unless_account(&answer.account_id, &self.account)?;
        let grant =
            SignedGrant::from_wallet(self.grant.clone(), &self.recipient, &answer, Some(page_url))
                .map_err(|e| FlowError::SignatureInvalid(e.to_string()))?;
        let revocation_payload = self
            .revocation
            .payload(&self.recipient)
            .map_err(|e| FlowError::RotationFailed(e.to_string()))?;
        Ok(RotateRevocation {
            flow: self,
            grant,
            answer,
            revocation_payload,
        })
    }
}

impl RotateRevocation {
    /// What the wallet is asked to sign second: the current key's revocation.
    pub fn revocation_payload(&self) -> &Payload {
        &self.revocation_payload
    }

    /// Takes the wallet's signature of the revocation: by the same account, over exactly it
    /// (or with `page_url` as an added callbackUrl).
    pub fn revocation_signed(
        self,
        answer: &SignedMessage,
        page_url: &str,
    ) -> Result<Rotation, FlowError> {
        let flow = self.flow;
        FlowError::unless_account(&answer.account_id, &flow.account)?;
        let revocation =
            SignedRevocation::from_wallet(flow.revocation, &flow.recipient, answer, Some(page_url))
                .map_err(|e| FlowError::SignatureInvalid(e.to_string()))?;
        Ok(Rotation {
            record: RootGrantRecord::of(&self.grant, flow.recipient, self.answer),
            grant: self.grant,
            revocation,
        })
    }
}

impl<W: Wallet, K: KeyCheck, E: Env + Clock> Account<W, K, E> {
    /// Revokes `client_key` with the account's signature, carried into every context of this
    /// node where the key is bound to the same account; returns those contexts (`NotBound` if
    /// none). From there on every member refuses what the key signs.
    pub async fn revoke(
        &self,
        node: &impl NodeHandle,
        client_key: PublicKey,
    ) -> Result<Vec<ContextId>, FlowError> {
        let flow = RevokeFlow::start(client_key, &self.site.origin, self.env.random32())?;
        let answer = self.wallet.sign_message(flow.payload()).await?;
        let signed = flow.finish(&answer, &self.site.url)?;
        let contexts = node
            .run(async move |node| node.revoke_everywhere(signed).await)
            .await?;
        if contexts.is_empty() {
            return Err(FlowError::NotBound(client_key));
        }
        Ok(contexts)
    }

    /// Rotates this node's key (after sign-in): the node makes a new key, the wallet signs its
    /// grant and the current key's revocation (see [`RotateFlow`]), the account's key is
    /// checked on chain, and the node hands every context over to the new key and keeps the
    /// new grant. Returns the new identity (its `client_key` is the node's new key).
    pub async fn rotate(&self, node: &impl NodeHandle) -> Result<IdentityView, FlowError> {
        let stored = node.run(async |node| node.root_grant().await).await?;
        let record = RotateFlow::signed_in(stored.as_deref(), self.now_ms())?;
        let (old, new) = node
            .run(async |node| Ok((node.public_key(), node.prepare_rotation())))
            .await?;
        let nonces = [self.env.random32(), self.env.random32()];
        let flow = RotateFlow::start(&record, old, new, &self.site.origin, self.now_ms(), nonces)?;
        let answer = self.wallet.sign_message(flow.grant_payload()).await?;
        let flow = flow.grant_signed(answer, &self.site.url)?;
        let answer = self.wallet.sign_message(flow.revocation_payload()).await?;
        let rotation = flow.revocation_signed(&answer, &self.site.url)?;
        self.keys.check(&rotation.grant.root).await?;
        let view = rotation
            .record
            .view(self.now_ms())
            .ok_or_else(|| FlowError::SignatureInvalid("the new grant does not verify".into()))?;
        let bytes = rotation.record.to_bytes();
        let (grant, revocation) = (rotation.grant, rotation.revocation);
        node.run(async move |node| {
            node.rotate_key(grant, revocation).await?;
            node.save_root_grant(bytes).await
        })
        .await?;
        Ok(view)
    }
}
