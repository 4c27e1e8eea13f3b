//! NEP-413 `signMessage`: the wallet signs ed25519 over `sha256(u32 LE (2^31 + 413) ‖ borsh(payload))`.

use base64::Engine;
use borsh::BorshSerialize;
use sha2::{Digest, Sha256};
use tabnode_types::{PublicKey, SecretKey, Signature};

/// The tag that keeps NEP-413 messages from ever being valid NEAR transactions.
pub const TAG: u32 = (1 << 31) + 413;

/// What the wallet signs.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize)]
pub struct Payload {
    pub message: String,
    pub nonce: [u8; 32],
    pub recipient: String,
    pub callback_url: Option<String>,
}

/// Why a signed message was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Nep413Error {
    #[error("the wallet's answer is malformed: {0}")]
    Malformed(String),
    #[error("only ed25519 keys are supported, got {0:?}")]
    UnsupportedKey(String),
    #[error("the signature does not verify for this message, nonce, recipient and key")]
    BadSignature,
}

impl Payload {
    /// The 32 bytes the wallet signs.
    pub fn hash(&self) -> [u8; 32] {
        let mut bytes = TAG.to_le_bytes().to_vec();
        bytes.extend(borsh::to_vec(self).expect("borsh encoding cannot fail"));
        Sha256::digest(&bytes).into()
    }

    /// Signs as a wallet would (the `local` signer for tests and users without a wallet).
    pub fn sign(&self, key: &SecretKey) -> Signature {
        key.sign(&self.hash())
    }

    /// Checks `signature` by `key` over this payload.
    pub fn verify(&self, key: &PublicKey, signature: &Signature) -> Result<(), Nep413Error> {
        tabnode_types::verify_signature(key, &self.hash(), signature)
            .map_err(|_| Nep413Error::BadSignature)
    }
}

/// A wallet's answer to `signMessage`: `{accountId, publicKey: "ed25519:…", signature: base64}`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SignedMessage {
    pub account_id: String,
    pub public_key: String,
    pub signature: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
}

impl SignedMessage {
    /// Parses a wallet's answer, also when a wallet wraps it as `{response: …}` (Sender).
    pub fn from_json(value: &serde_json::Value) -> Result<Self, Nep413Error> {
        let inner = value.get("response").unwrap_or(value);
        serde_json::from_value(inner.clone()).map_err(|e| Nep413Error::Malformed(e.to_string()))
    }

    pub fn key(&self) -> Result<PublicKey, Nep413Error> {
        let text = self
            .public_key
            .strip_prefix("ed25519:")
            .ok_or_else(|| Nep413Error::UnsupportedKey(self.public_key.clone()))?;
        text.parse()
            .map_err(|e| Nep413Error::Malformed(format!("public key: {e}")))
    }

    pub fn signature(&self) -> Result<Signature, Nep413Error> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(self.signature.trim())
            .map_err(|e| Nep413Error::Malformed(format!("signature is not base64: {e}")))?;
        let bytes: [u8; 64] = bytes.try_into().map_err(|v: Vec<u8>| {
            Nep413Error::Malformed(format!("signature is {} bytes, not 64", v.len()))
        })?;
        Ok(Signature(bytes))
    }

    /// Verifies against `payload`; some wallets add the page URL as callbackUrl although none
    /// was asked for, so `page_url`, if given, is tried second.
    pub fn verify(
        &self,
        payload: &Payload,
        page_url: Option<&str>,
    ) -> Result<PublicKey, Nep413Error> {
        let key = self.key()?;
        let signature = self.signature()?;
        if payload.verify(&key, &signature).is_ok() {
            return Ok(key);
        }
        if let (None, Some(url)) = (&payload.callback_url, page_url) {
            let with_url = Payload {
                callback_url: Some(url.to_owned()),
                ..payload.clone()
            };
            with_url.verify(&key, &signature)?;
            return Ok(key);
        }
        Err(Nep413Error::BadSignature)
    }
}
