//! The page's side of NEAR anchoring: keeping each context's anchor fresh (read from the
//! context-config contract with failover or a quorum of RPC endpoints), and writing one
//! through the wallet with `tabnode_account`'s flow.

use super::*;
use tabnode_account::anchor::{quorum_reader, read_anchor, AnchorChain};

/// The page's anchor: NEAR's contract over fetch, asked at one or a quorum of RPC endpoints.
/// The flows take any `tabnode_chain::Anchor`; this is the one the page runs.
pub(super) type AnchorReader =
    tabnode_chain::QuorumAnchor<tabnode_chain::NearAnchor<FetchTransport>>;

/// Reads anchors from `rpc` (see [`quorum_reader`]) with the page's fetch.
pub(super) fn anchor_reader(rpc: &[String], contract: &str, quorum: usize) -> AnchorReader {
    quorum_reader(rpc, contract, quorum, FetchTransport::new)
}

/// Keeps every context's anchor current: reads what the contract records of each context this
/// node holds, against its app binary ([`tabnode_chain::Anchor::anchored`]), and gives the
/// node what it found. When the chain cannot be read (or the endpoints do not agree) the
/// anchor's state is unknown: the last view stands (the node keeps it across restarts), and is
/// never taken for "not anchored".
pub(super) async fn anchor_refresh(inner: std::rc::Weak<Inner>, anchor: AnchorReader, every: u32) {
    loop {
        let Some(strong) = inner.upgrade() else {
            return;
        };
        let ids = strong
            .run(async move |node| Ok(node.context_ids()))
            .await
            .unwrap_or_default();
        drop(strong);
        for id in ids {
            let Some(strong) = inner.upgrade() else {
                return;
            };
            let wasm = strong
                .run(async move |node| node.context_wasm(&id).await)
                .await;
            drop(strong);
            let Ok(wasm) = wasm else { continue };
            let Some(strong) = inner.upgrade() else {
                return;
            };
            read_anchor(&*strong, &anchor, &id, &wasm).await;
        }
        futures_timer::Delay::new(std::time::Duration::from_millis(u64::from(every))).await;
    }
}

/// Makes the context-config contract record what the membership log says of context `id`
/// (see [`BrowserNode::write_anchor`] and `tabnode_account::Account::write_anchor`).
pub(super) async fn write_anchor(
    inner: &Rc<Inner>,
    id: ContextId,
    rpc: Vec<String>,
    contract: String,
) -> Result<JsValue, JsValue> {
    let chain = AnchorChain::new(&rpc, &contract, inner.near_rpc_quorum, FetchTransport::new);
    let written = inner
        .account()
        .write_anchor(&**inner, &chain, id)
        .await
        .map_err(flow_error)?;
    to_js(&written.to_json())
}

#[wasm_bindgen]
impl BrowserNode {
    /// Sets what the context's anchor (a chain's record of it) says, or clears it with `null`:
    /// `{members: [publicKey…], appMatches: boolean}`. From then on a member's deltas count only
    /// if it is on the anchor as well as in the membership log, and this node runs calls only if
    /// it is on the anchor with the anchored app; mismatches are refused and reported as
    /// `anchorMismatch` events.
    #[wasm_bindgen(js_name = setAnchor, unchecked_return_type = "Promise<void>")]
    pub fn set_anchor(
        &self,
        context_id: String,
        #[wasm_bindgen(unchecked_param_type = "{ members: string[]; appMatches: boolean } | null")]
        anchor: JsValue,
    ) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let id: ContextId = parse_id(&context_id)?;
            #[derive(serde::Deserialize)]
            #[serde(rename_all = "camelCase", deny_unknown_fields)]
            struct Anchor {
                members: Vec<String>,
                app_matches: bool,
            }
            let anchor = if anchor.is_null() || anchor.is_undefined() {
                None
            } else {
                let anchor: Anchor = serde_wasm_bindgen::from_value(anchor)
                    .map_err(|e| usage_error("BadArgs", format!("invalid anchor: {e}")))?;
                let members = anchor
                    .members
                    .iter()
                    .map(|k| parse_id_key(k))
                    .collect::<Result<_, _>>()?;
                Some(tabnode_node::AnchorView {
                    members,
                    app_matches: anchor.app_matches,
                })
            };
            inner
                .run(async move |node| node.set_anchor(&id, anchor).await)
                .await?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Writes the context's anchor: makes the Calimero context-config contract (`nearContract`,
    /// read through `nearRpc`) record what this node's membership log says of the context — its
    /// members and its app binary — and reads the anchor back into the node. The requests
    /// (`Add` signed by the context key when the contract does not know the context, which only
    /// its creator's node holds; `AddMembers`, `RemoveMembers`, `UpdateApplication` signed by
    /// this node's key, an admin's) are signed in the node and sent by the user's injected
    /// wallet (`signAndSendTransaction`) as one transaction, which the contract applies whole or
    /// not at all. Nothing to change sends nothing. Resolves to `{contextId, requests,
    /// transactionHash, anchor}`. Fails with `AnchorNotConfigured`, `RpcUnavailable`,
    /// `AnchorReadFailed`, `AnchorNoQuorum` (fewer than `nearRpcQuorum` endpoints agree on what
    /// the contract records, nonces included), `AnchorUnauthorized` (the contract would refuse this node's key),
    /// `Unauthorized` (not an admin, or no context key), `WalletNotFound`, `WalletRejected`,
    /// `WalletTimeout`, `AnchorWriteFailed` (with the contract's panic message, e.g.
    /// `invalid nonce` when another write landed first) or `WalletAnswerInvalid`.
    #[wasm_bindgen(js_name = writeAnchor, unchecked_return_type = "Promise<AnchorWrite>")]
    pub fn write_anchor(&self, context_id: String) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let id: ContextId = parse_id(&context_id)?;
            let (Some(contract), false) = (inner.near_contract.clone(), inner.near_rpc.is_empty())
            else {
                return Err(usage_error(
                    "AnchorNotConfigured",
                    "writing an anchor needs the nearRpc and nearContract options".into(),
                ));
            };
            anchors::write_anchor(&inner, id, inner.near_rpc.clone(), contract).await
        })
    }
}
