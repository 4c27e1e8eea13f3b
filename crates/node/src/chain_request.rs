//! What the node agrees to sign for a chain: a request to Calimero's context-config contract
//! about one of its contexts, and nothing else.
//!
//! A context's anchor is written by `mutate` calls whose payload is the request's JSON, signed
//! by the request's `signerId` (see `tabnode-chain`'s `context_config` and `write`). The keys
//! that sign (this node's key, the context's own key) never leave the node, so the node signs
//! the payload itself; to keep that from being a general signing oracle it parses the payload
//! and signs only a request of the expected shape, for the context it is asked about, naming
//! the key that signs as `signerId`, and of a kind that key signs:
//!
//! - the context key signs only `Add` (the contract requires `signerId == contextId` there and
//!   nowhere else), naming this node's key as the author;
//! - this node's key signs only `AddMembers`, `RemoveMembers` and `UpdateApplication`.
//!
//! The request shape is Calimero's (`calimero-context-config`'s serde derives):
//! `{"signerId", "nonce", "scope": "Context", "params": {"contextId", "scope", "params"}}`.
//! This crate does not depend on `tabnode-chain`: it only reads the JSON.

use serde_json::{Map, Value};
use tabnode_types::{ContextId, PublicKey};

use crate::error::NodeError;

/// Which of the node's keys signs a context-config request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChainSigner {
    /// This node's key, as a member of the context (its identity on the contract).
    Member,
    /// The context's own key (its public half is the context id): only its creator's node
    /// holds it. It signs the request that adds the context to the contract.
    ContextKey,
}

/// A request this node agreed to sign, as read from the payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ChainRequest {
    /// The request's kind (`Add`, `AddMembers`, …).
    pub scope: String,
    /// For `Add`: the author the context key vouches for.
    pub author: Option<PublicKey>,
}

fn bad(why: impl Into<String>) -> NodeError {
    NodeError::BadChainRequest(why.into())
}

fn object<'a>(value: &'a Value, what: &str) -> Result<&'a Map<String, Value>, NodeError> {
    value
        .as_object()
        .ok_or_else(|| bad(format!("{what} is not a JSON object")))
}

fn key_field(map: &Map<String, Value>, field: &str) -> Result<PublicKey, NodeError> {
    map.get(field)
        .and_then(Value::as_str)
        .ok_or_else(|| bad(format!("`{field}` is missing or not a string")))?
        .parse()
        .map_err(|e| bad(format!("`{field}` is not a base58 key: {e}")))
}

fn exact_fields(map: &Map<String, Value>, fields: &[&str], what: &str) -> Result<(), NodeError> {
    let mut have: Vec<&str> = map.keys().map(String::as_str).collect();
    let mut want = fields.to_vec();
    have.sort_unstable();
    want.sort_unstable();
    if have == want {
        Ok(())
    } else {
        Err(bad(format!(
            "{what} has fields {have:?}, a context-config request has {want:?}"
        )))
    }
}

