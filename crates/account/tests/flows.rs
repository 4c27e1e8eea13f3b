//! The account's flows run natively with the native wallet (a real ed25519 signer, NEP-413
//! signatures as a browser wallet makes them) and real nodes on memory stores: sign-in, and
//! what a wrong account, a signature over another nonce or site, or a replayed answer does;
//! revocation of another device's key; rotation of this node's key. No chain is asked
//! ([`NoChain`]): the page's check of the key on NEAR is covered by the e2e tests.

use std::cell::RefCell;

use futures::executor::block_on;
use futures::lock::Mutex;
use serde_json::json;
use tabnode_account::keys::RevokeFlow;
use tabnode_account::signin::{identity, resume, SignInFlow};
use tabnode_account::{Account, FlowError, NoChain, RootGrantRecord, Site, WALLET_ANSWER_MS};
use tabnode_identity::grant::Root;
use tabnode_identity::nep413::{Payload, SignedMessage};
use tabnode_identity::signin::SignIn;
use tabnode_identity::wallet::{KeyWallet, Wallet, WalletError};
use tabnode_node::{FixedEnv, MemberOp, Node, NodeEvent, Role};
use tabnode_runtime::{Limits, Runtime};
use tabnode_sim::guest;
use tabnode_store::MemoryStore;
use tabnode_types::{ContextId, PublicKey, SecretKey};

type TestNode = Node<MemoryStore, FixedEnv>;

const ORIGIN: &str = "http://127.0.0.1:8080";
const PAGE_URL: &str = "http://127.0.0.1:8080/?db=first";

/// A node (key from `seed`) holding one kv-store context, behind the lock a driver uses.
fn node_with_context(seed: u8) -> (Mutex<TestNode>, ContextId) {
    let mut node = block_on(Node::open(
        MemoryStore::default(),
        FixedEnv::new(seed),
        Runtime::new(Limits::default()),
    ))
    .unwrap();
    tabnode_sim::clock_in(&mut node);
    let app = block_on(node.install_app(&guest("kv_store"))).unwrap();
    let ctx = block_on(node.create_context(app, json!({}))).unwrap();
    node.take_events();
    (Mutex::new(node), ctx)
}

fn wallet(account: &str, seed: u8) -> KeyWallet {
    KeyWallet::new(account, SecretKey::from_seed([seed; 32]))
}

fn account<W: Wallet>(wallet: W) -> Account<W, NoChain, FixedEnv> {
    Account {
        wallet,
        keys: NoChain,
        site: Site {
            origin: ORIGIN.into(),
            url: PAGE_URL.into(),
        },
        env: FixedEnv::new(200),
    }
}

fn public_key(node: &Mutex<TestNode>) -> PublicKey {
    block_on(node.lock()).public_key()
}

fn stored(node: &Mutex<TestNode>) -> Option<RootGrantRecord> {
    block_on(block_on(node.lock()).root_grant())
        .unwrap()
        .map(|bytes| RootGrantRecord::from_bytes(&bytes).unwrap())
}

/// The Bind operations the node made since it was last asked: how a grant shows in a context.
fn binds(node: &Mutex<TestNode>) -> Vec<PublicKey> {
    block_on(node.lock())
        .take_events()
        .into_iter()
        .filter_map(|e| match e {
            NodeEvent::Membership {
                op: MemberOp::Bind { root, .. },
                ..
            } => Some(root),
            _ => None,
        })
        .collect()
}

/// A TEST DOUBLE of a wallet that signs, with a real key, something other than what it was
/// asked (another nonce, another site): what a buggy wallet or a page in the middle gives.
struct SignsSomethingElse {
    wallet: KeyWallet,
    change: Change,
}

/// How [`SignsSomethingElse`] changes what it was asked to sign.
type Change = fn(&mut Payload);

