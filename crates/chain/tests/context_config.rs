//! Calimero's context-config contract interface against `near_rpc_double` (a test double of a
//! NEAR RPC node keeping the contract's state; see tests/near_rpc_double): every view
//! round-trips, and `mutate` requests built here are accepted (and refused) by the double's
//! replay of the contract's checks. Also Calimero's id derivations.

mod near_rpc_double;

use std::sync::{Arc, Mutex};

use near_rpc_double::{contract_client, key, wasm, App, Chain, Context, Server, CONTRACT};
use serde_json::json;
use sha2::{Digest, Sha256};
use tabnode_chain::calimero::{self, blob_id, AppMismatch, Application, BLOB_CHUNK_SIZE};
use tabnode_chain::native::ReqwestTransport;
use tabnode_chain::{Capability, ContextConfig, ContextRequest, ContextRequestKind, RpcError};
use tabnode_types::{AppId, ContextId, Hash, PublicKey, SecretKey};

fn app_record(app: &Application) -> App {
    App {
        id: app.id.0,
        blob: app.blob.0,
        size: app.size,
        source: app.source.clone(),
        metadata: app.metadata.clone(),
    }
}

struct World {
    chain: Arc<Mutex<Chain>>,
    server: Server,
    config: ContextConfig<ReqwestTransport>,
    context: ContextId,
    author: SecretKey,
    app: Application,
}

/// A context whose author is key 1, with keys 2 and 3 added as members, and key 2 granted
/// ManageApplication; application from a 3000-byte wasm.
async fn world() -> World {
    let context_key = key(9);
    let context = ContextId(context_key.public().0);
    let author = key(1);
    let app = Application::for_wasm(
        &wasm(3000, 1),
        "https://apps.example/kv.wasm",
        b"{\"v\":1}".to_vec(),
    );
    let mut c = Context::new(author.public().0, app_record(&app), format!("0.{CONTRACT}"));
    c.members.push(key(2).public().0);
    c.members.push(key(3).public().0);
    c.nonces.insert(key(2).public().0, 0);
    c.nonces.insert(key(3).public().0, 0);
    c.members_revision = 2;
    c.application_privileged.insert(key(2).public().0);
    c.nonces.insert(author.public().0, 4);
    let mut chain = Chain::new(CONTRACT);
    chain.put_context(context.0, c);
    let chain = chain.shared();
    let server = Server::start(chain.clone()).await;
    World {
        chain,
        config: contract_client(vec![server.url.clone()]),
        server,
        context,
        author,
        app,
    }
}

#[tokio::test]
async fn application_round_trips_with_its_hashes() {
    let w = world().await;
    let answer = w.config.application(&w.context).await.unwrap();
    assert_eq!(answer.value, w.app);
    assert_eq!(answer.value.metadata, b"{\"v\":1}");
    assert_eq!(answer.url, w.server.url);
    // The anchored application is checked against the wasm and gives tabnode's id.
    assert_eq!(
        answer.value.verify_wasm(&wasm(3000, 1)),
        Ok(AppId::of_wasm(&wasm(3000, 1)))
    );
    let sent = w.server.requests().pop().unwrap();
    assert_eq!(sent["params"]["method_name"], "application");
    assert_eq!(sent["params"]["account_id"], CONTRACT);
}

#[tokio::test]
async fn revisions_and_proxy_round_trip() {
    let w = world().await;
    assert_eq!(
        w.config
            .application_revision(&w.context)
            .await
            .unwrap()
            .value,
        0
    );
    assert_eq!(
        w.config.members_revision(&w.context).await.unwrap().value,
        2
    );
    assert_eq!(
        w.config.proxy_contract(&w.context).await.unwrap().value,
        format!("0.{CONTRACT}")
    );
}

#[tokio::test]
async fn members_pages_in_the_contracts_order() {
    let w = world().await;
    let all: Vec<PublicKey> = [1, 2, 3].map(|n| key(n).public()).into();
    assert_eq!(
        w.config.members(&w.context, 0, 10).await.unwrap().value,
        all
    );
    assert_eq!(
        w.config.members(&w.context, 1, 1).await.unwrap().value,
        vec![all[1]]
    );
    assert!(w
        .config
        .members(&w.context, 3, 10)
        .await
        .unwrap()
        .value
        .is_empty());
    assert_eq!(
        w.config.all_members(&w.context, 2).await.unwrap().value,
        all
    );
    // Two full pages and an empty one: offsets 0, 2, then a short page ends it.
    let offsets: Vec<u64> = w
        .server
        .requests()
        .iter()
        .rev()
        .take(2)
        .map(|r| {
            let args = base64_args(r);
            args["offset"].as_u64().unwrap()
        })
        .collect();
    assert_eq!(offsets, vec![2, 0]);
}

