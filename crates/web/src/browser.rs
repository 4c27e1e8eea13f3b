//! `BrowserNode`: one node per page, on IndexedDB and the libp2p swarm.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeSet, HashMap};
use std::rc::Rc;

use futures::lock::Mutex;
use futures::StreamExt;
use js_sys::{Function, Promise, Uint8Array};
use serde::Serialize;
use tabnode_identity::grant::{hex_nonce, Grant, Revocation, Root, SignedGrant, SignedRevocation};
use tabnode_identity::nep413::{Payload, SignedMessage};
use tabnode_identity::signin::SignIn;
use tabnode_net::{NetConfig, NetEvent, NetHandle, Via};
use tabnode_node::{
    Env, GuestPolicy, GuestRequest, Node, NodeError, NodeEvent, Role, DEFAULT_INVITATION_NANOS,
};
use tabnode_runtime::{EngineKind, Limits, Runtime};
use tabnode_store::{IndexedDbStore, SealedStore, Sealer, StoreError};
use tabnode_types::{AppId, ContextId, PublicKey};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

mod anchors;
mod apps;

/// The page's store: IndexedDB, values sealed under the vault key.
type PageStore = SealedStore<IndexedDbStore, WebCryptoSealer>;
type CoreNode = Node<Rc<PageStore>, BrowserEnv>;

#[wasm_bindgen(inline_js = r#"
const done = (request) => new Promise((resolve, reject) => {
  request.onsuccess = () => resolve(request.result);
  request.onerror = () => reject(request.error);
});
// The store's vault key: a non-extractable AES-GCM CryptoKey, kept (as a CryptoKey object, which
// stays non-extractable) in a database of its own, so no script can read its bytes.
export async function vaultKey(name) {
  const open = indexedDB.open('tabnode-vault', 1);
  open.onupgradeneeded = () => open.result.createObjectStore('keys');
  const db = await done(open);
  try {
    let key = await done(db.transaction('keys').objectStore('keys').get(name));
    if (!key) {
      key = await crypto.subtle.generateKey({ name: 'AES-GCM', length: 256 }, false, ['encrypt', 'decrypt']);
      const tx = db.transaction('keys', 'readwrite');
      tx.objectStore('keys').put(key, name);
      await new Promise((resolve, reject) => { tx.oncomplete = resolve; tx.onerror = () => reject(tx.error); });
    }
    return key;
  } finally {
    db.close();
  }
}
export async function sealWith(key, plain) {
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const body = new Uint8Array(await crypto.subtle.encrypt({ name: 'AES-GCM', iv }, key, plain));
  const out = new Uint8Array(12 + body.length);
  out.set(iv);
  out.set(body, 12);
  return out;
}
export async function openWith(key, sealed) {
  const plain = await crypto.subtle.decrypt({ name: 'AES-GCM', iv: sealed.slice(0, 12) }, key, sealed.slice(12));
  return new Uint8Array(plain);
}
"#)]
extern "C" {
    #[wasm_bindgen(catch, js_name = vaultKey)]
    async fn vault_key(name: &str) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(catch, js_name = sealWith)]
    async fn seal_with(key: &JsValue, plain: &[u8]) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(catch, js_name = openWith)]
    async fn open_with(key: &JsValue, sealed: &[u8]) -> Result<JsValue, JsValue>;
}

/// Seals the node's secrets at rest with the store's non-extractable WebCrypto key.
struct WebCryptoSealer {
    key: JsValue,
}

fn vault_error(what: &str, err: JsValue) -> StoreError {
    StoreError::Backend(format!(
        "{what}: {}",
        err.as_string().unwrap_or_else(|| format!("{err:?}"))
    ))
}

impl Sealer for WebCryptoSealer {
    async fn seal(&self, plain: &[u8]) -> Result<Vec<u8>, StoreError> {
        let sealed = seal_with(&self.key, plain)
            .await
            .map_err(|e| vault_error("sealing a key", e))?;
        Ok(Uint8Array::new(&sealed).to_vec())
    }

    async fn open(&self, sealed: &[u8]) -> Result<Vec<u8>, StoreError> {
        let plain = open_with(&self.key, sealed)
            .await
            .map_err(|e| vault_error("opening a sealed key (was the vault cleared?)", e))?;
        Ok(Uint8Array::new(&plain).to_vec())
    }
}

/// Time from `Date.now()` (the node orders its own calls on a hybrid logical clock);
/// randomness from WebCrypto.
struct BrowserEnv;

impl Env for BrowserEnv {
    fn now_nanos(&self) -> u64 {
        (js_sys::Date::now() * 1_000_000.0) as u64
    }

    fn random32(&self) -> [u8; 32] {
        let mut out = [0; 32];
        getrandom::fill(&mut out).expect("WebCrypto is available in every page and worker");
        out
    }
}

#[wasm_bindgen]
extern "C" {
    /// The page's Web Locks manager (`navigator.locks`).
    type LockManager;
    #[wasm_bindgen(method)]
    fn request(
        this: &LockManager,
        name: &str,
        options: &JsValue,
        callback: &Closure<dyn FnMut(JsValue) -> Promise>,
    ) -> Promise;
}

/// Takes the store's Web Lock for as long as the page lives, so two tabs of one origin never
/// write one node's store at once. Fails with `StoreLocked` if another tab holds it.
async fn lock_store(db_name: &str) -> Result<(), JsValue> {
    let navigator = js_sys::Reflect::get(&js_sys::global(), &"navigator".into())?;
    let locks = js_sys::Reflect::get(&navigator, &"locks".into())?;
    if locks.is_undefined() {
        tracing::warn!(
            "no Web Locks here (not a secure context?): another tab could open this store too"
        );
        return Ok(());
    }
    let (acquired_tx, acquired) = futures::channel::oneshot::channel::<bool>();
    let mut acquired_tx = Some(acquired_tx);
    let callback = Closure::<dyn FnMut(JsValue) -> Promise>::new(move |lock: JsValue| {
        let held = !lock.is_null();
        if let Some(tx) = acquired_tx.take() {
            let _ = tx.send(held);
        }
        if held {
            Promise::new(&mut |_, _| {}) // never settles: the lock is released when the page goes
        } else {
            Promise::resolve(&JsValue::UNDEFINED)
        }
    });
    let options = js_sys::Object::new();
    js_sys::Reflect::set(&options, &"ifAvailable".into(), &JsValue::TRUE)?;
    let manager: LockManager = locks.unchecked_into();
    let _ = manager.request(&format!("tabnode-store:{db_name}"), &options, &callback);
    callback.forget();
    if acquired.await.unwrap_or(false) {
        Ok(())
    } else {
        Err(usage_error(
            "StoreLocked",
            format!(
                "the node stored as {db_name:?} is open in another tab of this site; close it, or open this page with another store name (e.g. ?db=second)"
            ),
        ))
    }
}

