//! Confidentiality on the wire: every message on a context's topic is sealed with a key derived
//! from the context's secret (XChaCha20-Poly1305, the context id as associated data), so a relay
//! or any other non-member sees only ciphertext. The secret travels in the invitation; when a
//! member is removed, the new secret travels sealed to each remaining member's key
//! ([`seal_to`]: X25519 from the ed25519 keys), so the removed member cannot read what follows.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use curve25519_dalek::MontgomeryPoint;
use tabnode_types::{ContextId, DeltaId, PublicKey, SecretKey};

const NONCE: usize = 24;

fn cipher(secret: &[u8; 32]) -> XChaCha20Poly1305 {
    let key = blake3::derive_key("tabnode context wire v1", secret);
    XChaCha20Poly1305::new(&key.into())
}

/// `nonce ‖ ciphertext`; `random` supplies the nonce (24 of its bytes).
pub fn seal(
    secret: &[u8; 32],
    context_id: &ContextId,
    random: [u8; 32],
    plaintext: &[u8],
) -> Vec<u8> {
    let nonce = XNonce::from_slice(&random[..NONCE]);
    let sealed = cipher(secret)
        .encrypt(
            nonce,
            Payload {
                msg: plaintext,
                aad: context_id.as_bytes(),
            },
        )
        .expect("encryption of an in-memory message cannot fail");
    let mut out = random[..NONCE].to_vec();
    out.extend(sealed);
    out
}

/// The plaintext, or `None` if the message was not sealed with this context's secret.
pub fn open(secret: &[u8; 32], context_id: &ContextId, sealed: &[u8]) -> Option<Vec<u8>> {
    if sealed.len() < NONCE {
        return None;
    }
    let (nonce, body) = sealed.split_at(NONCE);
    cipher(secret)
        .decrypt(
            XNonce::from_slice(nonce),
            Payload {
                msg: body,
                aad: context_id.as_bytes(),
            },
        )
        .ok()
}

/// The context's secret after concurrent secret-giving operations: a derivation of each one's
/// secret with its id, in id order (`parts` sorted by the caller). Only a key that holds every
/// part makes it: a member each operation sealed its secret to, and neither key one of them
/// removed (that one got no share of it).
pub fn combine_secrets(parts: &[(DeltaId, [u8; 32])]) -> [u8; 32] {
    let mut material = Vec::with_capacity(parts.len() * 64);
    for (op, secret) in parts {
        material.extend_from_slice(op.as_bytes());
        material.extend_from_slice(secret);
    }
    blake3::derive_key(
        "tabnode context secret of concurrent operations v1",
        &material,
    )
}

/// The key a share is sealed under: both sides derive it from the X25519 shared point and the
/// two public points.
fn share_cipher(
    shared: &MontgomeryPoint,
    ephemeral: &MontgomeryPoint,
    member: &MontgomeryPoint,
) -> XChaCha20Poly1305 {
    let mut material = [0u8; 96];
    material[..32].copy_from_slice(shared.as_bytes());
    material[32..64].copy_from_slice(ephemeral.as_bytes());
    material[64..].copy_from_slice(member.as_bytes());
    XChaCha20Poly1305::new(&blake3::derive_key("tabnode secret share v1", &material).into())
}

/// Seals `plaintext` (a context secret, a withheld event payload) so that only the holder of
/// `member`'s secret key can open it: `ephemeral X25519 key ‖ ciphertext`, the ephemeral key
/// drawn from `random`. `None` if `member` is not a valid ed25519 public key.
pub fn seal_to(
    member: &PublicKey,
    context_id: &ContextId,
    random: [u8; 32],
    plaintext: &[u8],
) -> Option<Vec<u8>> {
    let member = ed25519_dalek::VerifyingKey::from_bytes(&member.0)
        .ok()?
        .to_montgomery();
    let ephemeral = MontgomeryPoint::mul_base_clamped(random);
    let shared = member.mul_clamped(random);
    // Each ephemeral key seals one message, so a fixed nonce is safe.
    let sealed = share_cipher(&shared, &ephemeral, &member)
        .encrypt(
            XNonce::from_slice(&[0; NONCE]),
            Payload {
                msg: plaintext,
                aad: context_id.as_bytes(),
            },
        )
        .expect("encryption of an in-memory message cannot fail");
    let mut out = ephemeral.as_bytes().to_vec();
    out.extend(sealed);
    Some(out)
}

