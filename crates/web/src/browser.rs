//! `BrowserNode`: one node per page, on IndexedDB and the libp2p swarm.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeSet, HashMap};
use std::rc::Rc;

use js_sys::{Function, Promise, Uint8Array};
use serde::Serialize;
use tabnode_account::signin::identity;
use tabnode_account::{Account, FlowError, NodeHandle, Site};
use tabnode_chain::{web::FetchTransport, RpcClient};
use tabnode_identity::signin::SignIn;
use tabnode_net::{NetConfig, NetEvent, NetHandle, Via};
use tabnode_node::{
    Clock, Env, GuestPolicy, GuestRequest, NodeError, NodeEvent, Role, DEFAULT_INVITATION_NANOS,
};
use tabnode_runtime::{EngineKind, Limits, Runtime};
use tabnode_store::{Durability, IndexedDbStore, SealedStore, Sealer, StoreError};
use tabnode_types::{AppId, ContextId, PublicKey};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

mod account;
mod anchors;
mod apps;
mod blobs;
mod crash;
mod inspect;
mod members;
mod proposals;
mod subscribers;
mod tasks;
mod vault;

use subscribers::Subscriber;
use tasks::drive;
use vault::{lock_store, vault_error, vault_key, StoreLock, WebCryptoSealer};

/// The page's store: IndexedDB, values sealed under the vault key.
type PageStore = SealedStore<IndexedDbStore, WebCryptoSealer>;
type CoreNode = tabnode_driver::CoreNode<BrowserEnv>;

/// The page's edge: time from `Date.now()`, read by the node's task and the account's flows
/// and given to the node with each input (the node orders its own calls on a hybrid logical
/// clock); randomness from WebCrypto.
struct BrowserEnv;

impl Clock for BrowserEnv {
    fn now_nanos(&self) -> u64 {
        (js_sys::Date::now() * 1_000_000.0) as u64
    }
}

