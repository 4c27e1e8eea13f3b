//! Signed causal deltas: what one call on one node changed, as the guest's sync artifact.

use crate::log::MemberOp;
use crate::membership::MemberCert;
use borsh::{BorshDeserialize, BorshSerialize};
use tabnode_types::{
    verify_signature, ContextId, DeltaId, Hash, PublicKey, SecretKey, Signature, SignatureError,
};

/// An event a call emitted, carried in the delta so every member's subscribers see it.
///
/// Its encoding reads both layouts deltas were ever signed in (see "Format versions" in
/// docs/storage.md): after `kind` and `data` one byte says which of `withheld` and `handler`
/// follow (bit 0, bit 1). An event without a handler is thus byte for byte what builds before
/// handlers wrote (an `Option` tag, 0 or 1, then the hash), so their stored deltas keep their
/// ids and signatures, and they read the deltas of this build that name no handler; one that
/// names a handler they refuse as undecodable (2 and 3 are no `Option` tag) rather than misread.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct EventRecord {
    pub kind: String,
    /// The payload, or what of it the author disclosed (see [`crate::Disclosure`]).
    pub data: Vec<u8>,
    /// The blake3 hash of the full payload, when `data` is not all of it: a member may ask the
    /// author for it.
    pub withheld: Option<Hash>,
    /// The app method the members that apply the delta run with `data` as its arguments
    /// (`emit_with_handler`); its author runs none (see [`crate::NodeEvent::Handler`]).
    pub handler: Option<String>,
}

/// Bits of the byte after an event's `data` (see [`EventRecord`]).
const WITHHELD_FOLLOWS: u8 = 1;
const HANDLER_FOLLOWS: u8 = 2;

impl BorshSerialize for EventRecord {
    fn serialize<W: std::io::Write>(&self, writer: &mut W) -> std::io::Result<()> {
        self.kind.serialize(writer)?;
        self.data.serialize(writer)?;
        let follows = (self.withheld.is_some() as u8 * WITHHELD_FOLLOWS)
            | (self.handler.is_some() as u8 * HANDLER_FOLLOWS);
        follows.serialize(writer)?;
        if let Some(hash) = &self.withheld {
            hash.serialize(writer)?;
        }
        if let Some(handler) = &self.handler {
            handler.serialize(writer)?;
        }
        Ok(())
    }
}

impl BorshDeserialize for EventRecord {
    fn deserialize_reader<R: std::io::Read>(reader: &mut R) -> std::io::Result<Self> {
        let kind = String::deserialize_reader(reader)?;
        let data = Vec::<u8>::deserialize_reader(reader)?;
        let follows = u8::deserialize_reader(reader)?;
        if follows > WITHHELD_FOLLOWS | HANDLER_FOLLOWS {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("an event's fields byte is {follows}, not 0 to 3"),
            ));
        }
        let withheld = match follows & WITHHELD_FOLLOWS {
            0 => None,
            _ => Some(Hash::deserialize_reader(reader)?),
        };
        let handler = match follows & HANDLER_FOLLOWS {
            0 => None,
            _ => Some(String::deserialize_reader(reader)?),
        };
        Ok(Self {
            kind,
            data,
            withheld,
            handler,
        })
    }
}

/// What a context's first delta records so every member can replay the app's `init` exactly.
///
/// The init artifact cannot be merged into an empty state to the same root (calimero-storage
/// re-ids the state's collections inside init), but the runtime is deterministic: replaying the
/// call with the author's record gives the author's state and root.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Genesis {
    /// The JSON arguments `init` ran with.
    pub input: Vec<u8>,
    /// The seed `random_bytes` read from.
    pub random_seed: [u8; 32],
}

/// The unsigned content of a delta; its blake3 hash is the delta's id.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct DeltaBody {
    pub context_id: ContextId,
    /// The author's heads when it made this delta: the causal past.
    pub parents: Vec<DeltaId>,
    pub author: PublicKey,
    /// The author's clock (ns since the epoch) when it ran the call; replayed as `time_now`.
    pub timestamp: u64,
    /// The guest's sync artifact (a borsh `StorageDelta`), fed to `__calimero_sync_next`.
    pub artifact: Vec<u8>,
    /// The author's state root after the call: equal on a receiver whose heads were `parents`.
    pub root_hash: Hash,
    pub events: Vec<EventRecord>,
    /// Set on the context's first delta only.
    pub genesis: Option<Genesis>,
    /// The author's membership: every member checks it before applying the delta.
    pub author_cert: MemberCert,
    /// Set on an admin's membership operation (which carries no artifact).
    pub op: Option<MemberOp>,
}

