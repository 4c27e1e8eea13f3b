//! The JSON-RPC client against `near_rpc_double` (a test double of a NEAR RPC node, see
//! tests/near_rpc_double), over real HTTP with the native transport; and the sans-IO parsers
//! against literal answers in NEAR's documented shapes.

mod near_rpc_double;

use std::time::{Duration, Instant};

use base64::Engine;
use near_rpc_double::{refusing_url, Account, Behaviour, Chain, Server, CONTRACT};
use serde_json::{json, Value};
use tabnode_chain::native::ReqwestTransport;
use tabnode_chain::rpc::{self, BlockRef, RpcError};
use tabnode_chain::{KeyCheckError, RpcClient};
use tabnode_identity::rpc::AccessKey;

/// A client with a timeout generous enough for a loaded CI machine; the timeout test sets its own.
fn client<S: AsRef<str>>(urls: &[S]) -> RpcClient<ReqwestTransport> {
    RpcClient::new(
        ReqwestTransport::new(),
        urls.iter().map(|u| u.as_ref().to_owned()),
    )
    .with_timeout(Duration::from_secs(5))
}

fn chain_with_accounts() -> Chain {
    let mut chain = Chain::new(CONTRACT);
    let mut alice = Account::default();
    alice
        .keys
        .insert("ed25519:full".into(), (7, json!("FullAccess")));
    alice.keys.insert(
        "ed25519:limited".into(),
        (
            3,
            json!({"FunctionCall": {"allowance": "250000000000000000000000", "receiver_id": CONTRACT, "method_names": ["mutate"]}}),
        ),
    );
    chain.accounts.insert("alice.near".into(), alice);
    chain
}

#[tokio::test]
async fn call_function_sends_nears_request_shape_and_reads_the_answer() {
    let server = Server::start(chain_with_accounts().shared()).await;
    let rpc = client(&[&server.url]);
    let args =
        br#"{"context_id":"11111111111111111111111111111111","member_id":"11111111111111111111111111111111"}"#;
    let answer = rpc
        .call_function(CONTRACT, "fetch_nonce", args, &BlockRef::Final)
        .await
        .unwrap();
    assert_eq!(answer.url, server.url);
    assert!(answer.failed_over.is_empty());
    assert_eq!(answer.value.result, b"null");
    assert_eq!(answer.value.block_height, 1000);
    assert_eq!(answer.value.block_hash, Chain::block_hash(1000));
    assert!(answer.value.logs.is_empty());

    let sent = server.requests().pop().unwrap();
    assert_eq!(sent["jsonrpc"], "2.0");
    assert_eq!(sent["method"], "query");
    assert_eq!(sent["params"]["request_type"], "call_function");
    assert_eq!(sent["params"]["finality"], "final");
    assert_eq!(sent["params"]["account_id"], CONTRACT);
    assert_eq!(sent["params"]["method_name"], "fetch_nonce");
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(sent["params"]["args_base64"].as_str().unwrap())
        .unwrap();
    assert_eq!(decoded, args);
}

#[tokio::test]
async fn call_function_at_a_height_sends_block_id() {
    let server = Server::start(chain_with_accounts().shared()).await;
    let rpc = client(&[&server.url]);
    let answer = rpc
        .call_function(CONTRACT, "fetch_nonce", b"{\"context_id\":\"11111111111111111111111111111111\",\"member_id\":\"11111111111111111111111111111111\"}", &BlockRef::Height(995))
        .await
        .unwrap();
    assert_eq!(answer.value.block_height, 995);
    let sent = server.requests().pop().unwrap();
    assert_eq!(sent["params"]["block_id"], 995);
    assert!(sent["params"].get("finality").is_none());
}

