//! A context's proxy contract, as `near_rpc_double` keeps it (a TEST DOUBLE of the NEAR
//! contract; no NEAR runs here): requests in calimero-context-config 0.10's JSON, written out
//! here as the contract reads them, signed by their members' keys. A proposal runs once, at
//! the approval that reaches the threshold; forged, foreign, repeated and malformed requests
//! are refused and change nothing; and the wallet's answer is read as the proxy gave it.

mod near_rpc_double;

use base64::Engine;
use near_rpc_double::proxy::Action;
use near_rpc_double::{key, App, Chain, Context, CONTRACT};
use serde_json::{json, Value};
use tabnode_chain::{read_proxy_outcome, ProxyState, SignedRequest};
use tabnode_types::{ContextId, ProposalId, SecretKey};

const PROXY: &str = "0.config.calimero.testnet";

/// A context on chain with members 1 (its author), 2 and 3; key 9 is no member.
fn chain() -> (Chain, ContextId) {
    let context = ContextId(key(8).public().0);
    let app = App {
        id: [1; 32],
        blob: [2; 32],
        size: 10,
        source: String::new(),
        metadata: vec![],
    };
    let mut c = Context::new(key(1).public().0, app, format!("0.{CONTRACT}"));
    for n in [2, 3] {
        c.members.push(key(n).public().0);
    }
    let mut chain = Chain::new(CONTRACT);
    chain.put_context(context.0, c);
    (chain, context)
}

/// `mutate`'s JSON argument: `request` (its JSON text) signed by `by`.
fn signed(request: impl Into<Request>, by: &SecretKey) -> Vec<u8> {
    let payload = request.into().0;
    let signature = by.sign(&payload);
    SignedRequest { payload, signature }
        .function_call(PROXY)
        .args_bytes()
}

/// A request's JSON text.
struct Request(Vec<u8>);

impl From<&Value> for Request {
    fn from(value: &Value) -> Self {
        Request(serde_json::to_vec(value).unwrap())
    }
}

impl From<&String> for Request {
    fn from(text: &String) -> Self {
        Request(text.as_bytes().to_vec())
    }
}

/// A transfer of 2^100 yoctoNEAR (beyond a `u64`, as the contract's JSON number) and a value.
fn transfer_proposal(id: ProposalId, author: &SecretKey) -> String {
    format!(
        r#"{{"scope":"Propose","params":{{"proposal":{{"id":"{id}","author_id":"{}","actions":[{{"scope":"Transfer","params":{{"receiver_id":"bob.testnet","amount":{}}}}},{{"scope":"SetContextValue","params":{{"key":[1,2],"value":[3]}}}}]}}}}}}"#,
        author.public(),
        1u128 << 100
    )
}

fn approval(id: ProposalId, signer: &SecretKey) -> Value {
    json!({"scope": "Approve", "params": {"approval": {
        "proposal_id": id.to_string(),
        "signer_id": signer.public().to_string(),
        "added_timestamp": 0,
    }}})
}

fn approvals(answer: &Value) -> u64 {
    answer["num_approvals"].as_u64().unwrap()
}

#[test]
fn a_proposal_runs_once_when_its_approvals_reach_the_threshold() {
    let (mut chain, _) = chain();
    let id = ProposalId([5; 32]);
    let answer = chain
        .apply_proxy_mutate(PROXY, &signed(&transfer_proposal(id, &key(1)), &key(1)))
        .unwrap();
    assert_eq!(approvals(&answer), 1, "the author's approval counts");
    assert_eq!(answer["proposal_id"], id.to_string());
    let answer = chain
        .apply_proxy_mutate(PROXY, &signed(&approval(id, &key(2)), &key(2)))
        .unwrap();
    assert_eq!(approvals(&answer), 2);
    assert!(chain.proxies[PROXY].ran.is_empty(), "below the threshold");
    let answer = chain
        .apply_proxy_mutate(PROXY, &signed(&approval(id, &key(3)), &key(3)))
        .unwrap();
    assert_eq!(answer, Value::Null, "the proposal is gone: it ran");
    let proxy = &chain.proxies[PROXY];
    assert_eq!(
        proxy.ran,
        vec![(
            id.0,
            Action::Transfer {
                receiver_id: "bob.testnet".into(),
                amount: 1 << 100
            }
        )]
    );
    assert_eq!(proxy.storage.get(&vec![1, 2]), Some(&vec![3]));
    assert!(proxy.proposals.is_empty() && proxy.approvals.is_empty());

    // Nothing runs twice: the approval again (or a late one) finds no proposal.
    let before = chain.proxies[PROXY].clone();
    for n in [3, 1] {
        let err = chain
            .apply_proxy_mutate(PROXY, &signed(&approval(id, &key(n)), &key(n)))
            .unwrap_err();
        assert!(err.contains("unwrap()"), "{err}");
    }
    assert_eq!(chain.proxies[PROXY], before);
}

