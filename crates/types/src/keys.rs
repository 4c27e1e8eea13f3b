//! ed25519 keys and signatures, with the text forms NEAR and Calimero use.

use borsh::{BorshDeserialize, BorshSerialize};
use ed25519_dalek::Signer;
use std::fmt;
use std::str::FromStr;

use crate::id::{decode_32, IdParseError};

/// Why a signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("not a valid ed25519 public key")]
    BadKey,
    #[error("signature does not verify for this key and message")]
    Mismatch,
}

/// An ed25519 public key: identifies a node, a member, or a context.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize)]
pub struct PublicKey(pub [u8; 32]);

/// A detached ed25519 signature.
#[derive(Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Signature(pub [u8; 64]);

/// An ed25519 secret key (the 32-byte seed). Never printed, never serialized by accident.
#[derive(Clone)]
pub struct SecretKey(ed25519_dalek::SigningKey);

impl SecretKey {
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Self(ed25519_dalek::SigningKey::from_bytes(&seed))
    }
    pub fn seed(&self) -> [u8; 32] {
        self.0.to_bytes()
    }
    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key().to_bytes())
    }
    pub fn sign(&self, message: &[u8]) -> Signature {
        Signature(self.0.sign(message).to_bytes())
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey(public: {})", self.public())
    }
}

/// Checks `signature` over `message` by `key` (strict: rejects malleable and small-order forms).
pub fn verify_signature(
    key: &PublicKey,
    message: &[u8],
    signature: &Signature,
) -> Result<(), SignatureError> {
    let key =
        ed25519_dalek::VerifyingKey::from_bytes(&key.0).map_err(|_| SignatureError::BadKey)?;
    let sig = ed25519_dalek::Signature::from_bytes(&signature.0);
    key.verify_strict(message, &sig)
        .map_err(|_| SignatureError::Mismatch)
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&bs58::encode(self.0).into_string())
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({self})")
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({})", bs58::encode(self.0).into_string())
    }
}

impl FromStr for PublicKey {
    type Err = IdParseError;
    /// Accepts bare base58 or NEAR's `ed25519:` prefix.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        decode_32("public key", s.strip_prefix("ed25519:").unwrap_or(s)).map(Self)
    }
}

impl serde::Serialize for PublicKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for PublicKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <String as serde::Deserialize>::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_and_verify() {
        let key = SecretKey::from_seed([7; 32]);
        let sig = key.sign(b"hello");
        assert_eq!(verify_signature(&key.public(), b"hello", &sig), Ok(()));
        assert_eq!(
            verify_signature(&key.public(), b"hellO", &sig),
            Err(SignatureError::Mismatch)
        );
        let other = SecretKey::from_seed([8; 32]).public();
        assert_eq!(
            verify_signature(&other, b"hello", &sig),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn near_prefix_accepted() {
        let key = SecretKey::from_seed([1; 32]).public();
        let text = format!("ed25519:{key}");
        assert_eq!(text.parse::<PublicKey>().unwrap(), key);
    }
}
