//! The anchor-write flow natively: a real node (its keys sign the requests) writes its
//! context's anchor to a context-config contract kept by `near_rpc_double` (the chain crate's
//! TEST DOUBLE of a NEAR RPC node; no NEAR node runs here), read over real HTTP through
//! `NearAnchor` or, with no server, in memory through `NearContractDouble` (the flow takes any
//! `tabnode_chain::Anchor`), through a wallet
//! TEST DOUBLE that plays the transaction on that contract as NEAR would (in order, all or
//! nothing, the contract's signature, nonce and privilege checks) and answers with NEAR's
//! outcome. Nothing to change sends nothing; a refused transaction, an answer that is not an
//! outcome and a signer the contract does not list each fail with their kind.

mod common;

use std::sync::{Arc, Mutex as StdMutex};

use common::near_rpc_double::anchor::NearContractDouble;
use common::near_rpc_double::{Chain, Server, CONTRACT};
use common::{opened, PlaysOnTheDouble, Sends, TestNode};
use futures::lock::Mutex;
use serde_json::json;
use tabnode_account::anchor::AnchorChain;
use tabnode_account::{Account, NoChain};
use tabnode_chain::native::ReqwestTransport;
use tabnode_chain::NearAnchor;
use tabnode_node::{FixedEnv, Role};
use tabnode_sim::guest;
use tabnode_types::ContextId;

struct World {
    chain: Arc<StdMutex<Chain>>,
    /// The RPC double serving `chain`; `None` when the flow reads it in memory.
    server: Option<Server>,
}

/// The contract behind the RPC double, on 127.0.0.1.
async fn world() -> World {
    let chain = Chain::new(CONTRACT).shared();
    let server = Server::start(chain.clone()).await;
    World {
        chain,
        server: Some(server),
    }
}

/// The contract alone, read in memory: no server.
fn world_in_memory() -> World {
    World {
        chain: Chain::new(CONTRACT).shared(),
        server: None,
    }
}

impl World {
    /// The contract over JSON-RPC, as the page reads NEAR.
    fn anchor_chain(&self) -> AnchorChain<NearAnchor<ReqwestTransport>> {
        let server = self.server.as_ref().expect("a world with its RPC double");
        AnchorChain::new(
            std::slice::from_ref(&server.url),
            CONTRACT,
            1,
            ReqwestTransport::new,
        )
    }

    /// The contract read in memory ([`NearContractDouble`]).
    fn double_chain(&self) -> AnchorChain<NearContractDouble> {
        common::double_chain(&self.chain)
    }

    fn account(&self, sends: Sends) -> Account<PlaysOnTheDouble, NoChain, FixedEnv> {
        common::account(&self.chain, sends)
    }
}

/// A node (key seed `seed`) admitted to `ctx` by `creator`, the two settled.
async fn joiner(creator: &Mutex<TestNode>, ctx: ContextId, seed: u8) -> TestNode {
    let mut joiner = opened(seed).await;
    let mut creator = creator.lock().await;
    joiner.join(&creator.invite(&ctx).unwrap()).await.unwrap();
    tabnode_sim::settle(&mut [&mut *creator, &mut joiner]);
    joiner
}

async fn creator(seed: u8) -> (Mutex<TestNode>, ContextId) {
    let mut node = opened(seed).await;
    let app = node.install_app(&guest("kv_store")).await.unwrap();
    let ctx = node.create_context(app, json!({})).await.unwrap();
    (Mutex::new(node), ctx)
}

#[tokio::test(flavor = "current_thread")]
async fn a_creator_writes_its_context_and_nothing_is_sent_when_nothing_changed() {
    let w = world_in_memory();
    let (node, ctx) = creator(1).await;
    let me = node.lock().await.public_key();
    let account = w.account(Sends::Once);
    let chain = w.double_chain();

    let written = account.write_anchor(&node, &chain, ctx).await.unwrap();
    let kinds: Vec<&str> = written
        .requests
        .iter()
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["Add"], "{:?}", written.requests);
    assert_eq!(written.transaction_hash.as_deref(), Some("tx1"));
    let anchor = written.anchor.clone().expect("read back");
    assert!(anchor.app_matches);
    assert_eq!(anchor.members.into_iter().collect::<Vec<_>>(), vec![me]);
    assert!(w.chain.lock().unwrap().contexts.contains_key(&ctx.0));
    let json = written.to_json();
    assert_eq!(json["anchor"]["appMatches"], true);
    assert_eq!(json["anchor"]["members"], json!([me.to_string()]));

    let again = account.write_anchor(&node, &chain, ctx).await.unwrap();
    assert!(again.requests.is_empty());
    assert_eq!(again.transaction_hash, None);
    assert_eq!(
        account.wallet.asked.get(),
        1,
        "nothing to change sends nothing"
    );
    assert_eq!(
        *account.wallet.receivers.borrow(),
        [CONTRACT],
        "an anchor write goes to the context-config contract"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_refused_transaction_says_which_request_and_why() {
    let w = world().await;
    let (node, ctx) = creator(1).await;
    w.account(Sends::Once)
        .write_anchor(&node, &w.anchor_chain(), ctx)
        .await
        .unwrap();
    // A member joins the log; its AddMembers lands twice: the second copy is refused.
    let guest_node = joiner(&node, ctx, 2).await;
    {
        let a = node.lock().await;
        assert!(a
            .members(&ctx)
            .unwrap()
            .contains(&(guest_node.public_key(), Role::Member)));
    }
    let err = w
        .account(Sends::Twice)
        .write_anchor(&node, &w.anchor_chain(), ctx)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "AnchorWriteFailed", "{err}");
    let text = err.to_string();
    assert!(text.contains("at AddMembers"), "{text}");
    assert!(text.contains("invalid nonce"), "{text}");
}

