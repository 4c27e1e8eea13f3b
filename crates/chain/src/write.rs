//! Writing a context's anchor: what the contract must be told so that it records what the
//! node's membership log says (its members and its app binary), as `mutate` requests for one
//! NEAR transaction, and how to read that transaction's outcome.
//!
//! The node decides who is a member; the contract is a copy anchored on chain. A write is
//! therefore a difference: [`plan`] compares the log's view ([`Intended`]) with the contract's
//! ([`Recorded`], or nothing when the contract does not know the context) and gives at most one
//! request of each kind, in this order:
//!
//! 1. `Add` (only when the contract does not know the context): signed by the **context's own
//!    key** (the contract requires `signerId == contextId`), naming this node's key as author
//!    and the app binary as application. The author becomes the first member with every
//!    privilege and nonce 0.
//! 2. `AddMembers`: members of the log the contract does not list.
//! 3. `RemoveMembers`: members the contract lists that the log does not (removed, left).
//! 4. `UpdateApplication`: when the contract's application is not this binary (size and
//!    Calimero blob id, [`Application::verify_wasm`]).
//!
//! 2–4 are signed by this node's member key. Nonces follow the contract's
//! `check_and_increment_nonce` (`contracts/near/context-config/src/mutate.rs`): a request by a
//! signer with a nonce entry must carry exactly that nonce, which is then incremented, and a
//! signer without one (the context key, or any signer of a context that does not exist yet) is
//! not checked. All actions of one transaction to one receiver run in one receipt, in order, so
//! a signer's requests in one transaction carry `n, n+1, …` from its current nonce `n` (0 for
//! the author right after `Add`). The receipt is all or nothing: if one request panics, none of
//! the transaction's changes stay.
//!
//! Before anything is signed the plan checks what the contract would refuse anyway, so the
//! user's wallet is not asked to pay for a transaction bound to fail: the signer must be a
//! member on the contract and hold `ManageMembers` / `ManageApplication` for the requests that
//! need them. The contract stays the authority: a race (another write landing between the
//! reads and the transaction) is caught there, e.g. as `invalid nonce`.

use std::collections::BTreeSet;

use serde_json::{json, Value};
use tabnode_types::{ContextId, PublicKey, Signature};

use crate::anchor::Anchor;
use crate::calimero::{Application, Capability};
use crate::client::{CallError, Transport};
use crate::context_config::{ContextConfig, ContextRequest, ContextRequestKind, SignedRequest};
use crate::rpc::RpcError;

/// NEAR's limit on the gas a transaction may attach in total (`max_total_prepaid_gas`,
/// 300 TGas): a transaction's `mutate` calls share it.
pub const MAX_TRANSACTION_GAS: u64 = 300_000_000_000_000;

/// What the membership log says the contract should record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Intended<'a> {
    /// Every current member (any role: the chain has no reader role, and a reader's node runs
    /// calls only if the anchor lists it).
    pub members: BTreeSet<PublicKey>,
    /// The binary the context runs now.
    pub wasm: &'a [u8],
    /// The `source` written with a new application record (free text for the contract).
    pub source: String,
}

/// What the contract records of a context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub members: Vec<PublicKey>,
    pub application: Application,
    /// The signer's nonce (`fetch_nonce`): `None` if the contract has none for it.
    pub signer_nonce: Option<u64>,
    /// The signer's capabilities (`privileges`).
    pub signer_capabilities: Vec<Capability>,
}

/// Which key signs a request: the context's own key (only for `Add`), or this node's member
/// key. The key itself stays with the node, which signs the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestSigner {
    ContextKey,
    Member,
}

/// One request of a write, with its signer and nonce: [`PlannedRequest::payload`] is what is
/// signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedRequest {
    pub request: ContextRequest,
    pub signer: RequestSigner,
    /// The public key of the signer: the `signerId` in the payload.
    pub signer_id: PublicKey,
    pub nonce: u64,
}