/// The declarations of the types `BrowserNode` takes and returns, kept as a TypeScript file
/// so that editors check them; wasm-bindgen appends them to the package's `.d.ts`.
#[wasm_bindgen(typescript_custom_section)]
const TS_TYPES: &'static str = include_str!("browser.d.ts");

/// Options a page passes to [`BrowserNode::create`].
#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct Options {
    /// IndexedDB database name: one per node; two tabs with the same name share one node.
    db_name: Option<String>,
    /// Relay multiaddrs, e.g. `/ip4/127.0.0.1/tcp/9090/ws/p2p/12D3...`.
    relays: Vec<String>,
    /// NEAR JSON-RPC URLs (tried in order): when given, sign-in also checks that the key the
    /// wallet signed with is a full-access key of the account (`view_access_key`).
    near_rpc: Vec<String>,
    /// A Calimero context-config contract on NEAR (with `near_rpc`): a context it records is
    /// anchored there, and the node keeps its view of it fresh (see [`anchors::anchor_refresh`]).
    near_contract: Option<String>,
    /// How often the anchors are read again, in ms (default 30 s).
    anchor_refresh_ms: Option<u32>,
    /// How many of `near_rpc` must give the same anchor for it to be taken (default 1: the
    /// first that answers, with failover): see [`anchors::anchor_reader`].
    near_rpc_quorum: Option<u32>,
    /// Sites besides this page's origin whose NEAR wallet signatures (NEP-413 `recipient`) this
    /// node takes in members' root statements.
    near_recipients: Vec<String>,
    /// Direct WebRTC links to other pages (default on): see `tabnode_net::direct`.
    direct: Option<bool>,
    /// STUN/TURN server URLs for those links (default none: host candidates only).
    ice_servers: Vec<String>,
    /// From how many deltas this node answers a joiner with a state snapshot (0: never); see
    /// `tabnode_node::snapshot`.
    snapshot_threshold: Option<u32>,
    /// The guest engine: `browser` (default) or `wasmi`; see `tabnode_runtime::EngineKind`.
    engine: Option<String>,
}

/// The `guestConsent` option, if given: a function the node asks before a guest's request that
/// needs its user's consent (see [`ask_page`]). Read apart from [`Options`]: a function is no
/// data.
fn guest_consent(options: &JsValue) -> Result<Option<Function>, JsValue> {
    if !options.is_object() {
        return Ok(None);
    }
    let value = js_sys::Reflect::get(options, &"guestConsent".into())?;
    if value.is_undefined() || value.is_null() {
        return Ok(None);
    }
    value.dyn_into::<Function>().map(Some).map_err(|_| {
        usage_error(
            "BadOptions",
            "guestConsent must be a function: (request) => boolean".into(),
        )
    })
}

/// Asks the page's `guestConsent` about a guest's `request` (`{kind, context, member, caller}`,
/// see `GuestRequest` in browser.d.ts). Only `true` consents: the node is in the middle of the
/// guest's call and cannot wait, so a promise (or an exception, or anything else) refuses.
fn ask_page(consent: &Function, request: &GuestRequest) -> bool {
    let caller = match request {
        GuestRequest::DeleteContext { caller, .. } => *caller,
        _ => request.context(),
    };
    let asked = js_sys::Object::new();
    let member = request
        .member()
        .map_or(JsValue::NULL, |m| m.to_string().into());
    for (field, value) in [
        ("kind", request.kind().into()),
        ("context", request.context().to_string().into()),
        ("member", member),
        ("caller", caller.to_string().into()),
    ] {
        let _ = js_sys::Reflect::set(&asked, &field.into(), &value);
    }
    match consent.call1(&JsValue::NULL, &asked) {
        Ok(answer) if answer.is_instance_of::<Promise>() => {
            tracing::warn!("guestConsent returned a promise: it must answer at once; refused");
            false
        }
        Ok(answer) => answer.as_bool() == Some(true),
        Err(e) => {
            tracing::warn!(?e, "guestConsent threw; refused");
            false
        }
    }
}

/// The engine an option names (the browser's by default).
fn engine_of(name: Option<&str>) -> Result<EngineKind, JsValue> {
    match name {
        None | Some("browser") => Ok(EngineKind::Browser),
        Some("wasmi") => Ok(EngineKind::Wasmi),
        Some(other) => Err(usage_error(
            "BadOptions",
            format!("unknown engine {other:?}: \"browser\" or \"wasmi\""),
        )),
    }
}

/// A JS callback subscribed to one context (or to all, for `None`).
struct Subscriber {
    id: u32,
    context: Option<ContextId>,
    callback: Function,
}

struct Inner {
    node: Mutex<CoreNode>,
    /// The node's store, shared: an app's ABI is kept beside the node's records.
    store: Rc<PageStore>,
    net: Option<NetHandle>,
    peer_id: String,
    /// The engine that runs guest apps.
    engine: EngineKind,
    /// This node's key as text: it changes when the key is rotated.
    public_key: RefCell<String>,
    subscribers: RefCell<Vec<Subscriber>>,
    next_subscriber: Cell<u32>,
    /// Peers connected in libp2p (relays, and pages over WebRTC or a circuit), and what the
    /// connection runs over.
    peers: RefCell<HashMap<String, Via>>,
    /// Relays holding a reservation for this node (it can be dialled through them).
    reserved: RefCell<BTreeSet<String>>,
    sign_in: RefCell<SignIn>,
    /// See [`Options::near_rpc`].
    near_rpc: Vec<String>,
    /// See [`Options::near_contract`]: where [`BrowserNode::write_anchor`] writes.
    near_contract: Option<String>,
    /// When the timer task next wakes (ns since the epoch), and how to wake it sooner: an
    /// operation can make timer work due earlier (a read's audit record waits 100 ms).
    timer_wakes_at: Cell<u64>,
    wake_timer: futures::channel::mpsc::UnboundedSender<()>,
    /// See [`Options::near_rpc_quorum`].
    near_rpc_quorum: usize,
}

/// Read-only calls' audit records wait to be written together (see
/// `Node::defer_read_audits`): at most this many (and at most `READ_AUDITS_WAIT_NANOS`).
const READ_AUDITS_WAITING: usize = 64;

/// The timer task wakes at least this often, and sooner when the node's timers say so.
const MOST_TIMER_SLEEP: std::time::Duration = std::time::Duration::from_secs(1);

/// A signed grant as kept in the store: the grant, the origin it was signed for, and the
/// wallet's answer, so it can be checked again on every start.
#[derive(serde::Serialize, serde::Deserialize)]
struct RootGrantRecord {
    grant: Grant,
    recipient: String,
    answer: SignedMessage,
}

/// Who this node acts for, as JS sees it.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct IdentityView {
    account_id: String,
    root_public_key: String,
    client_key: String,
    expires_at: u64,
}

