//! `near_rpc_double`: a TEST DOUBLE of a NEAR JSON-RPC node. No NEAR node runs here, so the
//! tests talk over real HTTP to this small server instead. It is not NEAR: it keeps in memory
//! the state of one Calimero context-config contract (contexts, members, privileges, nonces,
//! the application with its hashes) plus a few accounts and access keys, and answers
//!
//! - `query` / `call_function` for the contract's views (`application`, `application_revision`,
//!   `proxy_contract`, `members`, `has_member`, `members_revision`, `privileges`,
//!   `fetch_nonce`), with their semantics as read in calimero-network/contracts
//!   (`contracts/near/context-config/src/query.rs`),
//! - `query` / `view_access_key`, and `block`,
//!
//! in NEAR's formats (NEAR's RPC docs and nearcore's `process_query_response`): `result.result`
//! as an array of the bytes of the JSON the method returns, with `logs`, `block_height` and
//! `block_hash`; a contract panic and an unknown access key inside `result` as an `error`
//! string; other errors as verror objects (`error.name`, `error.cause.name`, `error.cause.info`,
//! plus the legacy `code`, `message`, `data`). It refuses requests NEAR would refuse
//! (`REQUEST_VALIDATION_ERROR` / `PARSE_ERROR`, HTTP 400), so a wrong request shape fails a test.
//!
//! `Chain::apply_mutate` plays the contract's `mutate` on the arguments a wallet would send
//! (signature, nonce, privileges checked as the contract does), since transactions are sent by
//! the user's wallet and not by the client under test; `Chain::apply_transaction` plays several
//! as one transaction (in order, all or nothing, as NEAR runs one receipt's actions).
//!
//! [`anchor::NearContractDouble`] reads the same contract as a `tabnode_chain::Anchor` with no RPC and
//! no server, for flows tested in-process.
//!
//! Each [`Server`] can misbehave on demand ([`Behaviour`]) for failover tests, and
//! [`refusing_url`] gives a URL whose connections are closed unanswered.

#![allow(dead_code)]

pub mod anchor;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub type Id = [u8; 32];

fn b58(bytes: &[u8]) -> String {
    bs58::encode(bytes).into_string()
}

/// The contract's copy of an application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct App {
    pub id: Id,
    pub blob: Id,
    pub size: u64,
    pub source: String,
    pub metadata: Vec<u8>,
}

impl App {
    fn to_json(&self) -> Value {
        json!({
            "id": b58(&self.id),
            "blob": b58(&self.blob),
            "size": self.size,
            "source": self.source,
            "metadata": b58(&self.metadata),
        })
    }
}

/// One context in the contract: each guarded part has its privileged identities and revision.
#[derive(Debug, Clone)]
pub struct Context {
    pub application: App,
    pub application_revision: u64,
    pub application_privileged: BTreeSet<Id>,
    /// In the contract's iteration order (an IterableSet: insertion order, swap-remove).
    pub members: Vec<Id>,
    pub members_revision: u64,
    pub members_privileged: BTreeSet<Id>,
    pub proxy: String,
    pub proxy_privileged: BTreeSet<Id>,
    pub nonces: BTreeMap<Id, u64>,
}

impl Context {
    /// A context as `Add` leaves it: the author is the only member and holds every privilege.
    pub fn new(author: Id, application: App, proxy: String) -> Self {
        let one: BTreeSet<Id> = [author].into();
        Self {
            application,
            application_revision: 0,
            application_privileged: one.clone(),
            members: vec![author],
            members_revision: 0,
            members_privileged: one.clone(),
            proxy,
            proxy_privileged: one,
            nonces: [(author, 0)].into(),
        }
    }
}

/// A NEAR account: whether code is deployed, and its access keys (`ed25519:…` → nonce,
/// permission JSON as NEAR prints it).
#[derive(Debug, Clone, Default)]
pub struct Account {
    pub has_contract: bool,
    pub keys: BTreeMap<String, (u64, Value)>,
}

