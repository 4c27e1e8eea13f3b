//! Writing a context's anchor: making the context-config contract record what this node's
//! membership log says of the context (its members and its app binary), and reading the
//! anchor back into the node.
//!
//! The plan (which `mutate` requests, with which signers and nonces) is `tabnode-chain`'s
//! ([`tabnode_chain::write`]); the node signs each request (its keys never leave it); the
//! user's wallet signs and sends them as one transaction, which the contract applies whole or
//! not at all; [`outcome`] reads what became of it.
//!
//! The chain is any [`Anchor`]: NEAR's ([`NearAnchor`], [`AnchorChain::new`]) in the page and
//! natively; in tests, a double of the contract in memory.

use serde_json::{json, Value};
use tabnode_chain::{
    plan_write, read_outcome, Anchor, ContextConfig, Intended, NearAnchor, PlanError, QuorumAnchor,
    RequestSigner, RpcClient, Transport, WritePlan,
};
use tabnode_identity::wallet::{TransactionWallet, WalletError};
use tabnode_node::{AnchorView, ChainSigner};
use tabnode_types::{AppId, ContextId};

use crate::{Account, FlowError, NodeHandle};

/// Where a context's anchor is written and read: one contract (on NEAR: through RPC URLs).
pub struct AnchorChain<A> {
    /// The account the wallet's transaction goes to.
    pub contract_id: String,
    /// Reads what the contract records, both to plan a write (the members, the application,
    /// the signer's nonce and privileges) and to read the anchor back: with a quorum above 1
    /// only what that many endpoints agree on (see [`quorum_reader`]), so one lying endpoint
    /// cannot set the nonces the node signs.
    pub reader: QuorumAnchor<A>,
}

/// Reads anchors from `rpc`: with a quorum of 1 from the first URL that answers (failing
/// over), else from each URL alike, taking an answer only when `quorum` of them agree.
/// `transport` makes each client's transport.
pub fn quorum_reader<T: Transport>(
    rpc: &[String],
    contract: &str,
    quorum: usize,
    transport: impl Fn() -> T,
) -> QuorumAnchor<NearAnchor<T>> {
    let reader = |urls: &[String]| near_anchor(urls, contract, &transport);
    match quorum {
        0 | 1 => QuorumAnchor::new(vec![reader(rpc)], 1),
        _ => QuorumAnchor::new(rpc.chunks(1).map(reader).collect(), quorum),
    }
}

fn near_anchor<T: Transport>(
    urls: &[String],
    contract: &str,
    transport: &impl Fn() -> T,
) -> NearAnchor<T> {
    let client = RpcClient::new(transport(), urls.to_vec());
    NearAnchor::new(ContextConfig::new(client, contract.to_owned()))
}

impl<T: Transport> AnchorChain<NearAnchor<T>> {
    pub fn new(rpc: &[String], contract: &str, quorum: usize, transport: impl Fn() -> T) -> Self {
        Self {
            contract_id: contract.to_owned(),
            reader: quorum_reader(rpc, contract, quorum, transport),
        }
    }
}

/// What a write did: the requests sent (none when the contract already records what the log
/// says), the transaction's hash, and the anchor as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnchorWrite {
    pub context_id: ContextId,
    /// Each request's summary ([`tabnode_chain::PlannedRequest::summary`]).
    pub requests: Vec<Value>,
    pub transaction_hash: Option<String>,
    /// `None` when the contract does not record the context, or could not be read.
    pub anchor: Option<AnchorView>,
}

impl AnchorWrite {
    /// `{contextId, requests, transactionHash, anchor: {members, appMatches} | null}`.
    pub fn to_json(&self) -> Value {
        json!({
            "contextId": self.context_id,
            "requests": self.requests,
            "transactionHash": self.transaction_hash,
            "anchor": self.anchor.as_ref().map(|a| json!({"members": a.members, "appMatches": a.app_matches})),
        })
    }
}

/// What became of a write's transaction, from the wallet's answer.
#[derive(Debug)]
pub enum Outcome {
    /// It ran: its hash, if the answer says.
    Done(Option<String>),
    /// The contract refused it (all or nothing: nothing changed on chain).
    Refused(FlowError),
    /// The answer is not an outcome: the anchor must be read to know.
    Unknown(FlowError),
}

