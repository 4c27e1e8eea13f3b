//! Identifiers, keys and hashes shared by every tabnode crate.
//!
//! Everything here is plain data: no I/O, no browser types. Ids are 32 bytes and print as base58,
//! as Calimero prints them, so an id copied from merod's tooling reads the same here.

mod id;
mod keys;

pub use id::{
    decode_base58, AppId, Base58Error, ContextId, DeltaId, Hash, IdParseError, ProposalId,
    MAX_ID_CHARS,
};
pub use keys::{verify_signature, PublicKey, SecretKey, Signature, SignatureError};
