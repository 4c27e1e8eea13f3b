//! Calimero's `.mpk` app bundles: a gzipped tar of `manifest.json`, the app's wasm and its
//! `abi.json` (the format merod 0.10 installs).
//!
//! A bundle is told from a bare wasm module by its content ([`is_bundle`]), unpacked in memory
//! under a cap ([`Bundle::unpack`]) and checked against its manifest; the wasm is then
//! installed as a bare one would be (its blake3 is the app id) and the ABI kept beside it
//! ([`install`], read back with [`abi`]). A bad bundle is refused with a [`BundleError`] before
//! anything is stored.
//!
//! A signed manifest's signature is checked as merod checks it ([`signature`]); an unsigned one
//! is taken (merod 0.10 refuses it). Not checked: `minRuntimeVersion`, artifact hashes.

pub mod signature;
mod unpack;

pub use unpack::{
    is_bundle, max_unpacked_bytes, Artifact, Bundle, BundleError, Manifest, UNPACKED_MARGIN,
};

use tabnode_node::{Env, Node, NodeError};
use tabnode_store::{Batch, Namespace, Store, StoreError};
use tabnode_types::AppId;

/// Where an app's ABI is kept in [`Namespace::Apps`]: this prefix, then the app id (the app's
/// own key there is the bare id, so the two never meet).
const ABI_PREFIX: &[u8] = b"abi/";

fn abi_key(app: &AppId) -> Vec<u8> {
    [ABI_PREFIX, app.as_bytes()].concat()
}

/// Installs a checked bundle's wasm on `node` and keeps its ABI in `store` (the node's own
/// store, shared). The app id is the wasm's blake3, as for a bare module.
pub async fn install<S: Store, E: Env>(
    node: &mut Node<S, E>,
    store: &impl Store,
    bundle: &Bundle,
) -> Result<AppId, NodeError> {
    let app = node.install_app(&bundle.wasm).await?;
    if let Some(abi) = &bundle.abi {
        store
            .commit(Batch::new().put(Namespace::Apps, &abi_key(&app), abi.clone()))
            .await?;
    }
    Ok(app)
}

/// The ABI (JSON bytes, as the bundle held them) of an app installed from a bundle; `None`
/// for an app installed from a bare module, or not installed.
pub async fn abi(store: &impl Store, app: &AppId) -> Result<Option<Vec<u8>>, StoreError> {
    store.get(Namespace::Apps, &abi_key(app)).await
}
