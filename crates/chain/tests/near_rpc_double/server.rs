//! The double's JSON-RPC server: NEAR's request and answer shapes, its errors, and the
//! misbehaviour tests ask for (see the module's top).

use super::contract::view;
use super::*;
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
