//! NEP-413 against published vectors, grants, challenges and NEAR RPC answers.

use base64::Engine;
use serde_json::{json, Value};
use tabnode_identity::challenge::{ChallengeError, Challenges};
use tabnode_identity::grant::{hex_nonce, Capability, Grant, GrantError, Scope, SignedGrant};
use tabnode_identity::nep413::{Nep413Error, Payload, SignedMessage};
use tabnode_identity::rpc::{parse_view_access_key, view_access_key_request, AccessKey, RpcError};
use tabnode_types::{ContextId, SecretKey};

fn vectors() -> Vec<Value> {
    let text = include_str!("../../../tests/vectors/nep413.json");
    serde_json::from_str::<Value>(text).unwrap()["vectors"]
        .as_array()
        .unwrap()
        .clone()
}

fn payload(v: &Value) -> Payload {
    let nonce = base64::engine::general_purpose::STANDARD
        .decode(v["nonce_base64"].as_str().unwrap())
        .unwrap();
    Payload {
        message: v["message"].as_str().unwrap().into(),
        nonce: nonce.try_into().unwrap(),
        recipient: v["recipient"].as_str().unwrap().into(),
        callback_url: v["callback_url"].as_str().map(str::to_owned),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn every_published_vector_hashes_and_verifies_as_recorded() {
    let vectors = vectors();
    assert!(vectors.len() >= 6);
    for v in vectors {
        let name = v["name"].as_str().unwrap();
        let p = payload(&v);
        if let Some(expected) = v["sha256_hex"].as_str() {
            assert_eq!(hex(&p.hash()), expected, "{name}: hash");
        }
        let Some(signature) = v["signature_base64"].as_str() else {
            continue;
        };
        let answer = SignedMessage {
            account_id: "test.near".into(),
            public_key: v["public_key"].as_str().unwrap().into(),
            signature: signature.into(),
            state: None,
        };
        let result = answer.verify(&p, None);
        assert_eq!(
            result.is_ok(),
            v["valid"].as_bool().unwrap(),
            "{name}: {result:?}"
        );
        if let Some(secret) = v["secret_key"].as_str() {
            // The local signer reproduces the wallet's signature byte for byte.
            let bytes = bs58::decode(secret.strip_prefix("ed25519:").unwrap())
                .into_vec()
                .unwrap();
            let key = SecretKey::from_seed(bytes[..32].try_into().unwrap());
            assert_eq!(
                format!("ed25519:{}", key.public()),
                v["public_key"].as_str().unwrap()
            );
            let ours = base64::engine::general_purpose::STANDARD.encode(p.sign(&key).0);
            assert_eq!(ours, signature, "{name}: local signer");
        }
    }
}

#[test]
fn tampering_with_any_field_is_refused() {
    let v = &vectors()[1];
    let good = payload(v);
    let answer = SignedMessage {
        account_id: "test.near".into(),
        public_key: v["public_key"].as_str().unwrap().into(),
        signature: v["signature_base64"].as_str().unwrap().into(),
        state: None,
    };
    assert!(answer.verify(&good, None).is_ok());
    let variants = [
        Payload {
            message: "Hello NEAR?".into(),
            ..good.clone()
        },
        Payload {
            recipient: "evil.near".into(),
            ..good.clone()
        },
        Payload {
            nonce: [0; 32],
            ..good.clone()
        },
        Payload {
            callback_url: Some("http://x".into()),
            ..good.clone()
        },
    ];
    for p in variants {
        assert_eq!(
            answer.verify(&p, None),
            Err(Nep413Error::BadSignature),
            "{p:?}"
        );
    }
    let other_key = SignedMessage {
        public_key: format!("ed25519:{}", SecretKey::from_seed([1; 32]).public()),
        ..answer.clone()
    };
    assert_eq!(
        other_key.verify(&good, None),
        Err(Nep413Error::BadSignature)
    );
    let secp = SignedMessage {
        public_key: "secp256k1:abc".into(),
        ..answer.clone()
    };
    assert!(matches!(
        secp.verify(&good, None),
        Err(Nep413Error::UnsupportedKey(_))
    ));
    let short = SignedMessage {
        signature: "AAAA".into(),
        ..answer
    };
    assert!(matches!(
        short.verify(&good, None),
        Err(Nep413Error::Malformed(_))
    ));
}

#[test]
fn a_page_url_added_by_the_wallet_is_accepted_only_when_offered() {
    let v = &vectors()[3]; // signed with callbackUrl = the page
    let mut asked = payload(v);
    asked.callback_url = None;
    let answer = SignedMessage::from_json(&json!({"response": {
        "accountId": "me.near", "publicKey": v["public_key"], "signature": v["signature_base64"]
    }}))
    .unwrap();
    assert_eq!(answer.verify(&asked, None), Err(Nep413Error::BadSignature));
    assert!(answer
        .verify(&asked, Some("http://127.0.0.1:2428/admin/confirm-wallet"))
        .is_ok());
}

fn grant(client: &SecretKey) -> Grant {
    Grant {
        client_key: client.public(),
        scope: Scope::Contexts(vec![ContextId([5; 32])]),
        capabilities: vec![Capability::Read, Capability::Write],
        not_before: 1_000,
        expires_at: 2_000,
        nonce: hex_nonce([9; 32]),
    }
}

#[test]
fn a_rotation_asks_for_the_same_scope_and_capabilities_for_the_new_key() {
    let old = grant(&SecretKey::from_seed([2; 32]));
    let new_key = SecretKey::from_seed([3; 32]).public();
    let next = old.successor(new_key, 5_000, 1_000, hex_nonce([7; 32]));
    assert_eq!(next.client_key, new_key);
    assert_eq!(
        (next.scope.clone(), next.capabilities.clone()),
        (old.scope, old.capabilities)
    );
    assert_eq!((next.not_before, next.expires_at), (5_000, 6_000));
    assert_eq!(next.nonce, hex_nonce([7; 32]));
}

#[test]
fn local_root_grants_verify_within_their_window_and_scope() {
    let root = SecretKey::from_seed([1; 32]);
    let client = SecretKey::from_seed([2; 32]);
    let signed = SignedGrant::sign_local(grant(&client), &root);
    assert_eq!(signed.verify(1_500), Ok(()));
    assert_eq!(signed.verify(999), Err(GrantError::NotYetValid(1_000)));
    assert_eq!(signed.verify(2_000), Err(GrantError::Expired(2_000)));
    assert!(signed.allows(&ContextId([5; 32]), Capability::Write, 1_500));
    assert!(
        !signed.allows(&ContextId([6; 32]), Capability::Write, 1_500),
        "out of scope"
    );
    assert!(
        !signed.allows(&ContextId([5; 32]), Capability::Admin, 1_500),
        "not granted"
    );
    let mut forged = signed.clone();
    forged.grant.capabilities.push(Capability::Admin);
    assert_eq!(forged.verify(1_500), Err(GrantError::BadSignature));
}

#[test]
fn near_root_grants_come_from_a_wallet_answer() {
    let wallet_key = SecretKey::from_seed([3; 32]);
    let client = SecretKey::from_seed([4; 32]);
    let g = grant(&client);
    let recipient = "http://127.0.0.1:8080";
    // The wallet double signs what the node asks it to sign.
    let signature = g.payload(recipient, None).unwrap().sign(&wallet_key);
    let answer = SignedMessage {
        account_id: "alice.near".into(),
        public_key: format!("ed25519:{}", wallet_key.public()),
        signature: base64::engine::general_purpose::STANDARD.encode(signature.0),
        state: None,
    };
    let signed = SignedGrant::from_wallet(g.clone(), recipient, &answer, None).unwrap();
    assert_eq!(signed.verify(1_500), Ok(()));
    assert!(SignedGrant::from_wallet(g.clone(), "http://evil.example", &answer, None).is_err());
    let mut other = g;
    other.expires_at = 9_999;
    assert!(
        SignedGrant::from_wallet(other, recipient, &answer, None).is_err(),
        "the wallet signed another grant"
    );
}

#[test]
fn challenges_are_answered_once_before_they_expire() {
    let wallet = SecretKey::from_seed([7; 32]);
    let answer_for = |p: &Payload| SignedMessage {
        account_id: "bob.near".into(),
        public_key: format!("ed25519:{}", wallet.public()),
        signature: base64::engine::general_purpose::STANDARD.encode(p.sign(&wallet).0),
        state: None,
    };
    let mut challenges = Challenges::default();
    let c = challenges.issue([1; 32], "http://127.0.0.1:8080", 10_000, 60_000);
    let proven = challenges
        .answer(&[1; 32], &answer_for(&c.payload), 20_000, None)
        .unwrap();
    assert_eq!(proven.account_id, "bob.near");
    assert_eq!(proven.public_key, wallet.public());
    assert_eq!(
        challenges.answer(&[1; 32], &answer_for(&c.payload), 20_001, None),
        Err(ChallengeError::UnknownOrUsed)
    );

    let c = challenges.issue([2; 32], "http://127.0.0.1:8080", 10_000, 60_000);
    assert_eq!(
        challenges.answer(&[2; 32], &answer_for(&c.payload), 70_000, None),
        Err(ChallengeError::Expired(70_000))
    );

    let c = challenges.issue([3; 32], "http://127.0.0.1:8080", 10_000, 60_000);
    let wrong_recipient = Payload {
        recipient: "http://evil.example".into(),
        ..c.payload.clone()
    };
    assert!(matches!(
        challenges.answer(&[3; 32], &answer_for(&wrong_recipient), 20_000, None),
        Err(ChallengeError::Wallet(Nep413Error::BadSignature))
    ));
}

#[test]
fn view_access_key_answers_in_every_shape() {
    let request = view_access_key_request("alice.near", "ed25519:abc");
    assert_eq!(request["params"]["request_type"], "view_access_key");
    assert_eq!(
        parse_view_access_key(
            &json!({"result": {"nonce": 5, "permission": "FullAccess", "block_height": 1}})
        ),
        Ok(AccessKey::FullAccess)
    );
    assert_eq!(
        parse_view_access_key(
            &json!({"result": {"permission": {"FunctionCall": {"allowance": null, "receiver_id": "app.near", "method_names": ["a"]}}}})
        ),
        Ok(AccessKey::FunctionCall {
            receiver_id: "app.near".into(),
            method_names: vec!["a".into()]
        })
    );
    assert_eq!(
        parse_view_access_key(
            &json!({"result": {"error": "access key ed25519:abc does not exist while viewing", "logs": []}})
        ),
        Err(RpcError::UnknownAccessKey)
    );
    assert_eq!(
        parse_view_access_key(
            &json!({"error": {"name": "HANDLER_ERROR", "cause": {"name": "UNKNOWN_ACCESS_KEY", "info": {}}}})
        ),
        Err(RpcError::UnknownAccessKey)
    );
    assert!(matches!(
        parse_view_access_key(
            &json!({"error": {"name": "HANDLER_ERROR", "cause": {"name": "UNKNOWN_ACCOUNT"}}})
        ),
        Err(RpcError::Rpc(_))
    ));
    assert!(matches!(
        parse_view_access_key(&json!({"jsonrpc": "2.0"})),
        Err(RpcError::Malformed(_))
    ));
}