#[tokio::test]
async fn view_access_key_reads_both_permissions_and_the_nonce() {
    let server = Server::start(chain_with_accounts().shared()).await;
    let rpc = client(&[&server.url]);
    let full = rpc
        .view_access_key("alice.near", "ed25519:full", &BlockRef::Final)
        .await
        .unwrap()
        .value;
    assert_eq!(full.permission, AccessKey::FullAccess);
    assert_eq!(full.nonce, 7);
    assert_eq!(full.block_height, 1000);
    let limited = rpc
        .view_access_key("alice.near", "ed25519:limited", &BlockRef::Optimistic)
        .await
        .unwrap()
        .value;
    assert_eq!(
        limited.permission,
        AccessKey::FunctionCall {
            receiver_id: CONTRACT.into(),
            method_names: vec!["mutate".into()]
        }
    );
    assert_eq!(limited.nonce, 3);
    let sent = server.requests().pop().unwrap();
    assert_eq!(sent["params"]["request_type"], "view_access_key");
    assert_eq!(sent["params"]["finality"], "optimistic");
    assert_eq!(sent["params"]["public_key"], "ed25519:limited");
}

#[tokio::test]
async fn an_unknown_access_key_is_typed_in_both_of_nears_forms() {
    for structured in [false, true] {
        let mut chain = chain_with_accounts();
        chain.structured_errors = structured;
        let server = Server::start(chain.shared()).await;
        let spare = Server::start(chain_with_accounts().shared()).await;
        let rpc = client(&[&server.url, &spare.url]);
        let err = rpc
            .view_access_key("alice.near", "ed25519:nope", &BlockRef::Final)
            .await
            .unwrap_err();
        assert_eq!(
            err.error,
            RpcError::UnknownAccessKey {
                public_key: "ed25519:nope".into()
            },
            "structured: {structured}"
        );
        assert_eq!(err.url.as_deref(), Some(server.url.as_str()));
        assert_eq!(spare.hits(), 0, "the chain's answer is not failed over");
    }
}

#[tokio::test]
async fn an_unknown_account_is_typed_and_not_failed_over() {
    let server = Server::start(chain_with_accounts().shared()).await;
    let spare = Server::start(chain_with_accounts().shared()).await;
    let rpc = client(&[&server.url, &spare.url]);
    let err = rpc
        .call_function("nobody.near", "members", b"{}", &BlockRef::Final)
        .await
        .unwrap_err();
    assert_eq!(
        err.error,
        RpcError::UnknownAccount {
            account_id: "nobody.near".into()
        }
    );
    assert!(!err.error.is_node_failure());
    assert_eq!(
        err.to_string(),
        format!(
            "{}: account nobody.near does not exist on chain",
            server.url
        )
    );
    let err = rpc
        .view_access_key("nobody.near", "ed25519:full", &BlockRef::Final)
        .await
        .unwrap_err();
    assert!(
        matches!(err.error, RpcError::UnknownAccount { ref account_id } if account_id == "nobody.near")
    );
    assert_eq!(spare.hits(), 0);
}

#[tokio::test]
async fn an_account_without_code_is_typed() {
    let server = Server::start(chain_with_accounts().shared()).await;
    let err = client(&[&server.url])
        .call_function("alice.near", "members", b"{}", &BlockRef::Final)
        .await
        .unwrap_err();
    assert_eq!(
        err.error,
        RpcError::NoContractCode {
            account_id: "alice.near".into()
        }
    );
}