/// The double's whole chain.
#[derive(Debug, Clone)]
pub struct Chain {
    pub height: u64,
    pub contract_id: String,
    pub accounts: BTreeMap<String, Account>,
    pub contexts: BTreeMap<Id, Context>,
    pub next_proxy_id: u64,
    /// When set, a contract panic and an unknown key come back as structured
    /// `CONTRACT_EXECUTION_ERROR` / `UNKNOWN_ACCESS_KEY` errors instead of nearcore's
    /// backward-compatible `result.error` strings.
    pub structured_errors: bool,
}

impl Chain {
    pub fn new(contract_id: &str) -> Self {
        let mut accounts = BTreeMap::new();
        accounts.insert(
            contract_id.to_owned(),
            Account {
                has_contract: true,
                keys: BTreeMap::new(),
            },
        );
        Self {
            height: 1000,
            contract_id: contract_id.to_owned(),
            accounts,
            contexts: BTreeMap::new(),
            next_proxy_id: 0,
            structured_errors: false,
        }
    }

    pub fn shared(self) -> Arc<Mutex<Chain>> {
        Arc::new(Mutex::new(self))
    }

    pub fn block_hash(height: u64) -> String {
        let mut h = Sha256::new();
        h.update(b"near_rpc_double block");
        h.update(height.to_le_bytes());
        b58(&h.finalize())
    }

    /// Timestamps: one second per block from a fixed start.
    pub fn block_timestamp_ns(height: u64) -> u64 {
        1_700_000_000_000_000_000 + height * 1_000_000_000
    }

    /// Stores a context directly, as if `Add` had run.
    pub fn put_context(&mut self, context_id: Id, context: Context) {
        self.contexts.insert(context_id, context);
    }
}

/// How a server answers, whatever it is asked.
#[derive(Debug, Clone)]
pub enum Behaviour {
    /// As a NEAR node would.
    Normal,
    /// This status and body (e.g. 503 from a load balancer).
    Status(u16, String),
    /// Waits, then answers normally: longer than the client's timeout, it is a timeout.
    Delay(Duration),
    /// Exactly these bytes with this status, for malformed answers.
    Raw(u16, Vec<u8>),
}

/// One listening double. Several can share one [`Chain`], as RPC nodes share the chain.
pub struct Server {
    pub url: String,
    hits: Arc<AtomicUsize>,
    behaviour: Arc<Mutex<Behaviour>>,
    requests: Arc<Mutex<Vec<Value>>>,
}

impl Server {
    pub async fn start(chain: Arc<Mutex<Chain>>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let hits = Arc::new(AtomicUsize::new(0));
        let behaviour = Arc::new(Mutex::new(Behaviour::Normal));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (h, b, r) = (hits.clone(), behaviour.clone(), requests.clone());
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (chain, h, b, r) = (chain.clone(), h.clone(), b.clone(), r.clone());
                tokio::spawn(async move {
                    let _ = serve(stream, chain, h, b, r).await;
                });
            }
        });
        Server {
            url,
            hits,
            behaviour,
            requests,
        }
    }

    pub fn set(&self, behaviour: Behaviour) {
        *self.behaviour.lock().unwrap() = behaviour;
    }

    /// How many HTTP requests reached this server.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    /// The JSON bodies received (those that parsed).
    pub fn requests(&self) -> Vec<Value> {
        self.requests.lock().unwrap().clone()
    }
}

/// A URL whose every connection is closed before anything is read (a down RPC node).
pub async fn refusing_url() -> String {
    // The port stays bound (a freed one could be taken by another test's server, which would
    // then answer): every connection is closed before a byte is read.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            drop(stream);
        }
    });
    format!("http://{addr}/")
}

