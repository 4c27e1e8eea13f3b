//! NEAR JSON-RPC without I/O: the request bodies and the parsers of their answers.
//!
//! Nothing here sends a byte, so the same code runs in the page and natively, and every answer
//! shape can be tested from literal text. The shapes follow NEAR's RPC documentation
//! (`query` with `call_function` and `view_access_key`, `block`, and the "What could go wrong"
//! error tables) and nearcore's JSON-RPC server, which for backward compatibility answers a
//! contract failure in a view call, and an unknown access key, *inside* `result` as
//! `{"error": "<text>", "logs": [], "block_height", "block_hash"}` rather than as an `error`
//! object; both forms are read here.

use base64::Engine;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use tabnode_identity::rpc::{self as identity_rpc, AccessKey};

/// The JSON-RPC `id` of every request this crate builds (NEAR echoes it and ignores it).
pub const JSONRPC_ID: &str = "tabnode";

/// How much of a non-NEAR answer an error quotes.
const SNIPPET: usize = 200;

/// Which state a query reads: a finality, or one block by height or hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlockRef {
    /// `"finality": "final"`: a block the network has finalised (the default here).
    Final,
    /// `"finality": "optimistic"`: the latest block the RPC node has.
    Optimistic,
    /// `"block_id": <height>`.
    Height(u64),
    /// `"block_id": "<base58 hash>"`.
    Hash(String),
}

impl BlockRef {
    /// Writes the reference into a request's `params`.
    fn put(&self, params: &mut serde_json::Map<String, Value>) {
        let (key, value) = match self {
            BlockRef::Final => ("finality", json!("final")),
            BlockRef::Optimistic => ("finality", json!("optimistic")),
            BlockRef::Height(h) => ("block_id", json!(h)),
            BlockRef::Hash(h) => ("block_id", json!(h)),
        };
        params.insert(key.to_owned(), value);
    }
}

/// Everything that can go wrong with one RPC request, from the socket to the contract's answer.
///
/// [`RpcError::is_node_failure`] splits them in two: the node could not give a usable answer
/// (try another node), or the chain answered (another node would say the same).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RpcError {
    #[error("no RPC URL is configured")]
    NoRpcUrls,
    #[error("could not reach the RPC node: {message}")]
    Transport { message: String },
    #[error("the RPC node did not answer within {after_ms} ms")]
    Timeout { after_ms: u64 },
    #[error("the RPC node answered HTTP {status} without a JSON-RPC error: {body}")]
    HttpStatus { status: u16, body: String },
    #[error("the RPC answer is not JSON ({detail}): {body}")]
    NotJson { detail: String, body: String },
    /// A JSON-RPC error NEAR has no more specific variant for here. `name` is `error.name`
    /// (`HANDLER_ERROR`, `REQUEST_VALIDATION_ERROR`, `INTERNAL_ERROR`), `cause` is
    /// `error.cause.name` (absent on nodes older than structured errors), `message` is the
    /// human text (`error.data`, else `error.message`).
    #[error("the RPC node refused the request ({name}{}): {message}", cause.as_deref().map(|c| format!("/{c}")).unwrap_or_default())]
    JsonRpc {
        http_status: u16,
        name: String,
        cause: Option<String>,
        message: String,
    },
    #[error("account {account_id} does not exist on chain")]
    UnknownAccount { account_id: String },
    #[error("the key {public_key} is not an access key of the account")]
    UnknownAccessKey { public_key: String },
    #[error("the RPC node does not know that block: {message}")]
    UnknownBlock { message: String },
    #[error("account {account_id} has no contract deployed")]
    NoContractCode { account_id: String },
    /// The contract ran and failed (a panic, a missing method, out of gas). `panic` is the
    /// contract's own message when the VM error is a guest panic.
    #[error("the contract call failed: {}", panic.as_deref().unwrap_or(message))]
    ContractExecution {
        message: String,
        panic: Option<String>,
    },
    #[error("the RPC answer is malformed: {what}")]
    Malformed { what: String },
}