/// Opens what [`seal_to`] sealed to `key`, or `None` if it is not for this key.
pub fn open_sealed_to(key: &SecretKey, context_id: &ContextId, sealed: &[u8]) -> Option<Vec<u8>> {
    let (ephemeral, body) = sealed.split_at_checked(32)?;
    let ephemeral = MontgomeryPoint(ephemeral.try_into().ok()?);
    let signing = ed25519_dalek::SigningKey::from_bytes(&key.seed());
    let shared = ephemeral.mul_clamped(signing.to_scalar_bytes());
    let member = signing.verifying_key().to_montgomery();
    share_cipher(&shared, &ephemeral, &member)
        .decrypt(
            XNonce::from_slice(&[0; NONCE]),
            Payload {
                msg: body,
                aad: context_id.as_bytes(),
            },
        )
        .ok()
}

/// A context secret sealed to `key` by [`seal_to`].
pub fn open_share(key: &SecretKey, context_id: &ContextId, sealed: &[u8]) -> Option<[u8; 32]> {
    open_sealed_to(key, context_id, sealed)?.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_share_opens_only_with_its_members_key() {
        let ctx = ContextId([1; 32]);
        let member = SecretKey::from_seed([5; 32]);
        let sealed = seal_to(&member.public(), &ctx, [9; 32], &[42; 32]).unwrap();
        assert!(
            !sealed.windows(32).any(|w| w == [42; 32]),
            "the secret is hidden"
        );
        assert_eq!(open_share(&member, &ctx, &sealed), Some([42; 32]));
        assert_eq!(
            open_share(&SecretKey::from_seed([6; 32]), &ctx, &sealed),
            None,
            "another key"
        );
        assert_eq!(
            open_share(&member, &ContextId([2; 32]), &sealed),
            None,
            "another context"
        );
        let mut flipped = sealed.clone();
        flipped[40] ^= 1;
        assert_eq!(open_share(&member, &ctx, &flipped), None, "tampered");
        assert_eq!(open_share(&member, &ctx, &sealed[..20]), None);
    }

    #[test]
    fn a_combined_secret_needs_every_part_in_its_place() {
        let (a, b) = ((DeltaId([1; 32]), [7; 32]), (DeltaId([2; 32]), [8; 32]));
        let both = combine_secrets(&[a, b]);
        assert_ne!(both, a.1);
        assert_ne!(both, b.1);
        assert_ne!(both, combine_secrets(&[a]), "one part alone");
        assert_ne!(both, combine_secrets(&[b, a]), "another order");
        assert_ne!(
            both,
            combine_secrets(&[a, (b.0, [9; 32])]),
            "another secret"
        );
        assert_eq!(both, combine_secrets(&[a, b]));
    }

    #[test]
    fn only_the_same_secret_and_context_open_a_message() {
        let ctx = ContextId([1; 32]);
        let sealed = seal(&[7; 32], &ctx, [3; 32], b"delta");
        assert!(
            !sealed.windows(5).any(|w| w == b"delta"),
            "ciphertext hides the plaintext"
        );
        assert_eq!(
            open(&[7; 32], &ctx, &sealed).as_deref(),
            Some(&b"delta"[..])
        );
        assert_eq!(open(&[8; 32], &ctx, &sealed), None, "another secret");
        assert_eq!(
            open(&[7; 32], &ContextId([2; 32]), &sealed),
            None,
            "another context"
        );
        let mut flipped = sealed.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert_eq!(open(&[7; 32], &ctx, &flipped), None, "tampered");
        assert_eq!(open(&[7; 32], &ctx, b"short"), None);
    }
}
