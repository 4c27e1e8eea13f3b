//! Writing a context's anchor against `near_rpc_double` (a test double of a NEAR RPC node
//! keeping a context-config contract's state; see tests/near_rpc_double): the plan read from
//! the double, signed here as the node would sign it, and played by the double as one
//! transaction (in order, all or nothing, with the contract's signature, nonce and privilege
//! checks) makes the contract record what the log says; stale and refused writes; the wallet's
//! transaction; NEAR's outcome formats.

mod near_rpc_double;

use std::collections::BTreeSet;

use near_rpc_double::anchor::NearContractDouble;
use near_rpc_double::{
    contract_client, key, refusing_url, wasm, App, Chain, Context, Server, CONTRACT,
};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use tabnode_chain::native::ReqwestTransport;
use tabnode_chain::{
    plan_write, read_outcome, Application, Capability, ContextConfig, ContextRequestKind, Intended,
    NearAnchor, PlanError, QuorumAnchor, RequestSigner, TransactionFailed, WritePlan,
    MAX_TRANSACTION_GAS,
};
use tabnode_types::{ContextId, PublicKey, SecretKey};

struct World {
    chain: Arc<Mutex<Chain>>,
    _server: Server,
    config: ContextConfig<ReqwestTransport>,
    /// The same contract as an [`Anchor`]: writes are planned through the trait, as the flows do.
    anchor: NearAnchor<ReqwestTransport>,
}

async fn world(chain: Chain) -> World {
    let chain = chain.shared();
    let server = Server::start(chain.clone()).await;
    World {
        chain,
        config: contract_client(vec![server.url.clone()]),
        anchor: NearAnchor::new(contract_client(vec![server.url.clone()])),
        _server: server,
    }
}

/// A context on chain whose context key is key 9 and author key 1 (nonce 4, every privilege),
/// with members 2 (ManageApplication only) and 3 (no privilege), running `wasm(3000, 1)`.
fn recorded_context() -> (Chain, ContextId) {
    let context = ContextId(key(9).public().0);
    let app = Application::for_wasm(&wasm(3000, 1), "https://apps.example/kv.wasm", vec![]);
    let record = App {
        id: app.id.0,
        blob: app.blob.0,
        size: app.size,
        source: app.source,
        metadata: vec![],
    };
    let mut c = Context::new(key(1).public().0, record, format!("0.{CONTRACT}"));
    for n in [2, 3] {
        c.members.push(key(n).public().0);
        c.nonces.insert(key(n).public().0, 0);
    }
    c.nonces.insert(key(1).public().0, 4);
    c.application_privileged.insert(key(2).public().0);
    let mut chain = Chain::new(CONTRACT);
    chain.put_context(context.0, c);
    (chain, context)
}

fn members(keys: &[u8]) -> BTreeSet<PublicKey> {
    keys.iter().map(|n| key(*n).public()).collect()
}

