//! A root's signed grant of a client key: which contexts, which capabilities, for how long.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};
use tabnode_types::{verify_signature, ContextId, PublicKey, SecretKey, Signature};

use crate::nep413::{Nep413Error, Payload, SignedMessage};

/// What a client key may do.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    BorshSerialize,
    BorshDeserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Capability {
    Read,
    Write,
    Admin,
}

/// Where a grant holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, BorshSerialize, BorshDeserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    All,
    Contexts(Vec<ContextId>),
}

/// The content a root signs. Its canonical text is what a wallet shows the user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, BorshSerialize, BorshDeserialize)]
pub struct Grant {
    pub client_key: PublicKey,
    pub scope: Scope,
    pub capabilities: Vec<Capability>,
    /// Milliseconds since the epoch.
    pub not_before: u64,
    pub expires_at: u64,
    /// 32 random bytes, hex: also the NEP-413 nonce when a wallet signs.
    pub nonce: String,
}

/// Who issued the grant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, BorshSerialize, BorshDeserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Root {
    /// A root key the node created for a user without a NEAR account.
    Local { public_key: PublicKey },
    /// A NEAR account, through one of its full-access keys.
    Near {
        account_id: String,
        public_key: PublicKey,
    },
}

/// How the root signed.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum Proof {
    /// ed25519 over the canonical text.
    Local(Signature),
    /// NEP-413 `signMessage` over the canonical text, with the grant's nonce.
    Nep413 {
        recipient: String,
        callback_url: Option<String>,
        signature: Signature,
    },
}

