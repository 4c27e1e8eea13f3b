//! Calimero's context-config contract on NEAR (`calimero-network/contracts`,
//! `contracts/near/context-config`): typed view calls over the RPC client, and the `mutate`
//! function call a wallet signs and sends.
//!
//! Views (`src/query.rs` of the contract; near-sdk JSON arguments named as the Rust parameters):
//!
//! | method | arguments | returns |
//! |---|---|---|
//! | `application` | `context_id` | `{id, blob, size, source, metadata}` |
//! | `application_revision` | `context_id` | u64 |
//! | `proxy_contract` | `context_id` | account id |
//! | `members` | `context_id`, `offset`, `length` | `[identity]` in the contract's order |
//! | `has_member` | `context_id`, `identity` | bool |
//! | `members_revision` | `context_id` | u64 |
//! | `privileges` | `context_id`, `identities` (empty: every privileged one) | `{identity: [capability]}` |
//! | `fetch_nonce` | `context_id`, `member_id` | u64 or null |
//!
//! Every view but `fetch_nonce` panics with "context does not exist" for an unknown context:
//! that comes back as [`RpcError::ContractExecution`] with that panic message.
//!
//! Changes go through `mutate`, whose input is a `Signed<Request>`:
//! `{"payload": base58(request JSON bytes), "signature": base58(ed25519 signature of those bytes)}`,
//! signed by the request's `signerId` (a member identity, or the context's own key to add the
//! context). The request is `{"signerId", "nonce", "scope": "Context", "params": {"contextId",
//! "scope": <kind>, "params": {…}}}`; the nonce must equal `fetch_nonce` for members that have
//! one. The NEAR transaction carrying it is signed by the user's wallet, outside this crate:
//! [`FunctionCall`] is what `signAndSendTransaction` takes.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{json, Value};
use tabnode_types::{ContextId, PublicKey, SecretKey, Signature};

use crate::calimero::{Application, Capability};
use crate::client::{Answer, CallError, RpcClient, Transport};
use crate::rpc::BlockRef;

/// Gas Calimero's own client attaches to `mutate`: 300 TGas, NEAR's per-transaction maximum.
pub const MUTATE_GAS: u64 = 300_000_000_000_000;

/// The contract's views over an RPC client. Reads at [`BlockRef::Final`] unless told otherwise.
pub struct ContextConfig<T> {
    client: RpcClient<T>,
    contract_id: String,
    at: BlockRef,
}

/// What `privileges` returns: each identity's capabilities.
pub type Privileges = BTreeMap<PublicKey, Vec<Capability>>;

impl<T: Transport> ContextConfig<T> {
    pub fn new(client: RpcClient<T>, contract_id: impl Into<String>) -> Self {
        Self {
            client,
            contract_id: contract_id.into(),
            at: BlockRef::Final,
        }
    }

    /// Reads at another block reference (e.g. [`BlockRef::Optimistic`], or a fixed height so
    /// several views see one state).
    pub fn at(mut self, at: BlockRef) -> Self {
        self.at = at;
        self
    }

    pub fn contract_id(&self) -> &str {
        &self.contract_id
    }

    pub fn client(&self) -> &RpcClient<T> {
        &self.client
    }

    async fn view<R: for<'de> Deserialize<'de>>(
        &self,
        method: &str,
        args: Value,
    ) -> Result<Answer<R>, CallError> {
        self.client
            .view(&self.contract_id, method, &args, &self.at)
            .await
    }

    /// The context's application (with its blob id, to check against a wasm).
    pub async fn application(&self, context: &ContextId) -> Result<Answer<Application>, CallError> {
        self.view("application", json!({ "context_id": context }))
            .await
    }

    /// Bumped each time the application changes.
    pub async fn application_revision(
        &self,
        context: &ContextId,
    ) -> Result<Answer<u64>, CallError> {
        self.view("application_revision", json!({ "context_id": context }))
            .await
    }

    /// The account of the context's proxy contract.
    pub async fn proxy_contract(&self, context: &ContextId) -> Result<Answer<String>, CallError> {
        self.view("proxy_contract", json!({ "context_id": context }))
            .await
    }

    /// One page of members, in the contract's order.
    pub async fn members(
        &self,
        context: &ContextId,
        offset: usize,
        length: usize,
    ) -> Result<Answer<Vec<PublicKey>>, CallError> {
        self.view(
            "members",
            json!({ "context_id": context, "offset": offset, "length": length }),
        )
        .await
    }

    /// Every member, read `page` at a time until a short page. The pages may come from
    /// different nodes if one fails; the answer carries the last URL.
    pub async fn all_members(
        &self,
        context: &ContextId,
        page: usize,
    ) -> Result<Answer<Vec<PublicKey>>, CallError> {
        let page = page.max(1);
        let mut all = Vec::new();
        let mut failed_over = Vec::new();
        loop {
            let answer = self.members(context, all.len(), page).await?;
            failed_over.extend(answer.failed_over);
            let n = answer.value.len();
            all.extend(answer.value);
            if n < page {
                return Ok(Answer {
                    value: all,
                    url: answer.url,
                    failed_over,
                });
            }
        }
    }

    pub async fn has_member(
        &self,
        context: &ContextId,
        identity: &PublicKey,
    ) -> Result<Answer<bool>, CallError> {
        self.view(
            "has_member",
            json!({ "context_id": context, "identity": identity }),
        )
        .await
    }

    /// Bumped each time the member list changes.
    pub async fn members_revision(&self, context: &ContextId) -> Result<Answer<u64>, CallError> {
        self.view("members_revision", json!({ "context_id": context }))
            .await
    }