async fn serve(
    mut stream: TcpStream,
    chain: Arc<Mutex<Chain>>,
    hits: Arc<AtomicUsize>,
    behaviour: Arc<Mutex<Behaviour>>,
    requests: Arc<Mutex<Vec<Value>>>,
) -> std::io::Result<()> {
    // A minimal HTTP/1.1 reader: headers up to the blank line, then Content-Length bytes.
    let mut buf = Vec::new();
    let header_end = loop {
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..header_end]).to_string();
    let length = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    while buf.len() < header_end + length {
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = &buf[header_end..(header_end + length).min(buf.len())];
    hits.fetch_add(1, Ordering::SeqCst);
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        requests.lock().unwrap().push(v);
    }

    let mode = behaviour.lock().unwrap().clone();
    let (status, answer) = match mode {
        Behaviour::Normal => handle(&chain, body),
        Behaviour::Status(status, text) => (status, text.into_bytes()),
        Behaviour::Delay(d) => {
            tokio::time::sleep(d).await;
            handle(&chain, body)
        }
        Behaviour::Raw(status, bytes) => (status, bytes),
    };
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        408 => "Request Timeout",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        answer.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(&answer).await?;
    stream.shutdown().await
}

/// A JSON-RPC error in NEAR's verror shape, with the legacy fields.
fn rpc_error(
    id: &Value,
    name: &str,
    cause: &str,
    info: Value,
    code: i64,
    message: &str,
    data: &str,
) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "jsonrpc": "2.0",
        "error": {
            "name": name,
            "cause": {"name": cause, "info": info},
            "code": code,
            "message": message,
            "data": data,
        },
        "id": id,
    }))
    .unwrap()
}

fn parse_error(id: &Value, why: &str) -> (u16, Vec<u8>) {
    (
        400,
        rpc_error(
            id,
            "REQUEST_VALIDATION_ERROR",
            "PARSE_ERROR",
            json!({"error_message": why}),
            -32700,
            "Parse error",
            why,
        ),
    )
}

fn handler_error(id: &Value, cause: &str, info: Value, data: &str) -> (u16, Vec<u8>) {
    (
        200,
        rpc_error(
            id,
            "HANDLER_ERROR",
            cause,
            info,
            -32000,
            "Server error",
            data,
        ),
    )
}

fn ok(id: &Value, result: Value) -> (u16, Vec<u8>) {
    (
        200,
        serde_json::to_vec(&json!({"jsonrpc": "2.0", "result": result, "id": id})).unwrap(),
    )
}

/// Reads `finality` / `block_id`; `Err` is the whole answer to send.
fn block_ref(
    id: &Value,
    params: &Map<String, Value>,
    chain: &Chain,
) -> Result<u64, (u16, Vec<u8>)> {
    match (params.get("finality"), params.get("block_id")) {
        (Some(Value::String(f)), None)
            if ["final", "near-final", "optimistic"].contains(&f.as_str()) =>
        {
            Ok(chain.height)
        }
        (None, Some(Value::Number(n))) => {
            let h = n
                .as_u64()
                .ok_or_else(|| parse_error(id, "block_id is not a height"))?;
            if h > chain.height {
                Err(handler_error(
                    id,
                    "UNKNOWN_BLOCK",
                    json!({"block_reference": {"block_id": h}}),
                    &format!("DB Not Found Error: BLOCK HEIGHT: {h} \n Cause: Unknown"),
                ))
            } else {
                Ok(h)
            }
        }
        (None, Some(Value::String(hash))) => (0..=chain.height)
            .rev()
            .find(|h| &Chain::block_hash(*h) == hash)
            .ok_or_else(|| {
                handler_error(
                    id,
                    "UNKNOWN_BLOCK",
                    json!({"block_reference": {"block_id": hash}}),
                    &format!("DB Not Found Error: BLOCK HEADER: {hash}"),
                )
            }),
        _ => Err(parse_error(
            id,
            "exactly one of `finality` (final, near-final, optimistic) or `block_id` is required",
        )),
    }
}

