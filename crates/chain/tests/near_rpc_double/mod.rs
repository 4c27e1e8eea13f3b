//! `near_rpc_double`: a TEST DOUBLE of a NEAR JSON-RPC node. No NEAR node runs here, so the
//! tests talk over real HTTP to this small server instead. It is not NEAR: it keeps in memory
//! the state of one Calimero context-config contract (contexts, members, privileges, nonces,
//! the application with its hashes) plus a few accounts and access keys, and answers
//!
//! - `query` / `call_function` for the contract's views (`application`, `application_revision`,
//!   `proxy_contract`, `members`, `has_member`, `members_revision`, `privileges`,
//!   `fetch_nonce`), with their semantics as read in calimero-network/contracts
//!   (`contracts/near/context-config/src/query.rs`),
//! - `query` / `view_access_key`, and `block`,
//!
//! in NEAR's formats (NEAR's RPC docs and nearcore's `process_query_response`): `result.result`
//! as an array of the bytes of the JSON the method returns, with `logs`, `block_height` and
//! `block_hash`; a contract panic and an unknown access key inside `result` as an `error`
//! string; other errors as verror objects (`error.name`, `error.cause.name`, `error.cause.info`,
//! plus the legacy `code`, `message`, `data`). It refuses requests NEAR would refuse
//! (`REQUEST_VALIDATION_ERROR` / `PARSE_ERROR`, HTTP 400), so a wrong request shape fails a test.
//!
//! `Chain::apply_mutate` plays the contract's `mutate` on the arguments a wallet would send
//! (signature, nonce, privileges checked as the contract does), since transactions are sent by
//! the user's wallet and not by the client under test; `Chain::apply_transaction` plays several
//! as one transaction (in order, all or nothing, as NEAR runs one receipt's actions).
//!
//! Each context's proxy contract is kept too ([`proxy::Proxy`], at the account its
//! `proxy_contract` names): `Chain::apply_proxy_mutate` plays its `mutate` (signature, member
//! list, proposals and approvals, execution at the threshold), recording the transfers and
//! function calls it would make.
//!
//! [`anchor::NearContractDouble`] reads the same contract as a `tabnode_chain::Anchor` with no RPC and
//! no server, for flows tested in-process.
//!
//! Each [`Server`] can misbehave on demand ([`Behaviour`]) for failover tests, and
//! [`refusing_url`] gives a URL whose connections are closed unanswered.

#![allow(dead_code)]

pub mod anchor;
mod contract;
pub mod proxy;
mod server;

// Not every test file uses every part.
#[allow(unused_imports)]
pub use server::{refusing_url, Behaviour, Server};

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub type Id = [u8; 32];

fn b58(bytes: &[u8]) -> String {
    bs58::encode(bytes).into_string()
}

/// The contract's copy of an application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct App {
    pub id: Id,
    pub blob: Id,
    pub size: u64,
    pub source: String,
    pub metadata: Vec<u8>,
}

impl App {
    fn to_json(&self) -> Value {
        json!({
            "id": b58(&self.id),
            "blob": b58(&self.blob),
            "size": self.size,
            "source": self.source,
            "metadata": b58(&self.metadata),
        })
    }
}

/// One context in the contract: each guarded part has its privileged identities and revision.
#[derive(Debug, Clone)]
pub struct Context {
    pub application: App,
    pub application_revision: u64,
    pub application_privileged: BTreeSet<Id>,
    /// In the contract's iteration order (an IterableSet: insertion order, swap-remove).
    pub members: Vec<Id>,
    pub members_revision: u64,
    pub members_privileged: BTreeSet<Id>,
    pub proxy: String,
    pub proxy_privileged: BTreeSet<Id>,
    pub nonces: BTreeMap<Id, u64>,
}

impl Context {
    /// A context as `Add` leaves it: the author is the only member and holds every privilege.
    pub fn new(author: Id, application: App, proxy: String) -> Self {
        let one: BTreeSet<Id> = [author].into();
        Self {
            application,
            application_revision: 0,
            application_privileged: one.clone(),
            members: vec![author],
            members_revision: 0,
            members_privileged: one.clone(),
            proxy,
            proxy_privileged: one,
            nonces: [(author, 0)].into(),
        }
    }
}

/// A NEAR account: whether code is deployed, and its access keys (`ed25519:…` → nonce,
/// permission JSON as NEAR prints it).
#[derive(Debug, Clone, Default)]
pub struct Account {
    pub has_contract: bool,
    pub keys: BTreeMap<String, (u64, Value)>,
}

/// The double's whole chain.
#[derive(Debug, Clone)]
pub struct Chain {
    pub height: u64,
    pub contract_id: String,
    pub accounts: BTreeMap<String, Account>,
    pub contexts: BTreeMap<Id, Context>,
    pub next_proxy_id: u64,
    /// The contexts' proxy contracts that were called, by account.
    pub proxies: BTreeMap<String, proxy::Proxy>,
    /// When set, a contract panic and an unknown key come back as structured
    /// `CONTRACT_EXECUTION_ERROR` / `UNKNOWN_ACCESS_KEY` errors instead of nearcore's
    /// backward-compatible `result.error` strings.
    pub structured_errors: bool,
}

impl Chain {
    pub fn new(contract_id: &str) -> Self {
        let mut accounts = BTreeMap::new();
        accounts.insert(
            contract_id.to_owned(),
            Account {
                has_contract: true,
                keys: BTreeMap::new(),
            },
        );
        Self {
            height: 1000,
            contract_id: contract_id.to_owned(),
            accounts,
            contexts: BTreeMap::new(),
            next_proxy_id: 0,
            proxies: BTreeMap::new(),
            structured_errors: false,
        }
    }

    pub fn shared(self) -> Arc<Mutex<Chain>> {
        Arc::new(Mutex::new(self))
    }

    pub fn block_hash(height: u64) -> String {
        let mut h = Sha256::new();
        h.update(b"near_rpc_double block");
        h.update(height.to_le_bytes());
        b58(&h.finalize())
    }

    /// Timestamps: one second per block from a fixed start.
    pub fn block_timestamp_ns(height: u64) -> u64 {
        1_700_000_000_000_000_000 + height * 1_000_000_000
    }

    /// Stores a context directly, as if `Add` had run.
    pub fn put_context(&mut self, context_id: Id, context: Context) {
        self.contexts.insert(context_id, context);
    }
}

/// The contract account the tests talk to.
pub const CONTRACT: &str = "config.calimero.testnet";

/// The client under test on the contract at `urls`, in order (5 s per request).
pub fn contract_client(
    urls: Vec<String>,
) -> tabnode_chain::ContextConfig<tabnode_chain::native::ReqwestTransport> {
    let rpc = tabnode_chain::RpcClient::new(tabnode_chain::native::ReqwestTransport::new(), urls)
        .with_timeout(Duration::from_secs(5));
    tabnode_chain::ContextConfig::new(rpc, CONTRACT)
}

/// A test key from a one-byte seed.
pub fn key(n: u8) -> tabnode_types::SecretKey {
    tabnode_types::SecretKey::from_seed([n; 32])
}

/// `len` bytes standing in for an app binary, different per `salt`.
pub fn wasm(len: usize, salt: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31) ^ salt)
        .collect()
}