/// Signs each planned request as the node does (the context key for `Add`, the member key
/// otherwise) and gives each `mutate` call's argument bytes, as the transaction carries them.
fn sign(plan: &WritePlan, context_key: &SecretKey, member: &SecretKey) -> Vec<Vec<u8>> {
    let signed: Vec<_> = plan
        .requests
        .iter()
        .map(|r| {
            let by = match r.signer {
                RequestSigner::ContextKey => context_key,
                RequestSigner::Member => member,
            };
            assert_eq!(by.public(), r.signer_id);
            r.signed(by.sign(&r.payload()))
        })
        .collect();
    let tx = plan.transaction(CONTRACT, &signed);
    tx["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| serde_json::to_vec(&a["params"]["args"]).unwrap())
        .collect()
}

fn kinds(plan: &WritePlan) -> Vec<(&'static str, RequestSigner, u64)> {
    plan.requests
        .iter()
        .map(|r| (r.kind_name(), r.signer, r.nonce))
        .collect()
}

#[tokio::test]
async fn a_context_the_contract_does_not_know_is_added_with_its_members_in_one_transaction() {
    let w = world(Chain::new(CONTRACT)).await;
    let context_key = key(20);
    let context = ContextId(context_key.public().0);
    let (a, b) = (key(21), key(22));
    let binary = wasm(5000, 2);
    let intended = Intended {
        members: members(&[21, 22]),
        wasm: &binary,
        source: "tabnode:kv".into(),
    };
    let plan = plan_write(&w.anchor, &context, a.public(), &intended)
        .await
        .unwrap();
    // Add by the context key (nonce unchecked), then the author's first request at nonce 0.
    assert_eq!(
        kinds(&plan),
        vec![
            ("Add", RequestSigner::ContextKey, 0),
            ("AddMembers", RequestSigner::Member, 0)
        ]
    );
    assert_eq!(plan.requests[0].signer_id, PublicKey(context.0));
    assert_eq!(
        plan.requests[1].request.kind,
        ContextRequestKind::AddMembers {
            members: vec![b.public()]
        }
    );
    let logs = w
        .chain
        .lock()
        .unwrap()
        .apply_transaction(&sign(&plan, &context_key, &a))
        .unwrap();
    assert_eq!(logs[0], format!("Context `{context}` added"));

    // The contract now records the log's members and the binary; nothing is left to write.
    assert_eq!(
        w.config.all_members(&context, 10).await.unwrap().value,
        vec![a.public(), b.public()]
    );
    let app = w.config.application(&context).await.unwrap().value;
    assert!(app.verify_wasm(&binary).is_ok());
    assert_eq!(app.source, "tabnode:kv");
    assert_eq!(
        w.config
            .fetch_nonce(&context, &a.public())
            .await
            .unwrap()
            .value,
        Some(1)
    );
    let again = plan_write(&w.anchor, &context, a.public(), &intended)
        .await
        .unwrap();
    assert!(again.is_empty(), "{again:?}");
}

#[tokio::test]
async fn members_and_the_app_follow_the_log_with_consecutive_nonces() {
    let (chain, context) = recorded_context();
    let w = world(chain).await;
    let author = key(1);
    // The log: 1 and 4 (2 and 3 removed, 4 joined), on a new binary.
    let binary = wasm(4000, 7);
    let intended = Intended {
        members: members(&[1, 4]),
        wasm: &binary,
        source: "tabnode:kv-v2".into(),
    };
    let plan = plan_write(&w.anchor, &context, author.public(), &intended)
        .await
        .unwrap();
    assert_eq!(
        kinds(&plan),
        vec![
            ("AddMembers", RequestSigner::Member, 4),
            ("RemoveMembers", RequestSigner::Member, 5),
            ("UpdateApplication", RequestSigner::Member, 6),
        ]
    );
    let removed: BTreeSet<PublicKey> = match &plan.requests[1].request.kind {
        ContextRequestKind::RemoveMembers { members } => members.iter().copied().collect(),
        other => panic!("{other:?}"),
    };
    assert_eq!(removed, members(&[2, 3]));
    assert_eq!(
        plan.requests[2].summary()["application"]["size"],
        json!(4000)
    );
    w.chain
        .lock()
        .unwrap()
        .apply_transaction(&sign(&plan, &key(9), &author))
        .unwrap();
    let on_chain: BTreeSet<PublicKey> = w
        .config
        .all_members(&context, 10)
        .await
        .unwrap()
        .value
        .into_iter()
        .collect();
    assert_eq!(on_chain, members(&[1, 4]));
    assert!(w
        .config
        .application(&context)
        .await
        .unwrap()
        .value
        .verify_wasm(&binary)
        .is_ok());
    assert_eq!(
        w.config
            .fetch_nonce(&context, &author.public())
            .await
            .unwrap()
            .value,
        Some(7)
    );
    assert!(plan_write(&w.anchor, &context, author.public(), &intended)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn a_stale_write_is_refused_by_the_contract_and_changes_nothing() {
    let (chain, context) = recorded_context();
    let w = world(chain).await;
    let author = key(1);
    let binary = wasm(3000, 1);
    let intended = Intended {
        members: members(&[1, 2]),
        wasm: &binary,
        source: "x".into(),
    };
    // Two writes planned from the same state (two tabs, a double click): the second is stale.
    let first = plan_write(&w.anchor, &context, author.public(), &intended)
        .await
        .unwrap();
    let second = plan_write(&w.anchor, &context, author.public(), &intended)
        .await
        .unwrap();
    assert_eq!(first, second);
    let before = {
        let mut chain = w.chain.lock().unwrap();
        chain
            .apply_transaction(&sign(&first, &key(9), &author))
            .unwrap();
        let before = chain.contexts[&context.0].clone();
        assert_eq!(
            chain.apply_transaction(&sign(&second, &key(9), &author)),
            Err((0, "invalid nonce".into()))
        );
        assert_eq!(chain.contexts[&context.0].members, before.members);
        assert_eq!(chain.contexts[&context.0].nonces, before.nonces);
        before
    };

    // All or nothing: a good request followed by a refused one leaves no trace of either.
    let intended = Intended {
        members: members(&[1, 2, 5]),
        wasm: &wasm(100, 3),
        source: "x".into(),
    };
    let plan = plan_write(&w.anchor, &context, author.public(), &intended)
        .await
        .unwrap();
    assert_eq!(plan.requests.len(), 2);
    let mut calls = sign(&plan, &key(9), &author);
    // The second request signed by key 3, a member without privileges, as if it were the author.
    let mut forged: Value = serde_json::from_slice(&calls[1]).unwrap();
    let payload = bs58::decode(forged["payload"].as_str().unwrap())
        .into_vec()
        .unwrap();
    forged["signature"] = json!(bs58::encode(key(3).sign(&payload).0).into_string());
    calls[1] = serde_json::to_vec(&forged).unwrap();
    let mut chain = w.chain.lock().unwrap();
    let err = chain.apply_transaction(&calls).unwrap_err();
    assert_eq!(err.0, 1);
    assert!(err.1.contains("invalid signature"), "{err:?}");
    assert_eq!(chain.contexts[&context.0].members, before.members);
    assert_eq!(chain.contexts[&context.0].nonces, before.nonces);
}

async fn plan_as(
    anchor: &NearAnchor<ReqwestTransport>,
    context: ContextId,
    signer: u8,
    members: BTreeSet<PublicKey>,
    wasm: &[u8],
) -> Result<WritePlan, PlanError> {
    let intended = Intended {
        members,
        wasm,
        source: "x".into(),
    };
    plan_write(anchor, &context, key(signer).public(), &intended).await
}

#[tokio::test]
async fn writes_the_contract_would_refuse_are_caught_before_anything_is_signed() {
    let (chain, context) = recorded_context();
    let w = world(chain).await;
    let (same_app, other_app) = (wasm(3000, 1), wasm(3001, 1));
    let (same_app, other_app) = (&same_app[..], &other_app[..]);
    let plan = |signer: u8, keys: &[u8], binary| {
        plan_as(&w.anchor, context, signer, members(keys), binary)
    };
    // Key 3 is a member without privileges.
    let err = plan(3, &[1, 2, 3, 4], same_app).await.unwrap_err();
    assert!(
        matches!(
            err,
            PlanError::NotPrivileged {
                capability: Capability::ManageMembers,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("lacks ManageMembers"), "{err}");
    // Key 2 may change the application, not the members.
    let ok = plan(2, &[1, 2, 3], other_app).await.unwrap();
    assert_eq!(
        kinds(&ok),
        vec![("UpdateApplication", RequestSigner::Member, 0)]
    );
    assert!(matches!(
        plan(2, &[1, 2], other_app).await.unwrap_err(),
        PlanError::NotPrivileged {
            capability: Capability::ManageMembers,
            ..
        }
    ));
    // Key 7 is not on the contract at all.
    let err = plan(7, &[1, 2, 3, 7], same_app).await.unwrap_err();
    assert!(matches!(err, PlanError::NotOnContract { .. }), "{err:?}");
    assert!(!err.is_unavailable());
    // Nothing to change needs no privilege.
    assert!(plan(3, &[1, 2, 3], same_app).await.unwrap().is_empty());
}

#[tokio::test]
async fn an_unreachable_rpc_is_unavailable() {
    let anchor = NearAnchor::new(contract_client(vec![refusing_url().await]));
    let binary = wasm(10, 0);
    let intended = Intended {
        members: members(&[1]),
        wasm: &binary,
        source: "x".into(),
    };
    let err = plan_write(&anchor, &ContextId([1; 32]), key(1).public(), &intended)
        .await
        .unwrap_err();
    assert!(err.is_unavailable(), "{err:?}");
}

/// Three contract doubles read as three RPC endpoints: two on the real chain, and `liar`, which
/// keeps its own copy of the chain and says what `lie` makes of it.
fn two_honest_doubles_and_a_liar(
    lie: impl FnOnce(&mut Chain, &ContextId),
) -> (Arc<Mutex<Chain>>, ContextId, [NearContractDouble; 3]) {
    let (chain, context) = recorded_context();
    let mut forged = chain.clone();
    lie(&mut forged, &context);
    let chain = chain.shared();
    let honest = NearContractDouble(chain.clone());
    let liar = NearContractDouble(forged.shared());
    (chain, context, [honest.clone(), liar, honest])
}

#[tokio::test]
async fn with_a_quorum_one_lying_contract_double_of_three_cannot_set_the_nonce_a_write_signs() {
    // The liar says the author's nonce is 9 (it is 4): a request signed at 9 is one whoever
    // holds it can send once the author's nonce gets there.
    let (chain, context, [honest, liar, other_honest]) =
        two_honest_doubles_and_a_liar(|c, context| {
            c.contexts
                .get_mut(&context.0)
                .unwrap()
                .nonces
                .insert(key(1).public().0, 9);
        });
    let author = key(1);
    let binary = wasm(3000, 1);
    let intended = Intended {
        members: members(&[1, 2, 3, 4]),
        wasm: &binary,
        source: "x".into(),
    };
    // One endpoint trusted (a quorum of one, the liar answering first): the user would sign
    // the liar's nonce. That is what planning from the first endpoint that answers did.
    let alone = QuorumAnchor::new(vec![liar.clone(), honest.clone()], 1);
    let plan = plan_write(&alone, &context, author.public(), &intended)
        .await
        .unwrap();
    assert_eq!(kinds(&plan), vec![("AddMembers", RequestSigner::Member, 9)]);

    // Two of three must agree: wherever the liar stands, the plan carries the chain's nonce.
    let orders = [
        [liar.clone(), honest.clone(), other_honest.clone()],
        [honest.clone(), liar.clone(), other_honest.clone()],
        [honest.clone(), other_honest.clone(), liar.clone()],
    ];
    for endpoints in orders {
        let quorum = QuorumAnchor::new(endpoints.to_vec(), 2);
        let plan = plan_write(&quorum, &context, author.public(), &intended)
            .await
            .unwrap();
        assert_eq!(kinds(&plan), vec![("AddMembers", RequestSigner::Member, 4)]);
    }
    // And the contract takes it.
    let quorum = QuorumAnchor::new(vec![liar.clone(), honest.clone(), other_honest], 2);
    let plan = plan_write(&quorum, &context, author.public(), &intended)
        .await
        .unwrap();
    chain
        .lock()
        .unwrap()
        .apply_transaction(&sign(&plan, &key(9), &author))
        .unwrap();
    assert!(chain.lock().unwrap().contexts[&context.0]
        .members
        .contains(&key(4).public().0));
}

#[tokio::test]
async fn endpoint_doubles_that_disagree_plan_nothing_with_a_typed_error() {
    // Each of three doubles says something else: another nonce, other members, no context.
    let (_chain, context, [honest, nonce_liar, _]) = two_honest_doubles_and_a_liar(|c, context| {
        c.contexts
            .get_mut(&context.0)
            .unwrap()
            .nonces
            .insert(key(1).public().0, 9);
    });
    let (_, _, [_, member_liar, _]) = two_honest_doubles_and_a_liar(|c, context| {
        c.contexts.get_mut(&context.0).unwrap().members.pop();
    });
    let (_, _, [_, hiding, _]) = two_honest_doubles_and_a_liar(|c, context| {
        c.contexts.remove(&context.0);
    });
    let binary = wasm(3000, 1);
    let intended = Intended {
        members: members(&[1, 2, 3, 4]),
        wasm: &binary,
        source: "x".into(),
    };
    for liars in [
        [nonce_liar.clone(), member_liar.clone()],
        [hiding.clone(), nonce_liar],
    ] {
        let quorum = QuorumAnchor::new(vec![liars[0].clone(), honest.clone(), liars[1].clone()], 2);
        let err = plan_write(&quorum, &context, key(1).public(), &intended)
            .await
            .unwrap_err();
        assert!(matches!(err, PlanError::NoQuorum { .. }), "{err:?}");
        assert!(!err.is_unavailable());
        assert!(
            err.to_string().contains("1 of 3 RPC endpoints agree"),
            "{err}"
        );
    }
    // A context two endpoints agree the contract does not know is planned as `Add`.
    let quorum = QuorumAnchor::new(vec![hiding.clone(), honest, hiding], 2);
    let plan = plan_write(&quorum, &context, key(1).public(), &intended)
        .await
        .unwrap();
    assert_eq!(plan.requests[0].kind_name(), "Add");
    // Endpoints none of which can be asked are unavailable, not a disagreement.
    let down = vec![
        NearAnchor::new(contract_client(vec![refusing_url().await])),
        NearAnchor::new(contract_client(vec![refusing_url().await])),
    ];
    let err = plan_write(
        &QuorumAnchor::new(down, 2),
        &context,
        key(1).public(),
        &intended,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, PlanError::Read { .. }) && err.is_unavailable(),
        "{err:?}"
    );
}

#[test]
fn the_wallet_transaction_carries_each_signed_request_and_shares_the_gas() {
    let context_key = key(9);
    let context = ContextId(context_key.public().0);
    let binary = wasm(10, 0);
    let intended = Intended {
        members: members(&[1, 2]),
        wasm: &binary,
        source: "x".into(),
    };
    let plan = tabnode_chain::plan(context, key(1).public(), &intended, None).unwrap();
    let signed: Vec<_> = plan
        .requests
        .iter()
        .map(|r| {
            let by = if r.signer == RequestSigner::ContextKey {
                &context_key
            } else {
                &key(1)
            };
            r.signed(by.sign(&r.payload()))
        })
        .collect();
    let tx = plan.transaction(CONTRACT, &signed);
    assert_eq!(tx["receiverId"], CONTRACT);
    let actions = tx["actions"].as_array().unwrap();
    assert_eq!(actions.len(), 2);
    for (action, s) in actions.iter().zip(&signed) {
        assert_eq!(action["type"], "FunctionCall");
        assert_eq!(action["params"]["methodName"], "mutate");
        assert_eq!(action["params"]["args"], s.to_json());
        assert_eq!(action["params"]["deposit"], "0");
        assert_eq!(
            action["params"]["gas"],
            (MAX_TRANSACTION_GAS / 2).to_string()
        );
    }
    // The payload is Calimero's request JSON, signed by the key it names.
    let payload: Value = serde_json::from_slice(&signed[0].payload).unwrap();
    assert_eq!(payload["signerId"], context.to_string());
    assert_eq!(payload["params"]["scope"], "Add");
    assert_eq!(
        payload["params"]["params"]["author_id"],
        key(1).public().to_string()
    );
}

#[test]
fn outcomes_in_nears_formats() {
    let ok = json!({
        "status": {"SuccessValue": ""},
        "transaction": {"hash": "9Fa6JH1q4yr3sUTwZcDUxWhxzRNKx8VtCeZqJtbn6Fkd"},
        "transaction_outcome": {"id": "9Fa6JH1q4yr3sUTwZcDUxWhxzRNKx8VtCeZqJtbn6Fkd"},
        "receipts_outcome": [],
    });
    assert_eq!(
        read_outcome(&ok).unwrap().hash.as_deref(),
        Some("9Fa6JH1q4yr3sUTwZcDUxWhxzRNKx8VtCeZqJtbn6Fkd")
    );
    let panicked = json!({
        "status": {"Failure": {"ActionError": {"index": 1, "kind": {"FunctionCallError": {
            "ExecutionError": "Smart contract panicked: invalid nonce"}}}}},
        "transaction_outcome": {"id": "H"},
    });
    let failed = read_outcome(&panicked).unwrap_err().unwrap();
    assert_eq!(
        failed,
        TransactionFailed {
            hash: Some("H".into()),
            index: Some(1),
            message: "invalid nonce".into()
        }
    );
    assert_eq!(
        failed.to_string(),
        "action 1: invalid nonce (transaction H)"
    );
    // Another failure is kept as NEAR's JSON.
    let other = json!({"status": {"Failure": {"InvalidTxError": "InvalidSignature"}}});
    let failed = read_outcome(&other).unwrap_err().unwrap();
    assert!(failed.message.contains("InvalidSignature"), "{failed:?}");
    assert_eq!(failed.index, None);
    // Not an outcome at all.
    assert_eq!(read_outcome(&json!({"ok": true})), Err(None));
    assert_eq!(read_outcome(&json!({"status": "done"})), Err(None));
}