fn handle(chain: &Arc<Mutex<Chain>>, body: &[u8]) -> (u16, Vec<u8>) {
    let null = Value::Null;
    let Ok(Value::Object(request)) = serde_json::from_slice::<Value>(body) else {
        return parse_error(&null, "the body is not a JSON-RPC request object");
    };
    let id = request.get("id").cloned().unwrap_or(Value::Null);
    if request.get("jsonrpc") != Some(&json!("2.0")) {
        return parse_error(&id, "`jsonrpc` must be \"2.0\"");
    }
    if id.is_null() {
        return parse_error(&id, "`id` is required");
    }
    let Some(Value::Object(params)) = request.get("params") else {
        return parse_error(&id, "`params` must be an object");
    };
    let chain = chain.lock().unwrap();
    match request.get("method").and_then(Value::as_str) {
        Some("query") => query(&chain, &id, params),
        Some("block") => {
            let height = match block_ref(&id, params, &chain) {
                Ok(h) => h,
                Err(answer) => return answer,
            };
            let ts = Chain::block_timestamp_ns(height);
            ok(
                &id,
                json!({
                    "author": "double-validator.near",
                    "header": {
                        "height": height,
                        "epoch_id": b58(&[0; 32]),
                        "hash": Chain::block_hash(height),
                        "prev_hash": Chain::block_hash(height.saturating_sub(1)),
                        "timestamp": ts,
                        "timestamp_nanosec": ts.to_string(),
                        "chunks_included": 1,
                        "gas_price": "100000000",
                        "latest_protocol_version": 73,
                    },
                    "chunks": [],
                }),
            )
        }
        Some(other) => (
            200,
            rpc_error(
                &id,
                "REQUEST_VALIDATION_ERROR",
                "METHOD_NOT_FOUND",
                json!({"method_name": other}),
                -32601,
                "Method not found",
                other,
            ),
        ),
        None => parse_error(&id, "`method` must be a string"),
    }
}

fn query(chain: &Chain, id: &Value, params: &Map<String, Value>) -> (u16, Vec<u8>) {
    let height = match block_ref(id, params, chain) {
        Ok(h) => h,
        Err(answer) => return answer,
    };
    let hash = Chain::block_hash(height);
    let text = |key: &str| params.get(key).and_then(Value::as_str);
    let Some(account_id) = text("account_id") else {
        return parse_error(id, "missing field `account_id`");
    };
    let unknown_account = || {
        handler_error(
            id,
            "UNKNOWN_ACCOUNT",
            json!({"requested_account_id": account_id, "block_height": height, "block_hash": hash}),
            &format!("account {account_id} does not exist while viewing"),
        )
    };
    match text("request_type") {
        Some("call_function") => {
            let (Some(method), Some(args64)) = (text("method_name"), text("args_base64")) else {
                return parse_error(id, "missing field `method_name` or `args_base64`");
            };
            let Ok(args) = base64::engine::general_purpose::STANDARD.decode(args64) else {
                return parse_error(id, "`args_base64` is not base64");
            };
            let Some(account) = chain.accounts.get(account_id) else {
                return unknown_account();
            };
            if !account.has_contract {
                return handler_error(
                    id,
                    "NO_CONTRACT_CODE",
                    json!({"contract_account_id": account_id, "block_height": height, "block_hash": hash}),
                    &format!("Contract code for contract ID #{account_id} has never been observed on the node"),
                );
            }
            match view(chain, method, &args) {
                Ok(value) => ok(
                    id,
                    json!({
                        "result": serde_json::to_vec(&value).unwrap(),
                        "logs": [],
                        "block_height": height,
                        "block_hash": hash,
                    }),
                ),
                Err(vm_error) if chain.structured_errors => handler_error(
                    id,
                    "CONTRACT_EXECUTION_ERROR",
                    json!({"vm_error": vm_error, "block_height": height, "block_hash": hash}),
                    &vm_error,
                ),
                // nearcore's backward-compatible form (process_query_response).
                Err(vm_error) => ok(
                    id,
                    json!({"error": vm_error, "logs": [], "block_height": height, "block_hash": hash}),
                ),
            }
        }
        Some("view_access_key") => {
            let Some(public_key) = text("public_key") else {
                return parse_error(id, "missing field `public_key`");
            };
            if !public_key.starts_with("ed25519:") {
                return parse_error(id, "`public_key` must be `ed25519:<base58>`");
            }
            let Some(account) = chain.accounts.get(account_id) else {
                return unknown_account();
            };
            match account.keys.get(public_key) {
                Some((nonce, permission)) => ok(
                    id,
                    json!({"nonce": nonce, "permission": permission, "block_height": height, "block_hash": hash}),
                ),
                None if chain.structured_errors => handler_error(
                    id,
                    "UNKNOWN_ACCESS_KEY",
                    json!({"public_key": public_key, "block_height": height, "block_hash": hash}),
                    &format!("access key {public_key} does not exist while viewing"),
                ),
                None => ok(
                    id,
                    json!({
                        "error": format!("access key {public_key} does not exist while viewing"),
                        "logs": [],
                        "block_height": height,
                        "block_hash": hash,
                    }),
                ),
            }
        }
        other => parse_error(id, &format!("unknown request_type {other:?}")),
    }
}