impl RpcError {
    /// True when this node could not give a usable answer and another node may: transport
    /// failures, timeouts, an HTTP error that is not a JSON-RPC error, 5xx / 408 / 429, an answer
    /// that is not NEAR's shape, and the JSON-RPC errors NEAR documents as "send the request to a
    /// different node" (`INTERNAL_ERROR`, `TIMEOUT_ERROR`, `NO_SYNCED_BLOCKS`, `NOT_SYNCED_YET`,
    /// `UNAVAILABLE_SHARD`). False for the chain's own answers (unknown account or key, a contract
    /// panic, a request the node refuses as invalid): those would be the same everywhere.
    pub fn is_node_failure(&self) -> bool {
        match self {
            RpcError::Transport { .. }
            | RpcError::Timeout { .. }
            | RpcError::HttpStatus { .. }
            | RpcError::NotJson { .. }
            | RpcError::Malformed { .. } => true,
            RpcError::JsonRpc {
                http_status,
                name,
                cause,
                ..
            } => {
                retryable_status(*http_status)
                    || name == "INTERNAL_ERROR"
                    || matches!(
                        cause.as_deref(),
                        Some(
                            "INTERNAL_ERROR"
                                | "TIMEOUT_ERROR"
                                | "NO_SYNCED_BLOCKS"
                                | "NOT_SYNCED_YET"
                                | "UNAVAILABLE_SHARD"
                        )
                    )
            }
            RpcError::NoRpcUrls
            | RpcError::UnknownAccount { .. }
            | RpcError::UnknownAccessKey { .. }
            | RpcError::UnknownBlock { .. }
            | RpcError::NoContractCode { .. }
            | RpcError::ContractExecution { .. } => false,
        }
    }

    /// The contract's panic message, if this is a contract panic.
    pub fn panic_message(&self) -> Option<&str> {
        match self {
            RpcError::ContractExecution { panic, .. } => panic.as_deref(),
            _ => None,
        }
    }

    fn malformed(what: impl Into<String>) -> Self {
        RpcError::Malformed { what: what.into() }
    }
}

fn retryable_status(status: u16) -> bool {
    status >= 500 || status == 408 || status == 429
}

fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut out: String = text.chars().take(SNIPPET).collect();
    if text.chars().count() > SNIPPET {
        out.push('…');
    }
    out
}

fn request(method: &str, params: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": JSONRPC_ID, "method": method, "params": params})
}

/// `query` / `call_function`: runs `method_name` of the contract at `account_id` as a view, with
/// `args` (JSON text for near-sdk contracts) sent as `args_base64`.
pub fn call_function_request(
    account_id: &str,
    method_name: &str,
    args: &[u8],
    at: &BlockRef,
) -> Value {
    let mut params = serde_json::Map::new();
    params.insert("request_type".into(), json!("call_function"));
    at.put(&mut params);
    params.insert("account_id".into(), json!(account_id));
    params.insert("method_name".into(), json!(method_name));
    params.insert(
        "args_base64".into(),
        json!(base64::engine::general_purpose::STANDARD.encode(args)),
    );
    request("query", Value::Object(params))
}

/// `query` / `view_access_key`, built by `tabnode-identity` (which reads its answers too) with
/// the block reference swapped in.
pub fn view_access_key_request(account_id: &str, public_key: &str, at: &BlockRef) -> Value {
    let mut body = identity_rpc::view_access_key_request(account_id, public_key);
    if let Some(Value::Object(params)) = body.get_mut("params") {
        params.remove("finality");
        at.put(params);
    }
    if let Some(id) = body.get_mut("id") {
        *id = json!(JSONRPC_ID);
    }
    body
}

/// `block`: one block's header.
pub fn block_request(at: &BlockRef) -> Value {
    let mut params = serde_json::Map::new();
    at.put(&mut params);
    request("block", Value::Object(params))
}

