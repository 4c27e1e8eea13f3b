//! The `Anchor` trait: the NEAR implementation against `near_rpc_double` (a test double of a
//! NEAR RPC node keeping a context-config contract's state; see tests/near_rpc_double), and a
//! non-NEAR implementation to show the trait stands on its own.

mod near_rpc_double;

use std::collections::BTreeMap;

use near_rpc_double::anchor::NearContractDouble;
use near_rpc_double::{
    contract_client, refusing_url, App, Behaviour, Chain, Context, Server, CONTRACT,
};
use tabnode_chain::native::ReqwestTransport;
use tabnode_chain::{
    Anchor, AnchoredRole, Application, Capability, ContextConfig, NearAnchor, QuorumAnchor,
    Revisions, RpcClient,
};
use tabnode_types::{AppId, ContextId, PublicKey, SecretKey};

fn key(n: u8) -> PublicKey {
    SecretKey::from_seed([n; 32]).public()
}

fn wasm() -> Vec<u8> {
    (0..20_000u32).map(|i| (i % 251) as u8).collect()
}

/// A context with 7 members (keys 1..=7); key 1 authored it, key 5 may manage members too.
async fn anchor(urls_before: Vec<String>) -> (NearAnchor<ReqwestTransport>, ContextId, Server) {
    let (chain, context) = chain_with_context(7);
    let server = Server::start(chain.shared()).await;
    let mut urls = urls_before;
    urls.push(server.url.clone());
    let anchor = NearAnchor::new(contract_client(urls)).with_page(3);
    (anchor, context, server)
}

/// A chain whose contract records context 42 with `members` members (keys 1..=members).
fn chain_with_context(members: u8) -> (Chain, ContextId) {
    let app = Application::for_wasm(&wasm(), "https://apps.example/kv.wasm", vec![]);
    let record = App {
        id: app.id.0,
        blob: app.blob.0,
        size: app.size,
        source: app.source.clone(),
        metadata: vec![],
    };
    let mut c = Context::new(key(1).0, record, format!("0.{CONTRACT}"));
    for n in 2..=members {
        c.members.push(key(n).0);
    }
    c.members_privileged.insert(key(5).0);
    c.members_revision = 6;
    c.application_revision = 2;
    let context = ContextId([42; 32]);
    let mut chain = Chain::new(CONTRACT);
    chain.put_context(context.0, c);
    (chain, context)
}

#[tokio::test]
async fn members_are_read_page_by_page_in_order() {
    let (anchor, context, server) = anchor(vec![]).await;
    let members = anchor.members(&context).await.unwrap();
    assert_eq!(members, (1..=7).map(key).collect::<Vec<_>>());
    // Pages of 3: offsets 0, 3, 6 (the last one short).
    assert_eq!(server.hits(), 3);
    assert!(anchor.is_member(&context, &key(7)).await.unwrap());
    assert!(!anchor.is_member(&context, &key(8)).await.unwrap());
}

#[tokio::test]
async fn privileges_application_and_revisions() {
    let (anchor, context, _server) = anchor(vec![]).await;
    let privileges = anchor.privileges(&context, &[]).await.unwrap();
    assert_eq!(
        privileges,
        BTreeMap::from([
            (
                key(1),
                vec![Capability::ManageApplication, Capability::ManageMembers]
            ),
            (key(5), vec![Capability::ManageMembers]),
        ])
    );
    let app = anchor.application(&context).await.unwrap();
    assert_eq!(app.verify_wasm(&wasm()), Ok(AppId::of_wasm(&wasm())));
    assert_eq!(
        anchor.revisions(&context).await.unwrap(),
        Revisions {
            members: 6,
            application: 2
        }
    );
}

#[tokio::test]
async fn a_snapshot_gives_roles() {
    let (anchor, context, _server) = anchor(vec![]).await;
    let snapshot = anchor.snapshot(&context).await.unwrap();
    assert_eq!(snapshot.members.len(), 7);
    assert_eq!(snapshot.role(&key(1)), Some(AnchoredRole::Admin));
    assert_eq!(snapshot.role(&key(5)), Some(AnchoredRole::Admin));
    assert_eq!(snapshot.role(&key(3)), Some(AnchoredRole::Member));
    assert_eq!(snapshot.role(&key(9)), None);
    assert_eq!(snapshot.revisions.members, 6);
}

#[tokio::test]
async fn an_unknown_context_is_an_error_not_an_empty_list() {
    let (anchor, _context, _server) = anchor(vec![]).await;
    let err = anchor.members(&ContextId([1; 32])).await.unwrap_err();
    assert_eq!(err.error.panic_message(), Some("context does not exist"));
    assert!(anchor.snapshot(&ContextId([1; 32])).await.is_err());
}

