//! Sending a proposal's chain actions to the context's proxy contract, as merod 0.10 does: each
//! member sends its own part (the author its proposal, every other member its approval),
//! signed with its identity key on the context, through the user's wallet; the contract runs
//! the proposal's actions at the approval that reaches its threshold.
//!
//! The node builds and signs the request from its log (`Node::proxy_request`: its key never
//! leaves it, and it signs only what the log says this member did); `tabnode-chain` reads the
//! proxy's account (`proxy_contract` on the context-config contract, through the same reader,
//! and quorum, as anchor writes) and the answer ([`tabnode_chain::read_proxy_outcome`]). With
//! no chain, or a context the contract does not record, the proposal needs a chain and nothing
//! is sent ([`FlowError::NeedsChain`], naming the action).
//!
//! An embedder may send each part itself (the page's `sendProposalToChain`), or on its own
//! after each of the node's steps ([`Account::send_own_parts`], the page's
//! `proposalsToChain: "auto"`), as merod's node does after each call.

use serde_json::{json, Value};
use tabnode_chain::{read_proxy_outcome, Anchor, ProxyState, QuorumAnchor, SignedRequest};
use tabnode_identity::wallet::{TransactionWallet, WalletError};
use tabnode_node::{chain_action, MemberOp, NodeEvent, ProposalId, ProxyScope};
use tabnode_types::{ContextId, PublicKey};

use crate::anchor::AnchorChain;
use crate::{Account, FlowError, NodeHandle};

/// What sending this member's part of a proposal to the proxy did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxySend {
    pub context_id: ContextId,
    pub proposal: ProposalId,
    /// The author's proposal, or another member's approval.
    pub scope: ProxyScope,
    /// The proposal's first action that needs the chain.
    pub action: &'static str,
    /// The proxy contract's account.
    pub proxy_contract: String,
    pub transaction_hash: Option<String>,
    /// What the proxy holds of the proposal now, when its answer says.
    pub state: Option<ProxyState>,
}

impl ProxySend {
    /// `{contextId, proposal, request: "propose" | "approve", action, proxyContract,
    /// transactionHash, onChain: {status: "pending", approvals} | {status: "ran"} | null}`.
    pub fn to_json(&self) -> Value {
        json!({
            "contextId": self.context_id,
            "proposal": self.proposal,
            "request": match self.scope {
                ProxyScope::Propose => "propose",
                ProxyScope::Approve => "approve",
            },
            "action": self.action,
            "proxyContract": self.proxy_contract,
            "transactionHash": self.transaction_hash,
            "onChain": match self.state {
                Some(ProxyState::Pending { approvals }) => json!({"status": "pending", "approvals": approvals}),
                Some(ProxyState::Ran) => json!({"status": "ran"}),
                None => Value::Null,
            },
        })
    }
}

