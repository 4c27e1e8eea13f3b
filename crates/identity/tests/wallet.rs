//! The native wallet against the published NEP-413 vectors: it signs byte for byte what the
//! reference implementations (and a browser wallet holding the same key) sign.

use base64::Engine;
use futures::executor::block_on;
use serde_json::Value;
use tabnode_identity::nep413::Payload;
use tabnode_identity::wallet::{KeyWallet, Wallet};

fn vectors_with_keys() -> Vec<Value> {
    let text = include_str!("../../../tests/vectors/nep413.json");
    let all: Value = serde_json::from_str(text).unwrap();
    let with_keys: Vec<Value> = all["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["secret_key"].is_string())
        .cloned()
        .collect();
    assert!(with_keys.len() >= 2, "the vectors with a secret key");
    with_keys
}

fn payload(v: &Value, callback_url: Option<String>) -> Payload {
    let nonce = base64::engine::general_purpose::STANDARD
        .decode(v["nonce_base64"].as_str().unwrap())
        .unwrap();
    Payload {
        message: v["message"].as_str().unwrap().into(),
        nonce: nonce.try_into().unwrap(),
        recipient: v["recipient"].as_str().unwrap().into(),
        callback_url,
    }
}

fn wallet(v: &Value) -> KeyWallet {
    KeyWallet::from_near_secret("test.near", v["secret_key"].as_str().unwrap())
        .expect("the vector's secret key")
}

#[test]
fn the_key_wallet_signs_every_vector_as_recorded_and_names_its_account() {
    for v in vectors_with_keys() {
        let name = v["name"].as_str().unwrap();
        let asked = payload(&v, v["callback_url"].as_str().map(str::to_owned));
        let answer = block_on(wallet(&v).sign_message(&asked)).unwrap();
        assert_eq!(
            answer.signature,
            v["signature_base64"].as_str().unwrap(),
            "{name}"
        );
        assert_eq!(
            answer.public_key,
            v["public_key"].as_str().unwrap(),
            "{name}"
        );
        assert_eq!(answer.account_id, "test.near", "{name}");
        assert!(answer.verify(&asked, None).is_ok(), "{name}");
    }
}

#[test]
fn a_wallet_that_adds_the_page_url_signs_what_the_vector_with_a_callback_url_records() {
    let v = vectors_with_keys()
        .into_iter()
        .find(|v| v["callback_url"].is_string())
        .unwrap();
    let url = v["callback_url"].as_str().unwrap();
    let asked = payload(&v, None); // the flow asks without a callbackUrl
    let answer = block_on(wallet(&v).adding_callback_url(url).sign_message(&asked)).unwrap();
    assert_eq!(answer.signature, v["signature_base64"].as_str().unwrap());
    assert!(
        answer.verify(&asked, None).is_err(),
        "not over the payload asked for"
    );
    assert!(
        answer.verify(&asked, Some(url)).is_ok(),
        "over it with the page's URL"
    );
}

#[test]
fn a_secret_whose_public_half_is_not_its_own_is_refused() {
    let v = &vectors_with_keys()[0];
    let secret = v["secret_key"].as_str().unwrap();
    let mut bytes = bs58::decode(&secret["ed25519:".len()..])
        .into_vec()
        .unwrap();
    bytes[63] ^= 1;
    let tampered = format!("ed25519:{}", bs58::encode(bytes).into_string());
    assert!(KeyWallet::from_near_secret("test.near", &tampered).is_none());
    assert!(KeyWallet::from_near_secret("test.near", "3FyRtUU").is_none());
}