#[tokio::test(flavor = "current_thread")]
async fn an_answer_that_is_not_an_outcome_is_said_and_the_anchor_read_again() {
    let w = world().await;
    let (node, ctx) = creator(1).await;
    let err = w
        .account(Sends::Nothing)
        .write_anchor(&node, &w.anchor_chain(), ctx)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "WalletAnswerInvalid", "{err}");
    assert!(err.to_string().contains("read again"), "{err}");
    assert!(!w.chain.lock().unwrap().contexts.contains_key(&ctx.0));
}

#[tokio::test(flavor = "current_thread")]
async fn a_signer_the_contract_does_not_list_is_refused_before_the_wallet_is_asked() {
    let w = world_in_memory();
    let (a, ctx) = creator(1).await;
    w.account(Sends::Once)
        .write_anchor(&a, &w.double_chain(), ctx)
        .await
        .unwrap();
    // B, made an admin in the log, is not on the contract.
    let mut b = joiner(&a, ctx, 2).await;
    {
        let mut a = a.lock().await;
        a.set_role(&ctx, b.public_key(), Role::Admin).await.unwrap();
        tabnode_sim::settle(&mut [&mut *a, &mut b]);
    }
    let b = Mutex::new(b);
    let account = w.account(Sends::Once);
    let err = account
        .write_anchor(&b, &w.double_chain(), ctx)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "AnchorUnauthorized", "{err}");
    assert_eq!(account.wallet.asked.get(), 0);
}

/// The page's path (`AnchorChain::new` over RPC URLs with `nearRpcQuorum`), over three RPC
/// doubles: the first a liar keeping its own copy of the chain, where the creator's nonce is 5.
#[tokio::test(flavor = "current_thread")]
async fn with_a_quorum_a_lying_rpc_double_cannot_set_the_nonce_the_write_signs() {
    let w = world().await;
    let (node, ctx) = creator(1).await;
    w.account(Sends::Once)
        .write_anchor(&node, &w.anchor_chain(), ctx)
        .await
        .unwrap();
    let b = joiner(&node, ctx, 2).await;
    let creator_key = node.lock().await.public_key();
    let mut lie = w.chain.lock().unwrap().clone();
    lie.contexts
        .get_mut(&ctx.0)
        .unwrap()
        .nonces
        .insert(creator_key.0, 5);
    let liar = Server::start(lie.shared()).await;
    let other_honest = Server::start(w.chain.clone()).await;
    let urls = [
        liar.url.clone(),
        w.server.as_ref().unwrap().url.clone(),
        other_honest.url.clone(),
    ];

    let account = w.account(Sends::Once);
    let chain = AnchorChain::new(&urls, CONTRACT, 2, ReqwestTransport::new);
    let written = account.write_anchor(&node, &chain, ctx).await.unwrap();
    assert_eq!(written.requests.len(), 1, "{:?}", written.requests);
    assert_eq!(written.requests[0]["kind"], "AddMembers");
    assert_eq!(
        written.requests[0]["nonce"], 0,
        "the chain's nonce, not the liar's 5"
    );
    let anchor = written.anchor.expect("read back through the quorum");
    assert!(anchor.members.contains(&b.public_key()));

    // When no two endpoints agree, nothing is signed and the wallet is not asked.
    let mut other = w.chain.lock().unwrap().clone();
    other.contexts.get_mut(&ctx.0).unwrap().members.pop();
    let other = Server::start(other.shared()).await;
    let urls = [
        liar.url.clone(),
        w.server.as_ref().unwrap().url.clone(),
        other.url.clone(),
    ];
    let account = w.account(Sends::Once);
    let chain = AnchorChain::new(&urls, CONTRACT, 2, ReqwestTransport::new);
    let err = account.write_anchor(&node, &chain, ctx).await.unwrap_err();
    assert_eq!(err.kind(), "AnchorNoQuorum", "{err}");
    assert_eq!(account.wallet.asked.get(), 0);
}
