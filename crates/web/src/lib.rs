//! The tabnode node as a JS class: `BrowserNode`, built into `pkg/` by wasm-bindgen.
//!
//! This crate is the thin browser edge: it wires the sans-IO node to IndexedDB, the libp2p
//! swarm and JS callbacks, and converts values and errors. No node rule lives here.

#[cfg(target_arch = "wasm32")]
mod browser;
#[cfg(target_arch = "wasm32")]
mod wallet;
#[cfg(target_arch = "wasm32")]
pub use browser::BrowserNode;