fn guest_panic(message: &str) -> String {
    format!("wasm execution failed with error: HostError(GuestPanic {{ panic_msg: {message:?} }})")
}

/// near-sdk's message when the JSON arguments do not fit the method's parameters.
fn bad_input() -> String {
    guest_panic("Failed to deserialize input from JSON.")
}

fn arg_id(args: &Value, key: &str) -> Result<Id, String> {
    let text = args
        .get(key)
        .and_then(Value::as_str)
        .ok_or_else(bad_input)?;
    let bytes = bs58::decode(text).into_vec().map_err(|_| bad_input())?;
    bytes.try_into().map_err(|_| bad_input())
}

fn arg_usize(args: &Value, key: &str) -> Result<usize, String> {
    args.get(key)
        .and_then(Value::as_u64)
        .map(|n| n as usize)
        .ok_or_else(bad_input)
}

/// The contract's views, as in `contracts/near/context-config/src/query.rs`.
fn view(chain: &Chain, method: &str, args: &[u8]) -> Result<Value, String> {
    let args: Value = serde_json::from_slice(args).map_err(|_| bad_input())?;
    if !args.is_object() {
        return Err(bad_input());
    }
    let context = |args: &Value| -> Result<&Context, String> {
        let id = arg_id(args, "context_id")?;
        chain
            .contexts
            .get(&id)
            .ok_or_else(|| guest_panic("context does not exist"))
    };
    match method {
        "application" => Ok(context(&args)?.application.to_json()),
        "application_revision" => Ok(json!(context(&args)?.application_revision)),
        "proxy_contract" => Ok(json!(context(&args)?.proxy)),
        "members" => {
            let c = context(&args)?;
            let offset = arg_usize(&args, "offset")?;
            let length = arg_usize(&args, "length")?;
            Ok(json!(c
                .members
                .iter()
                .skip(offset)
                .take(length)
                .map(|m| b58(m))
                .collect::<Vec<_>>()))
        }
        "has_member" => {
            let c = context(&args)?;
            let identity = arg_id(&args, "identity")?;
            Ok(json!(c.members.contains(&identity)))
        }
        "members_revision" => Ok(json!(context(&args)?.members_revision)),
        "privileges" => {
            let c = context(&args)?;
            let identities = args
                .get("identities")
                .and_then(Value::as_array)
                .ok_or_else(bad_input)?
                .iter()
                .map(|v| {
                    let bytes = bs58::decode(v.as_str().ok_or_else(bad_input)?)
                        .into_vec()
                        .map_err(|_| bad_input())?;
                    Id::try_from(bytes).map_err(|_| bad_input())
                })
                .collect::<Result<Vec<Id>, String>>()?;
            let mut out: BTreeMap<Id, Vec<&str>> = BTreeMap::new();
            if identities.is_empty() {
                for s in &c.application_privileged {
                    out.entry(*s).or_default().push("ManageApplication");
                }
                for s in &c.members_privileged {
                    out.entry(*s).or_default().push("ManageMembers");
                }
            } else {
                for s in identities {
                    let entry = out.entry(s).or_default();
                    if c.application_privileged.contains(&s) {
                        entry.push("ManageApplication");
                    }
                    if c.members_privileged.contains(&s) {
                        entry.push("ManageMembers");
                    }
                }
            }
            let map: Map<String, Value> = out.into_iter().map(|(k, v)| (b58(&k), json!(v))).collect();
            Ok(Value::Object(map))
        }
        "fetch_nonce" => {
            let context_id = arg_id(&args, "context_id")?;
            let member = arg_id(&args, "member_id")?;
            Ok(json!(chain
                .contexts
                .get(&context_id)
                .and_then(|c| c.nonces.get(&member))))
        }
        "mutate" => Err(
            "wasm execution failed with error: HostError(ProhibitedInView { method_name: \"storage_write\" })"
                .to_owned(),
        ),
        _ => Err("wasm execution failed with error: MethodResolveError(MethodNotFound)".to_owned()),
    }
}