/// Reads the wallet's `answer` to the transaction that carries `plan`.
pub fn outcome(plan: &WritePlan, answer: &Value) -> Outcome {
    match read_outcome(answer) {
        Ok(done) => Outcome::Done(done.hash),
        Err(Some(failed)) => {
            let which = failed
                .index
                .and_then(|i| plan.requests.get(i as usize))
                .map(|r| {
                    format!(
                        " at {} (signed by {}, nonce {})",
                        r.kind_name(),
                        r.signer_id,
                        r.nonce
                    )
                })
                .unwrap_or_default();
            Outcome::Refused(FlowError::AnchorWriteFailed(format!(
                "the contract refused the transaction{which}: {failed}"
            )))
        }
        Err(None) => Outcome::Unknown(FlowError::Wallet(WalletError::AnswerInvalid(format!(
            "the wallet did not return the transaction's outcome (it answered {answer}); the anchor was read again"
        )))),
    }
}

fn plan_error(e: PlanError) -> FlowError {
    let message = e.to_string();
    match &e {
        PlanError::Read { .. } if e.is_unavailable() => FlowError::RpcUnavailable(message),
        PlanError::Read { .. } => FlowError::AnchorReadFailed(message),
        PlanError::NoQuorum { .. } => FlowError::AnchorNoQuorum(message),
        PlanError::NotOnContract { .. } | PlanError::NotPrivileged { .. } => {
            FlowError::AnchorUnauthorized(message)
        }
    }
}

/// Reads what the contract records of context `id` (against its app binary `wasm`) and gives
/// it to the node; returns it. `None` when the contract does not record the context, or could
/// not be read: then the node's last view stands (never taken for "not anchored").
pub async fn read_anchor<A: Anchor>(
    node: &impl NodeHandle,
    reader: &QuorumAnchor<A>,
    id: &ContextId,
    wasm: &[u8],
) -> Option<AnchorView> {
    let view = match reader.anchored(id, wasm).await {
        Ok(anchored) => anchored.map(|a| AnchorView {
            members: a.members.into_iter().collect(),
            app_matches: a.app_matches,
        }),
        Err(e) => {
            tracing::warn!(context = %id, %e, "could not read the context's anchor");
            return None;
        }
    };
    let (id, anchor) = (*id, view.clone());
    let _ = node
        .run(async move |node| node.set_anchor(&id, anchor).await)
        .await;
    view
}

impl<W: TransactionWallet, K, E> Account<W, K, E> {
    /// Makes the contract record what the membership log says of context `id`: plans the
    /// requests from what the contract records now (what the reader's quorum of endpoints agree
    /// on; `AnchorNoQuorum` when too few do), has the node sign them (`Add` with the
    /// context key, which only the creator's node holds; the rest with this node's key, an
    /// admin's), has the wallet sign and send them as one transaction, then reads the anchor
    /// back into the node. Nothing to change sends nothing.
    pub async fn write_anchor<A: Anchor>(
        &self,
        node: &impl NodeHandle,
        chain: &AnchorChain<A>,
        id: ContextId,
    ) -> Result<AnchorWrite, FlowError> {
        let (members, wasm, me) = node
            .run(async move |node| {
                let members = node.members(&id)?;
                Ok((members, node.context_wasm(&id).await?, node.public_key()))
            })
            .await?;
        let intended = Intended {
            members: members.into_iter().map(|(key, _)| key).collect(),
            wasm: &wasm,
            source: format!("tabnode:{}", AppId::of_wasm(&wasm)),
        };
        let plan = plan_write(&chain.reader, &id, me, &intended)
            .await
            .map_err(plan_error)?;
        let mut transaction_hash = None;
        if !plan.is_empty() {
            let requests = plan.requests.clone();
            let signed = node
                .run(async move |node| {
                    let mut signed = Vec::with_capacity(requests.len());
                    for request in &requests {
                        let signer = match request.signer {
                            RequestSigner::ContextKey => ChainSigner::ContextKey,
                            RequestSigner::Member => ChainSigner::Member,
                        };
                        let (_, signature) = node
                            .sign_context_request(&id, &request.payload(), signer)
                            .await?;
                        signed.push(request.signed(signature));
                    }
                    Ok(signed)
                })
                .await?;
            let transaction = plan.transaction(&chain.contract_id, &signed);
            let answer = self.wallet.sign_and_send(&transaction).await?;
            match outcome(&plan, &answer) {
                Outcome::Done(hash) => transaction_hash = hash,
                Outcome::Refused(e) => return Err(e),
                Outcome::Unknown(e) => {
                    read_anchor(node, &chain.reader, &id, &wasm).await;
                    return Err(e);
                }
            }
        }
        let anchor = read_anchor(node, &chain.reader, &id, &wasm).await;
        Ok(AnchorWrite {
            context_id: id,
            requests: plan.requests.iter().map(|r| r.summary()).collect(),
            transaction_hash,
            anchor,
        })
    }
}
