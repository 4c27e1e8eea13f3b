//! A context's proxy contract on NEAR (calimero-network/contracts,
//! `contracts/near/context-proxy`): where the chain actions of a context's proposals run.
//!
//! The context-config contract deploys one per context (its account: the `proxy_contract`
//! view). Its `mutate` takes a `Signed<ProxyMutateRequest>`, `{"payload": base58(request JSON),
//! "signature": base58(ed25519 over those bytes)}` as for the context-config contract, with no
//! nonce: `Propose { proposal: {id, author_id, actions} }`, signed by `author_id`, or
//! `Approve { approval: {proposal_id, signer_id, added_timestamp} }`, signed by `signer_id`.
//! The contract checks the signature, asks the context-config contract whether the signer is a
//! member (`has_member`), and keeps the proposal and its approvals (the author's counts). The
//! request that brings a proposal to the proxy's threshold (`num_approvals`, 3 unless a
//! proposal run there changed it) removes it and runs its actions: `Transfer` and
//! `ExternalFunctionCall` as promises, then the proxy's own (threshold, limit, key-value
//! store). `mutate` answers `Option<ProposalWithApprovals>`: the proposal's approvals while it
//! waits, `null` once it is gone.
//!
//! The payload is the node's to build and sign (`tabnode_node::proxy_payload`, from its log):
//! this crate gives the function call for the user's wallet
//! ([`SignedRequest::function_call`](crate::context_config::SignedRequest::function_call) on
//! the proxy's account) and reads the answer ([`read_proxy_outcome`]).

use base64::Engine;
use serde::Deserialize;
use serde_json::Value;

use crate::write::{read_outcome, TransactionDone, TransactionFailed};

/// What the proxy holds of a proposal after a `mutate` that landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyState {
    /// Still waiting, with this many approvals (the author's among them).
    Pending { approvals: u32 },
    /// No longer held: this request brought it to the threshold and the proxy ran its actions
    /// (the transfers and calls are receipts of their own, after this transaction's answer).
    Ran,
}

/// calimero-context-config's `ProposalWithApprovals`, as `mutate` returns it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProposalWithApprovals {
    #[allow(dead_code)]
    proposal_id: String,
    num_approvals: u32,
}

/// Reads the wallet's answer to a transaction of one proxy `mutate` (NEAR's
/// `FinalExecutionOutcome`, as [`read_outcome`]): when it ran, its hash and what the proxy
/// answered, `None` when the answer carries no readable return value (`SuccessValue` is the
/// base64 of the JSON `mutate` returned).
pub fn read_proxy_outcome(
    outcome: &Value,
) -> Result<(TransactionDone, Option<ProxyState>), Option<TransactionFailed>> {
    let done = read_outcome(outcome)?;
    let state = outcome
        .pointer("/status/SuccessValue")
        .and_then(Value::as_str)
        .and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok())
        .and_then(|json| serde_json::from_slice::<Option<ProposalWithApprovals>>(&json).ok())
        .map(|answer| match answer {
            Some(p) => ProxyState::Pending {
                approvals: p.num_approvals,
            },
            None => ProxyState::Ran,
        });
    Ok((done, state))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn answered(value: &str) -> Value {
        let b64 = base64::engine::general_purpose::STANDARD.encode(value);
        json!({"status": {"SuccessValue": b64}, "transaction": {"hash": "h"}})
    }

    #[test]
    fn the_proxys_answer_says_whether_the_proposal_waits_or_ran() {
        let pending = answered(r#"{"proposal_id":"abc","num_approvals":2}"#);
        let (done, state) = read_proxy_outcome(&pending).unwrap();
        assert_eq!(done.hash.as_deref(), Some("h"));
        assert_eq!(state, Some(ProxyState::Pending { approvals: 2 }));
        assert_eq!(
            read_proxy_outcome(&answered("null")).unwrap().1,
            Some(ProxyState::Ran)
        );
        // No return value to read: ran, state unknown.
        let bare = json!({"status": {"SuccessValue": ""}});
        assert_eq!(read_proxy_outcome(&bare).unwrap().1, None);
        let failed = json!({"status": {"Failure": {"ActionError": {"index": 0, "kind": {
            "FunctionCallError": {"ExecutionError": "Smart contract panicked: Is not a member"}}}}}});
        let err = read_proxy_outcome(&failed).unwrap_err().unwrap();
        assert_eq!(err.message, "Is not a member");
        assert!(read_proxy_outcome(&json!({})).unwrap_err().is_none());
    }
}