impl PlannedRequest {
    /// The request's JSON bytes: what the signer signs and what `mutate` receives (base58).
    pub fn payload(&self) -> Vec<u8> {
        serde_json::to_vec(&self.request.to_json(&self.signer_id, self.nonce))
            .expect("a JSON value always serializes")
    }

    /// The request signed: `signature` is the signer's ed25519 signature of [`Self::payload`].
    pub fn signed(&self, signature: Signature) -> SignedRequest {
        SignedRequest {
            payload: self.payload(),
            signature,
        }
    }

    /// The kind's name as the contract spells it (`Add`, `AddMembers`, …).
    pub fn kind_name(&self) -> &'static str {
        match &self.request.kind {
            ContextRequestKind::Add { .. } => "Add",
            ContextRequestKind::UpdateApplication { .. } => "UpdateApplication",
            ContextRequestKind::AddMembers { .. } => "AddMembers",
            ContextRequestKind::RemoveMembers { .. } => "RemoveMembers",
            ContextRequestKind::Grant { .. } => "Grant",
            ContextRequestKind::Revoke { .. } => "Revoke",
            ContextRequestKind::UpdateProxyContract => "UpdateProxyContract",
        }
    }

    /// A short JSON description: `{kind, signer, nonce, members?, application?}`.
    pub fn summary(&self) -> Value {
        let mut out = json!({
            "kind": self.kind_name(),
            "signer": self.signer_id,
            "nonce": self.nonce,
        });
        match &self.request.kind {
            ContextRequestKind::Add {
                author_id,
                application,
            } => {
                out["members"] = json!([author_id]);
                out["application"] = app_summary(application);
            }
            ContextRequestKind::UpdateApplication { application } => {
                out["application"] = app_summary(application);
            }
            ContextRequestKind::AddMembers { members }
            | ContextRequestKind::RemoveMembers { members } => out["members"] = json!(members),
            _ => {}
        }
        out
    }
}

fn app_summary(app: &Application) -> Value {
    json!({ "id": app.id, "blob": app.blob, "size": app.size })
}

/// The requests that make the contract agree with the log, in transaction order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WritePlan {
    pub context_id: ContextId,
    pub requests: Vec<PlannedRequest>,
}

impl WritePlan {
    /// Nothing to write: the contract already records what the log says.
    pub fn is_empty(&self) -> bool {
        self.requests.is_empty()
    }

    /// The transaction for `signAndSendTransaction` (wallet-selector's and NEAR Connect's
    /// shape): one `mutate` action per signed request, in order, sharing
    /// [`MAX_TRANSACTION_GAS`] equally, no deposit. `signed[i]` is `requests[i]` signed.
    pub fn transaction(&self, contract_id: &str, signed: &[SignedRequest]) -> Value {
        assert_eq!(
            signed.len(),
            self.requests.len(),
            "one signature per planned request"
        );
        let gas = MAX_TRANSACTION_GAS / signed.len().max(1) as u64;
        let actions: Vec<Value> = signed
            .iter()
            .map(|s| {
                json!({
                    "type": "FunctionCall",
                    "params": {
                        "methodName": "mutate",
                        "args": s.to_json(),
                        "gas": gas.to_string(),
                        "deposit": "0",
                    }
                })
            })
            .collect();
        json!({ "receiverId": contract_id, "actions": actions })
    }
}

/// Why a write cannot be planned (nothing was sent).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// The contract records the context, but not this node's key as a member: a member listed
    /// there (with `ManageMembers`) must add it first.
    #[error("{signer} is not a member of context {context_id} on the contract: an admin it lists must add this node first")]
    NotOnContract {
        context_id: ContextId,
        signer: PublicKey,
    },
    /// The signer lacks a capability the contract requires for a request.
    #[error(
        "{signer} may not {what} of context {context_id} on the contract: it lacks {capability:?}"
    )]
    NotPrivileged {
        context_id: ContextId,
        signer: PublicKey,
        capability: Capability,
        what: &'static str,
    },
    /// The chain could not be read.
    #[error("could not read context {context_id} from the contract: {error}")]
    Read {
        context_id: ContextId,
        /// The anchor's error, as text (every URL tried, for NEAR).
        error: String,
        /// No endpoint gave a usable answer ([`Anchor::is_unavailable`]).
        unavailable: bool,
    },
    /// The RPC endpoints asked gave different answers ([`Anchor::is_disagreement`]): what the
    /// contract records, and the nonces to sign, are unknown. Nothing is planned from one of them.
    #[error(
        "the RPC endpoints disagree on what the contract records of context {context_id}: {error}"
    )]
    NoQuorum {
        context_id: ContextId,
        error: String,
    },
}

