//! The node's own commands offline: identity, invitations, members, blobs, upgrades, and the
//! home held by one process at a time.

mod common;

use common::*;
use serde_json::{json, Value};

fn id(value: &Value, field: &str) -> String {
    value[field]
        .as_str()
        .unwrap_or_else(|| panic!("no {field} in {value}"))
        .to_owned()
}

/// A home with kv-store installed and one context of it: (app id, context id).
fn context(home: &std::path::Path) -> (String, String) {
    let app = id(&ok(home, &["app", "install", &kv_store()]), "app_id");
    let ctx = id(&ok(home, &["context", "create", &app]), "context_id");
    (app, ctx)
}

fn fails(home: &std::path::Path, args: &[&str], code: i32, kind: &str) {
    let (got, value) = tabnode(home, args);
    assert_eq!(got, code, "{args:?}: {value}");
    assert_eq!(value["error"]["kind"], json!(kind), "{args:?}: {value}");
}

#[test]
fn identity_is_the_same_in_every_process_and_names_a_libp2p_peer() {
    let home = home("identity");
    let first = ok(&home, &["identity"]);
    assert_eq!(ok(&home, &["identity"]), first);
    let (_, ctx) = context(&home);
    // The node's key is the context's first member: its admin.
    let members = ok(&home, &["context", "members", &ctx]);
    assert_eq!(
        members,
        json!({"members": [{"key": first["public_key"], "role": "admin"}]})
    );
    assert!(id(&first, "peer_id").starts_with("12D3KooW"), "{first}");
    assert_ne!(ok(&self::home("identity-other"), &["identity"]), first);
    let _ = std::fs::remove_dir_all(home);
    let _ = std::fs::remove_dir_all(self::home("identity-other"));
}

#[test]
fn an_invitation_carries_its_role_expiry_and_uses_and_bad_options_are_refused() {
    let home = home("invite");
    let (_, ctx) = context(&home);
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let invite = ok(
        &home,
        &[
            "context",
            "invite",
            &ctx,
            "--role",
            "reader",
            "--expires",
            "2h",
            "--uses",
            "3",
            "--link-base",
            "https://example.org/",
        ],
    );
    assert_eq!(invite["role"], json!("reader"));
    assert_eq!(invite["uses"], json!(3));
    assert_eq!(invite["context_id"], json!(ctx));
    let expires = invite["expires_at_ms"].as_u64().unwrap();
    assert!(
        (before + 7_200_000..before + 7_260_000).contains(&expires),
        "{invite}"
    );
    let invitation = id(&invite, "invitation");
    // The link is the page console's: the invitation URI-encoded in the fragment.
    assert_eq!(
        invite["link"],
        json!(format!(
            "https://example.org/#join={}",
            invitation.replace(':', "%3A")
        ))
    );
    // Defaults: a member, for a week, once.
    let plain = ok(&home, &["context", "invite", &ctx]);
    assert_eq!(
        (&plain["role"], &plain["uses"]),
        (&json!("member"), &json!(1))
    );
    assert_eq!(plain["link"], Value::Null);
    assert!(plain["expires_at_ms"].as_u64().unwrap() > before + 6 * 86_400_000);

    for bad in [
        &["context", "invite", &ctx, "--role", "owner"][..],
        &["context", "invite", &ctx, "--expires", "0s"],
        &["context", "invite", &ctx, "--expires", "7w"],
    ] {
        fails(&home, bad, 2, "Usage");
    }
    fails(
        &home,
        &["context", "invite", &ctx, "--uses", "0"],
        1,
        "BadInvitation",
    );
    let unknown = "11111111111111111111111111111111";
    fails(&home, &["context", "invite", unknown], 1, "UnknownContext");
    fails(&home, &["context", "members", unknown], 1, "UnknownContext");
    // Joining offline cannot reach a member: said before anything is stored.
    fails(&home, &["context", "join", &invitation], 2, "Usage");
    assert_eq!(ok(&home, &["context", "list"]), json!({"contexts": [ctx]}));
    let _ = std::fs::remove_dir_all(home);
}

