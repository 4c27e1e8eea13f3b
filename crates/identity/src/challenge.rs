//! One-time challenges: the node asks a wallet to sign a fresh nonce, and accepts each answer once.

use std::collections::HashMap;

use tabnode_types::PublicKey;

use crate::grant::hex_nonce;
use crate::nep413::{Nep413Error, Payload, SignedMessage};

/// What the wallet is asked to sign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub payload: Payload,
    pub expires_at: u64,
}

/// Who answered a challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proven {
    pub account_id: String,
    pub public_key: PublicKey,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChallengeError {
    #[error("no such challenge, or it was already answered")]
    UnknownOrUsed,
    #[error("the challenge expired at {0} ms")]
    Expired(u64),
    #[error(transparent)]
    Wallet(#[from] Nep413Error),
}

/// Challenges issued and not yet answered.
#[derive(Debug, Default)]
pub struct Challenges {
    pending: HashMap<[u8; 32], Challenge>,
}

impl Challenges {
    /// Issues a challenge for `recipient` (the page's origin) valid for `ttl_ms`.
    pub fn issue(
        &mut self,
        nonce: [u8; 32],
        recipient: &str,
        now_ms: u64,
        ttl_ms: u64,
    ) -> Challenge {
        self.pending.retain(|_, c| c.expires_at > now_ms);
        let expires_at = now_ms + ttl_ms;
        let challenge = Challenge {
            payload: Payload {
                message: format!(
                    "Sign in to tabnode\nnonce {}\nvalid until {expires_at} ms",
                    hex_nonce(nonce)
                ),
                nonce,
                recipient: recipient.to_owned(),
                callback_url: None,
            },
            expires_at,
        };
        self.pending.insert(nonce, challenge.clone());
        challenge
    }

    /// Consumes a nonce this registry issued (for answers verified elsewhere, e.g. a grant
    /// signed with the challenge's nonce): unknown, used or expired nonces are refused.
    pub fn take(&mut self, nonce: &[u8; 32], now_ms: u64) -> Result<(), ChallengeError> {
        let challenge = self
            .pending
            .remove(nonce)
            .ok_or(ChallengeError::UnknownOrUsed)?;
        if now_ms >= challenge.expires_at {
            return Err(ChallengeError::Expired(challenge.expires_at));
        }
        Ok(())
    }

    /// Checks a wallet's answer: known nonce, not expired, signed over exactly the challenge.
    /// A nonce is consumed by its first answer, right or wrong.
    pub fn answer(
        &mut self,
        nonce: &[u8; 32],
        answer: &SignedMessage,
        now_ms: u64,
        page_url: Option<&str>,
    ) -> Result<Proven, ChallengeError> {
        let payload = self.pending.get(nonce).map(|c| c.payload.clone());
        self.take(nonce, now_ms)?;
        let payload = payload.expect("take found the challenge");
        let public_key = answer.verify(&payload, page_url)?;
        Ok(Proven {
            account_id: answer.account_id.clone(),
            public_key,
        })
    }
}
