//! Calimero's context-config types, the same on every chain Calimero anchors contexts on (NEAR,
//! and in Calimero's own client Starknet, ICP, Stellar and EVM chains), and how Calimero derives
//! an application's ids, so that an application named on chain can be checked against the wasm
//! this node runs.
//!
//! Read from `calimero-network/core` at the tag the NEAR contract builds against
//! (`crates/context/config/src/types.rs`, `repr.rs`; `crates/store/blobs/src/lib.rs`;
//! `crates/node/primitives/src/client/application.rs`), reimplemented here:
//!
//! - Every id is 32 bytes and travels as base58 text (Calimero's `Repr<T>`): context ids,
//!   member identities (ed25519 public keys, without NEAR's `ed25519:` prefix), the application
//!   id and the blob id. Byte strings (`metadata`, a signed request's payload) are base58 too.
//! - The **blob id** is not a hash of the file: Calimero cuts the wasm into 1 MiB chunks, and
//!   the blob id is `sha256(sha256(chunk₀) ‖ sha256(chunk₁) ‖ …)`; so for a wasm under 1 MiB it
//!   is `sha256(sha256(wasm))`.
//! - The **application id** of a single-wasm install is `sha256(borsh(blob_id, size, source,
//!   metadata))`: 32 bytes, u64 LE, then u32 LE length + bytes for each of source and metadata.
//!   (A signed bundle's id is derived from its package name and signer instead, so it cannot be
//!   recomputed from the wasm; [`Application::verify_wasm`] therefore checks the blob and size.)
//! - tabnode's own app id is `blake3(wasm)` ([`tabnode_types::AppId`]): a different hash of the
//!   same bytes. The two are related only through the wasm, which is why a node holding the
//!   binary can check an anchored application and get its tabnode `AppId` back.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tabnode_types::{AppId, Hash};

/// Calimero's blob chunk size (`CHUNK_SIZE` in `calimero-blobstore`): 1 MiB.
pub const BLOB_CHUNK_SIZE: usize = 1 << 20;

/// Calimero's blob id of `bytes`: sha256 over the sha256 of each 1 MiB chunk.
pub fn blob_id(bytes: &[u8]) -> Hash {
    let mut outer = Sha256::new();
    for chunk in bytes.chunks(BLOB_CHUNK_SIZE) {
        outer.update(Sha256::digest(chunk));
    }
    Hash(outer.finalize().into())
}

/// Calimero's application id of a single-wasm install: sha256 of the borsh encoding of
/// `(blob_id, size, source, metadata)`.
pub fn application_id(blob: &Hash, size: u64, source: &str, metadata: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update(blob.0);
    h.update(size.to_le_bytes());
    h.update((source.len() as u32).to_le_bytes());
    h.update(source.as_bytes());
    h.update((metadata.len() as u32).to_le_bytes());
    h.update(metadata);
    Hash(h.finalize().into())
}

/// A context's application as the contract keeps it (`Application` in calimero-context-config):
/// JSON `{"id", "blob", "size", "source", "metadata"}`, ids and metadata in base58.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Application {
    /// Calimero's application id (see the module docs).
    pub id: Hash,
    /// Calimero's blob id of the wasm: the hash to compare with a binary.
    pub blob: Hash,
    /// The wasm's length in bytes.
    pub size: u64,
    /// Where the binary came from (a URL or path; free text for the contract).
    pub source: String,
    #[serde(with = "base58_bytes")]
    pub metadata: Vec<u8>,
}

/// Why a wasm binary is not the anchored application.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppMismatch {
    #[error("the chain names a {chain}-byte application, this wasm has {wasm} bytes")]
    Size { chain: u64, wasm: u64 },
    #[error("the chain names blob {chain}, this wasm's blob id is {wasm}")]
    Blob { chain: Hash, wasm: Hash },
}

impl Application {
    /// The application record for a wasm binary, as Calimero derives it.
    pub fn for_wasm(wasm: &[u8], source: impl Into<String>, metadata: Vec<u8>) -> Self {
        let blob = blob_id(wasm);
        let size = wasm.len() as u64;
        let source = source.into();
        let id = application_id(&blob, size, &source, &metadata);
        Self {
            id,
            blob,
            size,
            source,
            metadata,
        }
    }

    /// Checks that `wasm` is the binary this record names (its size and Calimero blob id), and
    /// gives its tabnode [`AppId`] (blake3) for comparison with an installed app.
    pub fn verify_wasm(&self, wasm: &[u8]) -> Result<AppId, AppMismatch> {
        let size = wasm.len() as u64;
        if size != self.size {
            return Err(AppMismatch::Size {
                chain: self.size,
                wasm: size,
            });
        }
        let blob = blob_id(wasm);
        if blob != self.blob {
            return Err(AppMismatch::Blob {
                chain: self.blob,
                wasm: blob,
            });
        }
        Ok(AppId::of_wasm(wasm))
    }

    /// The id a single-wasm install of this blob, size, source and metadata has; equal to
    /// [`Application::id`] unless the application was installed as a signed bundle.
    pub fn derived_id(&self) -> Hash {
        application_id(&self.blob, self.size, &self.source, &self.metadata)
    }
}

/// A privilege the contract grants a member (`Capability` in calimero-context-config),
/// serialized by name: `"ManageApplication"`, `"ManageMembers"`, `"Proxy"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Capability {
    /// May change the context's application.
    ManageApplication,
    /// May add and remove members and grant this privilege: an admin.
    ManageMembers,
    /// May change the context's proxy contract.
    Proxy,
}

/// The longest base58 text of bytes read from the chain (an application's metadata, about
/// 12 KB at most): decoding takes time quadratic in its length (16 KiB of text, about 0.1 s), and
/// the text comes from an RPC endpoint.
pub const MAX_BASE58_BYTES_CHARS: usize = 16 * 1024;

/// Base58 text for arbitrary bytes, as Calimero's `Repr<Vec<u8>>`.
pub(crate) mod base58_bytes {
    use super::MAX_BASE58_BYTES_CHARS;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&bs58::encode(bytes).into_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        tabnode_types::decode_base58(&text, MAX_BASE58_BYTES_CHARS)
            .map_err(|e| serde::de::Error::custom(format!("not base58: {e}")))
    }
}