fn base64_args(request: &serde_json::Value) -> serde_json::Value {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(request["params"]["args_base64"].as_str().unwrap())
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test]
async fn has_member_round_trips() {
    let w = world().await;
    assert!(
        w.config
            .has_member(&w.context, &key(3).public())
            .await
            .unwrap()
            .value
    );
    assert!(
        !w.config
            .has_member(&w.context, &key(4).public())
            .await
            .unwrap()
            .value
    );
    let args = base64_args(&w.server.requests().pop().unwrap());
    assert_eq!(
        args,
        json!({"context_id": w.context.to_string(), "identity": key(4).public().to_string()})
    );
}

#[tokio::test]
async fn privileges_of_everyone_and_of_some() {
    let w = world().await;
    let all = w.config.privileges(&w.context, &[]).await.unwrap().value;
    assert_eq!(all.len(), 2);
    assert_eq!(
        all[&w.author.public()],
        vec![Capability::ManageApplication, Capability::ManageMembers]
    );
    assert_eq!(all[&key(2).public()], vec![Capability::ManageApplication]);
    let some = w
        .config
        .privileges(&w.context, &[key(3).public(), key(2).public()])
        .await
        .unwrap()
        .value;
    assert_eq!(some[&key(3).public()], Vec::<Capability>::new());
    assert_eq!(some[&key(2).public()], vec![Capability::ManageApplication]);
}

#[tokio::test]
async fn fetch_nonce_is_null_for_strangers() {
    let w = world().await;
    assert_eq!(
        w.config
            .fetch_nonce(&w.context, &w.author.public())
            .await
            .unwrap()
            .value,
        Some(4)
    );
    assert_eq!(
        w.config
            .fetch_nonce(&w.context, &key(3).public())
            .await
            .unwrap()
            .value,
        Some(0)
    );
    assert_eq!(
        w.config
            .fetch_nonce(&w.context, &key(7).public())
            .await
            .unwrap()
            .value,
        None
    );
    let unknown = ContextId([5; 32]);
    assert_eq!(
        w.config
            .fetch_nonce(&unknown, &key(1).public())
            .await
            .unwrap()
            .value,
        None
    );
}

#[tokio::test]
async fn an_unknown_context_is_the_contracts_panic() {
    let w = world().await;
    let unknown = ContextId([5; 32]);
    for err in [
        w.config.application(&unknown).await.unwrap_err(),
        w.config
            .members(&unknown, 0, 1)
            .await
            .map(|_| ())
            .unwrap_err(),
        w.config
            .has_member(&unknown, &key(1).public())
            .await
            .map(|_| ())
            .unwrap_err(),
        w.config
            .privileges(&unknown, &[])
            .await
            .map(|_| ())
            .unwrap_err(),
    ] {
        assert_eq!(
            err.error.panic_message(),
            Some("context does not exist"),
            "{err}"
        );
        assert!(err.failed_over.is_empty());
    }
}

#[tokio::test]
async fn the_views_arguments_are_what_near_sdk_expects() {
    // The double decodes arguments as near-sdk does: a missing one is the SDK's panic.
    let w = world().await;
    let err = w
        .config
        .client()
        .view::<_, Option<u64>>(
            CONTRACT,
            "fetch_nonce",
            &json!({"context_id": w.context}),
            &tabnode_chain::BlockRef::Final,
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.error.panic_message(),
        Some("Failed to deserialize input from JSON.")
    );
}

#[test]
fn request_json_is_calimeros_shape() {
    let ctx = ContextId([7; 32]);
    let signer = key(1).public();
    let members = vec![key(2).public(), key(3).public()];
    let request = ContextRequest::new(ctx, ContextRequestKind::AddMembers { members });
    assert_eq!(
        request.to_json(&signer, 5),
        json!({
            "signerId": signer.to_string(),
            "nonce": 5,
            "scope": "Context",
            "params": {
                "contextId": ctx.to_string(),
                "scope": "AddMembers",
                "params": {"members": [key(2).public().to_string(), key(3).public().to_string()]}
            }
        })
    );
    let grant = ContextRequest::new(
        ctx,
        ContextRequestKind::Grant {
            capabilities: vec![(key(2).public(), Capability::ManageMembers)],
        },
    );
    assert_eq!(
        grant.to_json(&signer, 0)["params"]["params"],
        json!({"capabilities": [[key(2).public().to_string(), "ManageMembers"]]})
    );
    let proxy = ContextRequest::new(ctx, ContextRequestKind::UpdateProxyContract);
    let v = proxy.to_json(&signer, 0);
    assert_eq!(
        v["params"],
        json!({"contextId": ctx.to_string(), "scope": "UpdateProxyContract"})
    );
    let app = Application::for_wasm(b"wasm", "src", vec![1, 2, 3]);
    let add = ContextRequest::new(
        ctx,
        ContextRequestKind::Add {
            author_id: signer,
            application: app.clone(),
        },
    );
    assert_eq!(
        add.to_json(&signer, 0)["params"]["params"],
        json!({"author_id": signer.to_string(), "application": {
            "id": app.id.to_string(), "blob": app.blob.to_string(), "size": 4,
            "source": "src", "metadata": bs58::encode([1, 2, 3]).into_string()}})
    );
}

