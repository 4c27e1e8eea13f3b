//! 32-byte identifiers with one base58 text form.

use borsh::{BorshDeserialize, BorshSerialize};
use std::fmt;
use std::str::FromStr;

/// The longest base58 text of 32 bytes (all `0xFF`).
pub const MAX_ID_CHARS: usize = 44;

/// Why base58 text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Base58Error {
    #[error("{len} characters of base58, more than the {max} it may have")]
    TooLong { len: usize, max: usize },
    #[error("{0}")]
    Invalid(String),
}

/// Decodes base58 text of at most `max_chars` characters. Longer text is refused before it is
/// decoded: decoding takes time quadratic in the length (100,000 characters take seconds), and
/// text comes from peers, links and callers.
pub fn decode_base58(text: &str, max_chars: usize) -> Result<Vec<u8>, Base58Error> {
    if text.len() > max_chars {
        return Err(Base58Error::TooLong {
            len: text.len(),
            max: max_chars,
        });
    }
    bs58::decode(text)
        .into_vec()
        .map_err(|e| Base58Error::Invalid(e.to_string()))
}

/// Why a text id was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdParseError {
    #[error("{kind} is not base58: {reason}")]
    NotBase58 { kind: &'static str, reason: String },
    #[error("{kind} must be 32 bytes, got {len}")]
    WrongLength { kind: &'static str, len: usize },
    #[error("{kind} is {len} characters, an id is at most {MAX_ID_CHARS}")]
    TooLong { kind: &'static str, len: usize },
}

/// Decodes base58 text into exactly 32 bytes; `kind` names the id in errors.
pub fn decode_32(kind: &'static str, text: &str) -> Result<[u8; 32], IdParseError> {
    let bytes = decode_base58(text.trim(), MAX_ID_CHARS).map_err(|e| match e {
        Base58Error::TooLong { len, .. } => IdParseError::TooLong { kind, len },
        Base58Error::Invalid(reason) => IdParseError::NotBase58 { kind, reason },
    })?;
    let len = bytes.len();
    bytes
        .try_into()
        .map_err(|_| IdParseError::WrongLength { kind, len })
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, BorshSerialize, BorshDeserialize)]
        pub struct $name(pub [u8; 32]);

        impl $name {
            pub const fn from_bytes(bytes: [u8; 32]) -> Self {
                Self(bytes)
            }
            pub const fn as_bytes(&self) -> &[u8; 32] {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&bs58::encode(self.0).into_string())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self)
            }
        }

        impl FromStr for $name {
            type Err = IdParseError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                decode_32($kind, s).map(Self)
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = <String as serde::Deserialize>::deserialize(d)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

id_type!(
    /// A context: the public half of the key created with it.
    ContextId, "context id"
);
id_type!(
    /// An application: the blake3 hash of its wasm, so a binary cannot be swapped unnoticed.
    AppId, "application id"
);
id_type!(
    /// A delta: the blake3 hash of its signed content.
    DeltaId, "delta id"
);
id_type!(
    /// A blake3 (or guest-computed Merkle) hash.
    Hash, "hash"
);
id_type!(
    /// A proposal: 32 bytes the host drew when the guest sent it.
    ProposalId, "proposal id"
);

impl AppId {
    /// The id of a wasm binary.
    pub fn of_wasm(wasm: &[u8]) -> Self {
        Self(*blake3::hash(wasm).as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base58_round_trip_and_errors() {
        let id = AppId::of_wasm(b"wasm");
        let text = id.to_string();
        assert_eq!(text.parse::<AppId>().unwrap(), id);
        assert!(matches!(
            "0OIl".parse::<AppId>(),
            Err(IdParseError::NotBase58 { .. })
        ));
        assert_eq!(
            "abc".parse::<ContextId>(),
            Err(IdParseError::WrongLength {
                kind: "context id",
                len: 3
            })
        );
        // The longest 32-byte id, and the shortest, parse.
        let max = AppId([0xFF; 32]).to_string();
        assert_eq!(max.len(), MAX_ID_CHARS);
        assert_eq!(max.parse::<AppId>().unwrap(), AppId([0xFF; 32]));
        assert_eq!(
            AppId([0; 32]).to_string().parse::<AppId>().unwrap(),
            AppId([0; 32])
        );
    }

    #[test]
    fn long_text_is_refused_before_it_is_decoded() {
        // 100,000 characters took seconds to decode (issue 19, low 10); refused at once now.
        let long = "z".repeat(100_000);
        let started = std::time::Instant::now();
        assert_eq!(
            long.parse::<Hash>(),
            Err(IdParseError::TooLong {
                kind: "hash",
                len: 100_000
            })
        );
        assert_eq!(
            decode_base58(&long, 1000),
            Err(Base58Error::TooLong {
                len: 100_000,
                max: 1000
            })
        );
        assert!(started.elapsed() < std::time::Duration::from_millis(500));
        // Leading zero bytes are `1`s: 45 characters is one too many even so.
        let padded = format!("1{}", AppId([0xFF; 32]));
        assert!(matches!(
            padded.parse::<AppId>(),
            Err(IdParseError::TooLong { len: 45, .. })
        ));
        assert!(matches!(
            format!("ed25519:{}", "z".repeat(1000)).parse::<crate::PublicKey>(),
            Err(IdParseError::TooLong { len: 1000, .. })
        ));
    }
}
