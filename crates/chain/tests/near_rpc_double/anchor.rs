//! `NearContractDouble`: the double's context-config contract read as an [`Anchor`] straight
//! from memory, with no RPC and no HTTP server in between. A TEST DOUBLE of the NEAR contract
//! (no NEAR node runs here): its views are the double's own (`view`, the contract's semantics),
//! their JSON read into the chain crate's types as `ContextConfig` reads a real answer, so a
//! flow over [`Anchor`] (an anchor write, reading an anchor into a node) runs in-process.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use tabnode_chain::{Anchor, Application, Capability, Revisions};
use tabnode_types::{ContextId, PublicKey};

use super::contract::{guest_panic, view};
use super::Chain;

/// A view the double's contract refused: its VM error, as NEAR would give it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DoubleRefused(pub String);

impl std::fmt::Display for DoubleRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the contract double refused: {}", self.0)
    }
}

impl std::error::Error for DoubleRefused {}

/// The contract of a shared [`Chain`] (the one a wallet double plays transactions on).
#[derive(Clone)]
pub struct NearContractDouble(pub Arc<Mutex<Chain>>);

impl NearContractDouble {
    fn view<R: DeserializeOwned>(&self, method: &str, args: Value) -> Result<R, DoubleRefused> {
        let chain = self.0.lock().unwrap();
        let answer =
            view(&chain, method, &serde_json::to_vec(&args).unwrap()).map_err(DoubleRefused)?;
        Ok(serde_json::from_value(answer).expect("the double answers in the contract's format"))
    }
}

impl Anchor for NearContractDouble {
    type Error = DoubleRefused;

    async fn members(&self, context: &ContextId) -> Result<Vec<PublicKey>, DoubleRefused> {
        let length = u32::MAX;
        self.view(
            "members",
            json!({"context_id": context, "offset": 0, "length": length}),
        )
    }

    async fn is_member(&self, context: &ContextId, key: &PublicKey) -> Result<bool, DoubleRefused> {
        self.view(
            "has_member",
            json!({"context_id": context, "identity": key}),
        )
    }

    async fn privileges(
        &self,
        context: &ContextId,
        keys: &[PublicKey],
    ) -> Result<BTreeMap<PublicKey, Vec<Capability>>, DoubleRefused> {
        self.view(
            "privileges",
            json!({"context_id": context, "identities": keys}),
        )
    }

    async fn application(&self, context: &ContextId) -> Result<Application, DoubleRefused> {
        self.view("application", json!({"context_id": context}))
    }

    async fn revisions(&self, context: &ContextId) -> Result<Revisions, DoubleRefused> {
        Ok(Revisions {
            members: self.view("members_revision", json!({"context_id": context}))?,
            application: self.view("application_revision", json!({"context_id": context}))?,
        })
    }

    async fn nonce(
        &self,
        context: &ContextId,
        key: &PublicKey,
    ) -> Result<Option<u64>, DoubleRefused> {
        self.view(
            "fetch_nonce",
            json!({"context_id": context, "member_id": key}),
        )
    }

    async fn proxy_contract(&self, context: &ContextId) -> Result<String, DoubleRefused> {
        self.view("proxy_contract", json!({"context_id": context}))
    }

    fn says_unknown(error: &DoubleRefused) -> bool {
        error.0 == guest_panic(tabnode_chain::UNKNOWN_CONTEXT_PANIC)
    }

    /// Memory always answers.
    fn is_unavailable(_: &DoubleRefused) -> bool {
        false
    }
}