impl Wallet for SignsSomethingElse {
    async fn sign_message(&self, payload: &Payload) -> Result<SignedMessage, WalletError> {
        let mut other = payload.clone();
        (self.change)(&mut other);
        self.wallet.sign_message(&other).await
    }
}

/// A TEST DOUBLE of a wallet that answers every request with one answer recorded earlier: a
/// replay by whoever saw it.
struct Replays(SignedMessage);

impl Wallet for Replays {
    async fn sign_message(&self, _payload: &Payload) -> Result<SignedMessage, WalletError> {
        Ok(self.0.clone())
    }
}

#[test]
fn a_valid_sign_in_grants_the_node_key_keeps_the_record_and_binds_every_context() {
    let (node, _ctx) = node_with_context(1);
    let alice = wallet("alice.near", 7);
    let sign_ins = RefCell::new(SignIn::default());
    let view =
        block_on(account(alice.clone()).sign_in(&sign_ins, &node, Some("alice.near".into())))
            .unwrap();
    assert_eq!(view.account_id, "alice.near");
    assert_eq!(
        view.root_public_key,
        format!("ed25519:{}", alice.public_key())
    );
    assert_eq!(view.client_key, public_key(&node).to_string());

    let record = stored(&node).expect("the record is kept");
    assert_eq!(record.recipient, ORIGIN);
    assert_eq!(record.grant.client_key, public_key(&node));
    let now_ms = 1_700_000_000_000 + 60_000;
    assert_eq!(record.view(now_ms).as_ref(), Some(&view));
    assert_eq!(
        block_on(identity(&node, now_ms)).unwrap(),
        Some(view.clone())
    );
    assert_eq!(
        binds(&node),
        vec![alice.public_key()],
        "the context shows the root"
    );
    assert_eq!(
        block_on(identity(&node, view.expires_at)).unwrap(),
        None,
        "not once the grant expired"
    );
}

#[test]
fn a_node_opened_again_resumes_its_sign_in_while_the_grant_is_valid_and_not_after() {
    let store = MemoryStore::default();
    let open = || {
        let runtime = Runtime::new(Limits::default());
        let mut node = block_on(Node::open(store.clone(), FixedEnv::new(1), runtime)).unwrap();
        tabnode_sim::clock_in(&mut node);
        node
    };
    let node = Mutex::new(open());
    let alice = wallet("alice.near", 7);
    let sign_ins = RefCell::new(SignIn::default());
    let view = block_on(account(alice.clone()).sign_in(&sign_ins, &node, None)).unwrap();
    drop(node);

    // Opened again on the same store: the kept grant is used, and a context it creates shows
    // the root.
    let mut again = open();
    let now_ms = 1_700_000_000_000 + 60_000;
    assert!(block_on(resume(&mut again, now_ms)).unwrap());
    let app = block_on(again.install_app(&guest("kv_store"))).unwrap();
    block_on(again.create_context(app, json!({}))).unwrap();
    let again = Mutex::new(again);
    assert_eq!(binds(&again), vec![alice.public_key()]);

    // Once the grant expired, nothing is resumed, and a new context shows no root.
    let mut late = open();
    assert!(!block_on(resume(&mut late, view.expires_at)).unwrap());
    let app = block_on(late.install_app(&guest("kv_store"))).unwrap();
    block_on(late.create_context(app, json!({}))).unwrap();
    assert!(binds(&Mutex::new(late)).is_empty());
}

