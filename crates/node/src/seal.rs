//! Confidentiality on the wire: every message on a context's topic is sealed with a key derived
//! from the context's secret (XChaCha20-Poly1305, the context id as associated data), so a relay
//! or any other non-member sees only ciphertext. The secret travels in the invitation.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use tabnode_types::ContextId;

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

#[cfg(test)]
mod tests {
    use super::*;

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