/// Reads `payload` as a context-config request about `context` signed by `signer_id` as
/// `signer`, or says why this node does not sign it.
pub(crate) fn check(
    payload: &[u8],
    context: &ContextId,
    signer: ChainSigner,
    signer_id: &PublicKey,
) -> Result<ChainRequest, NodeError> {
    let value: Value = serde_json::from_slice(payload)
        .map_err(|e| bad(format!("the payload is not JSON: {e}")))?;
    let request = object(&value, "the request")?;
    exact_fields(
        request,
        &["signerId", "nonce", "scope", "params"],
        "the request",
    )?;
    if request["scope"] != "Context" {
        return Err(bad(
            "only requests about a context (scope \"Context\") are signed",
        ));
    }
    request["nonce"]
        .as_u64()
        .ok_or_else(|| bad("`nonce` is not an unsigned integer"))?;
    let named = key_field(request, "signerId")?;
    if named != *signer_id {
        return Err(bad(format!(
            "the request names {named} as its signer, and would be signed by {signer_id}"
        )));
    }
    let params = object(&request["params"], "`params`")?;
    let about: ContextId = params
        .get("contextId")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("`params.contextId` is missing or not a string"))?
        .parse()
        .map_err(|e| bad(format!("`params.contextId` is not a context id: {e}")))?;
    if about != *context {
        return Err(bad(format!(
            "the request is about context {about}, not {context}"
        )));
    }
    exact_fields(params, &["contextId", "scope", "params"], "`params`")?;
    let scope = params["scope"]
        .as_str()
        .ok_or_else(|| bad("`params.scope` is not a string"))?;
    let kind = object(&params["params"], "`params.params`")?;
    let author = match (signer, scope) {
        (ChainSigner::ContextKey, "Add") => {
            exact_fields(kind, &["author_id", "application"], "`Add`")?;
            Some(key_field(kind, "author_id")?)
        }
        (ChainSigner::Member, "AddMembers" | "RemoveMembers") => {
            exact_fields(kind, &["members"], scope)?;
            None
        }
        (ChainSigner::Member, "UpdateApplication") => {
            exact_fields(kind, &["application"], scope)?;
            None
        }
        (ChainSigner::ContextKey, other) => {
            return Err(bad(format!(
                "the context key signs only `Add`, not `{other}`"
            )))
        }
        (ChainSigner::Member, other) => {
            return Err(bad(format!(
                "this node signs `AddMembers`, `RemoveMembers` and `UpdateApplication` as a member, not `{other}`"
            )))
        }
    };
    Ok(ChainRequest {
        scope: scope.to_owned(),
        author,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const CTX: [u8; 32] = [7; 32];
    const ME: [u8; 32] = [1; 32];

    fn request(signer: [u8; 32], scope: &str, params: Value) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "signerId": PublicKey(signer).to_string(),
            "nonce": 3,
            "scope": "Context",
            "params": {"contextId": ContextId(CTX).to_string(), "scope": scope, "params": params},
        }))
        .unwrap()
    }

    fn members() -> Value {
        json!({"members": [PublicKey([2; 32]).to_string()]})
    }

    #[test]
    fn member_and_context_key_requests_of_the_right_kind_are_read() {
        let ctx = ContextId(CTX);
        let add = request(
            CTX,
            "Add",
            json!({"author_id": PublicKey(ME).to_string(), "application": {}}),
        );
        let read = check(&add, &ctx, ChainSigner::ContextKey, &PublicKey(CTX)).unwrap();
        assert_eq!(read.scope, "Add");
        assert_eq!(read.author, Some(PublicKey(ME)));
        for scope in ["AddMembers", "RemoveMembers"] {
            let r = request(ME, scope, members());
            assert!(check(&r, &ctx, ChainSigner::Member, &PublicKey(ME)).is_ok());
        }
        let app = request(ME, "UpdateApplication", json!({"application": {}}));
        assert!(check(&app, &ctx, ChainSigner::Member, &PublicKey(ME)).is_ok());
    }

    #[test]
    fn anything_else_is_refused_with_the_reason() {
        let ctx = ContextId(CTX);
        let me = PublicKey(ME);
        let refused = |payload: &[u8], signer, id: &PublicKey| {
            let err = check(payload, &ctx, signer, id).unwrap_err();
            assert_eq!(err.kind(), "BadChainRequest");
            err.to_string()
        };
        assert!(refused(b"hello", ChainSigner::Member, &me).contains("not JSON"));
        assert!(refused(b"[1]", ChainSigner::Member, &me).contains("not a JSON object"));
        // Another signer named, another context, another scope.
        let other = request([9; 32], "AddMembers", members());
        assert!(refused(&other, ChainSigner::Member, &me).contains("names"));
        let mut elsewhere: Value =
            serde_json::from_slice(&request(ME, "AddMembers", members())).unwrap();
        elsewhere["params"]["contextId"] = json!(ContextId([8; 32]).to_string());
        let elsewhere = serde_json::to_vec(&elsewhere).unwrap();
        assert!(refused(&elsewhere, ChainSigner::Member, &me).contains("about context"));
        let mut group: Value =
            serde_json::from_slice(&request(ME, "AddMembers", members())).unwrap();
        group["scope"] = json!("Group");
        let group = serde_json::to_vec(&group).unwrap();
        assert!(refused(&group, ChainSigner::Member, &me).contains("scope"));
        // Kinds each key does not sign.
        let grant = request(ME, "Grant", json!({"capabilities": []}));
        assert!(refused(&grant, ChainSigner::Member, &me).contains("not `Grant`"));
        let by_context = request(CTX, "AddMembers", members());
        assert!(
            refused(&by_context, ChainSigner::ContextKey, &PublicKey(CTX)).contains("only `Add`")
        );
        let add_by_member = request(
            ME,
            "Add",
            json!({"author_id": me.to_string(), "application": {}}),
        );
        assert!(refused(&add_by_member, ChainSigner::Member, &me).contains("not `Add`"));
        // Extra fields are not signed blindly.
        let mut extra: Value =
            serde_json::from_slice(&request(ME, "AddMembers", members())).unwrap();
        extra["note"] = json!("sign me too");
        let extra = serde_json::to_vec(&extra).unwrap();
        assert!(refused(&extra, ChainSigner::Member, &me).contains("fields"));
        let bad_nonce = String::from_utf8(request(ME, "AddMembers", members()))
            .unwrap()
            .replace("\"nonce\":3", "\"nonce\":-1");
        assert!(refused(bad_nonce.as_bytes(), ChainSigner::Member, &me).contains("nonce"));
    }
}