#[tokio::test]
async fn the_anchor_fails_over_like_the_client() {
    let (anchor, context, server) = anchor(vec![refusing_url().await]).await;
    assert_eq!(anchor.members(&context).await.unwrap().len(), 7);
    assert_eq!(server.hits(), 3);
}

/// An anchor that is not NEAR: a fixed table, as another chain's client would fill it.
struct Table(BTreeMap<ContextId, (Vec<PublicKey>, Application)>);

#[derive(Debug, thiserror::Error)]
#[error("no such context")]
struct NoSuchContext;

impl Anchor for Table {
    type Error = NoSuchContext;

    async fn members(&self, context: &ContextId) -> Result<Vec<PublicKey>, NoSuchContext> {
        Ok(self.0.get(context).ok_or(NoSuchContext)?.0.clone())
    }

    async fn is_member(&self, context: &ContextId, key: &PublicKey) -> Result<bool, NoSuchContext> {
        Ok(self.members(context).await?.contains(key))
    }

    async fn privileges(
        &self,
        context: &ContextId,
        _keys: &[PublicKey],
    ) -> Result<BTreeMap<PublicKey, Vec<Capability>>, NoSuchContext> {
        let first = self.members(context).await?[0];
        Ok(BTreeMap::from([(first, vec![Capability::ManageMembers])]))
    }

    async fn application(&self, context: &ContextId) -> Result<Application, NoSuchContext> {
        Ok(self.0.get(context).ok_or(NoSuchContext)?.1.clone())
    }

    async fn revisions(&self, _context: &ContextId) -> Result<Revisions, NoSuchContext> {
        Ok(Revisions::default())
    }

    async fn nonce(
        &self,
        context: &ContextId,
        _key: &PublicKey,
    ) -> Result<Option<u64>, NoSuchContext> {
        self.members(context).await.map(|_| None)
    }

    async fn proxy_contract(&self, context: &ContextId) -> Result<String, NoSuchContext> {
        self.members(context)
            .await
            .map(|_| "proxy.table".to_owned())
    }

    fn says_unknown(_: &NoSuchContext) -> bool {
        true
    }

    fn is_unavailable(_: &NoSuchContext) -> bool {
        false
    }
}

#[test]
fn another_chain_implements_the_same_trait() {
    let context = ContextId([3; 32]);
    let table = Table(BTreeMap::from([(
        context,
        (
            vec![key(1), key(2)],
            Application::for_wasm(&wasm(), "", vec![]),
        ),
    )]));
    let snapshot = futures_lite_block_on(table.snapshot(&context)).unwrap();
    assert_eq!(snapshot.role(&key(1)), Some(AnchoredRole::Admin));
    assert_eq!(snapshot.role(&key(2)), Some(AnchoredRole::Member));
    assert!(snapshot.application.verify_wasm(&wasm()).is_ok());
    assert!(futures_lite_block_on(table.snapshot(&ContextId([4; 32]))).is_err());
}

/// Runs a future that never waits (the table anchor) to completion.
fn futures_lite_block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f)
}

#[tokio::test]
async fn anchored_says_members_and_whether_a_binary_is_the_recorded_one() {
    let (anchor, context, _server) = anchor(vec![]).await;
    let seen = anchor.anchored(&context, &wasm()).await.unwrap().unwrap();
    assert_eq!(seen.members, (1..=7).map(key).collect::<Vec<_>>());
    assert!(seen.app_matches);
    let mut other = wasm();
    other[0] ^= 1;
    assert!(
        !anchor
            .anchored(&context, &other)
            .await
            .unwrap()
            .unwrap()
            .app_matches
    );
    assert_eq!(
        anchor.anchored(&ContextId([9; 32]), &wasm()).await.unwrap(),
        None,
        "a context the contract does not record is not anchored"
    );
    let unreachable = NearAnchor::new(ContextConfig::new(
        RpcClient::new(ReqwestTransport::new(), [refusing_url().await]),
        CONTRACT,
    ));
    assert!(
        unreachable.anchored(&context, &wasm()).await.is_err(),
        "a failure to ask is an error"
    );
}