/// Reads the JSON-RPC envelope of an answer: its `result`, or the typed error it carries.
///
/// A JSON-RPC `error` object wins whatever the HTTP status (nearcore answers 400, 408, 422 or 500
/// with one since 2.3); a non-2xx answer without one is [`RpcError::HttpStatus`].
pub fn parse_envelope(status: u16, body: &[u8]) -> Result<Value, RpcError> {
    let parsed: Result<Value, _> = serde_json::from_slice(body);
    if !(200..300).contains(&status) {
        if let Ok(Value::Object(o)) = &parsed {
            if let Some(error) = o.get("error") {
                return Err(typed_error(status, error));
            }
        }
        return Err(RpcError::HttpStatus {
            status,
            body: snippet(body),
        });
    }
    let value = parsed.map_err(|e| RpcError::NotJson {
        detail: e.to_string(),
        body: snippet(body),
    })?;
    let Value::Object(mut envelope) = value else {
        return Err(RpcError::malformed(format!(
            "expected a JSON-RPC object, got {}",
            kind_of(&value)
        )));
    };
    if let Some(error) = envelope.get("error") {
        if !error.is_null() {
            return Err(typed_error(status, error));
        }
    }
    match envelope.remove("result") {
        Some(Value::Null) | None => Err(RpcError::malformed(
            "the answer has neither `result` nor `error`",
        )),
        Some(result) => Ok(result),
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Maps NEAR's verror-style `error` object to a variant.
fn typed_error(http_status: u16, error: &Value) -> RpcError {
    let name = error
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("UNKNOWN")
        .to_owned();
    let cause = error.pointer("/cause/name").and_then(Value::as_str);
    let info = error.pointer("/cause/info");
    let info_str = |key: &str| {
        info.and_then(|i| i.get(key))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let message = match error.get("data") {
        Some(Value::String(s)) => s.clone(),
        Some(v) if !v.is_null() => v.to_string(),
        _ => error
            .get("message")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .or_else(|| info.map(Value::to_string))
            .unwrap_or_else(|| error.to_string()),
    };
    match cause {
        Some("UNKNOWN_ACCOUNT") => RpcError::UnknownAccount {
            account_id: info_str("requested_account_id").unwrap_or(message),
        },
        Some("UNKNOWN_ACCESS_KEY") => RpcError::UnknownAccessKey {
            public_key: info_str("public_key").unwrap_or(message),
        },
        Some("UNKNOWN_BLOCK") => RpcError::UnknownBlock { message },
        Some("NO_CONTRACT_CODE") => RpcError::NoContractCode {
            account_id: info_str("contract_account_id").unwrap_or(message),
        },
        Some("CONTRACT_EXECUTION_ERROR") => {
            let vm_error = info_str("vm_error").unwrap_or(message);
            contract_execution(vm_error)
        }
        _ => RpcError::JsonRpc {
            http_status,
            name,
            cause: cause.map(str::to_owned),
            message,
        },
    }
}

/// A VM error text, with the guest's panic message taken out of
/// `... GuestPanic { panic_msg: "<message>" } ...` when there is one.
fn contract_execution(message: String) -> RpcError {
    let panic = guest_panic(&message);
    RpcError::ContractExecution { message, panic }
}

fn guest_panic(vm_error: &str) -> Option<String> {
    let start = vm_error.find("panic_msg: \"")? + "panic_msg: \"".len();
    // The message is printed with Rust's Debug escaping: read up to the closing unescaped quote.
    let mut out = String::new();
    let mut chars = vm_error[start..].chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(out),
            '\\' => match chars.next()? {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'r' => out.push('\r'),
                other => out.push(other),
            },
            c => out.push(c),
        }
    }
    None
}

/// What a `call_function` view returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallResult {
    /// The method's return bytes (near-sdk contracts return JSON text).
    pub result: Vec<u8>,
    pub logs: Vec<String>,
    pub block_height: u64,
    pub block_hash: String,
}

