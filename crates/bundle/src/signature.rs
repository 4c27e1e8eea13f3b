//! The manifest's signature, checked as merod 0.10 checks it: an ed25519 signature over the
//! sha256 of the manifest in RFC 8785 canonical form (without `signature` and without fields
//! whose name starts with `_`), and `signerId` the did:key of the signing key.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The multicodec prefix of an ed25519 public key in a did:key.
const ED25519_PUB: [u8; 2] = [0xed, 0x01];

/// The did:key naming an ed25519 public key (`did:key:z…`, base58btc).
pub fn did_key(public_key: &[u8; 32]) -> String {
    let mut bytes = ED25519_PUB.to_vec();
    bytes.extend_from_slice(public_key);
    format!("did:key:z{}", bs58::encode(bytes).into_string())
}

/// What is signed: sha256 of the canonical manifest without its signature and `_` fields.
pub fn signing_payload(manifest: &Value) -> Result<[u8; 32], String> {
    let mut view = manifest.clone();
    if let Some(fields) = view.as_object_mut() {
        fields.remove("signature");
        fields.retain(|name, _| !name.starts_with('_'));
    }
    let canonical = serde_json_canonicalizer::to_vec(&view).map_err(|e| e.to_string())?;
    Ok(Sha256::digest(canonical).into())
}

/// Signs `manifest` with `key` as Calimero's `mero-sign` does (`signerId` set to the key's
/// did:key, then `signature` over [`signing_payload`]); returns the did:key. For building
/// signed bundles, as the tests do; [`verify`] is its inverse.
pub fn sign(manifest: &mut Value, key: &SigningKey) -> Result<String, String> {
    let signer = did_key(key.verifying_key().as_bytes());
    let fields = manifest
        .as_object_mut()
        .ok_or_else(|| "a manifest is a JSON object".to_owned())?;
    fields.insert("signerId".into(), Value::String(signer.clone()));
    let payload = signing_payload(manifest)?;
    manifest["signature"] = serde_json::json!({
        "algorithm": "ed25519",
        "publicKey": URL_SAFE_NO_PAD.encode(key.verifying_key().as_bytes()),
        "signature": URL_SAFE_NO_PAD.encode(key.sign(&payload).to_bytes()),
    });
    Ok(signer)
}

/// The signer (did:key) of a signed manifest, `None` for an unsigned one; an error says what
/// does not hold.
pub fn verify(manifest: &Value) -> Result<Option<String>, String> {
    let Some(signature) = manifest.get("signature") else {
        return Ok(None);
    };
    let field = |name: &str| {
        signature
            .get(name)
            .and_then(Value::as_str)
            .ok_or_else(|| format!("the signature has no `{name}`"))
    };
    let algorithm = field("algorithm")?;
    if algorithm != "ed25519" {
        return Err(format!(
            "signature algorithm {algorithm:?}, not \"ed25519\""
        ));
    }
    let decode = |name: &str, len: usize| -> Result<Vec<u8>, String> {
        let bytes = URL_SAFE_NO_PAD
            .decode(field(name)?)
            .map_err(|e| format!("the signature's `{name}` is not base64url: {e}"))?;
        if bytes.len() != len {
            return Err(format!("the signature's `{name}` is not {len} bytes"));
        }
        Ok(bytes)
    };
    let public_key: [u8; 32] = decode("publicKey", 32)?.try_into().expect("32 bytes");
    let signature: [u8; 64] = decode("signature", 64)?.try_into().expect("64 bytes");
    let key = VerifyingKey::from_bytes(&public_key)
        .map_err(|_| "the signature's `publicKey` is not an ed25519 key".to_owned())?;
    key.verify(
        &signing_payload(manifest)?,
        &Signature::from_bytes(&signature),
    )
    .map_err(|_| "the signature does not verify: the manifest was altered".to_owned())?;
    let signer = did_key(&public_key);
    match manifest.get("signerId").and_then(Value::as_str) {
        Some(named) if named == signer => Ok(Some(signer)),
        Some(named) => Err(format!(
            "`signerId` is {named}, the key signing is {signer}"
        )),
        None => Err("a signed manifest needs a `signerId`".to_owned()),
    }
}