impl Env for BrowserEnv {
    fn random32(&self) -> [u8; 32] {
        let mut out = [0; 32];
        getrandom::fill(&mut out).expect("WebCrypto is available in every page and worker");
        out
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
    /// What an acknowledged write survives: `relaxed` (default) or `strict`; see
    /// `tabnode_store::Durability`.
    durability: Option<String>,
    /// Who sends this member's parts of proposals with chain actions to the context's proxy
    /// contract: `manual` (default: the app, with `sendProposalToChain`) or `auto` (the node,
    /// after each step, as merod does); see [`proposals::sends_on_its_own`].
    proposals_to_chain: Option<String>,
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
    let asked = js_sys::Object::new();
    let member = request
        .member()
        .map_or(JsValue::NULL, |m| m.to_string().into());
    for (field, value) in [
        ("kind", request.kind().into()),
        ("context", request.context().to_string().into()),
        ("member", member),
        ("caller", request.caller().to_string().into()),
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

/// The durability an option names (relaxed by default).
fn durability_of(name: Option<&str>) -> Result<Durability, JsValue> {
    match name {
        None => Ok(Durability::default()),
        Some(name) => Durability::from_name(name).ok_or_else(|| {
            usage_error(
                "BadOptions",
                format!("unknown durability {name:?}: \"relaxed\" or \"strict\""),
            )
        }),
    }
}

struct Inner {
    /// The node is owned by one task ([`drive`]); operations reach it through here.
    node: tabnode_driver::NodeSender<BrowserEnv>,
    /// The node's store, shared: an app's ABI is kept beside the node's records.
    store: Rc<PageStore>,
    net: Option<NetHandle>,
    peer_id: String,
    /// The engine that runs guest apps.
    engine: EngineKind,
    /// What the store's acknowledged writes survive.
    durability: Durability,
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
    /// See [`Options::near_rpc_quorum`].
    near_rpc_quorum: usize,
    /// This page's hold on the store, let go if the node crashes (see [`crash`]).
    store_lock: StoreLock,
    /// See [`Options::proposals_to_chain`].
    sends_proposals: bool,
}

/// Read-only calls' audit records wait to be written together (see
/// `Node::defer_read_audits`): at most this many (and at most `READ_AUDITS_WAIT_NANOS`).
const READ_AUDITS_WAITING: usize = 64;

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

/// Turns a flow's error into a JS `Error` whose `name` is the error's kind.
fn flow_error(err: FlowError) -> JsValue {
    usage_error(err.kind(), err.to_string())
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

/// [`to_js`] for what a guest gives (a call's output and events): an integer beyond what a JS
/// number holds exactly (2^53, e.g. a timestamp in ns) is a `BigInt` instead of an error, every
/// other number a number as before.
fn to_js_exact<T: Serialize>(value: &T) -> Result<JsValue, JsValue> {
    let serializer = serde_wasm_bindgen::Serializer::json_compatible()
        .serialize_large_number_types_as_bigints(true);
    let js = value
        .serialize(&serializer)
        .map_err(|e| usage_error("EncodeError", e.to_string()))?;
    Ok(safe_bigints_as_numbers(js))
}

/// Every `BigInt` in `value` that a number holds exactly, as that number (in place).
fn safe_bigints_as_numbers(value: JsValue) -> JsValue {
    if value.is_bigint() {
        const MAX_SAFE: u64 = (1 << 53) - 1;
        return match i64::try_from(value.clone()) {
            Ok(v) if v.unsigned_abs() <= MAX_SAFE => JsValue::from_f64(v as f64),
            _ => value,
        };
    }
    if let Some(array) = value.dyn_ref::<js_sys::Array>() {
        for i in 0..array.length() {
            array.set(i, safe_bigints_as_numbers(array.get(i)));
        }
    } else if value.is_object() {
        let object: &js_sys::Object = value.unchecked_ref();
        for key in js_sys::Object::keys(object) {
            let field = js_sys::Reflect::get(object, &key).unwrap_or(JsValue::UNDEFINED);
            let _ = js_sys::Reflect::set(object, &key, &safe_bigints_as_numbers(field));
        }
    }
    value
}

/// The bytes of a wasm binary passed as a `Uint8Array` or an `ArrayBuffer`.
fn wasm_bytes(bytes: &JsValue, method: &str) -> Result<Vec<u8>, JsValue> {
    bytes_of(bytes, method, "wasm")
}

/// The bytes passed as a `Uint8Array` or an `ArrayBuffer`; `what` they hold, for the error.
fn bytes_of(bytes: &JsValue, method: &str, what: &str) -> Result<Vec<u8>, JsValue> {
    if !(bytes.is_instance_of::<Uint8Array>() || bytes.is_instance_of::<js_sys::ArrayBuffer>()) {
        return Err(usage_error(
            "BadArgs",
            format!("{method} takes a Uint8Array or ArrayBuffer of {what}"),
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

/// Runs one operation on the node: the node's task runs it after those sent before, sends
/// what it queued and tells subscribers what happened, then answers. The one way anything
/// reaches the node.
impl NodeHandle for Inner {
    type Store = tabnode_node::machine::Io;
    type Env = BrowserEnv;

    async fn run<T: 'static>(
        &self,
        op: impl AsyncFnOnce(&mut CoreNode) -> Result<T, NodeError> + 'static,
    ) -> Result<T, NodeError> {
        self.node.run(op).await
    }
}

impl Inner {
    /// [`NodeHandle::run`], its error as a JS `Error`.
    async fn run<T: 'static>(
        &self,
        op: impl AsyncFnOnce(&mut CoreNode) -> Result<T, NodeError> + 'static,
    ) -> Result<T, JsValue> {
        NodeHandle::run(self, op).await.map_err(js_error)
    }

    /// The user's account as this page reaches it: the injected wallet, NEAR (when `nearRpc`
    /// was given) to check that the wallet's key is the account's, this page as the site.
    fn account(
        &self,
    ) -> Account<crate::wallet::PageWallet, Option<RpcClient<FetchTransport>>, BrowserEnv> {
        let near = (!self.near_rpc.is_empty())
            .then(|| RpcClient::new(FetchTransport::new(), self.near_rpc.iter().cloned()));
        Account {
            wallet: crate::wallet::PageWallet,
            keys: near,
            site: Site {
                origin: crate::wallet::page_origin(),
                url: crate::wallet::page_url(),
            },
            env: BrowserEnv,
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

#[wasm_bindgen]
impl BrowserNode {
    /// Opens (or creates) the node stored in IndexedDB and connects to the relays.
    /// `options`: `{ dbName?: string, relays?: string[] }`.
    pub async fn create(
        #[wasm_bindgen(unchecked_param_type = "NodeOptions")] options: JsValue,
    ) -> Result<BrowserNode, JsValue> {
        crash::install_hook();
        init_logging();
        if let Some(message) = crash::crash_message() {
            return Err(js_error(crash::crashed_error(&message)));
        }
        let guest_consent = guest_consent(&options)?;
        let options: Options = if options.is_undefined() || options.is_null() {
            Options::default()
        } else {
            serde_wasm_bindgen::from_value(options)
                .map_err(|e| usage_error("BadOptions", format!("invalid options: {e}")))?
        };
        let db_name = options.db_name.unwrap_or_else(|| "tabnode".into());
        let durability = durability_of(options.durability.as_deref())?;
        let sends_proposals = proposals::sends_on_its_own(options.proposals_to_chain.as_deref())?;
        let store_lock = lock_store(&db_name).await?;
        let store = IndexedDbStore::open_with(&db_name, durability)
            .await
            .map_err(|e| js_error(NodeError::Store(e)))?;
        // Held, the lock keeps every other tab's node off this store: a rewrite of a big value
        // may then write only its parts that changed.
        let store = match store_lock.held() {
            true => store.sole_writer(),
            false => store,
        };
        let key = vault_key(&db_name)
            .await
            .map_err(|e| js_error(NodeError::Store(vault_error("the key vault", e))))?;
        let store = Rc::new(SealedStore::new(store, WebCryptoSealer { key }));
        let env = BrowserEnv;
        let engine = engine_of(options.engine.as_deref())?;
        let runtime = Runtime::with_engine(Limits::default(), engine)
            .map_err(|e| usage_error("BadOptions", e.to_string()))?;
        let mut driver = tabnode_driver::Driver::open(store.clone(), env, runtime, BrowserEnv)
            .await
            .map_err(js_error)?;
        {
            let mut node = driver.node();
            node.defer_read_audits(READ_AUDITS_WAITING);
            // A guest's deletion or membership change is made only if the page's user
            // consents; without a way to ask, it is refused.
            if let Some(consent) = guest_consent {
                let ask = move |request: &GuestRequest| ask_page(&consent, request);
                node.set_guest_policy(GuestPolicy::Ask(Box::new(ask)));
            }
            if let Some(deltas) = options.snapshot_threshold {
                node.set_snapshot_threshold((deltas > 0).then_some(deltas as usize));
            }
            // A member's NEAR-signed root statements count here only if signed for this site
            // (or one the app names): a wallet signs for whichever site asks.
            let sites = std::iter::once(crate::wallet::page_origin())
                .chain(options.near_recipients.clone());
            node.set_nep413_recipients(Some(sites.collect()));
        }
        // Signed in before: the node shows its root in its contexts (and those it joins).
        let now_ms = js_sys::Date::now() as u64;
        let (signed_in, _) = driver
            .run(async move |node| tabnode_account::signin::resume(node, now_ms).await)
            .await;
        signed_in.map_err(js_error)?;
        let seed = driver.node().network_identity_seed();
        let (net, net_events) = if options.relays.is_empty() {
            (None, None)
        } else {
            let (handle, events) = tabnode_net::start(NetConfig {
                relays: options.relays.clone(),
                identity_ed25519_secret: seed,
                direct: options.direct.unwrap_or(true),
                ice_servers: options.ice_servers.clone(),
            })
            .map_err(|e| usage_error("NetworkError", e.to_string()))?;
            (Some(handle), Some(events))
        };
        let peer_id = net.as_ref().map(|n| n.peer_id()).unwrap_or_default();
        let public_key = driver.node().public_key().to_string();
        // What it queued when opened (its subscriptions) goes out now; its events wait for
        // the node task's first step, when the page has subscribed.
        let opened = driver.connect(net.clone(), net_events);
        let (sender, commands) = tabnode_driver::channel();
        let inner = Rc::new(Inner {
            node: sender,
            store,
            net,
            peer_id,
            engine,
            durability,
            public_key: RefCell::new(public_key),
            subscribers: RefCell::new(Vec::new()),
            next_subscriber: Cell::new(1),
            peers: RefCell::new(HashMap::new()),
            reserved: RefCell::default(),
            sign_in: RefCell::new(SignIn::default()),
            near_rpc: options.near_rpc.clone(),
            near_contract: options.near_contract.clone(),
            near_rpc_quorum: options.near_rpc_quorum.unwrap_or(1) as usize,
            store_lock,
            sends_proposals,
        });
        let task = drive(Rc::downgrade(&inner), driver, commands, opened);
        wasm_bindgen_futures::spawn_local(task);
        crash::watch(&inner);
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

    /// What an acknowledged write survives: `"relaxed"` or `"strict"` (docs/storage.md).
    #[wasm_bindgen(getter)]
    pub fn durability(&self) -> String {
        self.inner.durability.as_str().into()
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
            let id = apps::install(&inner, bytes).await?;
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
                .run(async move |node| node.upgrade_app(&id, &wasm, migrate).await)
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
                .run(async move |node| node.create_context(app_id, args).await)
                .await?;
            Ok(JsValue::from(id.to_string()))
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
                .run(async move |node| node.set_disclosure(&id, &kind, disclosure).await)
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
                .run(async move |node| node.request_payload(&id, hash))
                .await?;
            Ok(JsValue::UNDEFINED)
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
                .run(async move |node| match &call_id {
                    Some(call_id) => node.execute_once(&id, &method, args, call_id).await,
                    None => node.execute(&id, &method, args).await,
                })
                .await?;
            to_js_exact(&result)
        })
    }

    /// Ids of the contexts this node holds.
    #[wasm_bindgen(unchecked_return_type = "Promise<string[]>")]
    pub fn contexts(&self) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let ids = inner.run(async move |node| Ok(node.context_ids())).await?;
            to_js(&ids)
        })
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