impl CallResult {
    /// Decodes the return bytes as JSON into `T`; `method` names the call in errors.
    pub fn json<T: DeserializeOwned>(&self, method: &str) -> Result<T, RpcError> {
        let value: Value = serde_json::from_slice(&self.result).map_err(|e| {
            RpcError::malformed(format!(
                "`{method}` returned bytes that are not JSON ({e}): {}",
                snippet(&self.result)
            ))
        })?;
        serde_json::from_value(value.clone()).map_err(|e| {
            RpcError::malformed(format!(
                "`{method}` returned JSON of the wrong shape ({e}): {}",
                snippet(value.to_string().as_bytes())
            ))
        })
    }
}

fn block_fields(result: &Value, what: &str) -> Result<(u64, String), RpcError> {
    let height = result
        .get("block_height")
        .and_then(Value::as_u64)
        .ok_or_else(|| RpcError::malformed(format!("{what}: no numeric `block_height`")))?;
    let hash = result
        .get("block_hash")
        .and_then(Value::as_str)
        .ok_or_else(|| RpcError::malformed(format!("{what}: no string `block_hash`")))?
        .to_owned();
    Ok((height, hash))
}

/// Reads a `call_function` answer.
pub fn parse_call_function(status: u16, body: &[u8]) -> Result<CallResult, RpcError> {
    let result = parse_envelope(status, body)?;
    if !result.is_object() {
        return Err(RpcError::malformed(format!(
            "call_function: `result` is {}, expected an object",
            kind_of(&result)
        )));
    }
    if let Some(error) = result.get("error") {
        let text = match error {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        return Err(contract_execution(text));
    }
    let bytes = match result.get("result") {
        Some(Value::Array(items)) => items
            .iter()
            .map(|b| b.as_u64().filter(|b| *b <= 255).map(|b| b as u8))
            .collect::<Option<Vec<u8>>>()
            .ok_or_else(|| {
                RpcError::malformed(
                    "call_function: `result.result` holds something other than bytes 0-255",
                )
            })?,
        Some(other) => {
            return Err(RpcError::malformed(format!(
                "call_function: `result.result` is {}, expected an array of bytes",
                kind_of(other)
            )))
        }
        None => {
            return Err(RpcError::malformed(
                "call_function: no `result.result` (the returned bytes)",
            ))
        }
    };
    let logs = match result.get("logs") {
        Some(Value::Array(items)) => items
            .iter()
            .map(|l| l.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| RpcError::malformed("call_function: a log is not a string"))?,
        None | Some(Value::Null) => Vec::new(),
        Some(other) => {
            return Err(RpcError::malformed(format!(
                "call_function: `logs` is {}, expected an array",
                kind_of(other)
            )))
        }
    };
    let (block_height, block_hash) = block_fields(&result, "call_function")?;
    Ok(CallResult {
        result: bytes,
        logs,
        block_height,
        block_hash,
    })
}

/// A `view_access_key` answer: the permission (as `tabnode-identity` reads it) and the nonce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessKeyView {
    pub permission: AccessKey,
    pub nonce: u64,
    pub block_height: u64,
    pub block_hash: String,
}

