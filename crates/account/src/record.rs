//! Who this node acts for, as it keeps it: the grant a wallet signed, the site it was signed
//! for and the wallet's answer, checked again whenever it is read.

use tabnode_identity::grant::{Grant, Proof, Root, SignedGrant};
use tabnode_identity::nep413::SignedMessage;

/// A signed grant as kept in the store (`Node::save_root_grant`, JSON): the grant, the origin
/// it was signed for, and the wallet's answer, so it can be checked again on every start.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RootGrantRecord {
    pub grant: Grant,
    pub recipient: String,
    pub answer: SignedMessage,
    /// The callbackUrl the wallet signed with although none was asked for (some wallets add
    /// the page's URL); absent for the others, so their records read as before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_url: Option<String>,
}

/// Who this node acts for, as JS sees it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IdentityView {
    pub account_id: String,
    pub root_public_key: String,
    pub client_key: String,
    pub expires_at: u64,
}

impl RootGrantRecord {
    /// The record of `signed`, the grant as the wallet's `answer` signed it for `recipient`.
    pub fn of(signed: &SignedGrant, recipient: String, answer: SignedMessage) -> Self {
        let callback_url = match &signed.proof {
            Proof::Nep413 { callback_url, .. } => callback_url.clone(),
            Proof::Local(_) => None,
        };
        Self {
            grant: signed.grant.clone(),
            recipient,
            answer,
            callback_url,
        }
    }

    /// The record as stored; `None` for what is not one.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        serde_json::from_slice(bytes).ok()
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a grant record encodes")
    }

    /// The grant, if the wallet's answer still verifies for it and it is valid at `now_ms`.
    pub fn valid_grant(&self, now_ms: u64) -> Option<SignedGrant> {
        let signed = SignedGrant::from_wallet(
            self.grant.clone(),
            &self.recipient,
            &self.answer,
            self.callback_url.as_deref(),
        )
        .ok()?;
        signed.verify(now_ms).ok()?;
        Some(signed)
    }

    /// Who the grant says this node acts for, if it is valid at `now_ms`.
    pub fn view(&self, now_ms: u64) -> Option<IdentityView> {
        let signed = self.valid_grant(now_ms)?;
        let Root::Near {
            account_id,
            public_key,
        } = &signed.root
        else {
            return None;
        };
        Some(IdentityView {
            account_id: account_id.clone(),
            root_public_key: format!("ed25519:{public_key}"),
            client_key: signed.grant.client_key.to_string(),
            expires_at: signed.grant.expires_at,
        })
    }
}
