//! The `Anchor` trait: the NEAR implementation against `near_rpc_double` (a test double of a
//! NEAR RPC node keeping a context-config contract's state; see tests/near_rpc_double), and a
//! non-NEAR implementation to show the trait stands on its own.

mod near_rpc_double;

use std::collections::BTreeMap;

use near_rpc_double::{contract_client, refusing_url, App, Chain, Context, Server, CONTRACT};
use tabnode_chain::native::ReqwestTransport;
use tabnode_chain::{
    Anchor, AnchoredRole, Application, Capability, ContextConfig, NearAnchor, Revisions, RpcClient,
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
    let app = Application::for_wasm(&wasm(), "https://apps.example/kv.wasm", vec![]);
    let record = App {
        id: app.id.0,
        blob: app.blob.0,
        size: app.size,
        source: app.source.clone(),
        metadata: vec![],
    };
    let mut c = Context::new(key(1).0, record, format!("0.{CONTRACT}"));
    for n in 2..=7 {
        c.members.push(key(n).0);
    }
    c.members_privileged.insert(key(5).0);
    c.members_revision = 6;
    c.application_revision = 2;
    let context = ContextId([42; 32]);
    let mut chain = Chain::new(CONTRACT);
    chain.put_context(context.0, c);
    let server = Server::start(chain.shared()).await;
    let mut urls = urls_before;
    urls.push(server.url.clone());
    let anchor = NearAnchor::new(contract_client(urls)).with_page(3);
    (anchor, context, server)
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
