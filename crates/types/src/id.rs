//! 32-byte identifiers with one base58 text form.

use borsh::{BorshDeserialize, BorshSerialize};
use std::fmt;
use std::str::FromStr;

/// Why a text id was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdParseError {
    #[error("{kind} is not base58: {reason}")]
    NotBase58 { kind: &'static str, reason: String },
    #[error("{kind} must be 32 bytes, got {len}")]
    WrongLength { kind: &'static str, len: usize },
}

/// Decodes base58 text into exactly 32 bytes; `kind` names the id in errors.
pub fn decode_32(kind: &'static str, text: &str) -> Result<[u8; 32], IdParseError> {
    let bytes = bs58::decode(text.trim())
        .into_vec()
        .map_err(|e| IdParseError::NotBase58 {
            kind,
            reason: e.to_string(),
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
    }
}
