//! Sign-in: the wallet signs one grant of this node's key, whose nonce is a fresh challenge
//! and whose recipient is this site. Verified here, the grant is kept (so the node shows its
//! root again after a restart) and shown in every context the node holds.

use std::cell::RefCell;

use tabnode_identity::grant::SignedGrant;
use tabnode_identity::nep413::{Payload, SignedMessage};
use tabnode_identity::signin::{SignIn, SignInRequest};
use tabnode_identity::wallet::Wallet;
use tabnode_node::{Clock, Env, Node, NodeError};
use tabnode_store::Store;
use tabnode_types::PublicKey;

use crate::{
    Account, FlowError, IdentityView, KeyCheck, NodeHandle, RootGrantRecord, GRANT_VALID_MS,
    WALLET_ANSWER_MS,
};

/// A sign-in between its two steps: asked of the wallet, not yet answered.
#[derive(Debug, Clone)]
pub struct SignInFlow {
    request: SignInRequest,
    expected_account: Option<String>,
}

/// A sign-in the wallet answered and this node verified: the grant to use, and the record to keep.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub grant: SignedGrant,
    pub record: RootGrantRecord,
}

impl SignInFlow {
    /// Asks for a grant of `client_key` (every context, every capability, [`GRANT_VALID_MS`])
    /// signed for `recipient` over `nonce`, which `sign_ins` remembers as a challenge the
    /// wallet must answer within [`WALLET_ANSWER_MS`]; `expected_account`, if given, is the
    /// only account whose answer is taken.
    pub fn start(
        sign_ins: &mut SignIn,
        client_key: PublicKey,
        recipient: &str,
        nonce: [u8; 32],
        now_ms: u64,
        expected_account: Option<String>,
    ) -> Result<Self, FlowError> {
        let request = sign_ins
            .request(
                client_key,
                recipient,
                nonce,
                now_ms,
                GRANT_VALID_MS,
                u64::from(WALLET_ANSWER_MS),
            )
            .map_err(|e| FlowError::SignInFailed(e.to_string()))?;
        Ok(Self {
            request,
            expected_account,
        })
    }

    /// What the wallet is asked to sign.
    pub fn payload(&self) -> &Payload {
        &self.request.payload
    }

    /// Checks the wallet's answer: the account asked for, the challenge unused and in time
    /// (used up by this answer, right or wrong), and the signature over exactly the grant for
    /// this site (or with the page's `page_url` as the callbackUrl a wallet added).
    pub fn finish(
        self,
        sign_ins: &mut SignIn,
        answer: SignedMessage,
        now_ms: u64,
        page_url: &str,
    ) -> Result<SignedIn, FlowError> {
        if let Some(expected) = &self.expected_account {
            FlowError::unless_account(&answer.account_id, expected)?;
        }
        let recipient = self.request.payload.recipient.clone();
        let signed = sign_ins
            .complete(self.request, &answer, now_ms, Some(page_url))
            .map_err(|e| FlowError::SignatureInvalid(e.to_string()))?;
        Ok(SignedIn {
            record: RootGrantRecord::of(&signed, recipient, answer),
            grant: signed,
        })
    }
}

impl<W: Wallet, K: KeyCheck, E: Env + Clock> Account<W, K, E> {
    /// Signs in: the wallet grants the node's key (see [`SignInFlow`]); the key it signed with
    /// is checked on chain; the node keeps the record and shows the grant in its contexts.
    /// `sign_ins` holds the challenges between the steps. Returns who the node now acts for.
    pub async fn sign_in(
        &self,
        sign_ins: &RefCell<SignIn>,
        node: &impl NodeHandle,
        expected_account: Option<String>,
    ) -> Result<IdentityView, FlowError> {
        let now_ms = self.now_ms();
        let nonce = self.env.random32();
        let client_key = node.run(async |node| Ok(node.public_key())).await?;
        let flow = SignInFlow::start(
            &mut sign_ins.borrow_mut(),
            client_key,
            &self.site.origin,
            nonce,
            now_ms,
            expected_account,
        )?;
        let answer = self.wallet.sign_message(flow.payload()).await?;
        let signed = flow.finish(
            &mut sign_ins.borrow_mut(),
            answer,
            self.now_ms(),
            &self.site.url,
        )?;
        self.keys.check(&signed.grant.root).await?;
        let view = signed
            .record
            .view(self.now_ms())
            .ok_or_else(|| FlowError::SignatureInvalid("the grant does not verify".into()))?;
        let bytes = signed.record.to_bytes();
        let grant = signed.grant;
        node.run(async move |node| {
            node.save_root_grant(bytes).await?;
            node.use_root_grant(grant).await
        })
        .await?;
        Ok(view)
    }
}

/// Who the node acts for now, from the record sign-in kept (`None` before sign-in, or once the
/// grant expired or no longer verifies).
pub async fn identity(
    node: &impl NodeHandle,
    now_ms: u64,
) -> Result<Option<IdentityView>, FlowError> {
    let stored = node.run(async |node| node.root_grant().await).await?;
    Ok(stored
        .and_then(|bytes| RootGrantRecord::from_bytes(&bytes))
        .and_then(|record| record.view(now_ms)))
}

/// On opening: the grant a sign-in kept, while it is still valid at `now_ms`, is used again
/// ([`Node::use_root_grant`]), so the node shows its root in its contexts and in those it
/// creates or joins, with no new sign-in. Says whether there was one to use.
pub async fn resume<S: Store, E: Env>(
    node: &mut Node<S, E>,
    now_ms: u64,
) -> Result<bool, NodeError> {
    let grant = node
        .root_grant()
        .await?
        .and_then(|bytes| RootGrantRecord::from_bytes(&bytes))
        .and_then(|record| record.valid_grant(now_ms));
    match grant {
        Some(grant) => node.use_root_grant(grant).await.map(|()| true),
        None => Ok(false),
    }
}