/// Reads a `view_access_key` answer. A missing key is [`RpcError::UnknownAccessKey`] in both of
/// NEAR's forms (`error.cause.name == "UNKNOWN_ACCESS_KEY"`, or `result.error` "access key …
/// does not exist while viewing"); the permission itself is read by `tabnode-identity`.
pub fn parse_view_access_key(status: u16, body: &[u8]) -> Result<AccessKeyView, RpcError> {
    let result = parse_envelope(status, body)?;
    if !result.is_object() {
        return Err(RpcError::malformed(format!(
            "view_access_key: `result` is {}, expected an object",
            kind_of(&result)
        )));
    }
    if let Some(error) = result.get("error") {
        let text = error
            .as_str()
            .map(str::to_owned)
            .unwrap_or(error.to_string());
        if text.contains("does not exist") {
            let key = text
                .strip_prefix("access key ")
                .and_then(|t| t.split_whitespace().next())
                .unwrap_or(&text)
                .to_owned();
            return Err(RpcError::UnknownAccessKey { public_key: key });
        }
        return Err(contract_execution(text));
    }
    let permission =
        identity_rpc::parse_view_access_key(&json!({ "result": result })).map_err(|e| match e {
            identity_rpc::RpcError::UnknownAccessKey => RpcError::UnknownAccessKey {
                public_key: String::new(),
            },
            identity_rpc::RpcError::Rpc(m) | identity_rpc::RpcError::Malformed(m) => {
                RpcError::malformed(format!("view_access_key: {m}"))
            }
        })?;
    let nonce = result
        .get("nonce")
        .and_then(Value::as_u64)
        .ok_or_else(|| RpcError::malformed("view_access_key: no numeric `nonce`"))?;
    let (block_height, block_hash) = block_fields(&result, "view_access_key")?;
    Ok(AccessKeyView {
        permission,
        nonce,
        block_height,
        block_hash,
    })
}

/// The parts of a block header a node needs: where the chain is, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockInfo {
    pub height: u64,
    pub hash: String,
    pub prev_hash: String,
    /// Nanoseconds since the Unix epoch (`timestamp_nanosec`, or `timestamp`).
    pub timestamp_ns: u64,
    pub author: String,
}

/// Reads a `block` answer.
pub fn parse_block(status: u16, body: &[u8]) -> Result<BlockInfo, RpcError> {
    let result = parse_envelope(status, body)?;
    let header = result
        .get("header")
        .filter(|h| h.is_object())
        .ok_or_else(|| RpcError::malformed("block: no `result.header` object"))?;
    let height = header
        .get("height")
        .and_then(Value::as_u64)
        .ok_or_else(|| RpcError::malformed("block: no numeric `header.height`"))?;
    let text = |key: &str| {
        header
            .get(key)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| RpcError::malformed(format!("block: no string `header.{key}`")))
    };
    let hash = text("hash")?;
    let prev_hash = text("prev_hash")?;
    let timestamp_ns = match header.get("timestamp_nanosec").and_then(Value::as_str) {
        Some(s) => s.parse::<u64>().map_err(|_| {
            RpcError::malformed(format!(
                "block: `header.timestamp_nanosec` {s:?} is not a u64"
            ))
        })?,
        None => header
            .get("timestamp")
            .and_then(Value::as_u64)
            .ok_or_else(|| RpcError::malformed("block: no `header.timestamp`"))?,
    };
    let author = result
        .get("author")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    Ok(BlockInfo {
        height,
        hash,
        prev_hash,
        timestamp_ns,
        author,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_panic_is_unescaped() {
        assert_eq!(
            guest_panic(
                r#"wasm execution failed with error: HostError(GuestPanic { panic_msg: "say \"hi\"\nnow" })"#
            ),
            Some("say \"hi\"\nnow".to_owned())
        );
        assert_eq!(
            guest_panic("wasm execution failed with error: MethodResolveError(MethodNotFound)"),
            None
        );
        assert_eq!(guest_panic(r#"panic_msg: "unterminated"#), None);
    }

    #[test]
    fn block_ref_params() {
        let body = call_function_request("a.near", "m", b"{}", &BlockRef::Height(7));
        assert_eq!(body["params"]["block_id"], 7);
        assert!(body["params"].get("finality").is_none());
        let body = view_access_key_request("a.near", "ed25519:x", &BlockRef::Optimistic);
        assert_eq!(body["params"]["finality"], "optimistic");
        assert_eq!(body["id"], JSONRPC_ID);
    }
}