fn exact_keys(value: &Value, keys: &[&str]) -> Result<(), String> {
    let Value::Object(o) = value else {
        return Err("failed to parse input".into());
    };
    let have: BTreeSet<&str> = o.keys().map(String::as_str).collect();
    let want: BTreeSet<&str> = keys.iter().copied().collect();
    if have == want {
        Ok(())
    } else {
        Err(format!(
            "failed to parse input: fields {have:?}, expected {want:?}"
        ))
    }
}

fn id_of(v: &Value) -> Result<Id, String> {
    let text = v
        .as_str()
        .ok_or("failed to parse input: id is not a string")?;
    let bytes = bs58::decode(text)
        .into_vec()
        .map_err(|_| "failed to parse input: id is not base58".to_owned())?;
    Id::try_from(bytes).map_err(|_| "failed to parse input: id is not 32 bytes".to_owned())
}

fn app_of(v: &Value) -> Result<App, String> {
    exact_keys(v, &["id", "blob", "size", "source", "metadata"])?;
    Ok(App {
        id: id_of(&v["id"])?,
        blob: id_of(&v["blob"])?,
        size: v["size"].as_u64().ok_or("failed to parse input: size")?,
        source: v["source"]
            .as_str()
            .ok_or("failed to parse input: source")?
            .to_owned(),
        metadata: bs58::decode(
            v["metadata"]
                .as_str()
                .ok_or("failed to parse input: metadata")?,
        )
        .into_vec()
        .map_err(|_| "failed to parse input: metadata is not base58".to_owned())?,
    })
}

impl Chain {
    /// Plays the contract's `mutate` with `args` (the function call's JSON argument bytes).
    /// Returns the logs, or the panic message; a panic leaves the state as it was.
    pub fn apply_mutate(&mut self, args: &[u8]) -> Result<Vec<String>, String> {
        let mut contexts = self.contexts.clone();
        let mut next_proxy_id = self.next_proxy_id;
        let logs = mutate(&mut contexts, &mut next_proxy_id, &self.contract_id, args)?;
        self.contexts = contexts;
        self.next_proxy_id = next_proxy_id;
        self.height += 1;
        Ok(logs)
    }