    /// The capabilities of `identities`, or of every privileged identity when empty.
    pub async fn privileges(
        &self,
        context: &ContextId,
        identities: &[PublicKey],
    ) -> Result<Answer<Privileges>, CallError> {
        self.view(
            "privileges",
            json!({ "context_id": context, "identities": identities }),
        )
        .await
    }

    /// The nonce `member`'s next signed request must carry; `None` for a context or member the
    /// contract does not know.
    pub async fn fetch_nonce(
        &self,
        context: &ContextId,
        member: &PublicKey,
    ) -> Result<Answer<Option<u64>>, CallError> {
        self.view(
            "fetch_nonce",
            json!({ "context_id": context, "member_id": member }),
        )
        .await
    }

    /// Builds the `mutate` call for `request`, signed by `signer` with the nonce the contract
    /// expects now (0 when it has none, as for a context being added).
    pub async fn mutation(
        &self,
        request: &ContextRequest,
        signer: &SecretKey,
    ) -> Result<FunctionCall, CallError> {
        let nonce = self
            .fetch_nonce(&request.context_id, &signer.public())
            .await?
            .value
            .unwrap_or(0);
        Ok(request.sign(signer, nonce).function_call(&self.contract_id))
    }
}

/// A change to one context (`ContextRequestKind` in calimero-context-config). Open invitations
/// and context groups are not covered yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContextRequestKind {
    /// Creates the context; signed by the context's own key, `author_id` becomes its first
    /// member with every privilege.
    Add {
        author_id: PublicKey,
        application: Application,
    },
    UpdateApplication {
        application: Application,
    },
    AddMembers {
        members: Vec<PublicKey>,
    },
    /// Also revokes the removed members' privileges.
    RemoveMembers {
        members: Vec<PublicKey>,
    },
    Grant {
        capabilities: Vec<(PublicKey, Capability)>,
    },
    Revoke {
        capabilities: Vec<(PublicKey, Capability)>,
    },
    UpdateProxyContract,
}

/// A request about one context, before it is signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextRequest {
    pub context_id: ContextId,
    pub kind: ContextRequestKind,
}

impl ContextRequest {
    pub fn new(context_id: ContextId, kind: ContextRequestKind) -> Self {
        Self { context_id, kind }
    }

    /// The request's JSON, as calimero-context-config's serde derives write it.
    pub fn to_json(&self, signer: &PublicKey, nonce: u64) -> Value {
        let (scope, params) = match &self.kind {
            ContextRequestKind::Add {
                author_id,
                application,
            } => (
                "Add",
                Some(json!({ "author_id": author_id, "application": application })),
            ),
            ContextRequestKind::UpdateApplication { application } => (
                "UpdateApplication",
                Some(json!({ "application": application })),
            ),
            ContextRequestKind::AddMembers { members } => {
                ("AddMembers", Some(json!({ "members": members })))
            }
            ContextRequestKind::RemoveMembers { members } => {
                ("RemoveMembers", Some(json!({ "members": members })))
            }
            ContextRequestKind::Grant { capabilities } => {
                ("Grant", Some(json!({ "capabilities": capabilities })))
            }
            ContextRequestKind::Revoke { capabilities } => {
                ("Revoke", Some(json!({ "capabilities": capabilities })))
            }
            ContextRequestKind::UpdateProxyContract => ("UpdateProxyContract", None),
        };
        let mut context = json!({ "contextId": self.context_id, "scope": scope });
        if let Some(params) = params {
            context["params"] = params;
        }
        json!({
            "signerId": signer,
            "nonce": nonce,
            "scope": "Context",
            "params": context,
        })
    }

    /// Signs the request's JSON bytes with `signer` (plain ed25519 over the bytes, as the
    /// contract verifies them).
    pub fn sign(&self, signer: &SecretKey, nonce: u64) -> SignedRequest {
        let payload = serde_json::to_vec(&self.to_json(&signer.public(), nonce))
            .expect("a JSON value always serializes");
        let signature = signer.sign(&payload);
        SignedRequest { payload, signature }
    }
}

/// `Signed<Request>`: the payload bytes and their signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedRequest {
    pub payload: Vec<u8>,
    pub signature: Signature,
}

impl SignedRequest {
    /// `{"payload": base58, "signature": base58}`: `mutate`'s JSON input.
    pub fn to_json(&self) -> Value {
        json!({
            "payload": bs58::encode(&self.payload).into_string(),
            "signature": bs58::encode(self.signature.0).into_string(),
        })
    }

    /// The `mutate` function call on `contract_id`.
    pub fn function_call(&self, contract_id: &str) -> FunctionCall {
        FunctionCall {
            receiver_id: contract_id.to_owned(),
            method_name: "mutate".to_owned(),
            args: self.to_json(),
            gas: MUTATE_GAS,
            deposit: 0,
        }
    }
}

/// A NEAR function-call action for the user's wallet to sign and send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionCall {
    pub receiver_id: String,
    pub method_name: String,
    /// JSON arguments (the wallet encodes them as the action's bytes).
    pub args: Value,
    /// In gas units.
    pub gas: u64,
    /// In yoctoNEAR.
    pub deposit: u128,
}

impl FunctionCall {
    /// The argument bytes the transaction carries.
    pub fn args_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(&self.args).expect("a JSON value always serializes")
    }

    /// The transaction as wallet-selector's and NEAR Connect's `signAndSendTransaction` take it:
    /// `{receiverId, actions: [{type: "FunctionCall", params: {methodName, args, gas, deposit}}]}`,
    /// gas and deposit as decimal strings.
    pub fn wallet_transaction(&self) -> Value {
        json!({
            "receiverId": self.receiver_id,
            "actions": [{
                "type": "FunctionCall",
                "params": {
                    "methodName": self.method_name,
                    "args": self.args,
                    "gas": self.gas.to_string(),
                    "deposit": self.deposit.to_string(),
                }
            }]
        })
    }
}