#[test]
fn a_blob_put_comes_back_byte_for_byte_and_bad_requests_store_nothing() {
    let home = home("blob");
    let (_, ctx) = context(&home);
    let file = home.join("in.bin");
    let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&file, &data).unwrap();
    let put = ok(
        &home,
        &["blob", "put", file.to_str().unwrap(), "--context", &ctx],
    );
    assert_eq!(put["size"], json!(data.len()));
    assert_eq!(put["context_id"], json!(ctx));
    let blob = id(&put, "blob_id");
    assert_eq!(
        blob,
        bs58::encode(blake3::hash(&data).as_bytes()).into_string()
    );
    let out = home.join("out.bin");
    let got = ok(
        &home,
        &["blob", "get", &blob, "--out", out.to_str().unwrap()],
    );
    assert_eq!(got["size"], json!(data.len()));
    assert_eq!(std::fs::read(&out).unwrap(), data);

    let other = bs58::encode(blake3::hash(b"never put").as_bytes()).into_string();
    let nowhere = home.join("nowhere.bin");
    fails(
        &home,
        &["blob", "get", &other, "--out", nowhere.to_str().unwrap()],
        1,
        "NoBlob",
    );
    assert!(!nowhere.exists());
    fails(
        &home,
        &["blob", "get", "not-base58!", "--out", "x"],
        1,
        "BadId",
    );
    let unknown = "11111111111111111111111111111111";
    fails(
        &home,
        &["blob", "put", file.to_str().unwrap(), "--context", unknown],
        1,
        "UnknownContext",
    );
    fails(&home, &["blob", "put", "/no/such/file"], 1, "Io");
    let _ = std::fs::remove_dir_all(home);
}

