//! What the user's NEAR account does with this node, through its wallet: sign in (one
//! signature grants the node's key), revoke a client key, rotate this node's key, write a
//! context's anchor on chain, and send a proposal's chain actions to the context's proxy
//! contract ([`proposals`]).
//!
//! Each flow is plain Rust over small edges, so that the page (`tabnode-web`) and native
//! tests run the same code:
//! - a [`Wallet`] signs (the page's injected wallet; natively [`tabnode_identity::wallet::KeyWallet`]);
//! - a [`KeyCheck`] asks the chain whether the key that signed is the account's (NEAR
//!   JSON-RPC, or [`NoChain`]);
//! - a [`NodeHandle`] runs operations on the node, however the embedding layer serialises them;
//! - a [`Clock`] gives the time and an [`Env`] the nonces (one value, the page's or a test's).
//!
//! The steps of each flow (what to sign, how to check the answer, what to store) are pure
//! functions of their inputs on the `…Flow` types ([`signin::SignInFlow`],
//! [`keys::RevokeFlow`], [`keys::RotateFlow`]; an anchor write's plan is `tabnode-chain`'s and
//! its outcome [`anchor::outcome`]); [`Account`]'s async methods only run them in order, asking
//! the wallet, the chain and the node in between.
//!
//! [`Wallet`]: tabnode_identity::wallet::Wallet

pub mod anchor;
mod error;
pub mod keys;
pub mod proposals;
pub mod record;
pub mod signin;

pub use error::FlowError;
pub use record::{IdentityView, RootGrantRecord};

use tabnode_chain::{KeyCheckError, RpcClient, Transport};
use tabnode_identity::grant::Root;
use tabnode_node::{Clock, Env, Node, NodeError};
use tabnode_store::Store;

/// How long a grant made by sign-in (or rotation) lasts.
pub const GRANT_VALID_MS: u64 = 30 * 24 * 3600 * 1000;
/// How long the wallet has to answer; a sign-in's challenge lives as long.
pub const WALLET_ANSWER_MS: u32 = 120_000;

/// Runs operations on the node, one at a time, as the embedding layer does (the page sends
/// each to the task that owns its node, which also sends what it queued and tells
/// subscribers). An operation owns what it needs (`'static`): it may run after its caller
/// stopped waiting. A flow never holds the node while it waits for the wallet.
#[allow(async_fn_in_trait)]
pub trait NodeHandle {
    type Store: Store;
    type Env: Env;

    async fn run<T: 'static>(
        &self,
        op: impl AsyncFnOnce(&mut Node<Self::Store, Self::Env>) -> Result<T, NodeError> + 'static,
    ) -> Result<T, NodeError>;
}

/// A node behind a lock: a driver with no page (native tests). It gives the node the time its
/// env's clock reads before each operation, as a driver does.
impl<S: Store, E: Env + Clock> NodeHandle for futures::lock::Mutex<Node<S, E>> {
    type Store = S;
    type Env = E;

    async fn run<T: 'static>(
        &self,
        op: impl AsyncFnOnce(&mut Node<S, E>) -> Result<T, NodeError> + 'static,
    ) -> Result<T, NodeError> {
        let mut node = self.lock().await;
        let now = node.env().now_nanos();
        node.advance_to(now);
        op(&mut node).await
    }
}

/// Checks on chain that the key a wallet signed with is a full-access key of the account it
/// named: a wallet could otherwise name any account.
#[allow(async_fn_in_trait)]
pub trait KeyCheck {
    async fn check(&self, root: &Root) -> Result<(), FlowError>;
}

/// No chain to ask (the page was given no `nearRpc`): the wallet's word for its account is taken.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoChain;

impl KeyCheck for NoChain {
    async fn check(&self, _root: &Root) -> Result<(), FlowError> {
        Ok(())
    }
}

/// NEAR JSON-RPC (`view_access_key`, with failover across the client's URLs).
impl<T: Transport> KeyCheck for RpcClient<T> {
    async fn check(&self, root: &Root) -> Result<(), FlowError> {
        let Root::Near {
            account_id,
            public_key,
        } = root
        else {
            return Ok(());
        };
        let key = format!("ed25519:{public_key}");
        self.check_full_access(account_id, &key)
            .await
            .map_err(|e| match e {
                KeyCheckError::NotOnAccount(why) => FlowError::KeyNotOnAccount(why),
                KeyCheckError::Unavailable(_) => FlowError::RpcUnavailable(e.to_string()),
            })
    }
}

/// A check when there is a chain to ask, none otherwise.
impl<K: KeyCheck> KeyCheck for Option<K> {
    async fn check(&self, root: &Root) -> Result<(), FlowError> {
        match self {
            Some(check) => check.check(root).await,
            None => Ok(()),
        }
    }
}

/// The site a wallet signs for: its origin is the NEP-413 `recipient`, and its URL is tried as
/// the callbackUrl some wallets add although none was asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    pub origin: String,
    pub url: String,
}

/// The user's account as this node reaches it: its wallet, how its keys are checked on chain,
/// the site the wallet signs for, and where time and nonces come from.
pub struct Account<W, K, E> {
    pub wallet: W,
    pub keys: K,
    pub site: Site,
    pub env: E,
}

impl<W, K, E: Clock> Account<W, K, E> {
    fn now_ms(&self) -> u64 {
        self.env.now_nanos() / 1_000_000
    }
}