/// The stored sign-in as a grant, if it still verifies at `now_ms`.
fn valid_grant(record: &RootGrantRecord, now_ms: u64) -> Option<SignedGrant> {
    let signed = SignedGrant::from_wallet(
        record.grant.clone(),
        &record.recipient,
        &record.answer,
        None,
    )
    .ok()?;
    signed.verify(now_ms).ok()?;
    Some(signed)
}

fn identity_view(record: &RootGrantRecord, now_ms: u64) -> Option<IdentityView> {
    let signed = valid_grant(record, now_ms)?;
    let Root::Near {
        account_id,
        public_key,
    } = &signed.root
    else {
        return None;
    };
    Some(IdentityView {
        account_id: account_id.clone(),
        root_public_key: format!("ed25519:{public_key}"),
        client_key: signed.grant.client_key.to_string(),
        expires_at: signed.grant.expires_at,
    })
}

/// Finds the page's NEAR wallet and has it sign `payload` (NEP-413 `signMessage`); its answer,
/// not yet verified. Failures map to `WalletNotFound`, `WalletRejected`, `WalletTimeout` and
/// `WalletAnswerInvalid`.
async fn ask_wallet_to_sign(payload: &Payload) -> Result<SignedMessage, JsValue> {
    let wallet = crate::wallet::find_wallet(300).await;
    if wallet.is_null() || wallet.is_undefined() {
        return Err(usage_error(
            "WalletNotFound",
            "no NEAR wallet extension was found in this page".into(),
        ));
    }
    let answer = crate::wallet::wallet_sign_message(
        &wallet,
        &payload.message,
        &payload.nonce,
        &payload.recipient,
        WALLET_ANSWER_MS,
    )
    .await?;
    let answer: serde_json::Value = serde_json::from_str(&answer.as_string().unwrap_or_default())
        .map_err(|e| {
        usage_error(
            "WalletAnswerInvalid",
            format!("the wallet's answer is not JSON: {e}"),
        )
    })?;
    SignedMessage::from_json(&answer).map_err(|e| usage_error("WalletAnswerInvalid", e.to_string()))
}

/// Asks NEAR (through the configured RPC URLs, with failover) whether the key a wallet signed
/// with is a full-access key of the account it named: a wallet could otherwise name any account.
async fn check_access_key(urls: &[String], root: &Root) -> Result<(), JsValue> {
    use tabnode_chain::{KeyCheckError, RpcClient};
    let Root::Near {
        account_id,
        public_key,
    } = root
    else {
        return Ok(());
    };
    let client = RpcClient::new(
        tabnode_chain::web::FetchTransport::new(),
        urls.iter().cloned(),
    );
    let key = format!("ed25519:{public_key}");
    client
        .check_full_access(account_id, &key)
        .await
        .map_err(|e| match e {
            KeyCheckError::NotOnAccount(why) => usage_error("KeyNotOnAccount", why),
            KeyCheckError::Unavailable(_) => usage_error("RpcUnavailable", e.to_string()),
        })
}

/// How long a sign-in's grant lasts, and how long the wallet has to answer.
const GRANT_VALID_MS: u64 = 30 * 24 * 3600 * 1000;
const WALLET_ANSWER_MS: u32 = 120_000;
/// How long `join` waits for a member to admit this node, in 100 ms polls.
const JOIN_WAIT_POLLS: u32 = 600;

/// A tabnode node running in this page.
#[wasm_bindgen]
pub struct BrowserNode {
    inner: Rc<Inner>,
}

/// Turns a node error into a JS `Error` whose `name` is the error's kind.
fn js_error(err: NodeError) -> JsValue {
    let e = js_sys::Error::new(&err.to_string());
    e.set_name(err.kind());
    e.into()
}

fn usage_error(kind: &str, message: String) -> JsValue {
    let e = js_sys::Error::new(&message);
    e.set_name(kind);
    e.into()
}

fn to_js<T: Serialize>(value: &T) -> Result<JsValue, JsValue> {
    value
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(|e| usage_error("EncodeError", e.to_string()))
}

/// The bytes of a wasm binary passed as a `Uint8Array` or an `ArrayBuffer`.
fn wasm_bytes(bytes: &JsValue, method: &str) -> Result<Vec<u8>, JsValue> {
    if !(bytes.is_instance_of::<Uint8Array>() || bytes.is_instance_of::<js_sys::ArrayBuffer>()) {
        return Err(usage_error(
            "BadArgs",
            format!("{method} takes a Uint8Array or ArrayBuffer of wasm"),
        ));
    }
    Ok(Uint8Array::new(bytes).to_vec())
}

fn parse_id_key(text: &str) -> Result<PublicKey, JsValue> {
    text.parse::<PublicKey>()
        .map_err(|e| js_error(NodeError::BadId(e.to_string())))
}

fn parse_id<T: std::str::FromStr<Err = tabnode_types::IdParseError>>(
    text: &str,
) -> Result<T, JsValue> {
    text.parse::<T>()
        .map_err(|e| js_error(NodeError::BadId(e.to_string())))
}

impl Inner {
    /// Runs one operation on the node (operations are serialised), then sends what it queued
    /// and tells subscribers what happened.
    async fn run<T>(
        self: &Rc<Self>,
        op: impl AsyncFnOnce(&mut CoreNode) -> Result<T, NodeError>,
    ) -> Result<T, JsValue> {
        let mut node = self.node.lock().await;
        let result = op(&mut node).await;
        let events = tabnode_driver::flush(&mut node, self.net.as_ref());
        let due = node.poll_timeout();
        drop(node);
        if due.is_some_and(|due| due < self.timer_wakes_at.get()) {
            let _ = self.wake_timer.unbounded_send(());
        }
        self.notify(&events);
        result.map_err(js_error)
    }

    fn notify(&self, events: &[NodeEvent]) {
        if events.is_empty() {
            return;
        }
        // Clone the callbacks first: a callback may subscribe or unsubscribe.
        let subscribers: Vec<(Option<ContextId>, Function)> = self
            .subscribers
            .borrow()
            .iter()
            .map(|s| (s.context, s.callback.clone()))
            .collect();
        for event in events {
            let Ok(value) = to_js(event) else { continue };
            for (context, callback) in &subscribers {
                if context.is_none() || *context == event.context_id() {
                    if let Err(e) = callback.call1(&JsValue::NULL, &value) {
                        tracing::warn!("a subscriber threw: {e:?}");
                    }
                }
            }
        }
    }

    fn notify_peer(&self, kind: &str, peer: &str) {
        let value =
            to_js(&serde_json::json!({"type": kind, "peer": peer})).unwrap_or(JsValue::NULL);
        let all: Vec<Function> = self
            .subscribers
            .borrow()
            .iter()
            .filter(|s| s.context.is_none())
            .map(|s| s.callback.clone())
            .collect();
        for callback in all {
            let _ = callback.call1(&JsValue::NULL, &value);
        }
    }
}

/// Sends the node's warnings to the devtools console, once per page.
fn init_logging() {
    use std::sync::Once;
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let config = tracing_wasm::WASMLayerConfigBuilder::new()
            .set_max_level(tracing::Level::WARN)
            .build();
        tracing_wasm::set_as_global_default_with_config(config);
    });
}

