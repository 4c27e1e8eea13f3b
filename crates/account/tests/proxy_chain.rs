//! A proposal's chain actions sent to the context's proxy contract natively: real nodes (their
//! keys sign, from their logs) in a context anchored on a context-config contract kept by
//! `near_rpc_double` (the chain crate's TEST DOUBLE of NEAR; no NEAR runs here), which keeps the
//! context's proxy contract too, through a wallet TEST DOUBLE that plays each transaction on
//! the contract it is sent to. Members propose and approve in the log and each sends its part:
//! the proxy runs the transfer once, at the approval that reaches its threshold, and every
//! member shows the proposal `onChain`. With no anchor or no chain it stays `needsChain` and
//! nothing is sent; bad requests are refused before the wallet is asked.

mod common;

use std::sync::{Arc, Mutex as StdMutex};

use common::near_rpc_double::anchor::NearContractDouble;
use common::near_rpc_double::proxy::Action;
use common::near_rpc_double::{Chain, CONTRACT};
use common::{double_chain, opened, PlaysOnTheDouble, Sends, TestNode};
use futures::lock::Mutex;
use serde_json::json;
use tabnode_account::anchor::read_anchor;
use tabnode_account::{Account, NoChain};
use tabnode_chain::ProxyState;
use tabnode_node::FixedEnv;
use tabnode_node::{ProposalAction, ProposalId, ProposalOutcome, ProxyScope};
use tabnode_sim::guest;
use tabnode_types::ContextId;

/// The account, its wallet double playing each transaction once.
fn account(chain: &Arc<StdMutex<Chain>>) -> Account<PlaysOnTheDouble, NoChain, FixedEnv> {
    common::account(chain, Sends::Once)
}

/// Three members (key seeds 1, 2, 3) of a kv-store context node 1 created, settled.
async fn three_members() -> (Vec<Mutex<TestNode>>, ContextId) {
    let mut a = opened(1).await;
    let app = a.install_app(&guest("kv_store")).await.unwrap();
    let ctx = a.create_context(app, json!({})).await.unwrap();
    let mut nodes = vec![a];
    for seed in [2, 3] {
        let mut joiner = opened(seed).await;
        joiner.join(&nodes[0].invite(&ctx).unwrap()).await.unwrap();
        nodes.push(joiner);
        tabnode_sim::settle(&mut nodes.iter_mut().collect::<Vec<_>>());
    }
    (nodes.into_iter().map(Mutex::new).collect(), ctx)
}

async fn settle(nodes: &[Mutex<TestNode>]) {
    let mut guards = Vec::new();
    for n in nodes {
        guards.push(n.lock().await);
    }
    tabnode_sim::settle(&mut guards.iter_mut().map(|g| &mut **g).collect::<Vec<_>>());
}

/// Node 1 proposes a transfer to bob.testnet, and the members settle.
async fn propose_transfer(nodes: &[Mutex<TestNode>], ctx: ContextId) -> ProposalId {
    let id = nodes[0]
        .lock()
        .await
        .propose(&ctx, transfer())
        .await
        .unwrap();
    settle(nodes).await;
    id
}

/// `node` approves proposal `id` in the context's log.
async fn approve(node: &Mutex<TestNode>, ctx: ContextId, id: ProposalId) {
    node.lock().await.approve_proposal(&ctx, &id).await.unwrap();
}

/// Node 1 writes the context's anchor (all three members); each node reads it.
async fn anchored(nodes: &[Mutex<TestNode>], ctx: ContextId, chain: &Arc<StdMutex<Chain>>) {
    let anchor = double_chain(chain);
    account(chain)
        .write_anchor(&nodes[0], &anchor, ctx)
        .await
        .unwrap();
    let wasm = nodes[0].lock().await.context_wasm(&ctx).await.unwrap();
    for node in nodes {
        let view = read_anchor(node, &anchor.reader, &ctx, &wasm)
            .await
            .unwrap();
        assert_eq!(view.members.len(), 3);
    }
}

fn transfer() -> Vec<ProposalAction> {
    vec![ProposalAction::Transfer {
        receiver_id: "bob.testnet".into(),
        amount: 1 << 100,
    }]
}

async fn outcome(node: &Mutex<TestNode>, ctx: &ContextId, id: &ProposalId) -> ProposalOutcome {
    node.lock().await.proposal(ctx, id).unwrap().outcome
}

