//! Selective disclosure: per event kind, a context on this node can send an event's payload to
//! other members only as its blake3 hash, or with named fields redacted; the full payload stays
//! on this node, which gives it only to a current member who asks, sealed to that member's key
//! (see [`crate::WireMessage::PayloadRequest`]); the asker checks it against the hash.

use borsh::{BorshDeserialize, BorshSerialize};
use tabnode_types::Hash;

/// How events of one kind leave this node.
#[derive(
    Debug,
    Clone,
    PartialEq,
    Eq,
    Default,
    BorshSerialize,
    BorshDeserialize,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(tag = "mode", rename_all = "camelCase", deny_unknown_fields)]
pub enum Disclosure {
    /// The whole payload (the default).
    #[default]
    Full,
    /// Only the payload's blake3 hash.
    Hash,
    /// The payload (a JSON object) with these fields' values replaced by [`REDACTED`].
    Redact { fields: Vec<String> },
}

/// What a redacted field's value becomes.
pub const REDACTED: &str = "«redacted»";

impl Disclosure {
    /// What of `payload` leaves the node, and the hash of the full payload when that is not all
    /// of it. A payload that is not a JSON object cannot be redacted field by field: it is
    /// withheld whole.
    pub fn apply(&self, payload: &[u8]) -> (Vec<u8>, Option<Hash>) {
        let hash = || Some(Hash(*blake3::hash(payload).as_bytes()));
        match self {
            Self::Full => (payload.to_vec(), None),
            Self::Hash => (Vec::new(), hash()),
            Self::Redact { fields } => match serde_json::from_slice::<serde_json::Value>(payload) {
                Ok(serde_json::Value::Object(mut object)) => {
                    for field in fields {
                        if let Some(value) = object.get_mut(field) {
                            *value = REDACTED.into();
                        }
                    }
                    let shown = serde_json::to_vec(&object).expect("JSON encodes");
                    (shown, hash())
                }
                _ => (Vec::new(), hash()),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_and_redact_withhold_what_they_should() {
        let payload = br#"{"key":"salary","value":"1000"}"#;
        assert_eq!(Disclosure::Full.apply(payload), (payload.to_vec(), None));
        let hash = Some(Hash(*blake3::hash(payload).as_bytes()));
        assert_eq!(Disclosure::Hash.apply(payload), (vec![], hash));
        let (shown, withheld) = Disclosure::Redact {
            fields: vec!["value".into(), "absent".into()],
        }
        .apply(payload);
        assert_eq!(withheld, hash);
        let shown: serde_json::Value = serde_json::from_slice(&shown).unwrap();
        assert_eq!(
            shown,
            serde_json::json!({"key": "salary", "value": REDACTED})
        );
        let not_json = Disclosure::Redact { fields: vec![] }.apply(b"\x00binary");
        assert_eq!(not_json.0, Vec::<u8>::new(), "withheld whole");
    }
}