#[test]
fn a_wallet_that_adds_the_page_url_as_callback_url_signs_in_rotates_and_stays_signed_in() {
    let (node, _) = node_with_context(1);
    let sign_ins = RefCell::new(SignIn::default());
    let other = account(wallet("alice.near", 7).adding_callback_url("http://evil.example/"));
    let err = block_on(other.sign_in(&sign_ins, &node, None)).unwrap_err();
    assert_eq!(err.kind(), "SignatureInvalid", "{err}");
    assert!(stored(&node).is_none());

    // MyNearWallet's way: the page's URL as the callbackUrl. The record keeps it, so the grant
    // verifies again when the node reads it (on every start, for `identity()`).
    let page = account(wallet("alice.near", 7).adding_callback_url(PAGE_URL));
    let view = block_on(page.sign_in(&sign_ins, &node, None)).unwrap();
    let record = stored(&node).unwrap();
    assert_eq!(record.callback_url.as_deref(), Some(PAGE_URL));
    let now_ms = 1_700_000_000_000 + 60_000;
    assert_eq!(block_on(identity(&node, now_ms)).unwrap(), Some(view));
    let rotated = block_on(page.rotate(&node)).unwrap();
    assert_eq!(rotated.client_key, public_key(&node).to_string());
    assert_eq!(
        stored(&node).unwrap().callback_url.as_deref(),
        Some(PAGE_URL)
    );
}

#[test]
fn a_record_signed_without_a_callback_url_is_stored_as_before() {
    let (node, _) = node_with_context(1);
    let sign_ins = RefCell::new(SignIn::default());
    block_on(account(wallet("alice.near", 7)).sign_in(&sign_ins, &node, None)).unwrap();
    let bytes = block_on(block_on(node.lock()).root_grant())
        .unwrap()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    let mut fields: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    fields.sort();
    assert_eq!(fields, ["answer", "grant", "recipient"]);
}

#[test]
fn an_answer_from_another_account_than_asked_is_refused_and_stores_nothing() {
    let (node, _) = node_with_context(1);
    let sign_ins = RefCell::new(SignIn::default());
    let bob = account(wallet("bob.near", 8));
    let err = block_on(bob.sign_in(&sign_ins, &node, Some("alice.near".into()))).unwrap_err();
    assert!(
        matches!(&err, FlowError::WrongAccount { signed, expected } if signed == "bob.near" && expected == "alice.near"),
        "{err:?}"
    );
    assert_eq!(err.kind(), "WrongAccount");
    assert_eq!(
        err.to_string(),
        "the wallet signed as bob.near, not alice.near"
    );
    assert!(stored(&node).is_none());
    assert!(binds(&node).is_empty());
}

#[test]
fn a_signature_over_another_nonce_or_site_is_refused_and_stores_nothing() {
    let (node, _) = node_with_context(1);
    let sign_ins = RefCell::new(SignIn::default());
    let changes: [(&str, Change); 3] = [
        ("another nonce", |p| p.nonce[0] ^= 1),
        ("another site", |p| {
            p.recipient = "http://evil.example".into()
        }),
        ("another message", |p| p.message.push(' ')),
    ];
    for (what, change) in changes {
        let wallet = SignsSomethingElse {
            wallet: wallet("alice.near", 7),
            change,
        };
        let err = block_on(account(wallet).sign_in(&sign_ins, &node, None)).unwrap_err();
        assert_eq!(err.kind(), "SignatureInvalid", "{what}: {err}");
        assert!(stored(&node).is_none(), "{what}");
        assert!(binds(&node).is_empty(), "{what}");
    }
}

#[test]
fn a_replayed_answer_is_refused_in_a_later_sign_in_and_in_the_same_one() {
    let (node, _) = node_with_context(1);
    let sign_ins = RefCell::new(SignIn::default());
    let alice = wallet("alice.near", 7);
    // Record what the wallet answered to one sign-in, carried out step by step.
    let flow = SignInFlow::start(
        &mut sign_ins.borrow_mut(),
        public_key(&node),
        ORIGIN,
        [9; 32],
        1_000,
        None,
    )
    .unwrap();
    let answer = block_on(alice.sign_message(flow.payload())).unwrap();
    let again = flow.clone();
    let signed = flow
        .finish(&mut sign_ins.borrow_mut(), answer.clone(), 2_000, PAGE_URL)
        .unwrap();
    assert_eq!(
        signed.grant.root,
        Root::Near {
            account_id: "alice.near".into(),
            public_key: alice.public_key()
        }
    );
    // The same answer to the same request again: its challenge is used up.
    let err = again
        .finish(&mut sign_ins.borrow_mut(), answer.clone(), 2_001, PAGE_URL)
        .unwrap_err();
    assert_eq!(err.kind(), "SignatureInvalid");
    assert!(err.to_string().contains("already answered"), "{err}");
    // The same answer to a later sign-in: signed over another nonce.
    let err = block_on(account(Replays(answer)).sign_in(&sign_ins, &node, None)).unwrap_err();
    assert_eq!(err.kind(), "SignatureInvalid", "{err}");
    assert!(stored(&node).is_none());
}