#[tokio::test(flavor = "current_thread")]
async fn an_anchored_contexts_transfer_runs_once_on_its_proxy_at_the_threshold() {
    let chain = Chain::new(CONTRACT).shared();
    let (nodes, ctx) = three_members().await;
    anchored(&nodes, ctx, &chain).await;
    let anchor = double_chain(&chain);
    let proxy = chain.lock().unwrap().contexts[&ctx.0].proxy.clone();

    let id = propose_transfer(&nodes, ctx).await;
    let sent = account(&chain)
        .send_to_proxy(&nodes[0], Some(&anchor), ctx, id)
        .await
        .unwrap();
    assert_eq!(sent.scope, ProxyScope::Propose);
    assert_eq!(sent.action, "Transfer");
    assert_eq!(sent.proxy_contract, proxy);
    assert_eq!(sent.state, Some(ProxyState::Pending { approvals: 1 }));
    assert_eq!(sent.transaction_hash.as_deref(), Some("tx1"));

    for (i, node) in nodes.iter().enumerate().skip(1) {
        approve(node, ctx, id).await;
        let sent = account(&chain)
            .send_to_proxy(node, Some(&anchor), ctx, id)
            .await
            .unwrap();
        assert_eq!(sent.scope, ProxyScope::Approve);
        let expected = if i == 1 {
            ProxyState::Pending { approvals: 2 }
        } else {
            ProxyState::Ran
        };
        assert_eq!(sent.state, Some(expected));
        if i == 1 {
            assert!(chain.lock().unwrap().proxies[&proxy].ran.is_empty());
        } else {
            assert_eq!(sent.to_json()["onChain"], json!({"status": "ran"}));
        }
    }
    settle(&nodes).await;
    let ran = chain.lock().unwrap().proxies[&proxy].ran.clone();
    assert_eq!(
        ran,
        vec![(
            id.0,
            Action::Transfer {
                receiver_id: "bob.testnet".into(),
                amount: 1 << 100
            }
        )],
        "run once, with the amount the log holds"
    );
    for node in &nodes {
        assert_eq!(
            outcome(node, &ctx, &id).await,
            ProposalOutcome::OnChain { action: "Transfer" }
        );
    }
    let shown = serde_json::to_value(nodes[1].lock().await.proposal(&ctx, &id).unwrap()).unwrap();
    assert_eq!(shown["status"], "onChain");

    // Sending a part again: the proxy no longer holds the proposal; nothing runs twice.
    let err = account(&chain)
        .send_to_proxy(&nodes[2], Some(&anchor), ctx, id)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "ProxyRefused", "{err}");
    assert_eq!(chain.lock().unwrap().proxies[&proxy].ran.len(), 1);
}

#[tokio::test(flavor = "current_thread")]
async fn without_an_anchor_or_a_chain_the_proposal_needs_a_chain_and_nothing_is_sent() {
    let chain = Chain::new(CONTRACT).shared();
    let (nodes, ctx) = three_members().await;
    let id = propose_transfer(&nodes, ctx).await;
    for node in &nodes[1..] {
        approve(node, ctx, id).await;
    }
    settle(&nodes).await;
    for node in &nodes {
        assert_eq!(
            outcome(node, &ctx, &id).await,
            ProposalOutcome::NeedsChain { action: "Transfer" }
        );
    }
    let account = account(&chain);
    let unanchored = account
        .send_to_proxy(&nodes[0], Some(&double_chain(&chain)), ctx, id)
        .await
        .unwrap_err();
    assert_eq!(unanchored.kind(), "NeedsChain", "{unanchored}");
    assert!(unanchored.to_string().contains("holds Transfer"));
    assert!(unanchored.to_string().contains("write its anchor"));
    let no_chain = account
        .send_to_proxy::<NearContractDouble>(&nodes[1], None, ctx, id)
        .await
        .unwrap_err();
    assert_eq!(no_chain.kind(), "NeedsChain", "{no_chain}");
    assert!(no_chain.to_string().contains("none is configured"));
    assert_eq!(account.wallet.asked.get(), 0);
    assert!(chain.lock().unwrap().proxies.is_empty());
}