#[test]
fn an_upgrade_moves_the_context_to_an_installed_app() {
    let home = home("upgrade");
    let (app, ctx) = context(&home);
    ok(&home, &["call", &ctx, "set", r#"{"key":"k","value":"v"}"#]);
    assert_eq!(ok(&home, &["call", &ctx, "schema"])["output"], json!("1"));
    let v2 = id(
        &ok(&home, &["app", "install", &guest_app("kv_store_v2")]),
        "app_id",
    );
    fails(&home, &["context", "upgrade", &ctx, &app], 1, "BadArgs");
    let missing = bs58::encode(blake3::hash(b"no app").as_bytes()).into_string();
    fails(
        &home,
        &["context", "upgrade", &ctx, &missing],
        1,
        "AppNotInstalled",
    );
    fails(
        &home,
        &["context", "upgrade", &ctx, &v2, "--migrate", "nope"],
        1,
        "MethodNotFound",
    );
    assert_eq!(ok(&home, &["call", &ctx, "schema"])["output"], json!("1"));

    let up = ok(
        &home,
        &[
            "context",
            "upgrade",
            &ctx,
            &v2,
            "--migrate",
            "migrate_v1_to_v2",
        ],
    );
    assert!(up["delta_id"].is_string(), "{up}");
    assert_eq!(ok(&home, &["call", &ctx, "schema"])["output"], json!("2"));
    assert_eq!(ok(&home, &["replay", &ctx])["matches"], json!(true));
    let _ = std::fs::remove_dir_all(home);
}

#[test]
fn a_home_in_use_by_another_process_is_refused_unchanged() {
    let home = home("locked");
    let first = ok(&home, &["identity"]);
    let lock = std::fs::File::options()
        .write(true)
        .open(home.join("lock"))
        .unwrap();
    lock.lock().unwrap();
    fails(&home, &["identity"], 1, "HomeLocked");
    fails(&home, &["app", "install", &kv_store()], 1, "HomeLocked");
    drop(lock);
    assert_eq!(ok(&home, &["identity"]), first);
    assert_eq!(ok(&home, &["context", "list"]), json!({"contexts": []}));
    let _ = std::fs::remove_dir_all(home);
}

#[test]
fn a_join_with_a_bad_invitation_or_relay_address_fails_typed_and_stores_nothing() {
    let home = home("bad-join");
    let peer = id(&ok(&home, &["identity"]), "peer_id");
    // Nothing listens there: the invitation is refused before anything is asked of anyone.
    let relay = format!("/ip4/127.0.0.1/tcp/1/ws/p2p/{peer}");
    let join = |link: &str, relay: &str| {
        fails(
            &home,
            &["context", "join", link, "--relay", relay, "--timeout", "1"],
            1,
            "BadInvitation",
        )
    };
    join("tabnode-invite:nonsense", &relay);
    join("https://host/#join=tabnode-invite%3Anonsense", &relay);
    fails(
        &home,
        &[
            "context",
            "join",
            "tabnode-invite:x",
            "--relay",
            "/not/an/address",
        ],
        1,
        "BadAddress",
    );
    assert_eq!(ok(&home, &["context", "list"]), json!({"contexts": []}));
    let _ = std::fs::remove_dir_all(home);
}

#[test]
fn a_guests_proposal_is_listed_read_and_refused_a_second_approval() {
    let home = home("proposals");
    let app = id(
        &ok(&home, &["app", "install", &guest_app("probe")]),
        "app_id",
    );
    let ctx = id(
        &ok(
            &home,
            &["context", "create", &app, "--args", r#"{"title":"t"}"#],
        ),
        "context_id",
    );
    let call = ok(
        &home,
        &["call", &ctx, "propose_value", r#"{"key":"k","value":"v"}"#],
    );
    let proposal = id(&call, "output");
    let me = id(&ok(&home, &["identity"]), "public_key");

    let list = ok(&home, &["proposals", "list", &ctx]);
    assert_eq!(
        (
            list["numApprovals"].clone(),
            list["activeProposalsLimit"].clone()
        ),
        (json!(3), json!(10))
    );
    assert_eq!(list["proposals"][0]["id"], json!(proposal));
    let got = ok(&home, &["proposals", "get", &ctx, &proposal]);
    assert_eq!(got["approvers"], json!([me]), "the author's approval");
    assert_eq!(got["status"], json!("active"));
    assert_eq!(
        got["actions"],
        json!([{"scope": "SetContextValue", "params": {"key": [107], "value": [118]}}])
    );
    assert_eq!(
        ok(&home, &["proposals", "value", &ctx, "k"]),
        json!({"key": "k", "value": null}),
        "one approval of three runs nothing"
    );

    fails(
        &home,
        &["proposals", "approve", &ctx, &proposal],
        1,
        "BadProposal",
    );
    let unknown = bs58::encode([7; 32]).into_string();
    fails(
        &home,
        &["proposals", "approve", &ctx, &unknown],
        1,
        "UnknownProposal",
    );
    fails(
        &home,
        &["proposals", "get", &ctx, &unknown],
        1,
        "UnknownProposal",
    );
    fails(
        &home,
        &["proposals", "get", &ctx, "not-base58!"],
        1,
        "BadId",
    );
    for bad in [
        "[]",
        r#"[{"scope":"SetNumApprovals","params":{"num_approvals":0}}]"#,
        r#"[{"scope":"Transfer","params":{"receiver_id":"a.near","amount":5}}]"#,
        r#"[{"scope":"Launch","params":{}}]"#,
    ] {
        fails(
            &home,
            &["proposals", "propose", &ctx, bad],
            1,
            "BadProposal",
        );
    }
    fails(
        &home,
        &["proposals", "propose", &ctx, "not json"],
        1,
        "BadArgs",
    );
    assert_eq!(
        ok(&home, &["proposals", "list", &ctx]),
        list,
        "refusals change nothing"
    );

    let transfer = r#"[{"scope":"Transfer","params":{"receiver_id":"a.near","amount":"5"}}]"#;
    let proposed = ok(&home, &["proposals", "propose", &ctx, transfer]);
    assert_eq!(
        proposed["proposal"]["actions"],
        serde_json::from_str::<Value>(transfer).unwrap()
    );
    assert_eq!(proposed["proposal"]["id"], proposed["proposal_id"]);
    let listed = ok(&home, &["proposals", "list", &ctx]);
    assert_eq!(listed["proposals"].as_array().unwrap().len(), 2);
}

/// A guest's request to add a member needs the operator's say: refused by default (the call
/// stands, its request is reported as `NoConsent`), made with `--guest-requests allow`.
#[test]
fn a_guests_membership_request_is_made_only_with_guest_requests_allow() {
    let home = home("guest-requests");
    let other = self::home("guest-requests-other");
    let probe = id(
        &ok(&home, &["app", "install", &guest_app("probe")]),
        "app_id",
    );
    let init = json!({"title": "t"}).to_string();
    let created = ok(&home, &["context", "create", &probe, "--args", &init]);
    let ctx = id(&created, "context_id");
    let key = id(&ok(&other, &["identity"]), "public_key");
    let bytes = bs58::decode(&key).into_vec().unwrap();
    let args = json!({ "key": bytes }).to_string();
    let members = |home: &std::path::Path| {
        let listed = ok(home, &["context", "members", &ctx]);
        listed["members"].as_array().unwrap().len()
    };

    let refused = ok(&home, &["call", &ctx, "add_member", &args]);
    let request = &refused["context_requests"][0];
    assert_eq!(request["errorKind"], json!("NoConsent"), "{refused}");
    assert_eq!(members(&home), 1, "nobody was added");

    let made = ok(
        &home,
        &[
            "--guest-requests",
            "allow",
            "call",
            &ctx,
            "add_member",
            &args,
        ],
    );
    assert!(made["context_requests"][0]["error"].is_null(), "{made}");
    assert_eq!(members(&home), 2);
    let (code, usage) = tabnode(&home, &["--guest-requests", "always", "identity"]);
    assert_eq!(
        (code, &usage["error"]["kind"]),
        (2, &json!("Usage")),
        "{usage}"
    );
    let _ = std::fs::remove_dir_all(home);
    let _ = std::fs::remove_dir_all(other);
}
