//! The host ABI end to end through tests/apps/probe: every collection, private storage, the
//! environment, and each way a call can fail (none of which leaves a write behind).

#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

mod common;

use common::{guest_app, Replica};
use serde_json::{json, Value};
use tabnode_runtime::{App, Limits, Runtime, RuntimeError};

fn setup(limits: Limits) -> (Runtime, App, Replica) {
    let rt = Runtime::new(limits);
    let app = guest_app(&rt, "probe");
    let mut r = Replica::new(4);
    r.call(&rt, &app, "init", json!({"title": "first"}));
    (rt, app, r)
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn every_collection_round_trips() {
    let (rt, app, mut r) = setup(Limits::default());
    assert_eq!(r.output(&rt, &app, "visit", json!({})), json!(1));
    let visit = r.call(&rt, &app, "visit", json!({}));
    assert_eq!(visit.events[0].kind, "Visited");
    assert_eq!(
        serde_json::from_slice::<Value>(&visit.events[0].data).unwrap(),
        json!({"total": 2})
    );
    assert_eq!(r.output(&rt, &app, "tag", json!({"tag": "b"})), json!(true));
    assert_eq!(r.output(&rt, &app, "tag", json!({"tag": "a"})), json!(true));
    assert_eq!(
        r.output(&rt, &app, "tag", json!({"tag": "a"})),
        json!(false)
    );
    assert_eq!(r.output(&rt, &app, "tags", json!({})), json!(["a", "b"]));
    assert_eq!(
        r.output(&rt, &app, "push_line", json!({"line": "one"})),
        json!(1)
    );
    assert_eq!(
        r.output(&rt, &app, "push_line", json!({"line": "two"})),
        json!(2)
    );
    assert_eq!(
        r.output(&rt, &app, "lines", json!({})),
        json!(["one", "two"])
    );
    r.call(&rt, &app, "set_title", json!({"title": "second"}));
    assert_eq!(r.output(&rt, &app, "title", json!({})), json!("second"));
    assert_eq!(
        r.output(&rt, &app, "write", json!({"pos": 0, "text": "hello"})),
        json!("hello")
    );
    assert_eq!(
        r.output(&rt, &app, "write", json!({"pos": 5, "text": " world"})),
        json!("hello world")
    );
    assert_eq!(
        r.output(&rt, &app, "write", json!({"pos": 0, "text": "> "})),
        json!("> hello world")
    );
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn private_storage_stays_out_of_shared_state() {
    let (rt, app, mut r) = setup(Limits::default());
    let shared_before = r.shared.clone();
    let noted = r.call(&rt, &app, "note", json!({"secret": "my pin is 1234"}));
    assert!(
        !noted.private_writes.is_empty(),
        "the note went to private storage"
    );
    assert!(
        noted
            .shared_writes
            .values()
            .flatten()
            .all(|v| !v.windows(4).any(|w| w == b"1234")),
        "the secret never reaches shared state"
    );
    assert!(
        !noted.artifact.windows(4).any(|w| w == b"1234"),
        "nor the sync artifact"
    );
    assert_eq!(
        r.output(&rt, &app, "notes", json!({})),
        json!(["my pin is 1234"])
    );
    let data: Value = serde_json::from_slice(&noted.events[0].data).unwrap();
    assert_eq!(
        data,
        json!({"sha256_len": 14}),
        "the event discloses only a length"
    );
    assert_eq!(
        r.shared, shared_before,
        "shared state unchanged by a private write"
    );
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn environment_comes_from_the_call_record() {
    let (rt, app, mut r) = setup(Limits::default());
    assert_eq!(
        r.output(&rt, &app, "whoami", json!({})),
        json!(vec![4u8; 32])
    );
    assert_eq!(
        r.output(&rt, &app, "context", json!({})),
        json!(vec![7u8; 32])
    );
    let now = r.output(&rt, &app, "now", json!({}));
    assert_eq!(now, json!(r.clock));
    let first = r.output(&rt, &app, "random", json!({}));
    let second = r.output(&rt, &app, "random", json!({}));
    assert_ne!(first, second, "each call draws from its own seed");
    r.clock -= 1_000_000; // the next call reuses the second call's record
    assert_eq!(
        r.output(&rt, &app, "random", json!({})),
        second,
        "the same record gives the same bytes"
    );
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn failures_have_their_own_kinds_and_write_nothing() {
    let (rt, app, mut r) = setup(Limits {
        fuel: 50_000_000,
        max_memory_pages: 64,
        max_logs: 10,
        ..Limits::default()
    });
    let (shared, private) = (r.shared.clone(), r.private.clone());

    let bail = r
        .try_call(&rt, &app, "fail", br#"{"reason":"no"}"#)
        .unwrap();
    assert!(String::from_utf8(bail.returns.unwrap_err())
        .unwrap()
        .contains("refused: no"));

    match r.try_call(&rt, &app, "explode", b"{}") {
        Err(RuntimeError::Panic { message, location }) => {
            assert_eq!(message, "boom");
            assert!(location.unwrap().contains("probe/src/lib.rs"));
        }
        other => panic!("expected a panic, got {other:?}"),
    }
    assert!(matches!(
        r.try_call(&rt, &app, "spin", b"{}"),
        Err(RuntimeError::OutOfFuel(_))
    ));
    let hog = r.try_call(&rt, &app, "hog", b"{}");
    assert!(
        matches!(hog, Err(RuntimeError::OutOfMemory { max_pages: 64 })),
        "{hog:?}"
    );
    let logs = r.try_call(&rt, &app, "log_many", br#"{"count": 11}"#);
    assert!(
        matches!(logs, Err(RuntimeError::LimitExceeded(_))),
        "{logs:?}"
    );
    assert!(r
        .try_call(&rt, &app, "log_many", br#"{"count": 10}"#)
        .is_ok());

    assert_eq!(r.shared, shared, "no failed call left a shared write");
    assert_eq!(r.private, private, "no failed call left a private write");
    assert_eq!(r.output(&rt, &app, "title", json!({})), json!("first"));
}

/// `ed25519_verify` from a guest: the host says yes to the key's signature of the message and
/// no to a wrong signature, another message, another key or a malformed key.
#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn a_guest_verifies_ed25519_signatures_through_the_host() {
    use ed25519_dalek::{Signer, SigningKey};
    let (rt, app, mut r) = setup(Limits::default());
    let key = SigningKey::from_bytes(&[9; 32]);
    let message = b"a message".to_vec();
    let signature = key.sign(&message).to_bytes().to_vec();
    let public = key.verifying_key().to_bytes().to_vec();
    let other = SigningKey::from_bytes(&[10; 32])
        .verifying_key()
        .to_bytes()
        .to_vec();
    let mut verify = |signature: &[u8], key: &[u8], message: &[u8]| {
        let args = json!({"signature": signature, "key": key, "message": message});
        r.output(&rt, &app, "verify", args)
    };
    assert_eq!(verify(&signature, &public, &message), json!(true));
    let mut flipped = signature.clone();
    flipped[0] ^= 1;
    assert_eq!(verify(&flipped, &public, &message), json!(false));
    assert_eq!(
        verify(&signature, &public, b"another message"),
        json!(false)
    );
    assert_eq!(verify(&signature, &other, &message), json!(false));
    assert_eq!(verify(&signature, &[0xff; 32], &message), json!(false));
}

/// `send_proposal` answers the guest an id the host drew from the call's random stream and
/// queues the actions, as calimero-sdk encoded them, for the node; `approve_proposal` queues
/// the approval. (They trapped as unsupported before proposals were carried in the log.)
#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn proposals_are_queued_for_the_node_with_the_id_the_guest_got() {
    let (rt, app, mut r) = setup(Limits::default());
    let sent = r.call(
        &rt,
        &app,
        "propose_value",
        json!({"key": "k", "value": "v"}),
    );
    let shown =
        serde_json::from_slice::<Value>(sent.returns.as_ref().unwrap().as_ref().unwrap()).unwrap();
    let [tabnode_runtime::ContextRequest::Propose { id, actions }] = &sent.context_requests[..]
    else {
        panic!("{:?}", sent.context_requests);
    };
    assert_eq!(shown, json!(bs58::encode(id).into_string()));
    // calimero-sdk's Vec<ProposalAction>: one action, variant 4 (SetContextValue), key, value.
    assert_eq!(
        actions,
        &[1, 0, 0, 0, 4, 1, 0, 0, 0, b'k', 1, 0, 0, 0, b'v']
    );
    let again = r.call(
        &rt,
        &app,
        "propose_value",
        json!({"key": "k", "value": "v"}),
    );
    assert_ne!(
        again.context_requests, sent.context_requests,
        "a new id each time"
    );

    let approved = r.call(&rt, &app, "approve", json!({"id": id.to_vec()}));
    assert_eq!(
        approved.context_requests,
        [tabnode_runtime::ContextRequest::Approve(*id)]
    );
}