#[tokio::test(flavor = "current_thread")]
async fn bad_requests_are_refused_before_the_wallet_is_asked_and_change_nothing() {
    let chain = Chain::new(CONTRACT).shared();
    let (nodes, ctx) = three_members().await;
    anchored(&nodes, ctx, &chain).await;
    let anchor = double_chain(&chain);
    let account = account(&chain);
    let asked = account.wallet.asked.get();
    let value = vec![ProposalAction::SetContextValue {
        key: b"k".to_vec(),
        value: b"v".to_vec(),
    }];
    let local = nodes[0].lock().await.propose(&ctx, value).await.unwrap();
    let id = propose_transfer(&nodes, ctx).await;
    let refused = [
        // Runs here: nothing for the chain.
        (&nodes[0], local, "BadProposal"),
        // Member 2 has not approved it in the log.
        (&nodes[1], id, "BadProposal"),
        (&nodes[0], ProposalId([9; 32]), "UnknownProposal"),
    ];
    for (node, proposal, kind) in refused {
        let err = account
            .send_to_proxy(node, Some(&anchor), ctx, proposal)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), kind, "{err}");
    }
    let err = account
        .send_to_proxy(&nodes[0], Some(&anchor), ContextId([4; 32]), id)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "UnknownContext", "{err}");
    assert_eq!(account.wallet.asked.get(), asked);
    assert!(chain.lock().unwrap().proxies.is_empty());

    // An approval sent before the author's proposal landed: the proxy refuses it, and the
    // member sends it again once the proposal is there.
    approve(&nodes[1], ctx, id).await;
    let early = account
        .send_to_proxy(&nodes[1], Some(&anchor), ctx, id)
        .await
        .unwrap_err();
    assert_eq!(early.kind(), "ProxyRefused", "{early}");
    account
        .send_to_proxy(&nodes[0], Some(&anchor), ctx, id)
        .await
        .unwrap();
    let again = account
        .send_to_proxy(&nodes[1], Some(&anchor), ctx, id)
        .await
        .unwrap();
    assert_eq!(again.state, Some(ProxyState::Pending { approvals: 2 }));
}

/// A wallet that cannot send a member's part is the proxy send's own failure, named as such
/// (not as an anchor write's), naming the proposal; nothing reached the proxy, and the part is
/// sent once the wallet can.
#[tokio::test(flavor = "current_thread")]
async fn a_wallet_that_cannot_send_the_part_is_a_proxy_send_failure_and_it_can_be_sent_again() {
    let chain = Chain::new(CONTRACT).shared();
    let (nodes, ctx) = three_members().await;
    anchored(&nodes, ctx, &chain).await;
    let anchor = double_chain(&chain);
    let id = propose_transfer(&nodes, ctx).await;
    let failing = common::account(&chain, Sends::Fails("the RPC node is unreachable"));
    let err = failing
        .send_to_proxy(&nodes[0], Some(&anchor), ctx, id)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "ProxySendFailed", "{err}");
    let message = err.to_string();
    assert!(message.contains(&id.to_string()), "{message}");
    assert!(message.contains("the RPC node is unreachable"), "{message}");
    assert_eq!(failing.wallet.asked.get(), 1);
    assert!(chain
        .lock()
        .unwrap()
        .proxies
        .values()
        .all(|p| p.proposals.is_empty() && p.ran.is_empty()));

    let sent = account(&chain)
        .send_to_proxy(&nodes[0], Some(&anchor), ctx, id)
        .await
        .unwrap();
    assert_eq!(sent.state, Some(ProxyState::Pending { approvals: 1 }));
}

