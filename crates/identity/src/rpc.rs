//! NEAR JSON-RPC `view_access_key`: is this key a full-access key of that account?

use serde_json::{json, Value};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessKey {
    FullAccess,
    FunctionCall {
        receiver_id: String,
        method_names: Vec<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RpcError {
    #[error("the key is not an access key of the account")]
    UnknownAccessKey,
    #[error("the RPC node refused: {0}")]
    Rpc(String),
    #[error("the RPC answer is malformed: {0}")]
    Malformed(String),
}

/// The request body.
pub fn view_access_key_request(account_id: &str, public_key: &str) -> Value {
    json!({
        "jsonrpc": "2.0",
        "id": "tabnode",
        "method": "query",
        "params": {
            "request_type": "view_access_key",
            "finality": "final",
            "account_id": account_id,
            "public_key": public_key,
        }
    })
}

/// Reads an answer. A missing key comes back in two shapes, both handled: inside `result` as
/// `{"error": "access key … does not exist while viewing"}` (older nodes), or as
/// `error.cause.name == "UNKNOWN_ACCESS_KEY"`.
pub fn parse_view_access_key(answer: &Value) -> Result<AccessKey, RpcError> {
    if let Some(error) = answer.get("error") {
        let cause = error.pointer("/cause/name").and_then(Value::as_str);
        if cause == Some("UNKNOWN_ACCESS_KEY") {
            return Err(RpcError::UnknownAccessKey);
        }
        return Err(RpcError::Rpc(error.to_string()));
    }
    let result = answer
        .get("result")
        .ok_or_else(|| RpcError::Malformed("no result".into()))?;
    if let Some(message) = result.get("error").and_then(Value::as_str) {
        if message.contains("does not exist") {
            return Err(RpcError::UnknownAccessKey);
        }
        return Err(RpcError::Rpc(message.to_owned()));
    }
    match result.get("permission") {
        Some(Value::String(p)) if p == "FullAccess" => Ok(AccessKey::FullAccess),
        Some(Value::Object(o)) if o.contains_key("FunctionCall") => {
            let call = &o["FunctionCall"];
            Ok(AccessKey::FunctionCall {
                receiver_id: call["receiver_id"].as_str().unwrap_or_default().to_owned(),
                method_names: call["method_names"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|m| m.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default(),
            })
        }
        other => Err(RpcError::Malformed(format!("permission {other:?}"))),
    }
}
