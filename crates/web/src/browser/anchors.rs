//! The page's side of NEAR anchoring: reading each context's anchor from the context-config
//! contract (with failover or a quorum of RPC endpoints), keeping the node's view of it fresh,
//! and writing what the membership log says through the wallet.

use super::*;

pub(super) type AnchorReader = tabnode_chain::QuorumAnchor<tabnode_chain::web::FetchTransport>;

/// Reads anchors from `rpc`: with a quorum of 1 from the first URL that answers (failing over),
/// else from each URL alike, taking an answer only when `quorum` of them agree.
pub(super) fn anchor_reader(rpc: &[String], contract: &str, quorum: usize) -> AnchorReader {
    use tabnode_chain::{ContextConfig, NearAnchor, QuorumAnchor, RpcClient};
    let reader = |urls: &[String]| {
        let client = RpcClient::new(tabnode_chain::web::FetchTransport::new(), urls.to_vec());
        NearAnchor::new(ContextConfig::new(client, contract.to_owned()))
    };
    match quorum {
        0 | 1 => QuorumAnchor::new(vec![reader(rpc)], 1),
        _ => QuorumAnchor::new(rpc.chunks(1).map(reader).collect(), quorum),
    }
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
            let found = match anchor.anchored(&id, &wasm).await {
                Ok(anchored) => Some(anchored.map(|a| tabnode_node::AnchorView {
                    members: a.members.into_iter().collect(),
                    app_matches: a.app_matches,
                })),
                Err(e) => {
                    tracing::warn!(context = %id, %e, "could not read the context's anchor");
                    None // the last view stands
                }
            };
            let Some(strong) = inner.upgrade() else {
                return;
            };
            if let Some(view) = found {
                let _ = strong
                    .run(async |node| node.set_anchor(&id, view).await)
                    .await;
            }
        }
        futures_timer::Delay::new(std::time::Duration::from_millis(u64::from(every))).await;
    }
}

/// Makes the context-config contract record what the membership log says of context `id`
/// (see [`BrowserNode::write_anchor`]): plans the requests from what the contract records now
/// (`tabnode-chain`), has the node sign each one (its keys stay in the node), has the user's
/// wallet sign and send them as one transaction, then reads the anchor back into the node.
pub(super) async fn write_anchor(
    inner: &Rc<Inner>,
    id: ContextId,
    rpc: Vec<String>,
    contract: String,
) -> Result<JsValue, JsValue> {
    use tabnode_chain::{
        read_outcome, ContextConfig, Intended, NearAnchor, PlanError, RequestSigner, RpcClient,
    };
    use tabnode_node::ChainSigner;
    let (members, wasm, me) = inner
        .run(async |node| {
            let members = node.members(&id)?;
            Ok((members, node.context_wasm(&id).await?, node.public_key()))
        })
        .await?;
    let intended = Intended {
        members: members.into_iter().map(|(key, _)| key).collect(),
        wasm: &wasm,
        source: format!("tabnode:{}", AppId::of_wasm(&wasm)),
    };
    let client = RpcClient::new(tabnode_chain::web::FetchTransport::new(), rpc.clone());
    let anchor = NearAnchor::new(ContextConfig::new(client, contract.clone()));
    let reader = anchor_reader(&rpc, &contract, inner.near_rpc_quorum);
    let plan = anchor
        .contract()
        .plan_write(&id, me, &intended)
        .await
        .map_err(|e| {
            let kind = match &e {
                PlanError::Read { .. } if e.is_unavailable() => "RpcUnavailable",
                PlanError::Read { .. } => "AnchorReadFailed",
                PlanError::NotOnContract { .. } | PlanError::NotPrivileged { .. } => {
                    "AnchorUnauthorized"
                }
            };
            usage_error(kind, e.to_string())
        })?;
    let mut hash = None;
    if !plan.is_empty() {
        let mut signed = Vec::with_capacity(plan.requests.len());
        for request in &plan.requests {
            let payload = request.payload();
            let signer = match request.signer {
                RequestSigner::ContextKey => ChainSigner::ContextKey,
                RequestSigner::Member => ChainSigner::Member,
            };
            let (_, signature) = inner
                .run(async |node| node.sign_context_request(&id, &payload, signer).await)
                .await?;
            signed.push(request.signed(signature));
        }
        let transaction = plan.transaction(&contract, &signed).to_string();
        let wallet = crate::wallet::find_wallet_with(300, "signAndSendTransaction").await;
        if wallet.is_null() || wallet.is_undefined() {
            return Err(usage_error(
                "WalletNotFound",
                "no NEAR wallet that sends transactions was found in this page".into(),
            ));
        }
        let answer = crate::wallet::wallet_sign_and_send(
            &wallet,
            &transaction,
            tabnode_account::WALLET_ANSWER_MS,
        )
        .await?;
        let answer: serde_json::Value =
            serde_json::from_str(&answer.as_string().unwrap_or_default()).unwrap_or_default();
        match read_outcome(&answer) {
            Ok(done) => hash = done.hash,
            Err(Some(failed)) => {
                // All or nothing: a failed transaction changed nothing on chain.
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
                return Err(usage_error(
                    "AnchorWriteFailed",
                    format!("the contract refused the transaction{which}: {failed}"),
                ));
            }
            Err(None) => {
                // The wallet did not say what became of it: read the anchor, then say so.
                read_anchor_into(inner, &reader, &id, &wasm).await;
                return Err(usage_error(
                    "WalletAnswerInvalid",
                    format!("the wallet did not return the transaction's outcome (it answered {answer}); the anchor was read again"),
                ));
            }
        }
    }
    let view = read_anchor_into(inner, &reader, &id, &wasm).await;
    let requests: Vec<serde_json::Value> = plan.requests.iter().map(|r| r.summary()).collect();
    to_js(&serde_json::json!({
        "contextId": id,
        "requests": requests,
        "transactionHash": hash,
        "anchor": view.map(|a| serde_json::json!({"members": a.members, "appMatches": a.app_matches})),
    }))
}

/// Reads what the contract records of context `id` and gives it to the node, as the refresh
/// loop does; returns it (`None` when the contract does not record the context, or could not
/// be read: then the node's last view stands and the loop tries again).
pub(super) async fn read_anchor_into(
    inner: &Rc<Inner>,
    anchor: &AnchorReader,
    id: &ContextId,
    wasm: &[u8],
) -> Option<tabnode_node::AnchorView> {
    let view = match anchor.anchored(id, wasm).await {
        Ok(anchored) => anchored.map(|a| tabnode_node::AnchorView {
            members: a.members.into_iter().collect(),
            app_matches: a.app_matches,
        }),
        Err(e) => {
            tracing::warn!(context = %id, %e, "could not read the context's anchor back");
            return None;
        }
    };
    let _ = inner
        .run(async |node| node.set_anchor(id, view.clone()).await)
        .await;
    view
}