#[test]
fn an_answer_after_the_challenge_expired_is_refused() {
    let sign_ins = RefCell::new(SignIn::default());
    let client = SecretKey::from_seed([3; 32]).public();
    let flow = SignInFlow::start(
        &mut sign_ins.borrow_mut(),
        client,
        ORIGIN,
        [9; 32],
        1_000,
        None,
    )
    .unwrap();
    let answer = block_on(wallet("alice.near", 7).sign_message(flow.payload())).unwrap();
    let late = 1_000 + u64::from(WALLET_ANSWER_MS);
    let err = flow
        .finish(&mut sign_ins.borrow_mut(), answer, late, PAGE_URL)
        .unwrap_err();
    assert_eq!(err.kind(), "SignatureInvalid");
    assert!(err.to_string().contains("expired"), "{err}");
}

/// Two nodes of one account (two devices) in one context, both signed in with its wallet.
fn two_devices() -> (Mutex<TestNode>, Mutex<TestNode>, ContextId, KeyWallet) {
    let (a, ctx) = node_with_context(1);
    let mut b = block_on(Node::open(
        MemoryStore::default(),
        FixedEnv::new(2),
        Runtime::new(Limits::default()),
    ))
    .unwrap();
    tabnode_sim::clock_in(&mut b);
    let (mut a, alice) = (a.into_inner(), wallet("alice.near", 7));
    block_on(b.join(&a.invite(&ctx).unwrap())).unwrap();
    tabnode_sim::settle(&mut [&mut a, &mut b]);
    assert!(!b.is_joining(&ctx), "B is in");
    let (a, b) = (Mutex::new(a), Mutex::new(b));
    let sign_ins = RefCell::new(SignIn::default());
    block_on(account(alice.clone()).sign_in(&sign_ins, &a, None)).unwrap();
    block_on(account(alice.clone()).sign_in(&sign_ins, &b, None)).unwrap();
    settle(&a, &b);
    (a, b, ctx, alice)
}

fn settle(a: &Mutex<TestNode>, b: &Mutex<TestNode>) {
    let (mut a, mut b) = (block_on(a.lock()), block_on(b.lock()));
    tabnode_sim::settle(&mut [&mut *a, &mut *b]);
}

fn members(node: &Mutex<TestNode>, ctx: &ContextId) -> Vec<(PublicKey, Role)> {
    block_on(node.lock()).members(ctx).unwrap()
}