/// The chain counts its own approvals: with the local threshold lowered to 2 (the proxy's is
/// still 3), the proposal shows `onChain` at B's approval while the proxy waits; C can still
/// approve it in the log and send its approval, which runs it.
#[tokio::test(flavor = "current_thread")]
async fn a_proposal_past_a_lower_local_threshold_still_takes_the_approvals_the_chain_needs() {
    let chain = Chain::new(CONTRACT).shared();
    let (nodes, ctx) = three_members().await;
    anchored(&nodes, ctx, &chain).await;
    let anchor = double_chain(&chain);
    let lower = vec![ProposalAction::SetNumApprovals { num_approvals: 2 }];
    let lower = nodes[0].lock().await.propose(&ctx, lower).await.unwrap();
    settle(&nodes).await;
    for node in &nodes[1..] {
        node.lock()
            .await
            .approve_proposal(&ctx, &lower)
            .await
            .unwrap();
    }
    settle(&nodes).await;
    assert_eq!(nodes[0].lock().await.proxy(&ctx).unwrap().num_approvals, 2);

    let id = propose_transfer(&nodes, ctx).await;
    let account = account(&chain);
    account
        .send_to_proxy(&nodes[0], Some(&anchor), ctx, id)
        .await
        .unwrap();
    approve(&nodes[1], ctx, id).await;
    let second = account
        .send_to_proxy(&nodes[1], Some(&anchor), ctx, id)
        .await
        .unwrap();
    assert_eq!(second.state, Some(ProxyState::Pending { approvals: 2 }));
    settle(&nodes).await;
    assert_eq!(
        outcome(&nodes[2], &ctx, &id).await,
        ProposalOutcome::OnChain { action: "Transfer" }
    );
    approve(&nodes[2], ctx, id).await;
    let third = account
        .send_to_proxy(&nodes[2], Some(&anchor), ctx, id)
        .await
        .unwrap();
    assert_eq!(third.state, Some(ProxyState::Ran));
    let proxy = chain.lock().unwrap().contexts[&ctx.0].proxy.clone();
    assert_eq!(chain.lock().unwrap().proxies[&proxy].ran.len(), 1);
    settle(&nodes).await;
    let approvers = nodes[0].lock().await.proposal(&ctx, &id).unwrap().approvers;
    assert_eq!(approvers.len(), 3, "C's approval is in the log too");
}

/// What `node` told since last asked.
async fn told(node: &Mutex<TestNode>) -> Vec<tabnode_node::NodeEvent> {
    node.lock().await.take_events()
}

#[tokio::test(flavor = "current_thread")]
async fn each_member_sends_its_own_parts_from_what_its_node_told_and_the_transfer_runs_once() {
    let chain = Chain::new(CONTRACT).shared();
    let (nodes, ctx) = three_members().await;
    anchored(&nodes, ctx, &chain).await;
    let anchor = double_chain(&chain);
    let proxy = chain.lock().unwrap().contexts[&ctx.0].proxy.clone();
    for node in &nodes {
        told(node).await;
    }
    // A proposal with no chain action runs here: nothing of it is sent.
    let local = nodes[0]
        .lock()
        .await
        .propose(
            &ctx,
            vec![ProposalAction::SetNumApprovals { num_approvals: 3 }],
        )
        .await
        .unwrap();
    let id = propose_transfer(&nodes, ctx).await;
    let account = account(&chain);
    let sent = account
        .send_own_parts(&nodes[0], Some(&anchor), &told(&nodes[0]).await)
        .await;
    assert_eq!(sent.len(), 1, "the transfer's proposal, not {local}");
    let (context, proposal, result) = &sent[0];
    assert_eq!((*context, *proposal), (ctx, id));
    assert_eq!(result.as_ref().unwrap().scope, ProxyScope::Propose);
    // What another member's node told of the proposal is not its own part: nothing to send.
    assert!(account
        .send_own_parts(&nodes[1], Some(&anchor), &told(&nodes[1]).await)
        .await
        .is_empty());
    for node in &nodes[1..] {
        node.lock()
            .await
            .approve_proposal(&ctx, &local)
            .await
            .unwrap();
        approve(node, ctx, id).await;
        let sent = account
            .send_own_parts(node, Some(&anchor), &told(node).await)
            .await;
        assert_eq!(sent.len(), 1, "the approval of the transfer only");
        assert_eq!(sent[0].2.as_ref().unwrap().scope, ProxyScope::Approve);
    }
    assert_eq!(account.wallet.asked.get(), 3);
    let ran = chain.lock().unwrap().proxies[&proxy].ran.clone();
    assert_eq!(ran.len(), 1, "run once, at the third part: {ran:?}");
    // With no chain configured, the part is not sent and says why.
    let id = propose_transfer(&nodes, ctx).await;
    let sent = account
        .send_own_parts::<NearContractDouble>(&nodes[0], None, &told(&nodes[0]).await)
        .await;
    assert_eq!(sent.len(), 1);
    let err = sent[0].2.as_ref().unwrap_err();
    assert_eq!((sent[0].1, err.kind()), (id, "NeedsChain"), "{err}");
    assert_eq!(account.wallet.asked.get(), 3);
}