/// Feeds network events to the node for as long as the page lives.
async fn pump_network(
    inner: std::rc::Weak<Inner>,
    mut events: futures::channel::mpsc::UnboundedReceiver<NetEvent>,
) {
    while let Some(event) = events.next().await {
        let Some(inner) = inner.upgrade() else { return };
        let other = inner
            .run(async |node| Ok(tabnode_driver::deliver(node, event).await))
            .await;
        let Ok(Some(event)) = other else { continue };
        match event {
            NetEvent::Connected { peer, via } => {
                inner.peers.borrow_mut().insert(peer.clone(), via);
                inner.notify_peer("peerConnected", &peer);
            }
            NetEvent::Reserved { relay } => {
                inner.reserved.borrow_mut().insert(relay);
            }
            NetEvent::Disconnected { peer } => {
                inner.peers.borrow_mut().remove(&peer);
                inner.reserved.borrow_mut().remove(&peer);
                inner.notify_peer("peerDisconnected", &peer);
            }
            NetEvent::DirectOpened { peer } => {
                inner.notify_peer("directOpened", &peer);
            }
            NetEvent::DirectClosed { peer } => {
                inner.notify_peer("directClosed", &peer);
            }
            other => tracing::debug!(?other, "network event"),
        }
    }
}

/// The page's timer: runs the node's timer work when it is due ([`CoreNode::poll_timeout`]),
/// with the page's clock as the time, sleeping until then (at most [`MOST_TIMER_SLEEP`]) unless
/// an operation makes work due sooner. This is what repairs gossip lost while a connection was
/// down (each context announces its heads every few seconds) and writes reads' audit records.
/// Stops when the node is dropped.
async fn timers(
    inner: std::rc::Weak<Inner>,
    mut wakes: futures::channel::mpsc::UnboundedReceiver<()>,
) {
    loop {
        let sleep = {
            let Some(inner) = inner.upgrade() else { return };
            let node = inner.node.lock().await;
            let now = node.env().now_nanos();
            let sleep = tabnode_driver::time_to_next_timer(&node, now, MOST_TIMER_SLEEP);
            inner
                .timer_wakes_at
                .set(now.saturating_add(sleep.as_nanos() as u64));
            sleep
        };
        let delay = futures_timer::Delay::new(sleep);
        futures::future::select(delay, wakes.next()).await;
        let Some(inner) = inner.upgrade() else { return };
        inner.timer_wakes_at.set(0);
        let _ = inner
            .run(async |node| {
                let now = node.env().now_nanos();
                tabnode_driver::run_timers(node, now).await;
                Ok(())
            })
            .await;
    }
}

#[wasm_bindgen]
impl BrowserNode {
    /// Opens (or creates) the node stored in IndexedDB and connects to the relays.
    /// `options`: `{ dbName?: string, relays?: string[] }`.
    pub async fn create(
        #[wasm_bindgen(unchecked_param_type = "NodeOptions")] options: JsValue,
    ) -> Result<BrowserNode, JsValue> {
        console_error_panic_hook::set_once();
        init_logging();
        let guest_consent = guest_consent(&options)?;
        let options: Options = if options.is_undefined() || options.is_null() {
            Options::default()
        } else {
            serde_wasm_bindgen::from_value(options)
                .map_err(|e| usage_error("BadOptions", format!("invalid options: {e}")))?
        };
        let db_name = options.db_name.unwrap_or_else(|| "tabnode".into());
        lock_store(&db_name).await?;
        let store = IndexedDbStore::open(&db_name)
            .await
            .map_err(|e| js_error(NodeError::Store(e)))?;
        let key = vault_key(&db_name)
            .await
            .map_err(|e| js_error(NodeError::Store(vault_error("the key vault", e))))?;
        let store = Rc::new(SealedStore::new(store, WebCryptoSealer { key }));
        let env = BrowserEnv;
        let engine = engine_of(options.engine.as_deref())?;
        let runtime = Runtime::with_engine(Limits::default(), engine)
            .map_err(|e| usage_error("BadOptions", e.to_string()))?;
        let mut node = Node::open(store.clone(), env, runtime)
            .await
            .map_err(js_error)?;
        node.defer_read_audits(READ_AUDITS_WAITING);
        // A guest's deletion or membership change is made only if the page's user consents;
        // without a way to ask, it is refused.
        if let Some(consent) = guest_consent {
            let ask = move |request: &GuestRequest| ask_page(&consent, request);
            node.set_guest_policy(GuestPolicy::Ask(Box::new(ask)));
        }
        if let Some(deltas) = options.snapshot_threshold {
            node.set_snapshot_threshold((deltas > 0).then_some(deltas as usize));
        }
        // A member's NEAR-signed root statements count here only if signed for this site (or
        // one the app names): a wallet signs for whichever site asks.
        let sites =
            std::iter::once(crate::wallet::page_origin()).chain(options.near_recipients.clone());
        node.set_nep413_recipients(Some(sites.collect()));
        // Signed in before: the node shows its root in its contexts (and those it joins).
        let stored_grant = node.root_grant().await.map_err(js_error)?;
        let grant = stored_grant
            .and_then(|bytes| serde_json::from_slice::<RootGrantRecord>(&bytes).ok())
            .and_then(|record| valid_grant(&record, js_sys::Date::now() as u64));
        if let Some(grant) = grant {
            node.use_root_grant(grant).await.map_err(js_error)?;
        }
        let (net, events) = if options.relays.is_empty() {
            (None, None)
        } else {
            let (handle, events) = tabnode_net::start(NetConfig {
                relays: options.relays.clone(),
                identity_ed25519_secret: node.network_identity_seed(),
                direct: options.direct.unwrap_or(true),
                ice_servers: options.ice_servers.clone(),
            })
            .map_err(|e| usage_error("NetworkError", e.to_string()))?;
            (Some(handle), Some(events))
        };
        let peer_id = net.as_ref().map(|n| n.peer_id()).unwrap_or_default();
        let public_key = node.public_key().to_string();
        // What it queued when opened (its subscriptions) goes out now; its events wait for
        // the first operation, when the page has subscribed.
        if let Some(net) = &net {
            tabnode_driver::transmit(net, node.take_outgoing());
        }
        let (wake_timer, timer_wakes) = futures::channel::mpsc::unbounded();
        let inner = Rc::new(Inner {
            node: Mutex::new(node),
            store,
            net,
            peer_id,
            engine,
            public_key: RefCell::new(public_key),
            subscribers: RefCell::new(Vec::new()),
            next_subscriber: Cell::new(1),
            peers: RefCell::new(HashMap::new()),
            reserved: RefCell::default(),
            sign_in: RefCell::new(SignIn::default()),
            near_rpc: options.near_rpc.clone(),
            near_contract: options.near_contract.clone(),
            timer_wakes_at: Cell::new(0),
            wake_timer,
            near_rpc_quorum: options.near_rpc_quorum.unwrap_or(1) as usize,
        });
        if let Some(events) = events {
            wasm_bindgen_futures::spawn_local(pump_network(Rc::downgrade(&inner), events));
        }
        wasm_bindgen_futures::spawn_local(timers(Rc::downgrade(&inner), timer_wakes));
        if let (Some(contract), false) = (options.near_contract, options.near_rpc.is_empty()) {
            let every = options.anchor_refresh_ms.unwrap_or(30_000);
            let reader =
                anchors::anchor_reader(&options.near_rpc, &contract, inner.near_rpc_quorum);
            let refresh = anchors::anchor_refresh(Rc::downgrade(&inner), reader, every);
            wasm_bindgen_futures::spawn_local(refresh);
        }
        Ok(BrowserNode { inner })
    }