#[test]
fn revoking_another_devices_key_removes_it_where_it_is_bound_to_the_account() {
    let (a, b, ctx, alice) = two_devices();
    let b_key = public_key(&b);
    assert!(members(&a, &ctx).iter().any(|(k, _)| *k == b_key));

    // Another account's wallet cannot revoke it: the key is bound to alice.near's key.
    let err = block_on(account(wallet("mallory.near", 9)).revoke(&a, b_key)).unwrap_err();
    assert!(
        matches!(err, FlowError::NotBound(k) if k == b_key),
        "{err:?}"
    );
    // Nor can a revocation signed for another site, or a key bound nowhere be revoked.
    let elsewhere = SignsSomethingElse {
        wallet: alice.clone(),
        change: |p| p.recipient = "http://evil.example".into(),
    };
    let err = block_on(account(elsewhere).revoke(&a, b_key)).unwrap_err();
    assert_eq!(err.kind(), "SignatureInvalid", "{err}");
    let stranger = SecretKey::from_seed([40; 32]).public();
    let err = block_on(account(alice.clone()).revoke(&a, stranger)).unwrap_err();
    assert_eq!(err.kind(), "NotBound", "{err}");
    assert!(
        members(&a, &ctx).iter().any(|(k, _)| *k == b_key),
        "nothing changed"
    );

    let revoked = block_on(account(alice).revoke(&a, b_key)).unwrap();
    assert_eq!(revoked, vec![ctx]);
    settle(&a, &b);
    assert!(
        !members(&a, &ctx).iter().any(|(k, _)| *k == b_key),
        "B's key is out of the context"
    );
    assert!(
        !members(&b, &ctx).iter().any(|(k, _)| *k == b_key),
        "and B learnt it too"
    );
}

#[test]
fn a_revocation_signed_over_another_nonce_is_refused() {
    let flow = RevokeFlow::start(SecretKey::from_seed([3; 32]).public(), ORIGIN, [5; 32]).unwrap();
    let mut other = flow.payload().clone();
    other.nonce = [6; 32];
    let answer = block_on(wallet("alice.near", 7).sign_message(&other)).unwrap();
    assert_eq!(
        flow.clone().finish(&answer, PAGE_URL).unwrap_err().kind(),
        "SignatureInvalid"
    );
    let answer = block_on(wallet("alice.near", 7).sign_message(flow.payload())).unwrap();
    assert!(flow.finish(&answer, PAGE_URL).is_ok());
}

#[test]
fn a_revocation_by_a_wallet_that_adds_the_page_url_verifies_as_every_member_checks_it() {
    let flow = RevokeFlow::start(SecretKey::from_seed([3; 32]).public(), ORIGIN, [5; 32]).unwrap();
    let adds_url = wallet("alice.near", 7).adding_callback_url(PAGE_URL);
    let answer = block_on(adds_url.sign_message(flow.payload())).unwrap();
    let err = flow
        .clone()
        .finish(&answer, "http://127.0.0.1:8080/other")
        .unwrap_err();
    assert_eq!(err.kind(), "SignatureInvalid", "{err}");
    let signed = flow.finish(&answer, PAGE_URL).unwrap();
    assert!(
        signed.verify().is_ok(),
        "its proof carries the callbackUrl it was signed with"
    );
}

#[test]
fn rotation_needs_a_sign_in_moves_every_context_to_the_new_key_and_keeps_its_grant() {
    let (node, ctx) = node_with_context(1);
    let alice = wallet("alice.near", 7);
    let err = block_on(account(alice.clone()).rotate(&node)).unwrap_err();
    assert_eq!(err.kind(), "NotSignedIn", "{err}");

    let sign_ins = RefCell::new(SignIn::default());
    block_on(account(alice.clone()).sign_in(&sign_ins, &node, None)).unwrap();
    let old = public_key(&node);

    // Another account's wallet cannot rotate it, and the node keeps its key.
    let err = block_on(account(wallet("bob.near", 8)).rotate(&node)).unwrap_err();
    assert_eq!(err.kind(), "WrongAccount", "{err}");
    assert_eq!(public_key(&node), old);

    let view = block_on(account(alice.clone()).rotate(&node)).unwrap();
    let new = public_key(&node);
    assert_ne!(new, old);
    assert_eq!(view.client_key, new.to_string());
    assert_eq!(view.account_id, "alice.near");
    let record = stored(&node).unwrap();
    assert_eq!(record.grant.client_key, new, "the new grant is kept");
    let roles = members(&node, &ctx);
    assert!(roles.contains(&(new, Role::Admin)), "{roles:?}");
    assert!(!roles.iter().any(|(k, _)| *k == old), "{roles:?}");
}
