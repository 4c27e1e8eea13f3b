//! Who signs: a root (a NEAR account through its wallet, or a local root key) delegates to the
//! client key each node signs its everyday work with.
//!
//! - [`nep413`]: NEAR's `signMessage` (NEP-413), verified here in Rust.
//! - [`grant`]: the root's signed grant of a client key (scope, capabilities, validity).
//! - [`challenge`]: one-time challenges a wallet answers, to prove it holds the root now.
//! - [`signin`]: sign-in with a wallet in one signature, which also grants the client key.
//! - [`rpc`]: reading NEAR's `view_access_key` answers, to check a key belongs to an account.
//! - [`wallet`]: the [`wallet::Wallet`] trait the flows ask for signatures, and [`wallet::KeyWallet`],
//!   an ed25519 key that signs as a wallet does (natively and in tests).

pub mod challenge;
pub mod grant;
pub mod nep413;
pub mod rpc;
pub mod signin;
pub mod wallet;
