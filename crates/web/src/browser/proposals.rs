//! Proposals in the page: the context's proxy, carried in its log (see docs/proposals.md).

use std::rc::Rc;

use js_sys::Promise;
use serde_json::json;
use tabnode_node::{NodeEvent, ProposalId};
use tabnode_types::ContextId;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use tabnode_account::anchor::AnchorChain;
use tabnode_chain::NearAnchor;

use super::{flow_error, parse_id, to_js, usage_error, BrowserNode, FetchTransport, Inner};

/// Whether the `proposalsToChain` option has the node send this member's parts of proposals to
/// the chain on its own (`auto`), or leaves that to the app (`manual`, the default: each send
/// is a wallet transaction).
pub(super) fn sends_on_its_own(option: Option<&str>) -> Result<bool, JsValue> {
    match option {
        None | Some("manual") => Ok(false),
        Some("auto") => Ok(true),
        Some(other) => Err(usage_error(
            "BadOptions",
            format!("unknown proposalsToChain {other:?}: \"manual\" or \"auto\""),
        )),
    }
}

/// Whether `events` may hold this member's parts to send (any membership operation): checked
/// before a send task is spawned, so that the node task's other steps spawn none.
pub(super) fn told_of_proposals(events: &[NodeEvent]) -> bool {
    events
        .iter()
        .any(|e| matches!(e, NodeEvent::Membership { .. }))
}

impl Inner {
    /// The configured chain (`nearRpc` and `nearContract`), if any.
    fn proxy_chain(&self) -> Option<AnchorChain<NearAnchor<FetchTransport>>> {
        match (&self.near_contract, self.near_rpc.is_empty()) {
            (Some(contract), false) => Some(AnchorChain::new(
                &self.near_rpc,
                contract,
                self.near_rpc_quorum,
                FetchTransport::new,
            )),
            _ => None,
        }
    }

    /// With `proposalsToChain: "auto"`: sends this member's parts of the proposals its own
    /// operations among `events` proposed or approved (see
    /// `tabnode_account::proposals::own_parts`), and tells the context's subscribers what each
    /// send did: `proposalSent` (what `sendProposalToChain` resolves to) or `proposalNotSent`
    /// (`error: {name, message}`).
    pub(super) async fn send_own_parts(self: Rc<Self>, events: Vec<NodeEvent>) {
        let chain = self.proxy_chain();
        let sent = self
            .account()
            .send_own_parts(&*self, chain.as_ref(), &events)
            .await;
        for (context, proposal, result) in sent {
            let told = match result {
                Ok(sent) => {
                    let mut told = sent.to_json();
                    told["type"] = json!("proposalSent");
                    told
                }
                Err(e) => json!({
                    "type": "proposalNotSent",
                    "contextId": context,
                    "proposal": proposal,
                    "error": {"name": e.kind(), "message": e.to_string()},
                }),
            };
            self.tell_context(&context, &told);
        }
    }
}

#[wasm_bindgen]
impl BrowserNode {
    /// The context's proxy: its threshold, active-proposal limit and every proposal, whatever
    /// became of it.
    #[wasm_bindgen(unchecked_return_type = "Promise<ProxyState>")]
    pub fn proposals(&self, context_id: String) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let id: ContextId = parse_id(&context_id)?;
            to_js(&inner.run(async move |node| node.proxy(&id)).await?)
        })
    }

    /// One proposal with its approvers; rejects with `UnknownProposal` if the context has none
    /// of that id.
    #[wasm_bindgen(unchecked_return_type = "Promise<Proposal>")]
    pub fn proposal(&self, context_id: String, proposal_id: String) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let id: ContextId = parse_id(&context_id)?;
            let proposal = parse_id::<ProposalId>(&proposal_id)?;
            to_js(
                &inner
                    .run(async move |node| node.proposal(&id, &proposal))
                    .await?,
            )
        })
    }

    /// Approves a proposal as this node's member: an operation every member applies; the
    /// approval that reaches the threshold runs its actions on each. Resolves to the
    /// operation's id; a second approval rejects with `BadProposal`.
    #[wasm_bindgen(js_name = approveProposal, unchecked_return_type = "Promise<string>")]
    pub fn approve_proposal(&self, context_id: String, proposal_id: String) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let id: ContextId = parse_id(&context_id)?;
            let proposal = parse_id::<ProposalId>(&proposal_id)?;
            let op = inner
                .run(async move |node| node.approve_proposal(&id, &proposal).await)
                .await?;
            Ok(JsValue::from(op.to_string()))
        })
    }

    /// The value approved `SetContextValue` actions set for `key` (its UTF-8 bytes): text, or
    /// an array of bytes if it is not UTF-8; `null` if none did.
    #[wasm_bindgen(js_name = contextValue, unchecked_return_type = "Promise<string | number[] | null>")]
    pub fn context_value(&self, context_id: String, key: String) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let id: ContextId = parse_id(&context_id)?;
            let value = inner
                .run(async move |node| node.context_value(&id, key.as_bytes()))
                .await?;
            match value.map(String::from_utf8) {
                None => Ok(JsValue::NULL),
                Some(Ok(text)) => Ok(JsValue::from(text)),
                Some(Err(e)) => to_js(&e.into_bytes()),
            }
        })
    }

    /// Sends this member's part of a proposal that holds a chain action (`Transfer`,
    /// `ExternalFunctionCall`) to the context's proxy contract on NEAR, as merod does: the
    /// author's proposal, or this member's approval (give it with `approveProposal` first),
    /// signed in the node with its key and sent by the user's wallet as one transaction; the
    /// contract runs the actions at the approval that reaches its threshold. Resolves to
    /// `{contextId, proposal, request, action, proxyContract, transactionHash, onChain}`
    /// (`onChain`: `{status: "pending", approvals}` or `{status: "ran"}`). Fails with
    /// `NeedsChain` (no `nearRpc`/`nearContract`, or the contract does not record the
    /// context), `BadProposal` (nothing for the chain, or not approved here),
    /// `UnknownProposal`, `RpcUnavailable`, `AnchorReadFailed`, `AnchorNoQuorum`, the wallet's
    /// errors (`ProxySendFailed` when it could not send the part), or `ProxyRefused` (with the
    /// contract's panic message).
    #[wasm_bindgen(js_name = sendProposalToChain, unchecked_return_type = "Promise<ProxySend>")]
    pub fn send_proposal_to_chain(&self, context_id: String, proposal_id: String) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let id: ContextId = parse_id(&context_id)?;
            let proposal = parse_id::<ProposalId>(&proposal_id)?;
            let chain = inner.proxy_chain();
            let sent = inner
                .account()
                .send_to_proxy(&*inner, chain.as_ref(), id, proposal)
                .await
                .map_err(flow_error)?;
            to_js(&sent.to_json())
        })
    }
}