    /// Plays one transaction's `mutate` calls (each call's JSON argument bytes) as NEAR runs a
    /// transaction's actions: in order, in one receipt, all or nothing. The error names the
    /// failing action's index and the contract's panic message.
    pub fn apply_transaction(&mut self, calls: &[Vec<u8>]) -> Result<Vec<String>, (usize, String)> {
        let mut contexts = self.contexts.clone();
        let mut next_proxy_id = self.next_proxy_id;
        let mut logs = Vec::new();
        for (i, args) in calls.iter().enumerate() {
            logs.extend(
                mutate(&mut contexts, &mut next_proxy_id, &self.contract_id, args)
                    .map_err(|e| (i, e))?,
            );
        }
        self.contexts = contexts;
        self.next_proxy_id = next_proxy_id;
        self.height += 1;
        Ok(logs)
    }
}

fn mutate(
    contexts: &mut BTreeMap<Id, Context>,
    next_proxy_id: &mut u64,
    contract_id: &str,
    args: &[u8],
) -> Result<Vec<String>, String> {
    let signed: Value =
        serde_json::from_slice(args).map_err(|_| "failed to parse input".to_owned())?;
    exact_keys(&signed, &["payload", "signature"])?;
    let payload = bs58::decode(signed["payload"].as_str().ok_or("failed to parse input")?)
        .into_vec()
        .map_err(|_| "failed to parse input".to_owned())?;
    let signature: [u8; 64] = bs58::decode(
        signed["signature"]
            .as_str()
            .ok_or("failed to parse input")?,
    )
    .into_vec()
    .ok()
    .and_then(|s| s.try_into().ok())
    .ok_or("failed to parse input")?;

    let request: Value =
        serde_json::from_slice(&payload).map_err(|_| "failed to parse input".to_owned())?;
    exact_keys(&request, &["signerId", "nonce", "scope", "params"])?;
    let signer = id_of(&request["signerId"])?;
    tabnode_types::verify_signature(
        &tabnode_types::PublicKey(signer),
        &payload,
        &tabnode_types::Signature(signature),
    )
    .map_err(|_| "failed to parse input: invalid signature".to_owned())?;
    let nonce = request["nonce"].as_u64().ok_or("failed to parse input")?;
    if request["scope"] != "Context" {
        return Err("failed to parse input: the double plays only Context requests".into());
    }
    let params = &request["params"];
    let scope = params["scope"].as_str().ok_or("failed to parse input")?;
    if scope == "UpdateProxyContract" {
        exact_keys(params, &["contextId", "scope"])?;
    } else {
        exact_keys(params, &["contextId", "scope", "params"])?;
    }
    let context_id = id_of(&params["contextId"])?;
    let kind = &params["params"];

    // check_and_increment_nonce: only for a known context and a signer that has a nonce.
    if let Some(c) = contexts.get_mut(&context_id) {
        if let Some(current) = c.nonces.get_mut(&signer) {
            if *current != nonce {
                return Err("invalid nonce".into());
            }
            *current += 1;
        }
    }

    let mut logs = Vec::new();
    let ctx_b58 = b58(&context_id);
    let get = |contexts: &mut BTreeMap<Id, Context>| -> Result<(), String> {
        contexts
            .get(&context_id)
            .map(|_| ())
            .ok_or_else(|| "context does not exist".to_owned())
    };
    match scope {
        "Add" => {
            exact_keys(kind, &["author_id", "application"])?;
            if signer != context_id {
                return Err("context addition must be signed by the context itself".into());
            }
            let author = id_of(&kind["author_id"])?;
            let app = app_of(&kind["application"])?;
            if contexts.contains_key(&context_id) {
                return Err("context already exists".into());
            }
            let proxy = format!("{next_proxy_id}.{contract_id}");
            *next_proxy_id += 1;
            contexts.insert(context_id, Context::new(author, app, proxy));
            logs.push(format!("Context `{ctx_b58}` added"));
        }
        "UpdateApplication" => {
            exact_keys(kind, &["application"])?;
            get(contexts)?;
            let c = contexts.get_mut(&context_id).unwrap();
            if !c.application_privileged.contains(&signer) {
                return Err("unable to update application".into());
            }
            c.application = app_of(&kind["application"])?;
            c.application_revision += 1;
        }
        "AddMembers" | "RemoveMembers" => {
            exact_keys(kind, &["members"])?;
            get(contexts)?;
            let members = kind["members"]
                .as_array()
                .ok_or("failed to parse input")?
                .iter()
                .map(id_of)
                .collect::<Result<Vec<_>, _>>()?;
            let c = contexts.get_mut(&context_id).unwrap();
            if !c.members_privileged.contains(&signer) {
                return Err("unable to update member list".into());
            }
            for m in members {
                if scope == "AddMembers" {
                    c.nonces.entry(m).or_default();
                    if !c.members.contains(&m) {
                        c.members.push(m);
                    }
                    logs.push(format!("Added `{}` as a member of `{ctx_b58}`", b58(&m)));
                } else {
                    if let Some(i) = c.members.iter().position(|x| *x == m) {
                        c.members.swap_remove(i);
                    }
                    c.nonces.remove(&m);
                    c.members_privileged.remove(&m);
                    c.application_privileged.remove(&m);
                    logs.push(format!(
                        "Removed `{}` from being a member of `{ctx_b58}`",
                        b58(&m)
                    ));
                }
            }
            c.members_revision += 1;
        }
        "Grant" | "Revoke" => {
            exact_keys(kind, &["capabilities"])?;
            get(contexts)?;
            let c = contexts.get_mut(&context_id).unwrap();
            for pair in kind["capabilities"]
                .as_array()
                .ok_or("failed to parse input")?
            {
                let pair = pair
                    .as_array()
                    .filter(|p| p.len() == 2)
                    .ok_or("failed to parse input")?;
                let who = id_of(&pair[0])?;
                if scope == "Grant" && !c.members.contains(&who) {
                    return Err("unable to grant privileges to non-member".into());
                }
                let (set, refusal) = match pair[1].as_str() {
                    Some("ManageApplication") => (
                        &mut c.application_privileged,
                        "unable to update application",
                    ),
                    Some("ManageMembers") => {
                        (&mut c.members_privileged, "unable to update member list")
                    }
                    Some("Proxy") => (&mut c.proxy_privileged, "unable to update proxy"),
                    _ => return Err("failed to parse input: unknown capability".into()),
                };
                if !set.contains(&signer) {
                    return Err(refusal.into());
                }
                if scope == "Grant" {
                    set.insert(who);
                } else {
                    set.remove(&who);
                }
            }
        }
        "UpdateProxyContract" => {
            get(contexts)?;
            if !contexts[&context_id].proxy_privileged.contains(&signer) {
                return Err("unable to update proxy".into());
            }
        }
        other => return Err(format!("failed to parse input: unknown variant `{other}`")),
    }
    Ok(logs)
}

/// The contract account the tests talk to.
pub const CONTRACT: &str = "config.calimero.testnet";

/// The client under test on the contract at `urls`, in order (5 s per request).
pub fn contract_client(
    urls: Vec<String>,
) -> tabnode_chain::ContextConfig<tabnode_chain::native::ReqwestTransport> {
    let rpc = tabnode_chain::RpcClient::new(tabnode_chain::native::ReqwestTransport::new(), urls)
        .with_timeout(Duration::from_secs(5));
    tabnode_chain::ContextConfig::new(rpc, CONTRACT)
}

/// A test key from a one-byte seed.
pub fn key(n: u8) -> tabnode_types::SecretKey {
    tabnode_types::SecretKey::from_seed([n; 32])
}

/// `len` bytes standing in for an app binary, different per `salt`.
pub fn wasm(len: usize, salt: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31) ^ salt)
        .collect()
}