    /// The engine that runs guest apps: `"browser"` or `"wasmi"`.
    #[wasm_bindgen(getter)]
    pub fn engine(&self) -> String {
        self.inner.engine.name().into()
    }

    /// This node's libp2p peer id (empty when started without relays).
    #[wasm_bindgen(getter, js_name = peerId)]
    pub fn peer_id(&self) -> String {
        self.inner.peer_id.clone()
    }

    /// This node's public key: who it is as a member, and `executor_id` in its calls.
    #[wasm_bindgen(getter, js_name = publicKey)]
    pub fn public_key(&self) -> String {
        self.inner.public_key.borrow().clone()
    }

    /// Signs in with the user's NEAR wallet (NEP-408 injected, or NEAR Connect): one
    /// `signMessage` grants this node's key, with a fresh nonce and this page's origin as
    /// recipient, verified here. Options: `{account?: string}` to require a given account.
    /// Resolves to `{accountId, rootPublicKey, clientKey, expiresAt}`.
    #[wasm_bindgen(js_name = signIn, unchecked_return_type = "Promise<Identity>")]
    pub fn sign_in(
        &self,
        #[wasm_bindgen(unchecked_param_type = "{ account?: string }")] options: JsValue,
    ) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let expected = if options.is_object() {
                js_sys::Reflect::get(&options, &"account".into())?.as_string()
            } else {
                None
            };
            let now_ms = js_sys::Date::now() as u64;
            let mut nonce = [0; 32];
            getrandom::fill(&mut nonce).expect("WebCrypto is available");
            let client_key: PublicKey = parse_id_key(&inner.public_key.borrow())?;
            let recipient = crate::wallet::page_origin();
            let request = inner
                .sign_in
                .borrow_mut()
                .request(
                    client_key,
                    &recipient,
                    nonce,
                    now_ms,
                    GRANT_VALID_MS,
                    u64::from(WALLET_ANSWER_MS),
                )
                .map_err(|e| usage_error("SignInFailed", e.to_string()))?;
            let answer = ask_wallet_to_sign(&request.payload).await?;
            if let Some(account) = expected.filter(|a| *a != answer.account_id) {
                return Err(usage_error(
                    "WrongAccount",
                    format!("the wallet signed as {}, not {account}", answer.account_id),
                ));
            }
            let grant = request.grant.clone();
            let page_url = crate::wallet::page_url();
            let signed = inner
                .sign_in
                .borrow_mut()
                .complete(
                    request,
                    &answer,
                    js_sys::Date::now() as u64,
                    Some(&page_url),
                )
                .map_err(|e| usage_error("SignatureInvalid", e.to_string()))?;
            if !inner.near_rpc.is_empty() {
                check_access_key(&inner.near_rpc, &signed.root).await?;
            }
            let record = RootGrantRecord {
                grant,
                recipient,
                answer,
            };
            let view = identity_view(&record, js_sys::Date::now() as u64).ok_or_else(|| {
                usage_error("SignatureInvalid", "the grant does not verify".into())
            })?;
            debug_assert_eq!(signed.grant.client_key, client_key);
            let bytes = serde_json::to_vec(&record).expect("a grant record encodes");
            inner
                .run(async |node| {
                    node.save_root_grant(bytes).await?;
                    node.use_root_grant(signed).await
                })
                .await?;
            to_js(&view)
        })
    }

    /// Revokes a client key (another device's node key, or this one's) with the user's NEAR
    /// wallet: the wallet signs the revocation (NEP-413), verified here, and this node carries
    /// it into every context it holds where that key is bound to the same root. From there on
    /// every member refuses what the key signs. Resolves to the ids of those contexts.
    #[wasm_bindgen(js_name = revokeKey, unchecked_return_type = "Promise<string[]>")]
    pub fn revoke_key(&self, client_key: String) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let client_key = parse_id_key(&client_key)?;
            let mut nonce = [0; 32];
            getrandom::fill(&mut nonce).expect("WebCrypto is available");
            let revocation = Revocation {
                client_key,
                nonce: hex_nonce(nonce),
            };
            let recipient = crate::wallet::page_origin();
            let payload = revocation
                .payload(&recipient)
                .map_err(|e| usage_error("RevocationFailed", e.to_string()))?;
            let answer = ask_wallet_to_sign(&payload).await?;
            let signed = SignedRevocation::from_wallet(revocation, &recipient, &answer)
                .map_err(|e| usage_error("SignatureInvalid", e.to_string()))?;
            let contexts = inner
                .run(async |node| node.revoke_everywhere(signed).await)
                .await?;
            if contexts.is_empty() {
                return Err(usage_error(
                    "NotBound",
                    format!(
                        "{client_key} is bound to this wallet's account in none of this node's contexts"
                    ),
                ));
            }
            let ids: Vec<String> = contexts.iter().map(ToString::to_string).collect();
            to_js(&ids)
        })
    }

    /// Rotates this node's key in one step (after sign-in): the node makes a new key; the
    /// wallet signs its grant (same scope and capabilities as the current one) and the
    /// revocation of the current key (two `signMessage`s, both checked here, from the same
    /// account); then in every context the new key takes the current one's place and role,
    /// the context gets a new secret, and this node signs with the new key from there on.
    /// Resolves to the new identity; `publicKey` changes.
    #[wasm_bindgen(js_name = rotateKey, unchecked_return_type = "Promise<Identity>")]
    pub fn rotate_key(&self) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let record = inner
                .run(async |node| node.root_grant().await)
                .await?
                .and_then(|bytes| serde_json::from_slice::<RootGrantRecord>(&bytes).ok())
                .filter(|record| identity_view(record, js_sys::Date::now() as u64).is_some())
                .ok_or_else(|| {
                    usage_error(
                        "NotSignedIn",
                        "sign in with the wallet before rotating this node's key".into(),
                    )
                })?;
            let account = record.answer.account_id.clone();
            let old: PublicKey = parse_id_key(&inner.public_key.borrow())?;
            let new = inner.run(async |node| Ok(node.prepare_rotation())).await?;
            let recipient = crate::wallet::page_origin();
            let nonce = || {
                let mut bytes = [0; 32];
                getrandom::fill(&mut bytes).expect("WebCrypto is available");
                hex_nonce(bytes)
            };
            let now_ms = js_sys::Date::now() as u64;
            let grant = record.grant.successor(new, now_ms, GRANT_VALID_MS, nonce());
            let revocation = Revocation {
                client_key: old,
                nonce: nonce(),
            };
            let same_account = |answer: &SignedMessage| {
                if answer.account_id == account {
                    Ok(())
                } else {
                    Err(usage_error(
                        "WrongAccount",
                        format!("the wallet signed as {}, not {account}", answer.account_id),
                    ))
                }
            };
            let grant_payload = grant
                .payload(&recipient, None)
                .map_err(|e| usage_error("RotationFailed", e.to_string()))?;
            let grant_answer = ask_wallet_to_sign(&grant_payload).await?;
            same_account(&grant_answer)?;
            let page_url = crate::wallet::page_url();
            let signed_grant =
                SignedGrant::from_wallet(grant.clone(), &recipient, &grant_answer, Some(&page_url))
                    .map_err(|e| usage_error("SignatureInvalid", e.to_string()))?;
            let revocation_payload = revocation
                .payload(&recipient)
                .map_err(|e| usage_error("RotationFailed", e.to_string()))?;
            let revocation_answer = ask_wallet_to_sign(&revocation_payload).await?;
            same_account(&revocation_answer)?;
            let signed_revocation =
                SignedRevocation::from_wallet(revocation, &recipient, &revocation_answer)
                    .map_err(|e| usage_error("SignatureInvalid", e.to_string()))?;
            if !inner.near_rpc.is_empty() {
                check_access_key(&inner.near_rpc, &signed_grant.root).await?;
            }
            let record = RootGrantRecord {
                grant,
                recipient,
                answer: grant_answer,
            };
            let view = identity_view(&record, js_sys::Date::now() as u64).ok_or_else(|| {
                usage_error("SignatureInvalid", "the new grant does not verify".into())
            })?;
            let bytes = serde_json::to_vec(&record).expect("a grant record encodes");
            inner
                .run(async |node| {
                    node.rotate_key(signed_grant, signed_revocation).await?;
                    node.save_root_grant(bytes).await
                })
                .await?;
            *inner.public_key.borrow_mut() = new.to_string();
            to_js(&view)
        })
    }

    /// Who this node acts for (`null` before sign-in or once the grant expired).
    #[wasm_bindgen(unchecked_return_type = "Promise<Identity | null>")]
    pub fn identity(&self) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let record = inner.run(async |node| node.root_grant().await).await?;
            let view = record
                .and_then(|bytes| serde_json::from_slice::<RootGrantRecord>(&bytes).ok())
                .and_then(|record| identity_view(&record, js_sys::Date::now() as u64));
            match view {
                Some(view) => to_js(&view),
                None => Ok(JsValue::NULL),
            }
        })
    }

    /// Peers this node is connected to right now.
    pub fn peers(&self) -> Vec<String> {
        self.inner.peers.borrow().keys().cloned().collect()
    }

    /// Every connection this node has right now and what it runs over: `websocket` or
    /// `webrtc-direct` to a relay (members' gossip goes through it; `reservation` once the relay
    /// holds one for this node, circuit relay v2), `webrtc` straight to another page (what this
    /// node sends to that page goes there while it is up), `circuit` to another node through a
    /// relay's reservation (see `dialPeer`).
    #[wasm_bindgen(unchecked_return_type = "Connection[]")]
    pub fn connections(&self) -> JsValue {
        let peers = self.inner.peers.borrow();
        let reserved = self.inner.reserved.borrow();
        let list: Vec<serde_json::Value> = peers
            .iter()
            .map(|(peer, via)| {
                let reservation = reserved.contains(peer);
                serde_json::json!({"peer": peer, "via": via.as_str(), "reservation": reservation})
            })
            .collect();
        to_js(&list).unwrap_or(JsValue::NULL)
    }

    /// Dials another node (by its `peerId`) through the reservation it holds at a relay this
    /// node is connected to (circuit relay v2). The connection shows in `connections()` as
    /// `circuit`; the relay bounds it in time and bytes. A page this one already holds a
    /// direct WebRTC link with keeps that one connection (the circuit is closed). Throws
    /// `BadPeerId` for what is not a peer id, `Offline` when this node has no relays.
    #[wasm_bindgen(js_name = dialPeer)]
    pub fn dial_peer(&self, peer_id: String) -> Result<(), JsValue> {
        let net =
            self.inner.net.as_ref().ok_or_else(|| {
                usage_error("Offline", "this node was started without relays".into())
            })?;
        net.dial_peer(&peer_id)
            .map_err(|e| usage_error("BadPeerId", e.to_string()))
    }

    /// Validates and stores an app (`Uint8Array` or `ArrayBuffer` of wasm, or of an `.mpk`
    /// bundle: told apart by content); resolves to its id. A bad bundle throws `BadBundle`.
    #[wasm_bindgen(js_name = installApp, unchecked_return_type = "Promise<string>")]
    pub fn install_app(
        &self,
        #[wasm_bindgen(unchecked_param_type = "Uint8Array | ArrayBuffer")] bytes: JsValue,
    ) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let bytes = wasm_bytes(&bytes, "installApp")?;
            let id = apps::install(&inner, &bytes).await?;
            Ok(JsValue::from(id.to_string()))
        })
    }

    /// Moves a context to a new version of its app (an admin's operation; the binary goes to
    /// every member with it). `migrate` names the new app's `#[app::migrate]` export that turns
    /// the state into its new shape; every member runs it at the same point of the log. The
    /// migration is tried here first: if it fails, nothing changes. Writes other members make
    /// concurrently with the upgrade are voided (`voided` events). Resolves to the operation's id.
    #[wasm_bindgen(js_name = upgradeApp, unchecked_return_type = "Promise<string>")]
    pub fn upgrade_app(
        &self,
        context_id: String,
        #[wasm_bindgen(unchecked_param_type = "Uint8Array | ArrayBuffer")] bytes: JsValue,
        migrate: Option<String>,
    ) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let id: ContextId = parse_id(&context_id)?;
            let wasm = wasm_bytes(&bytes, "upgradeApp")?;
            let op = inner
                .run(async |node| node.upgrade_app(&id, &wasm, migrate).await)
                .await?;
            Ok(JsValue::from(op.to_string()))
        })
    }

    /// Creates a context running the app; `initArgs` (an object) go to the app's `init`.
    #[wasm_bindgen(js_name = createContext, unchecked_return_type = "Promise<string>")]
    pub fn create_context(
        &self,
        app_id: String,
        #[wasm_bindgen(unchecked_param_type = "Record<string, unknown>")] init_args: JsValue,
    ) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let app_id: AppId = parse_id(&app_id)?;
            let args = js_args(init_args)?;
            let id = inner
                .run(async |node| node.create_context(app_id, args).await)
                .await?;
            Ok(JsValue::from(id.to_string()))
        })
    }

    /// A signed invitation to the context, as a string to share.
    #[wasm_bindgen(unchecked_return_type = "Promise<string>")]
    pub fn invite(&self, context_id: String) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let id: ContextId = parse_id(&context_id)?;
            let text = inner.run(async |node| node.invite(&id)).await?;
            Ok(JsValue::from(text))
        })
    }

    /// Removes a member (by its public key) from the context: an admin's operation that every
    /// member applies. What the member wrote before stays; anything it writes after is refused
    /// by every node, and members it invited lose access too. Resolves to the operation's id.
    #[wasm_bindgen(js_name = removeMember, unchecked_return_type = "Promise<string>")]
    pub fn remove_member(&self, context_id: String, member: String) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let id: ContextId = parse_id(&context_id)?;
            let member = parse_id_key(&member)?;
            let op = inner
                .run(async |node| node.remove_member(&id, member).await)
                .await?;
            Ok(JsValue::from(op.to_string()))
        })
    }

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
                .run(async |node| node.set_anchor(&id, anchor).await)
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
    /// `AnchorReadFailed`, `AnchorUnauthorized` (the contract would refuse this node's key),
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

    /// Leaves the context: its members apply it (this node's key is out from there on, and
    /// they get a new secret this node does not keep), then this node drops the context.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn leave(&self, context_id: String) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let id: ContextId = parse_id(&context_id)?;
            inner.run(async |node| node.leave(&id).await).await?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// How this node sends events of `kind` in the context to other members from now on:
    /// `{mode: "full"}`, `{mode: "hash"}` (only the payload's blake3 hash) or `{mode: "redact",
    /// fields: [...]}`. The full payload stays on this node; members ask with `requestPayload`.
    #[wasm_bindgen(js_name = setDisclosure, unchecked_return_type = "Promise<void>")]
    pub fn set_disclosure(
        &self,
        context_id: String,
        kind: String,
        #[wasm_bindgen(unchecked_param_type = "Disclosure")] disclosure: JsValue,
    ) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let id: ContextId = parse_id(&context_id)?;
            let disclosure: tabnode_node::Disclosure =
                serde_wasm_bindgen::from_value(disclosure)
                    .map_err(|e| usage_error("BadArgs", format!("invalid disclosure: {e}")))?;
            inner
                .run(async |node| node.set_disclosure(&id, &kind, disclosure).await)
                .await?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Asks the author of an event for the payload it withheld (the event's `withheld` hash);
    /// the payload arrives as a `payload` event, checked against the hash.
    #[wasm_bindgen(js_name = requestPayload, unchecked_return_type = "Promise<void>")]
    pub fn request_payload(&self, context_id: String, hash: String) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let id: ContextId = parse_id(&context_id)?;
            let hash: tabnode_types::Hash = parse_id(&hash)?;
            inner
                .run(async |node| node.request_payload(&id, hash))
                .await?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Gives a member (by its public key) a new role: an admin's operation that every member
    /// applies. Resolves to the operation's id.
    #[wasm_bindgen(js_name = setRole, unchecked_return_type = "Promise<string>")]
    pub fn set_role(
        &self,
        context_id: String,
        member: String,
        #[wasm_bindgen(unchecked_param_type = "\"admin\" | \"member\" | \"reader\"")] role: JsValue,
    ) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let id: ContextId = parse_id(&context_id)?;
            let member = parse_id_key(&member)?;
            let role: Role = serde_wasm_bindgen::from_value(role).map_err(|e| {
                usage_error("BadArgs", format!("a role is admin, member or reader: {e}"))
            })?;
            let op = inner
                .run(async |node| node.set_role(&id, member, role).await)
                .await?;
            Ok(JsValue::from(op.to_string()))
        })
    }

    /// An invitation with options `{role?: "admin"|"member"|"reader", expiresInMs?: number,
    /// uses?: number}` (defaults: member, a week, one join). Only admins invite.
    #[wasm_bindgen(js_name = inviteAs, unchecked_return_type = "Promise<string>")]
    pub fn invite_as(
        &self,
        context_id: String,
        #[wasm_bindgen(unchecked_param_type = "InviteOptions")] options: JsValue,
    ) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let id: ContextId = parse_id(&context_id)?;
            #[derive(serde::Deserialize, Default)]
            #[serde(rename_all = "camelCase", default, deny_unknown_fields)]
            struct InviteOptions {
                role: Option<Role>,
                expires_in_ms: Option<u64>,
                uses: Option<u32>,
            }
            let options: InviteOptions = if options.is_undefined() || options.is_null() {
                InviteOptions::default()
            } else {
                serde_wasm_bindgen::from_value(options)
                    .map_err(|e| usage_error("BadArgs", format!("invalid invite options: {e}")))?
            };
            let role = options.role.unwrap_or(Role::Member);
            let ttl_ns = options
                .expires_in_ms
                .map_or(DEFAULT_INVITATION_NANOS, |ms| ms.saturating_mul(1_000_000));
            let now = (js_sys::Date::now() * 1_000_000.0) as u64;
            let text = inner
                .run(async |node| {
                    let expires_at = now.saturating_add(ttl_ns);
                    node.invite_for(&id, role, expires_at, options.uses.unwrap_or(1))
                })
                .await?;
            Ok(JsValue::from(text))
        })
    }

    /// The context's audit records, oldest first.
    #[wasm_bindgen(unchecked_return_type = "Promise<AuditRecord[]>")]
    pub fn audit(&self, context_id: String) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let id: ContextId = parse_id(&context_id)?;
            let records = inner.run(async |node| node.audit(&id).await).await?;
            to_js(&records.iter().map(|r| r.to_json()).collect::<Vec<_>>())
        })
    }

    /// Checks the audit chain as stored in IndexedDB: `{ok, records, badSeq, reason}`.
    #[wasm_bindgen(js_name = verifyAudit, unchecked_return_type = "Promise<AuditReport>")]
    pub fn verify_audit(&self, context_id: String) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let id: ContextId = parse_id(&context_id)?;
            let report = inner.run(async |node| node.verify_audit(&id).await).await?;
            to_js(&report)
        })
    }

    /// Re-runs every stored delta from an empty state: `{deltas, rootHash, matches}`.
    #[wasm_bindgen(unchecked_return_type = "Promise<ReplayReport>")]
    pub fn replay(&self, context_id: String) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let id: ContextId = parse_id(&context_id)?;
            let report = inner.run(async |node| node.replay(&id).await).await?;
            to_js(&report)
        })
    }

    /// Joins the context an invitation names; resolves to its id once a member has admitted
    /// this node and given it the context's secret (the invitation carries none). A node that
    /// lacks the invitation's app fetches it from the members first (`appProgress` events). State
    /// arrives from members after that. Rejects with `NotSynced` if no member answered within
    /// a minute: the node keeps asking in the background (a `joined` event tells when it is
    /// in), and joining again with the same invitation waits again.
    #[wasm_bindgen(unchecked_return_type = "Promise<string>")]
    pub fn join(&self, invitation: String) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let id = inner.run(async |node| node.join(&invitation).await).await?;
            for _ in 0..JOIN_WAIT_POLLS {
                if !inner.node.lock().await.is_joining(&id) {
                    return Ok(JsValue::from(id.to_string()));
                }
                futures_timer::Delay::new(std::time::Duration::from_millis(100)).await;
            }
            Err(js_error(NodeError::NotSynced(format!(
                "{id}: no member has admitted this node yet (it keeps asking)"
            ))))
        })
    }

    /// Revokes an invitation (an admin's operation in the membership log): a join with it
    /// that no member admitted yet is refused from now on. Resolves to the operation's id.
    #[wasm_bindgen(js_name = revokeInvitation, unchecked_return_type = "Promise<string>")]
    pub fn revoke_invitation(&self, context_id: String, invitation: String) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let id: ContextId = parse_id(&context_id)?;
            let op = inner
                .run(async |node| node.revoke_invitation(&id, &invitation).await)
                .await?;
            Ok(JsValue::from(op.to_string()))
        })
    }

    /// Calls `method` with `args` (an object); resolves to
    /// `{output, logs, events, rootHash, deltaId, repeated}`. With `options.callId` the call
    /// runs at most once: the same id again gets the first answer (`repeated: true`) and
    /// applies nothing (`Node::execute_once`); what a retry after `HostLost` needs.
    #[wasm_bindgen(unchecked_return_type = "Promise<ExecuteResult>")]
    pub fn execute(
        &self,
        context_id: String,
        method: String,
        #[wasm_bindgen(unchecked_param_type = "Record<string, unknown>")] args: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "ExecuteOptions")] options: Option<
            js_sys::Object,
        >,
    ) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let id: ContextId = parse_id(&context_id)?;
            let args = js_args(args)?;
            let call_id = match &options {
                Some(options) => js_sys::Reflect::get(options, &"callId".into())?,
                None => JsValue::UNDEFINED,
            };
            let call_id = match call_id.is_undefined() || call_id.is_null() {
                true => None,
                false => Some(call_id.as_string().ok_or_else(|| {
                    usage_error("BadArgs", "options.callId must be a string".into())
                })?),
            };
            let result = inner
                .run(async |node| match &call_id {
                    Some(call_id) => node.execute_once(&id, &method, args, call_id).await,
                    None => node.execute(&id, &method, args).await,
                })
                .await?;
            to_js(&result)
        })
    }

    /// The context's `{heads, rootHash, merkleRoot}`. The Merkle root needs the whole state:
    /// the first checkpoint of a context reopened from IndexedDB reads it all once.
    #[wasm_bindgen(unchecked_return_type = "Promise<Checkpoint>")]
    pub fn checkpoint(&self, context_id: String) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let id: ContextId = parse_id(&context_id)?;
            let checkpoint = inner.run(async |node| node.checkpoint(&id).await).await?;
            to_js(&checkpoint)
        })
    }

    /// The context's heads and root at once, from what is in memory: a checkpoint whose
    /// `merkleRoot` is null until a `checkpoint()` (or a call that read every row) built it.
    #[wasm_bindgen(unchecked_return_type = "Promise<Checkpoint>")]
    pub fn position(&self, context_id: String) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let id: ContextId = parse_id(&context_id)?;
            let position = inner.run(async |node| node.position(&id)).await?;
            to_js(&position)
        })
    }

    /// The members this node knows for the context: `[{key, role}]`.
    #[wasm_bindgen(
        unchecked_return_type = "Promise<{ key: string; role: \"admin\" | \"member\" | \"reader\" }[]>"
    )]
    pub fn members(&self, context_id: String) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let id: ContextId = parse_id(&context_id)?;
            let members = inner.run(async |node| node.members(&id)).await?;
            let list: Vec<serde_json::Value> = members
                .into_iter()
                .map(|(key, role)| serde_json::json!({"key": key, "role": role}))
                .collect();
            to_js(&list)
        })
    }

    /// What the node holds in memory for a context: `rows` of its state read (or written) so
    /// far — a reopened context reads rows as calls touch them — and the size of the node's
    /// whole wasm memory in bytes.
    #[wasm_bindgen(unchecked_return_type = "Promise<MemoryUse>")]
    pub fn memory(&self, context_id: String) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let id: ContextId = parse_id(&context_id)?;
            let rows = inner.run(async |node| node.rows_in_memory(&id)).await?;
            let memory: js_sys::WebAssembly::Memory = wasm_bindgen::memory().unchecked_into();
            let bytes = memory
                .buffer()
                .unchecked_into::<js_sys::ArrayBuffer>()
                .byte_length();
            to_js(&serde_json::json!({"rows": rows, "wasmBytes": bytes}))
        })
    }

    /// Ids of the contexts this node holds.
    #[wasm_bindgen(unchecked_return_type = "Promise<string[]>")]
    pub fn contexts(&self) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let ids = inner.run(async |node| Ok(node.context_ids())).await?;
            to_js(&ids)
        })
    }

    /// Calls `callback(event)` for every event of the context (`null` for every context and
    /// peer changes); returns a function that unsubscribes.
    #[wasm_bindgen(unchecked_return_type = "() => void")]
    pub fn subscribe(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string | null")] context_id: JsValue,
        #[wasm_bindgen(unchecked_param_type = "(event: NodeEvent) => void")] callback: Function,
    ) -> Result<Function, JsValue> {
        let context = match context_id.as_string() {
            Some(text) => Some(parse_id::<ContextId>(&text)?),
            None if context_id.is_null() || context_id.is_undefined() => None,
            None => {
                return Err(usage_error(
                    "BadArgs",
                    "contextId must be a string or null".into(),
                ))
            }
        };
        let id = self.inner.next_subscriber.get();
        self.inner.next_subscriber.set(id + 1);
        self.inner.subscribers.borrow_mut().push(Subscriber {
            id,
            context,
            callback,
        });
        let weak = Rc::downgrade(&self.inner);
        let unsubscribe = Closure::once_into_js(move || {
            if let Some(inner) = weak.upgrade() {
                inner.subscribers.borrow_mut().retain(|s| s.id != id);
            }
        });
        Ok(unsubscribe.unchecked_into())
    }
}

/// Call arguments: an object, or nothing (`{}`); anything else is refused by the node.
fn js_args(args: JsValue) -> Result<serde_json::Value, JsValue> {
    if args.is_undefined() || args.is_null() {
        return Ok(serde_json::Value::Null);
    }
    serde_wasm_bindgen::from_value(args).map_err(|e| {
        js_error(NodeError::BadArgs(format!(
            "something that is not JSON ({e})"
        )))
    })
}