impl PlanError {
    /// True when no RPC node gave a usable answer (as opposed to the chain's own answer).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, PlanError::Read { unavailable, .. } if *unavailable)
    }

    fn read<A: Anchor>(context_id: &ContextId, error: A::Error) -> Self {
        if A::is_disagreement(&error) {
            return PlanError::NoQuorum {
                context_id: *context_id,
                error: error.to_string(),
            };
        }
        PlanError::Read {
            context_id: *context_id,
            unavailable: A::is_unavailable(&error),
            error: error.to_string(),
        }
    }
}

/// Reads what `anchor` records of `context_id` ([`Anchor::recorded`]: members, application,
/// and `member`'s nonce and privileges) and plans the write that makes it record `intended`
/// (see [`plan`]). A context the anchor does not know is planned as `Add`.
pub async fn plan_write<A: Anchor>(
    anchor: &A,
    context_id: &ContextId,
    member: PublicKey,
    intended: &Intended<'_>,
) -> Result<WritePlan, PlanError> {
    let recorded = anchor
        .recorded(context_id, &member)
        .await
        .map_err(|e| PlanError::read::<A>(context_id, e))?;
    plan(*context_id, member, intended, recorded.as_ref())
}

/// The requests that make the contract record `intended` for `context_id`, signed by `member`
/// (this node's key) and, for `Add`, by the context key. `recorded` is `None` when the contract
/// does not know the context. See the module docs for the order, the nonces and the checks.
pub fn plan(
    context_id: ContextId,
    member: PublicKey,
    intended: &Intended<'_>,
    recorded: Option<&Recorded>,
) -> Result<WritePlan, PlanError> {
    let context_key = PublicKey(context_id.0);
    let mut requests = Vec::new();
    let (on_chain, app_matches, mut nonce): (BTreeSet<PublicKey>, bool, u64) = match recorded {
        None => {
            requests.push(PlannedRequest {
                request: ContextRequest::new(
                    context_id,
                    ContextRequestKind::Add {
                        author_id: member,
                        application: Application::for_wasm(
                            intended.wasm,
                            intended.source.clone(),
                            Vec::new(),
                        ),
                    },
                ),
                signer: RequestSigner::ContextKey,
                signer_id: context_key,
                // Not checked: the context has no nonces before it exists.
                nonce: 0,
            });
            // After `Add` the author is the only member, with nonce 0 and every privilege.
            (BTreeSet::from([member]), true, 0)
        }
        Some(r) => (
            r.members.iter().copied().collect(),
            r.application.verify_wasm(intended.wasm).is_ok(),
            0,
        ),
    };
    let to_add: Vec<PublicKey> = intended.members.difference(&on_chain).copied().collect();
    let to_remove: Vec<PublicKey> = on_chain.difference(&intended.members).copied().collect();
    let mut member_kinds = Vec::new();
    if !to_add.is_empty() {
        member_kinds.push(ContextRequestKind::AddMembers { members: to_add });
    }
    if !to_remove.is_empty() {
        member_kinds.push(ContextRequestKind::RemoveMembers { members: to_remove });
    }
    if !app_matches {
        member_kinds.push(ContextRequestKind::UpdateApplication {
            application: Application::for_wasm(intended.wasm, intended.source.clone(), Vec::new()),
        });
    }
    if member_kinds.is_empty() {
        return Ok(WritePlan {
            context_id,
            requests,
        });
    }
    if let Some(r) = recorded {
        // The contract checks no nonce for a signer without one, but such a signer is no
        // member and every request below needs a privilege: refuse before the wallet is asked.
        let Some(current) = r.signer_nonce.filter(|_| r.members.contains(&member)) else {
            return Err(PlanError::NotOnContract {
                context_id,
                signer: member,
            });
        };
        nonce = current;
        for kind in &member_kinds {
            let (capability, what) = match kind {
                ContextRequestKind::UpdateApplication { .. } => {
                    (Capability::ManageApplication, "change the application")
                }
                _ => (Capability::ManageMembers, "change the members"),
            };
            if !r.signer_capabilities.contains(&capability) {
                return Err(PlanError::NotPrivileged {
                    context_id,
                    signer: member,
                    capability,
                    what,
                });
            }
        }
    }
    for kind in member_kinds {
        requests.push(PlannedRequest {
            request: ContextRequest::new(context_id, kind),
            signer: RequestSigner::Member,
            signer_id: member,
            nonce,
        });
        nonce += 1;
    }
    Ok(WritePlan {
        context_id,
        requests,
    })
}

