//! The page's side of NEAR anchoring: keeping each context's anchor fresh (read from the
//! context-config contract with failover or a quorum of RPC endpoints), and writing one
//! through the wallet with `tabnode_account`'s flow.

use super::*;
use tabnode_account::anchor::{quorum_reader, read_anchor, AnchorChain};

pub(super) type AnchorReader = tabnode_chain::QuorumAnchor<FetchTransport>;

/// Reads anchors from `rpc` (see [`quorum_reader`]) with the page's fetch.
pub(super) fn anchor_reader(rpc: &[String], contract: &str, quorum: usize) -> AnchorReader {
    quorum_reader(rpc, contract, quorum, FetchTransport::new)
}

/// Keeps every context's anchor current: reads what the contract records of each context this
/// node holds, against its app binary ([`tabnode_chain::NearAnchor::anchored`]), and gives the
/// node what it found. When the chain cannot be read (or the endpoints do not agree) the
/// anchor's state is unknown: the last view stands (the node keeps it across restarts), and is
/// never taken for "not anchored".
pub(super) async fn anchor_refresh(inner: std::rc::Weak<Inner>, anchor: AnchorReader, every: u32) {
    loop {
        let Some(strong) = inner.upgrade() else {
            return;
        };
        let ids = strong
            .run(async |node| Ok(node.context_ids()))
            .await
            .unwrap_or_default();
        drop(strong);
        for id in ids {
            let Some(strong) = inner.upgrade() else {
                return;
            };
            let wasm = strong.run(async |node| node.context_wasm(&id).await).await;
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