#[test]
fn forged_foreign_repeated_and_malformed_requests_are_refused_and_change_nothing() {
    let (mut chain, _) = chain();
    let id = ProposalId([5; 32]);
    chain
        .apply_proxy_mutate(PROXY, &signed(&transfer_proposal(id, &key(1)), &key(1)))
        .unwrap();
    let before = chain.proxies[PROXY].clone();
    let refused = |chain: &mut Chain, args: Vec<u8>| {
        let err = chain.apply_proxy_mutate(PROXY, &args).unwrap_err();
        assert_eq!(chain.proxies[PROXY], before, "{err}");
        err
    };
    // Member 2's approval signed by member 3: a forgery.
    let forged = refused(&mut chain, signed(&approval(id, &key(2)), &key(3)));
    assert_eq!(forged, "Invalid input: invalid signature");
    // A proposal naming member 1 as author, signed by 2.
    let other = ProposalId([6; 32]);
    let forged = refused(
        &mut chain,
        signed(&transfer_proposal(other, &key(1)), &key(2)),
    );
    assert_eq!(forged, "Invalid input: invalid signature");
    // Well signed, by a key that is no member of the context.
    let outsider = refused(&mut chain, signed(&approval(id, &key(9)), &key(9)));
    assert_eq!(outsider, "Is not a member");
    let outsider = refused(
        &mut chain,
        signed(&transfer_proposal(other, &key(9)), &key(9)),
    );
    assert_eq!(outsider, "Is not a member");
    // The author again, and the same proposal again.
    let again = refused(&mut chain, signed(&approval(id, &key(1)), &key(1)));
    assert_eq!(again, "Already confirmed this proposal with this key");
    let again = refused(&mut chain, signed(&transfer_proposal(id, &key(1)), &key(1)));
    assert_eq!(again, "Proposal already exists");
    // An amount as a string (the admin API's form, not the contract's), an unknown field.
    let as_text = transfer_proposal(other, &key(1))
        .replace(&format!("\"amount\":{}", 1u128 << 100), "\"amount\":\"5\"");
    assert!(as_text.contains("\"5\""));
    let err = refused(&mut chain, signed(&as_text, &key(1)));
    assert!(err.starts_with("Invalid input"), "{err}");
    let mut extra = approval(id, &key(2));
    extra["params"]["approval"]["note"] = json!(1);
    let err = refused(&mut chain, signed(&extra, &key(2)));
    assert!(err.starts_with("Invalid input"), "{err}");
    // No proxy at that account.
    let err = chain
        .apply_proxy_mutate("9.nowhere", &signed(&approval(id, &key(2)), &key(2)))
        .unwrap_err();
    assert!(err.contains("does not exist"), "{err}");
}

#[test]
fn an_author_at_the_limit_is_refused_and_its_own_proposals_can_be_deleted() {
    let (mut chain, _) = chain();
    chain.proxy_mut(PROXY).unwrap().active_proposals_limit = 1;
    let id = ProposalId([5; 32]);
    chain
        .apply_proxy_mutate(PROXY, &signed(&transfer_proposal(id, &key(1)), &key(1)))
        .unwrap();
    let err = chain
        .apply_proxy_mutate(
            PROXY,
            &signed(&transfer_proposal(ProposalId([6; 32]), &key(1)), &key(1)),
        )
        .unwrap_err();
    assert!(err.contains("too many active proposals"), "{err}");
    let delete = |author: u8| {
        json!({"scope": "Propose", "params": {"proposal": {
            "id": ProposalId([7; 32]).to_string(),
            "author_id": key(author).public().to_string(),
            "actions": [{"scope": "DeleteProposal", "params": {"proposal_id": id.to_string()}}],
        }}})
    };
    let err = chain
        .apply_proxy_mutate(PROXY, &signed(&delete(2), &key(2)))
        .unwrap_err();
    assert_eq!(err, "Can only delete own proposals");
    chain
        .apply_proxy_mutate(PROXY, &signed(&delete(1), &key(1)))
        .unwrap();
    assert!(chain.proxies[PROXY].proposals.is_empty());
    assert!(chain.proxies[PROXY].ran.is_empty());
}

#[test]
fn the_wallets_answer_is_read_as_the_proxy_gave_it() {
    let answer = |value: &Value| {
        let b64 = base64::engine::general_purpose::STANDARD.encode(value.to_string());
        json!({"status": {"SuccessValue": b64}, "transaction": {"hash": "tx"}})
    };
    let (mut chain, _) = chain();
    let id = ProposalId([5; 32]);
    let first = chain
        .apply_proxy_mutate(PROXY, &signed(&transfer_proposal(id, &key(1)), &key(1)))
        .unwrap();
    let (done, state) = read_proxy_outcome(&answer(&first)).unwrap();
    assert_eq!(done.hash.as_deref(), Some("tx"));
    assert_eq!(state, Some(ProxyState::Pending { approvals: 1 }));
    chain.proxy_mut(PROXY).unwrap().num_approvals = 2;
    let last = chain
        .apply_proxy_mutate(PROXY, &signed(&approval(id, &key(2)), &key(2)))
        .unwrap();
    assert_eq!(
        read_proxy_outcome(&answer(&last)).unwrap().1,
        Some(ProxyState::Ran)
    );
}