/// A transaction that ran to the end: its hash (base58).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionDone {
    pub hash: Option<String>,
}

/// A transaction that failed on chain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}{}", index.map(|i| format!("action {i}: ")).unwrap_or_default(), hash.as_deref().map(|h| format!(" (transaction {h})")).unwrap_or_default())]
pub struct TransactionFailed {
    pub hash: Option<String>,
    /// The failing action's index, when NEAR says which.
    pub index: Option<u64>,
    /// The contract's panic message when it panicked (`Smart contract panicked: ` taken off),
    /// otherwise NEAR's error as JSON text.
    pub message: String,
}

/// Reads a NEAR `FinalExecutionOutcome` (what `broadcast_tx_commit` and wallets'
/// `signAndSendTransaction` return): `status` is `{"SuccessValue": …}` or
/// `{"Failure": {"ActionError": {"index", "kind": {"FunctionCallError": {"ExecutionError":
/// "Smart contract panicked: …"}}}}}` (or another `TxExecutionError`). Anything else is not an
/// outcome: `Err(None)`.
pub fn read_outcome(outcome: &Value) -> Result<TransactionDone, Option<TransactionFailed>> {
    let hash = outcome
        .pointer("/transaction/hash")
        .or_else(|| outcome.pointer("/transaction_outcome/id"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let status = outcome.get("status").ok_or(None)?;
    if status.get("SuccessValue").is_some() || status.get("SuccessReceiptId").is_some() {
        return Ok(TransactionDone { hash });
    }
    let failure = status.get("Failure").ok_or(None)?;
    let index = failure
        .pointer("/ActionError/index")
        .and_then(Value::as_u64);
    let message = failure
        .pointer("/ActionError/kind/FunctionCallError/ExecutionError")
        .and_then(Value::as_str)
        .map(|m| {
            m.strip_prefix("Smart contract panicked: ")
                .unwrap_or(m)
                .to_owned()
        })
        .unwrap_or_else(|| failure.to_string());
    Err(Some(TransactionFailed {
        hash,
        index,
        message,
    }))
}

impl<T: Transport> ContextConfig<T> {
    /// What the contract records of `context_id` for a write signed by `member`
    /// ([`Anchor::recorded`]); a context whose views panic is one it does not know.
    pub async fn recorded(
        &self,
        context_id: &ContextId,
        member: &PublicKey,
    ) -> Result<Option<Recorded>, CallError> {
        let application = match self.application(context_id).await {
            // The contract panics on a context it does not know: the chain's answer.
            Err(e) if matches!(e.error, RpcError::ContractExecution { .. }) => return Ok(None),
            Err(e) => return Err(e),
            Ok(application) => application.value,
        };
        Ok(Some(Recorded {
            members: self.all_members(context_id, 100).await?.value,
            application,
            signer_nonce: self.fetch_nonce(context_id, member).await?.value,
            signer_capabilities: self
                .privileges(context_id, &[*member])
                .await?
                .value
                .remove(member)
                .unwrap_or_default(),
        }))
    }
}