impl Proof {
    /// The site a NEP-413 signature was made for (the `recipient` the wallet showed): a
    /// signature another site obtained is valid, but not for this one.
    pub fn recipient(&self) -> Option<&str> {
        match self {
            Proof::Nep413 { recipient, .. } => Some(recipient),
            Proof::Local(_) => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct SignedGrant {
    pub grant: Grant,
    pub root: Root,
    pub proof: Proof,
}

/// Why a grant was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GrantError {
    #[error("the grant is not valid before {0} ms")]
    NotYetValid(u64),
    #[error("the grant expired at {0} ms")]
    Expired(u64),
    #[error("the root's signature does not verify")]
    BadSignature,
    #[error("the proof does not match the root ({0})")]
    Mismatch(&'static str),
    #[error("the nonce must be 32 bytes of hex")]
    BadNonce,
    #[error(transparent)]
    Wallet(#[from] Nep413Error),
}

impl Grant {
    /// The text a root signs: stable field order, one line of JSON after a header.
    pub fn canonical_message(&self) -> String {
        format!(
            "tabnode grant v1\n{}",
            serde_json::to_string(self).expect("a grant encodes")
        )
    }

    /// The grant a key rotation asks the root for: the same scope and capabilities, for the key
    /// that replaces this one, valid from `now_ms` for `valid_ms`.
    pub fn successor(
        &self,
        client_key: PublicKey,
        now_ms: u64,
        valid_ms: u64,
        nonce: String,
    ) -> Self {
        Self {
            client_key,
            not_before: now_ms,
            expires_at: now_ms.saturating_add(valid_ms),
            nonce,
            ..self.clone()
        }
    }

    /// The NEP-413 payload a wallet signs for this grant.
    pub fn payload(
        &self,
        recipient: &str,
        callback_url: Option<String>,
    ) -> Result<Payload, GrantError> {
        statement_payload(
            &self.canonical_message(),
            &self.nonce,
            recipient,
            callback_url,
        )
    }
}

/// The 32 bytes of a statement's hex nonce.
fn nonce_bytes(nonce: &str) -> Result<[u8; 32], GrantError> {
    let bytes: Vec<u8> = (0..nonce.len())
        .step_by(2)
        .map(|i| {
            nonce
                .get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect::<Option<_>>()
        .ok_or(GrantError::BadNonce)?;
    bytes.try_into().map_err(|_| GrantError::BadNonce)
}

/// The NEP-413 payload a wallet signs for a root's statement (a grant, a revocation).
fn statement_payload(
    message: &str,
    nonce: &str,
    recipient: &str,
    callback_url: Option<String>,
) -> Result<Payload, GrantError> {
    Ok(Payload {
        message: message.to_owned(),
        nonce: nonce_bytes(nonce)?,
        recipient: recipient.to_owned(),
        callback_url,
    })
}

/// Checks that `root` signed `message` (with `nonce`, for a wallet) as `proof` says.
fn verify_proof(root: &Root, proof: &Proof, message: &str, nonce: &str) -> Result<(), GrantError> {
    match (root, proof) {
        (Root::Local { public_key }, Proof::Local(signature)) => {
            verify_signature(public_key, message.as_bytes(), signature)
                .map_err(|_| GrantError::BadSignature)
        }
        (
            Root::Near { public_key, .. },
            Proof::Nep413 {
                recipient,
                callback_url,
                signature,
            },
        ) => statement_payload(message, nonce, recipient, callback_url.clone())?
            .verify(public_key, signature)
            .map_err(|_| GrantError::BadSignature),
        (Root::Local { .. }, _) => Err(GrantError::Mismatch("a local root signs with ed25519")),
        (Root::Near { .. }, _) => Err(GrantError::Mismatch("a NEAR root signs with NEP-413")),
    }
}

impl Root {
    /// The root's public key: a local root key, or the NEAR account's key that signed.
    pub fn public_key(&self) -> PublicKey {
        match self {
            Self::Local { public_key } | Self::Near { public_key, .. } => *public_key,
        }
    }
}

/// A root's revocation of one of its client keys: from where it stands in each context's
/// membership log on, everything that key signs is void; what it signed before stays.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, BorshSerialize, BorshDeserialize)]
pub struct Revocation {
    pub client_key: PublicKey,
    /// 32 random bytes, hex: also the NEP-413 nonce when a wallet signs.
    pub nonce: String,
}

impl Revocation {
    /// The text a root signs, shown by a wallet.
    pub fn canonical_message(&self) -> String {
        format!(
            "tabnode revocation v1\n{}",
            serde_json::to_string(self).expect("a revocation encodes")
        )
    }

    /// The NEP-413 payload a wallet signs for this revocation.
    pub fn payload(&self, recipient: &str) -> Result<Payload, GrantError> {
        statement_payload(&self.canonical_message(), &self.nonce, recipient, None)
    }
}

/// A revocation with the root's signature.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct SignedRevocation {
    pub revocation: Revocation,
    pub root: Root,
    pub proof: Proof,
}

impl SignedRevocation {
    /// A local root signs.
    pub fn sign_local(revocation: Revocation, root: &SecretKey) -> Self {
        let signature = root.sign(revocation.canonical_message().as_bytes());
        Self {
            revocation,
            root: Root::Local {
                public_key: root.public(),
            },
            proof: Proof::Local(signature),
        }
    }

    /// Takes a wallet's answer to `signMessage(revocation.payload(recipient))`, verifying it;
    /// `page_url` is tried as the callbackUrl some wallets add (as [`SignedGrant::from_wallet`]).
    pub fn from_wallet(
        revocation: Revocation,
        recipient: &str,
        answer: &SignedMessage,
        page_url: Option<&str>,
    ) -> Result<Self, GrantError> {
        let payload = revocation.payload(recipient)?;
        let public_key = answer.verify(&payload, page_url)?;
        let callback_url = if payload.verify(&public_key, &answer.signature()?).is_ok() {
            None
        } else {
            page_url.map(str::to_owned)
        };
        Ok(Self {
            revocation,
            root: Root::Near {
                account_id: answer.account_id.clone(),
                public_key,
            },
            proof: Proof::Nep413 {
                recipient: recipient.to_owned(),
                callback_url,
                signature: answer.signature()?,
            },
        })
    }

    /// Checks the root's signature (a revocation does not expire).
    pub fn verify(&self) -> Result<(), GrantError> {
        verify_proof(
            &self.root,
            &self.proof,
            &self.revocation.canonical_message(),
            &self.revocation.nonce,
        )
    }
}

/// Hex of 32 bytes, for a grant's nonce.
pub fn hex_nonce(bytes: [u8; 32]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl SignedGrant {
    /// A local root signs.
    pub fn sign_local(grant: Grant, root: &SecretKey) -> Self {
        let signature = root.sign(grant.canonical_message().as_bytes());
        Self {
            grant,
            root: Root::Local {
                public_key: root.public(),
            },
            proof: Proof::Local(signature),
        }
    }

    /// Takes a wallet's answer to `signMessage(grant.payload(recipient))`, verifying it.
    pub fn from_wallet(
        grant: Grant,
        recipient: &str,
        answer: &SignedMessage,
        page_url: Option<&str>,
    ) -> Result<Self, GrantError> {
        let payload = grant.payload(recipient, None)?;
        let public_key = answer.verify(&payload, page_url)?;
        let callback_url = if payload.verify(&public_key, &answer.signature()?).is_ok() {
            None
        } else {
            page_url.map(str::to_owned)
        };
        Ok(Self {
            grant,
            root: Root::Near {
                account_id: answer.account_id.clone(),
                public_key,
            },
            proof: Proof::Nep413 {
                recipient: recipient.to_owned(),
                callback_url,
                signature: answer.signature()?,
            },
        })
    }

    /// Checks the root's signature only, not the validity window: what a membership log
    /// judges by, the same on every node whenever it reads the grant.
    pub fn verify_signature(&self) -> Result<(), GrantError> {
        verify_proof(
            &self.root,
            &self.proof,
            &self.grant.canonical_message(),
            &self.grant.nonce,
        )
    }

    /// Checks the root's signature and that `now_ms` is inside the validity window.
    pub fn verify(&self, now_ms: u64) -> Result<(), GrantError> {
        self.verify_signature()?;
        if now_ms < self.grant.not_before {
            return Err(GrantError::NotYetValid(self.grant.not_before));
        }
        if now_ms >= self.grant.expires_at {
            return Err(GrantError::Expired(self.grant.expires_at));
        }
        Ok(())
    }

    /// Whether the grant, valid at `now_ms`, lets its client key use `capability` in `context`.
    pub fn allows(&self, context: &ContextId, capability: Capability, now_ms: u64) -> bool {
        let in_scope = match &self.grant.scope {
            Scope::All => true,
            Scope::Contexts(ids) => ids.contains(context),
        };
        let capable = self.grant.capabilities.contains(&capability)
            || self.grant.capabilities.contains(&Capability::Admin);
        in_scope && capable && self.verify(now_ms).is_ok()
    }
}