#[test]
fn a_signed_request_verifies_over_its_payload_and_becomes_a_wallet_call() {
    let signer = key(1);
    let request = ContextRequest::new(ContextId([7; 32]), ContextRequestKind::UpdateProxyContract);
    let signed = request.sign(&signer, 3);
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&signed.payload).unwrap(),
        request.to_json(&signer.public(), 3)
    );
    tabnode_types::verify_signature(&signer.public(), &signed.payload, &signed.signature).unwrap();
    let call = signed.function_call(CONTRACT);
    assert_eq!(call.method_name, "mutate");
    assert_eq!(call.gas, 300_000_000_000_000);
    assert_eq!(call.deposit, 0);
    assert_eq!(
        call.args,
        json!({
            "payload": bs58::encode(&signed.payload).into_string(),
            "signature": bs58::encode(signed.signature.0).into_string(),
        })
    );
    assert_eq!(
        call.wallet_transaction(),
        json!({"receiverId": CONTRACT, "actions": [{"type": "FunctionCall", "params": {
            "methodName": "mutate", "args": call.args, "gas": "300000000000000", "deposit": "0"}}]})
    );
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&call.args_bytes()).unwrap(),
        call.args
    );
}

/// Sends `request` signed by `signer` as the wallet would: the double plays `mutate`.
async fn mutate(
    w: &World,
    request: ContextRequestKind,
    context: ContextId,
    signer: &SecretKey,
) -> Result<Vec<String>, String> {
    let call = w
        .config
        .mutation(&ContextRequest::new(context, request), signer)
        .await
        .unwrap();
    assert_eq!(call.receiver_id, CONTRACT);
    w.chain.lock().unwrap().apply_mutate(&call.args_bytes())
}

#[tokio::test]
async fn a_context_added_through_mutate_reads_back() {
    let w = world().await;
    let context_key = key(20);
    let context = ContextId(context_key.public().0);
    let author = key(21);
    let app = Application::for_wasm(&wasm(5000, 2), "file:///kv.wasm", vec![]);
    let logs = mutate(
        &w,
        ContextRequestKind::Add {
            author_id: author.public(),
            application: app.clone(),
        },
        context,
        &context_key,
    )
    .await
    .unwrap();
    assert_eq!(logs, vec![format!("Context `{context}` added")]);
    assert_eq!(w.config.application(&context).await.unwrap().value, app);
    assert_eq!(
        w.config.members(&context, 0, 5).await.unwrap().value,
        vec![author.public()]
    );
    assert_eq!(
        w.config.privileges(&context, &[]).await.unwrap().value[&author.public()],
        vec![Capability::ManageApplication, Capability::ManageMembers]
    );
    assert_eq!(
        w.config.proxy_contract(&context).await.unwrap().value,
        format!("0.{CONTRACT}")
    );
    // Adding it again is the contract's refusal.
    let again = mutate(
        &w,
        ContextRequestKind::Add {
            author_id: author.public(),
            application: app,
        },
        context,
        &context_key,
    )
    .await;
    assert_eq!(again, Err("context already exists".into()));
}