impl<W: TransactionWallet, K, E> Account<W, K, E> {
    /// Sends this member's part of `proposal` (its proposal if this node is the author, else
    /// its approval, which it must have given in the log first) to context `id`'s proxy
    /// contract on `chain`, as one transaction the wallet signs and sends. `chain` is `None`
    /// when no chain is configured. Nothing is sent, and the wallet is not asked, when the
    /// node refuses (no chain action, not approved here, unknown proposal), when there is no
    /// chain or the contract does not record the context (`NeedsChain`), or when the chain
    /// cannot be read. A request the contract refuses (e.g. a member it does not list, an
    /// approval before the proposal landed, or after it ran) is `ProxyRefused`; a wallet that
    /// could not send it (not a refusal by the user) is `ProxySendFailed`.
    pub async fn send_to_proxy<A: Anchor>(
        &self,
        node: &impl NodeHandle,
        chain: Option<&AnchorChain<A>>,
        id: ContextId,
        proposal: ProposalId,
    ) -> Result<ProxySend, FlowError> {
        let request = node
            .run(async move |node| node.proxy_request(&id, &proposal))
            .await?;
        let needs = |why: String| {
            FlowError::NeedsChain(format!(
                "proposal {proposal} holds {}, which needs {why}",
                request.action
            ))
        };
        let Some(chain) = chain else {
            return Err(needs(
                "a NEAR chain, and none is configured (nearRpc, nearContract)".into(),
            ));
        };
        let proxy_contract = match chain.reader.proxy_contract(&id).await {
            Ok(account) => account,
            Err(e) if QuorumAnchor::<A>::says_unknown(&e) => {
                return Err(needs(format!(
                "context {id} anchored on NEAR, and {} does not record it: write its anchor first",
                chain.contract_id
            )))
            }
            Err(e) => return Err(read_error::<A>(&id, e)),
        };
        let transaction = SignedRequest {
            payload: request.payload,
            signature: request.signature,
        }
        .function_call(&proxy_contract)
        .wallet_transaction();
        let scope = request.scope;
        let answer = self
            .wallet
            .sign_and_send(&transaction)
            .await
            .map_err(|e| match e {
                WalletError::SendFailed(why) => FlowError::ProxySendFailed(format!(
                    "the {scope:?} of proposal {proposal} was not sent to the proxy contract {proxy_contract}: {why}"
                )),
                e => FlowError::Wallet(e),
            })?;
        match read_proxy_outcome(&answer) {
            Ok((done, state)) => Ok(ProxySend {
                context_id: id,
                proposal,
                scope,
                action: request.action,
                proxy_contract,
                transaction_hash: done.hash,
                state,
            }),
            Err(Some(failed)) => Err(FlowError::ProxyRefused(format!(
                "the proxy contract {proxy_contract} refused the {scope:?} of proposal {proposal}: {failed}"
            ))),
            Err(None) => Err(FlowError::Wallet(WalletError::AnswerInvalid(format!(
                "the wallet did not return the transaction's outcome (it answered {answer})"
            )))),
        }
    }
}

/// The proposals whose part this node's own operations among `events` gave it to send: the
/// ones it proposed that hold a chain action, and the ones it approved (whether those hold one
/// is asked when sent). Each once, in the order told.
pub fn own_parts(events: &[NodeEvent], me: &PublicKey) -> Vec<(ContextId, ProposalId)> {
    let mut parts = Vec::new();
    for event in events {
        let NodeEvent::Membership {
            context_id, by, op, ..
        } = event
        else {
            continue;
        };
        let proposal = match op {
            MemberOp::Propose { proposal, actions } if chain_action(actions).is_some() => *proposal,
            MemberOp::Approve { proposal } => *proposal,
            _ => continue,
        };
        if by == me && !parts.contains(&(*context_id, proposal)) {
            parts.push((*context_id, proposal));
        }
    }
    parts
}

/// What [`Account::send_own_parts`] did with one part.
pub type PartSent = (ContextId, ProposalId, Result<ProxySend, FlowError>);

impl<W: TransactionWallet, K, E> Account<W, K, E> {
    /// Sends, one after another, this member's part of each proposal [`own_parts`] finds in
    /// `events` (what the node told after a step) that holds a chain action; an approval of
    /// one that does not is skipped (it runs here). What each send did, failures included: a
    /// context with no chain gives `NeedsChain` and nothing is sent.
    pub async fn send_own_parts<A: Anchor>(
        &self,
        node: &impl NodeHandle,
        chain: Option<&AnchorChain<A>>,
        events: &[NodeEvent],
    ) -> Vec<PartSent> {
        let Ok(me) = node.run(async |node| Ok(node.public_key())).await else {
            return Vec::new();
        };
        let mut sent = Vec::new();
        for (id, proposal) in own_parts(events, &me) {
            let for_chain = node
                .run(async move |node| {
                    Ok(chain_action(&node.proposal(&id, &proposal)?.actions).is_some())
                })
                .await;
            let result = match for_chain {
                Ok(false) => continue,
                Ok(true) => self.send_to_proxy(node, chain, id, proposal).await,
                Err(e) => Err(e.into()),
            };
            sent.push((id, proposal, result));
        }
        sent
    }
}

/// A read of the chain that gave no answer, typed as an anchor write's are.
fn read_error<A: Anchor>(id: &ContextId, e: <QuorumAnchor<A> as Anchor>::Error) -> FlowError {
    let message = format!("could not read the proxy contract of context {id}: {e}");
    if QuorumAnchor::<A>::is_disagreement(&e) {
        FlowError::AnchorNoQuorum(message)
    } else if QuorumAnchor::<A>::is_unavailable(&e) {
        FlowError::RpcUnavailable(message)
    } else {
        FlowError::AnchorReadFailed(message)
    }
}