/// A delta as it travels and is stored: content plus the author's signature over its id.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Delta {
    pub body: DeltaBody,
    pub signature: Signature,
}

impl DeltaBody {
    pub fn id(&self) -> DeltaId {
        let bytes = borsh::to_vec(self).expect("borsh encoding of a delta cannot fail");
        DeltaId(*blake3::hash(&bytes).as_bytes())
    }

    pub fn sign(self, key: &SecretKey) -> Delta {
        let signature = key.sign(self.id().as_bytes());
        Delta {
            body: self,
            signature,
        }
    }
}

impl Delta {
    pub fn id(&self) -> DeltaId {
        self.body.id()
    }

    /// Checks that the author signed exactly this content.
    pub fn verify(&self) -> Result<DeltaId, SignatureError> {
        let id = self.id();
        verify_signature(&self.body.author, id.as_bytes(), &self.signature)?;
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(key: &SecretKey) -> DeltaBody {
        DeltaBody {
            context_id: ContextId([1; 32]),
            parents: vec![DeltaId([2; 32])],
            author: key.public(),
            timestamp: 5,
            artifact: vec![1, 2, 3],
            root_hash: Hash([9; 32]),
            events: vec![],
            genesis: None,
            author_cert: MemberCert::genesis(&SecretKey::from_seed([8; 32]), key.public()),
            op: None,
        }
    }

    #[test]
    fn signed_delta_verifies_and_tampering_is_caught() {
        let key = SecretKey::from_seed([3; 32]);
        let delta = body(&key).sign(&key);
        assert_eq!(delta.verify(), Ok(delta.id()));

        let mut tampered = delta.clone();
        tampered.body.artifact.push(4);
        assert_eq!(tampered.verify(), Err(SignatureError::Mismatch));

        let mut forged = delta;
        forged.body.author = SecretKey::from_seed([4; 32]).public();
        assert_eq!(forged.verify(), Err(SignatureError::Mismatch));
    }

    /// An event as builds before handlers encoded it.
    #[derive(BorshSerialize, BorshDeserialize)]
    struct EventBeforeHandlers {
        kind: String,
        data: Vec<u8>,
        withheld: Option<Hash>,
    }

    fn event(withheld: Option<Hash>, handler: Option<&str>) -> EventRecord {
        EventRecord {
            kind: "Inserted".into(),
            data: b"{\"key\":\"a\"}".to_vec(),
            withheld,
            handler: handler.map(str::to_owned),
        }
    }

    #[test]
    fn an_event_without_a_handler_is_encoded_as_before_handlers() {
        for withheld in [None, Some(Hash([7; 32]))] {
            let old = EventBeforeHandlers {
                kind: "Inserted".into(),
                data: b"{\"key\":\"a\"}".to_vec(),
                withheld,
            };
            let old_bytes = borsh::to_vec(&old).unwrap();
            let read = EventRecord::try_from_slice(&old_bytes).unwrap();
            assert_eq!(read, event(withheld, None));
            assert_eq!(borsh::to_vec(&read).unwrap(), old_bytes);
        }
    }

    #[test]
    fn an_event_with_a_handler_round_trips_and_the_old_layout_refuses_it() {
        for withheld in [None, Some(Hash([7; 32]))] {
            let event = event(withheld, Some("on_insert"));
            let bytes = borsh::to_vec(&event).unwrap();
            assert_eq!(EventRecord::try_from_slice(&bytes).unwrap(), event);
            assert!(EventBeforeHandlers::try_from_slice(&bytes).is_err());
        }
        let mut bad = borsh::to_vec(&event(None, None)).unwrap();
        *bad.last_mut().unwrap() = 4;
        assert!(EventRecord::try_from_slice(&bad).is_err());
    }
}