#[tokio::test]
async fn a_contract_error_other_than_an_unknown_context_from_the_rpc_double_is_a_failure_not_unanchored(
) {
    let (anchor, context, server) = anchor(vec![]).await;
    // The contract panics for another reason (out of gas, a changed contract): that says nothing
    // about whether the context is anchored.
    let panic = "wasm execution failed with error: HostError(GuestPanic { panic_msg: \"Exceeded the prepaid gas.\" })";
    let body = serde_json::json!({
        "jsonrpc": "2.0",
        "id": "tabnode",
        "result": {"error": panic, "logs": [], "block_height": 1000, "block_hash": Chain::block_hash(1000)},
    });
    server.set(Behaviour::Raw(200, body.to_string().into_bytes()));
    let err = anchor.anchored(&context, &wasm()).await.unwrap_err();
    assert_eq!(err.error.panic_message(), Some("Exceeded the prepaid gas."));
    // The panic for an unknown context is the chain's answer: not anchored.
    server.set(Behaviour::Normal);
    assert_eq!(
        anchor.anchored(&ContextId([9; 32]), &wasm()).await.unwrap(),
        None
    );
}

/// An anchor reading each of `servers` on its own, `quorum` of which must agree.
fn quorum_of(servers: &[&Server], quorum: usize) -> QuorumAnchor<NearAnchor<ReqwestTransport>> {
    let endpoints = servers
        .iter()
        .map(|s| NearAnchor::new(contract_client(vec![s.url.clone()])))
        .collect();
    QuorumAnchor::new(endpoints, quorum)
}

#[tokio::test]
async fn with_a_quorum_one_lying_rpc_double_can_neither_hide_the_anchor_nor_change_its_members() {
    let (chain, context) = chain_with_context(7);
    let chain = chain.shared();
    let (honest, other_honest) = (
        Server::start(chain.clone()).await,
        Server::start(chain).await,
    );
    // One endpoint says the contract does not know the context; another lists other members.
    let hiding = Server::start(Chain::new(CONTRACT).shared()).await;
    let (forged, _) = chain_with_context(3);
    let forging = Server::start(forged.shared()).await;

    // Alone, each liar is believed: that is what one trusted RPC means.
    assert_eq!(
        quorum_of(&[&hiding], 1)
            .anchored(&context, &wasm())
            .await
            .unwrap(),
        None
    );
    // Two must agree: the honest two outvote either liar, whatever the order of asking.
    for servers in [
        [&hiding, &honest, &other_honest],
        [&honest, &forging, &other_honest],
    ] {
        let seen = quorum_of(&servers, 2)
            .anchored(&context, &wasm())
            .await
            .unwrap()
            .expect("anchored");
        assert_eq!(seen.members, (1..=7).map(key).collect::<Vec<_>>());
    }
    // No two agree (or one is down): no answer, which is not "not anchored".
    let down = refusing_url().await;
    let endpoints = vec![
        NearAnchor::new(contract_client(vec![hiding.url.clone()])),
        NearAnchor::new(contract_client(vec![down])),
        NearAnchor::new(contract_client(vec![honest.url.clone()])),
    ];
    let err = QuorumAnchor::new(endpoints, 2)
        .anchored(&context, &wasm())
        .await
        .unwrap_err();
    let err = err.no_quorum().expect("no quorum");
    assert_eq!((err.asked, err.agreeing, err.quorum), (3, 1, 2));
    assert_eq!((err.failures.len(), err.unavailable), (1, 1));
    let err = quorum_of(&[&hiding, &forging], 2)
        .anchored(&context, &wasm())
        .await
        .unwrap_err();
    assert_eq!(err.no_quorum().expect("no quorum").agreeing, 1);
    // A quorum is clamped to the endpoints there are.
    assert_eq!(quorum_of(&[&honest], 5).quorum(), 1);
}

#[tokio::test]
async fn the_in_memory_contract_double_reads_as_the_rpc_path_does() {
    // The double that flows are tested on with no server reads the same contract state the
    // RPC double serves, and gives what NearAnchor reads over HTTP.
    let (chain, context) = chain_with_context(7);
    let chain = chain.shared();
    let server = Server::start(chain.clone()).await;
    let near = NearAnchor::new(contract_client(vec![server.url.clone()]));
    let double = NearContractDouble(chain);
    assert_eq!(
        double.snapshot(&context).await.unwrap(),
        near.snapshot(&context).await.unwrap()
    );
    for key in [key(1), key(5), key(9)] {
        assert_eq!(
            double.nonce(&context, &key).await.unwrap(),
            near.nonce(&context, &key).await.unwrap()
        );
        assert_eq!(
            double.recorded(&context, &key).await.unwrap(),
            near.recorded(&context, &key).await.unwrap()
        );
    }
    assert_eq!(
        double.anchored(&context, &wasm()).await.unwrap(),
        near.anchored(&context, &wasm()).await.unwrap()
    );
    let unknown = ContextId([9; 32]);
    assert_eq!(double.anchored(&unknown, &wasm()).await.unwrap(), None);
    assert_eq!(double.recorded(&unknown, &key(1)).await.unwrap(), None);
    assert_eq!(near.recorded(&unknown, &key(1)).await.unwrap(), None);
}