#[tokio::test]
async fn add_grant_remove_members_and_update_the_application() {
    let w = world().await;
    let ctx = w.context;
    // The author (nonce 4 on chain) adds key 4; the nonce is fetched and then bumped.
    mutate(
        &w,
        ContextRequestKind::AddMembers {
            members: vec![key(4).public()],
        },
        ctx,
        &w.author,
    )
    .await
    .unwrap();
    assert_eq!(
        w.config
            .fetch_nonce(&ctx, &w.author.public())
            .await
            .unwrap()
            .value,
        Some(5)
    );
    assert!(
        w.config
            .has_member(&ctx, &key(4).public())
            .await
            .unwrap()
            .value
    );
    assert_eq!(w.config.members_revision(&ctx).await.unwrap().value, 3);

    // Key 3 may not manage members until granted.
    let refused = mutate(
        &w,
        ContextRequestKind::RemoveMembers {
            members: vec![key(4).public()],
        },
        ctx,
        &key(3),
    )
    .await;
    assert_eq!(refused, Err("unable to update member list".into()));
    mutate(
        &w,
        ContextRequestKind::Grant {
            capabilities: vec![(key(3).public(), Capability::ManageMembers)],
        },
        ctx,
        &w.author,
    )
    .await
    .unwrap();
    assert_eq!(
        w.config
            .privileges(&ctx, &[key(3).public()])
            .await
            .unwrap()
            .value[&key(3).public()],
        vec![Capability::ManageMembers]
    );
    mutate(
        &w,
        ContextRequestKind::RemoveMembers {
            members: vec![key(2).public()],
        },
        ctx,
        &key(3),
    )
    .await
    .unwrap();
    let members = w.config.all_members(&ctx, 10).await.unwrap().value;
    assert_eq!(
        members,
        vec![w.author.public(), key(4).public(), key(3).public()],
        "swap-remove order"
    );
    // Removal revoked key 2's application privilege.
    assert!(!w
        .config
        .privileges(&ctx, &[])
        .await
        .unwrap()
        .value
        .contains_key(&key(2).public()));

    // Granting to a non-member is refused.
    let refused = mutate(
        &w,
        ContextRequestKind::Grant {
            capabilities: vec![(key(8).public(), Capability::ManageMembers)],
        },
        ctx,
        &w.author,
    )
    .await;
    assert_eq!(
        refused,
        Err("unable to grant privileges to non-member".into())
    );

    let new_app = Application::for_wasm(&wasm(4000, 3), "https://apps.example/kv-2.wasm", vec![]);
    mutate(
        &w,
        ContextRequestKind::UpdateApplication {
            application: new_app.clone(),
        },
        ctx,
        &w.author,
    )
    .await
    .unwrap();
    let read = w.config.application(&ctx).await.unwrap().value;
    assert_eq!(read, new_app);
    assert!(read.verify_wasm(&wasm(4000, 3)).is_ok());
    assert!(matches!(
        read.verify_wasm(&wasm(3000, 1)),
        Err(AppMismatch::Size { .. })
    ));
    assert_eq!(w.config.application_revision(&ctx).await.unwrap().value, 1);
}

#[tokio::test]
async fn replays_tampering_and_wrong_signers_are_refused() {
    let w = world().await;
    let ctx = w.context;
    let request = ContextRequest::new(
        ctx,
        ContextRequestKind::AddMembers {
            members: vec![key(5).public()],
        },
    );
    let call = w.config.mutation(&request, &w.author).await.unwrap();
    w.chain
        .lock()
        .unwrap()
        .apply_mutate(&call.args_bytes())
        .unwrap();
    // The same signed request again: its nonce is spent.
    assert_eq!(
        w.chain.lock().unwrap().apply_mutate(&call.args_bytes()),
        Err("invalid nonce".into())
    );

    // A payload changed after signing.
    let signed = request.sign(&w.author, 5);
    let mut json: serde_json::Value = serde_json::from_slice(&signed.payload).unwrap();
    json["params"]["params"]["members"] = json!([key(6).public().to_string()]);
    let forged = json!({
        "payload": bs58::encode(serde_json::to_vec(&json).unwrap()).into_string(),
        "signature": bs58::encode(signed.signature.0).into_string(),
    });
    let err = w
        .chain
        .lock()
        .unwrap()
        .apply_mutate(&serde_json::to_vec(&forged).unwrap())
        .unwrap_err();
    assert!(err.contains("invalid signature"), "{err}");
    assert!(
        !w.config
            .has_member(&ctx, &key(6).public())
            .await
            .unwrap()
            .value
    );

    // Adding a context signed by someone other than the context's key.
    let other = ContextId(key(30).public().0);
    let refused = mutate(
        &w,
        ContextRequestKind::Add {
            author_id: key(1).public(),
            application: w.app.clone(),
        },
        other,
        &key(1),
    )
    .await;
    assert_eq!(
        refused,
        Err("context addition must be signed by the context itself".into())
    );
    // A failed mutate changes nothing.
    assert_eq!(
        w.config
            .fetch_nonce(&ctx, &w.author.public())
            .await
            .unwrap()
            .value,
        Some(5)
    );
}