#[tokio::test]
async fn a_contract_panic_is_typed_with_its_message_in_both_forms() {
    for structured in [false, true] {
        let mut chain = chain_with_accounts();
        chain.structured_errors = structured;
        let server = Server::start(chain.shared()).await;
        let rpc = client(&[&server.url]);
        let err = rpc
            .call_function(
                CONTRACT,
                "application",
                br#"{"context_id":"11111111111111111111111111111111"}"#,
                &BlockRef::Final,
            )
            .await
            .unwrap_err();
        assert_eq!(err.error.panic_message(), Some("context does not exist"));
        assert_eq!(
            err.error.to_string(),
            "the contract call failed: context does not exist"
        );
        let err = rpc
            .call_function(CONTRACT, "no_such_view", b"{}", &BlockRef::Final)
            .await
            .unwrap_err();
        match err.error {
            RpcError::ContractExecution { message, panic } => {
                assert!(message.contains("MethodNotFound"), "{message}");
                assert_eq!(panic, None);
            }
            other => panic!("expected a contract error, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn block_by_finality_height_and_hash() {
    let server = Server::start(chain_with_accounts().shared()).await;
    let rpc = client(&[&server.url]);
    let head = rpc.block(&BlockRef::Final).await.unwrap().value;
    assert_eq!(head.height, 1000);
    assert_eq!(head.hash, Chain::block_hash(1000));
    assert_eq!(head.prev_hash, Chain::block_hash(999));
    assert_eq!(head.timestamp_ns, Chain::block_timestamp_ns(1000));
    assert_eq!(head.author, "double-validator.near");
    let older = rpc.block(&BlockRef::Height(990)).await.unwrap().value;
    assert_eq!(older.hash, Chain::block_hash(990));
    let by_hash = rpc
        .block(&BlockRef::Hash(Chain::block_hash(980)))
        .await
        .unwrap()
        .value;
    assert_eq!(by_hash.height, 980);
    let err = rpc.block(&BlockRef::Height(5000)).await.unwrap_err();
    assert!(
        matches!(err.error, RpcError::UnknownBlock { ref message } if message.contains("5000")),
        "{err}"
    );
    assert_eq!(server.requests()[0]["method"], "block");
    assert_eq!(server.requests()[0]["params"], json!({"finality": "final"}));
}

#[tokio::test]
async fn a_request_the_node_refuses_is_a_typed_json_rpc_error() {
    let server = Server::start(chain_with_accounts().shared()).await;
    let spare = Server::start(chain_with_accounts().shared()).await;
    let rpc = client(&[&server.url, &spare.url]);
    // No finality and no block_id: NEAR answers REQUEST_VALIDATION_ERROR / PARSE_ERROR, HTTP 400.
    let body = json!({"jsonrpc": "2.0", "id": "x", "method": "block", "params": {}});
    let err = rpc.request(&body, rpc::parse_block).await.unwrap_err();
    match &err.error {
        RpcError::JsonRpc {
            http_status,
            name,
            cause,
            message,
        } => {
            assert_eq!(*http_status, 400);
            assert_eq!(name, "REQUEST_VALIDATION_ERROR");
            assert_eq!(cause.as_deref(), Some("PARSE_ERROR"));
            assert!(message.contains("finality"), "{message}");
        }
        other => panic!("expected a JSON-RPC error, got {other:?}"),
    }
    assert_eq!(spare.hits(), 0);
    let body = json!({"jsonrpc": "2.0", "id": "x", "method": "nonsense", "params": {}});
    let err = rpc.request(&body, rpc::parse_block).await.unwrap_err();
    assert!(
        matches!(&err.error, RpcError::JsonRpc { cause: Some(c), .. } if c == "METHOD_NOT_FOUND"),
        "{err}"
    );
}

#[tokio::test]
async fn failover_past_a_refused_connection_says_which_url_answered() {
    let down = refusing_url().await;
    let up = Server::start(chain_with_accounts().shared()).await;
    let rpc = client(&[&down, &up.url]);
    let answer = rpc.block(&BlockRef::Final).await.unwrap();
    assert_eq!(answer.url, up.url);
    assert_eq!(answer.value.height, 1000);
    assert_eq!(answer.failed_over.len(), 1);
    assert_eq!(answer.failed_over[0].url, down);
    assert!(
        matches!(answer.failed_over[0].error, RpcError::Transport { .. }),
        "{:?}",
        answer.failed_over[0].error
    );
}

#[tokio::test]
async fn failover_past_a_503() {
    let chain = chain_with_accounts().shared();
    let sick = Server::start(chain.clone()).await;
    sick.set(Behaviour::Status(
        503,
        "<html>upstream unavailable</html>".into(),
    ));
    let up = Server::start(chain).await;
    let rpc = client(&[&sick.url, &up.url]);
    let answer = rpc
        .view_access_key("alice.near", "ed25519:full", &BlockRef::Final)
        .await
        .unwrap();
    assert_eq!(answer.url, up.url);
    assert_eq!(answer.value.permission, AccessKey::FullAccess);
    assert_eq!(
        answer.failed_over[0].error,
        RpcError::HttpStatus {
            status: 503,
            body: "<html>upstream unavailable</html>".into()
        }
    );
    assert_eq!((sick.hits(), up.hits()), (1, 1));
}

#[tokio::test]
async fn failover_past_nears_own_internal_error() {
    let chain = chain_with_accounts().shared();
    let sick = Server::start(chain.clone()).await;
    sick.set(Behaviour::Raw(
        500,
        serde_json::to_vec(&json!({"jsonrpc": "2.0", "id": "tabnode", "error": {
            "name": "INTERNAL_ERROR", "cause": {"name": "INTERNAL_ERROR", "info": {"error_message": "overloaded"}},
            "code": -32000, "message": "Server error", "data": "overloaded"}}))
        .unwrap(),
    ));
    let up = Server::start(chain).await;
    let answer = client(&[&sick.url, &up.url])
        .block(&BlockRef::Final)
        .await
        .unwrap();
    assert_eq!(answer.url, up.url);
    assert!(matches!(
        &answer.failed_over[0].error,
        RpcError::JsonRpc { http_status: 500, cause: Some(c), .. } if c == "INTERNAL_ERROR"
    ));
}

#[tokio::test]
async fn a_timeout_on_the_first_url_fails_over_in_time() {
    let chain = chain_with_accounts().shared();
    let slow = Server::start(chain.clone()).await;
    slow.set(Behaviour::Delay(Duration::from_secs(3)));
    let up = Server::start(chain).await;
    let rpc = client(&[&slow.url, &up.url]).with_timeout(Duration::from_millis(400));
    let started = Instant::now();
    let answer = rpc.block(&BlockRef::Final).await.unwrap();
    let took = started.elapsed();
    assert_eq!(answer.url, up.url);
    assert_eq!(
        answer.failed_over[0].error,
        RpcError::Timeout { after_ms: 400 }
    );
    assert!(took >= Duration::from_millis(400), "{took:?}");
    assert!(
        took < Duration::from_secs(2),
        "the timeout did not cut the wait: {took:?}"
    );
}

#[tokio::test]
async fn after_a_failover_the_answering_url_is_asked_first() {
    let chain = chain_with_accounts().shared();
    let sick = Server::start(chain.clone()).await;
    sick.set(Behaviour::Status(502, "bad gateway".into()));
    let up = Server::start(chain).await;
    let rpc = client(&[&sick.url, &up.url]);
    rpc.block(&BlockRef::Final).await.unwrap();
    let again = rpc.block(&BlockRef::Final).await.unwrap();
    assert_eq!(again.url, up.url);
    assert!(again.failed_over.is_empty());
    assert_eq!((sick.hits(), up.hits()), (1, 2));
    // When the preferred one fails in turn, the first is tried again.
    up.set(Behaviour::Status(503, "down".into()));
    sick.set(Behaviour::Normal);
    let third = rpc.block(&BlockRef::Final).await.unwrap();
    assert_eq!(third.url, sick.url);
    assert_eq!(third.failed_over[0].url, up.url);
}

#[tokio::test]
async fn when_every_url_fails_the_error_lists_each() {
    let down = refusing_url().await;
    let sick = Server::start(chain_with_accounts().shared()).await;
    sick.set(Behaviour::Status(503, "maintenance".into()));
    let err = client(&[&down, &sick.url])
        .block(&BlockRef::Final)
        .await
        .unwrap_err();
    assert_eq!(err.url.as_deref(), Some(sick.url.as_str()));
    assert_eq!(
        err.error,
        RpcError::HttpStatus {
            status: 503,
            body: "maintenance".into()
        }
    );
    assert_eq!(err.failed_over.len(), 1);
    assert_eq!(err.failed_over[0].url, down);
    let text = err.to_string();
    assert!(text.contains(&down) && text.contains(&sick.url), "{text}");
    assert!(text.contains("HTTP 503"), "{text}");
}

#[tokio::test]
async fn no_url_is_an_error_not_a_panic() {
    let err = client::<&str>(&[])
        .block(&BlockRef::Final)
        .await
        .unwrap_err();
    assert_eq!(err.error, RpcError::NoRpcUrls);
    assert_eq!(err.url, None);
}

/// One server answering `bytes` with 200: the client's error for it.
async fn malformed(bytes: &[u8], call: &str) -> RpcError {
    let server = Server::start(chain_with_accounts().shared()).await;
    server.set(Behaviour::Raw(200, bytes.to_vec()));
    let rpc = client(&[&server.url]);
    let err = match call {
        "block" => rpc.block(&BlockRef::Final).await.unwrap_err(),
        "access_key" => rpc
            .view_access_key("alice.near", "ed25519:full", &BlockRef::Final)
            .await
            .unwrap_err(),
        "call" => rpc
            .call_function(CONTRACT, "members", b"{}", &BlockRef::Final)
            .await
            .unwrap_err(),
        "view" => rpc
            .view::<_, Vec<String>>(CONTRACT, "members", &json!({}), &BlockRef::Final)
            .await
            .unwrap_err(),
        _ => unreachable!(),
    };
    assert_eq!(err.url.as_deref(), Some(server.url.as_str()));
    err.error
}

fn call_answer(result: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({"jsonrpc": "2.0", "id": "tabnode", "result": {
        "result": result, "logs": [], "block_height": 1, "block_hash": "h"}}))
    .unwrap()
}

fn what(error: RpcError) -> String {
    match error {
        RpcError::Malformed { what } => what,
        other => panic!("expected Malformed, got {other:?}"),
    }
}

#[tokio::test]
async fn an_answer_that_is_not_json_is_typed() {
    let err = malformed(b"<html>502 Bad Gateway</html>", "block").await;
    match err {
        RpcError::NotJson { body, .. } => assert_eq!(body, "<html>502 Bad Gateway</html>"),
        other => panic!("expected NotJson, got {other:?}"),
    }
    assert!(matches!(
        malformed(b"", "call").await,
        RpcError::NotJson { .. }
    ));
}

#[tokio::test]
async fn an_answer_without_result_is_typed() {
    let w = what(malformed(br#"{"jsonrpc":"2.0","id":"tabnode"}"#, "call").await);
    assert!(w.contains("`result`"), "{w}");
    let w = what(malformed(br#"[1,2,3]"#, "block").await);
    assert!(w.contains("an array"), "{w}");
    let w = what(malformed(br#"{"jsonrpc":"2.0","id":"t","result":null}"#, "access_key").await);
    assert!(w.contains("`result`"), "{w}");
}

#[tokio::test]
async fn answers_of_the_wrong_types_are_typed() {
    let w = what(malformed(&call_answer(json!("AAEC")), "call").await);
    assert!(
        w.contains("a string") && w.contains("array of bytes"),
        "{w}"
    );
    let w = what(malformed(&call_answer(json!([1, 256])), "call").await);
    assert!(w.contains("0-255"), "{w}");
    let w = what(
        malformed(
            br#"{"jsonrpc":"2.0","id":"t","result":{"result":[],"logs":[],"block_hash":"h"}}"#,
            "call",
        )
        .await,
    );
    assert!(w.contains("block_height"), "{w}");
    let w = what(
        malformed(
            br#"{"jsonrpc":"2.0","id":"t","result":{"author":"a"}}"#,
            "block",
        )
        .await,
    );
    assert!(w.contains("header"), "{w}");
    let w = what(
        malformed(
            br#"{"jsonrpc":"2.0","id":"t","result":{"header":{"height":"12","hash":"h","prev_hash":"p","timestamp":1}}}"#,
            "block",
        )
        .await,
    );
    assert!(w.contains("height"), "{w}");
    let w = what(
        malformed(
            br#"{"jsonrpc":"2.0","id":"t","result":{"nonce":1,"permission":"Everything","block_height":1,"block_hash":"h"}}"#,
            "access_key",
        )
        .await,
    );
    assert!(w.contains("permission"), "{w}");
    let w = what(
        malformed(
            br#"{"jsonrpc":"2.0","id":"t","result":{"permission":"FullAccess","block_height":1,"block_hash":"h"}}"#,
            "access_key",
        )
        .await,
    );
    assert!(w.contains("nonce"), "{w}");
}

#[tokio::test]
async fn result_bytes_that_are_not_the_expected_json_are_typed() {
    let w = what(malformed(&call_answer(json!(b"not json".to_vec())), "view").await);
    assert!(w.contains("`members`") && w.contains("not JSON"), "{w}");
    let w = what(malformed(&call_answer(json!(b"{\"a\":1}".to_vec())), "view").await);
    assert!(w.contains("wrong shape"), "{w}");
}

#[tokio::test]
async fn a_malformed_answer_fails_over_to_a_good_node() {
    let chain = chain_with_accounts().shared();
    let broken = Server::start(chain.clone()).await;
    broken.set(Behaviour::Raw(200, b"Gateway says hi".to_vec()));
    let up = Server::start(chain).await;
    let answer = client(&[&broken.url, &up.url])
        .block(&BlockRef::Final)
        .await
        .unwrap();
    assert_eq!(answer.url, up.url);
    assert!(matches!(
        answer.failed_over[0].error,
        RpcError::NotJson { .. }
    ));
}

// ---- the sans-IO parsers on literal answers in NEAR's documented shapes ----

#[test]
fn the_documented_call_function_answer_parses() {
    // docs.near.org, "Call a contract function": `[48]` is the ASCII code of `0`.
    let answer = br#"{"jsonrpc":"2.0","result":{"result":[48],"logs":[],"block_height":17817336,"block_hash":"4qkA4sUUG8opjH5Q9bL5mWJTnfR4ech879Db1BZXbx6P"},"id":"dontcare"}"#;
    let call = rpc::parse_call_function(200, answer).unwrap();
    assert_eq!(call.result, b"0");
    assert_eq!(call.json::<u64>("get_num").unwrap(), 0);
    assert_eq!(call.block_height, 17817336);
    assert_eq!(
        call.block_hash,
        "4qkA4sUUG8opjH5Q9bL5mWJTnfR4ech879Db1BZXbx6P"
    );
}

#[test]
fn the_documented_view_access_key_answer_parses() {
    let answer = br#"{"jsonrpc":"2.0","result":{"nonce":85,"permission":{"FunctionCall":{"allowance":"18501534631167209000000000","receiver_id":"client.chainlink.testnet","method_names":["get_token_price"]}},"block_height":19884918,"block_hash":"GGJQ8yjmo7aEoj8ZpAhGehnq9BSWFx4xswHYzDwwAP2n"},"id":"dontcare"}"#;
    let key = rpc::parse_view_access_key(200, answer).unwrap();
    assert_eq!(key.nonce, 85);
    assert_eq!(
        key.permission,
        AccessKey::FunctionCall {
            receiver_id: "client.chainlink.testnet".into(),
            method_names: vec!["get_token_price".into()]
        }
    );
    let missing = br#"{"jsonrpc":"2.0","result":{"error":"access key ed25519:DvXowCpBHKdbD2qutgfhG6jvBMaXyUh7DxrDSjkLxMHp does not exist while viewing","logs":[],"block_height":1,"block_hash":"h"},"id":"dontcare"}"#;
    assert_eq!(
        rpc::parse_view_access_key(200, missing),
        Err(RpcError::UnknownAccessKey {
            public_key: "ed25519:DvXowCpBHKdbD2qutgfhG6jvBMaXyUh7DxrDSjkLxMHp".into()
        })
    );
}

#[test]
fn the_documented_block_answer_parses() {
    let answer = br#"{"jsonrpc":"2.0","result":{"author":"bitcat.pool.f863973.m0","header":{"height":17821130,"epoch_id":"7Wr3GFJkYeCxjVGz3gDaxvAMUzXuzG8MjFXTFoAXB6ZZ","hash":"CLo31YCUhzz8ZPtS5vXLFskyZgHV5qWgXinBQHgu9Pyd","prev_hash":"2yUTTubrv1gJhTUVnHXh66JG3qxStBqySoN6wzRzgdVD","timestamp":1601280114229875635,"timestamp_nanosec":"1601280114229875635","chunks_included":1},"chunks":[]},"id":"dontcare"}"#;
    let block = rpc::parse_block(200, answer).unwrap();
    assert_eq!(block.height, 17821130);
    assert_eq!(block.hash, "CLo31YCUhzz8ZPtS5vXLFskyZgHV5qWgXinBQHgu9Pyd");
    assert_eq!(
        block.prev_hash,
        "2yUTTubrv1gJhTUVnHXh66JG3qxStBqySoN6wzRzgdVD"
    );
    assert_eq!(block.timestamp_ns, 1601280114229875635);
    assert_eq!(block.author, "bitcat.pool.f863973.m0");
}

#[test]
fn verror_objects_map_to_variants() {
    let err = |cause: &str, info: Value| {
        let body = serde_json::to_vec(&json!({"jsonrpc": "2.0", "id": "x", "error": {
            "name": "HANDLER_ERROR", "cause": {"name": cause, "info": info},
            "code": -32000, "message": "Server error", "data": "some text"}}))
        .unwrap();
        rpc::parse_call_function(200, &body).unwrap_err()
    };
    assert_eq!(
        err("UNKNOWN_ACCOUNT", json!({"requested_account_id": "x.near"})),
        RpcError::UnknownAccount {
            account_id: "x.near".into()
        }
    );
    assert_eq!(
        err("NO_CONTRACT_CODE", json!({"contract_account_id": "y.near"})),
        RpcError::NoContractCode {
            account_id: "y.near".into()
        }
    );
    assert_eq!(
        err("UNKNOWN_BLOCK", json!({})),
        RpcError::UnknownBlock {
            message: "some text".into()
        }
    );
    let vm = "wasm execution failed with error: HostError(GuestPanic { panic_msg: \"nope\" })";
    assert_eq!(
        err("CONTRACT_EXECUTION_ERROR", json!({"vm_error": vm})),
        RpcError::ContractExecution {
            message: vm.into(),
            panic: Some("nope".into())
        }
    );
    let other = err("NO_SYNCED_BLOCKS", json!({}));
    assert!(
        other.is_node_failure(),
        "NEAR says: send the request to a synced node"
    );
    assert!(!err("UNKNOWN_ACCOUNT", json!({})).is_node_failure());
}

#[test]
fn a_legacy_error_without_cause_is_still_readable() {
    let body = br#"{"jsonrpc":"2.0","id":"x","error":{"code":-32000,"message":"Server error","data":"Block not found"}}"#;
    let e = rpc::parse_block(200, body).unwrap_err();
    assert_eq!(
        e,
        RpcError::JsonRpc {
            http_status: 200,
            name: "UNKNOWN".into(),
            cause: None,
            message: "Block not found".into()
        }
    );
    assert_eq!(
        e.to_string(),
        "the RPC node refused the request (UNKNOWN): Block not found"
    );
}

#[test]
fn http_statuses_without_a_json_rpc_error() {
    let e = rpc::parse_block(502, b"<html>bad gateway</html>").unwrap_err();
    assert_eq!(
        e,
        RpcError::HttpStatus {
            status: 502,
            body: "<html>bad gateway</html>".into()
        }
    );
    assert!(e.is_node_failure());
    let long = vec![b'x'; 1000];
    match rpc::parse_block(503, &long).unwrap_err() {
        RpcError::HttpStatus { body, .. } => {
            assert_eq!(body.chars().count(), 201, "quoted, cut at 200")
        }
        other => panic!("{other:?}"),
    }
    // nearcore ≥ 2.3 answers a request timeout with 408 and a JSON-RPC error: typed, retried.
    let timeout = br#"{"jsonrpc":"2.0","id":"x","error":{"name":"HANDLER_ERROR","cause":{"name":"TIMEOUT_ERROR","info":{}},"code":-32000,"message":"Server error","data":"Timeout"}}"#;
    let e = rpc::parse_block(408, timeout).unwrap_err();
    assert!(
        matches!(&e, RpcError::JsonRpc { http_status: 408, cause: Some(c), .. } if c == "TIMEOUT_ERROR")
    );
    assert!(e.is_node_failure());
}

#[tokio::test]
async fn only_a_full_access_key_speaks_for_the_account() {
    let server = Server::start(chain_with_accounts().shared()).await;
    let rpc = client(&[&server.url]);
    rpc.check_full_access("alice.near", "ed25519:full")
        .await
        .unwrap();
    for (account, key) in [
        ("alice.near", "ed25519:limited"),
        ("alice.near", "ed25519:nope"),
        ("nobody.near", "ed25519:full"),
    ] {
        let err = rpc.check_full_access(account, key).await.unwrap_err();
        assert!(
            matches!(err, KeyCheckError::NotOnAccount(_)),
            "{account} {key}: {err}"
        );
    }
    let down = client(&["http://127.0.0.1:1/"]);
    let err = down
        .check_full_access("alice.near", "ed25519:full")
        .await
        .unwrap_err();
    assert!(matches!(err, KeyCheckError::Unavailable(_)), "{err}");
}