#[tokio::test]
async fn mutate_is_not_a_view() {
    let w = world().await;
    let err = w
        .config
        .client()
        .call_function(CONTRACT, "mutate", b"{}", &tabnode_chain::BlockRef::Final)
        .await
        .unwrap_err();
    assert!(
        matches!(&err.error, RpcError::ContractExecution { message, .. } if message.contains("ProhibitedInView"))
    );
}

// ---- Calimero's ids ----

fn sha(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

#[test]
fn blob_ids_follow_calimeros_1_mib_chunks() {
    assert_eq!(BLOB_CHUNK_SIZE, 1_048_576);
    let small = wasm(5000, 4);
    assert_eq!(
        blob_id(&small),
        Hash(sha(&sha(&small))),
        "one chunk: sha256(sha256(wasm))"
    );
    assert_eq!(blob_id(&[]), Hash(sha(&[])), "no chunk: sha256 of nothing");
    let exact = wasm(BLOB_CHUNK_SIZE, 5);
    assert_eq!(
        blob_id(&exact),
        Hash(sha(&sha(&exact))),
        "exactly 1 MiB is still one chunk"
    );
    let over = wasm(BLOB_CHUNK_SIZE + 1, 6);
    let mut links = sha(&over[..BLOB_CHUNK_SIZE]).to_vec();
    links.extend(sha(&over[BLOB_CHUNK_SIZE..]));
    assert_eq!(
        blob_id(&over),
        Hash(sha(&links)),
        "1 MiB + 1 byte is two chunks"
    );
    assert_ne!(blob_id(&over), Hash(sha(&sha(&over))));
}

#[test]
fn application_ids_are_sha256_of_the_borsh_tuple() {
    let blob = Hash([3; 32]);
    let mut borsh = vec![3u8; 32];
    borsh.extend(7000u64.to_le_bytes());
    borsh.extend(3u32.to_le_bytes());
    borsh.extend(b"src");
    borsh.extend(2u32.to_le_bytes());
    borsh.extend([9, 9]);
    assert_eq!(
        calimero::application_id(&blob, 7000, "src", &[9, 9]),
        Hash(sha(&borsh))
    );
    let app = Application::for_wasm(&wasm(7000, 8), "src", vec![9, 9]);
    assert_eq!(app.derived_id(), app.id);
    assert_eq!(
        app.id,
        calimero::application_id(&app.blob, 7000, "src", &[9, 9])
    );
}

#[test]
fn verify_wasm_names_what_differs() {
    let bin = wasm(3000, 1);
    let app = Application::for_wasm(&bin, "", vec![]);
    assert_eq!(app.verify_wasm(&bin), Ok(AppId::of_wasm(&bin)));
    assert_ne!(
        app.blob.0,
        AppId::of_wasm(&bin).0,
        "Calimero's blob id is not tabnode's app id"
    );
    let mut flipped = bin.clone();
    flipped[100] ^= 1;
    assert_eq!(
        app.verify_wasm(&flipped),
        Err(AppMismatch::Blob {
            chain: app.blob,
            wasm: blob_id(&flipped)
        })
    );
    assert_eq!(
        app.verify_wasm(&bin[..2999]),
        Err(AppMismatch::Size {
            chain: 3000,
            wasm: 2999
        })
    );
    assert!(app
        .verify_wasm(&flipped)
        .unwrap_err()
        .to_string()
        .contains(&app.blob.to_string()));
}

#[test]
fn application_json_is_base58_and_strict_about_ids() {
    let app = Application::for_wasm(b"abc", "s", vec![0, 1, 2]);
    let v = serde_json::to_value(&app).unwrap();
    assert_eq!(v["metadata"], bs58::encode([0, 1, 2]).into_string());
    assert_eq!(v["id"], app.id.to_string());
    assert_eq!(
        serde_json::from_value::<Application>(v.clone()).unwrap(),
        app
    );
    let mut short = v.clone();
    short["blob"] = json!("abc");
    assert!(serde_json::from_value::<Application>(short).is_err());
    let mut bad = v.clone();
    bad["metadata"] = json!("0OIl");
    assert!(serde_json::from_value::<Application>(bad)
        .unwrap_err()
        .to_string()
        .contains("base58"));
    // Text past the cap is refused before it is decoded (100,000 characters took seconds).
    let started = std::time::Instant::now();
    let mut long = v;
    long["metadata"] = json!("z".repeat(100_000));
    let err = serde_json::from_value::<Application>(long).unwrap_err();
    assert!(err.to_string().contains("100000 characters"), "{err}");
    assert!(started.elapsed() < std::time::Duration::from_millis(500));
}
