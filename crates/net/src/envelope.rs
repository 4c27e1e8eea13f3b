//! Who sent a gossip message, told only to those who hold the topic's key.
//!
//! Gossip goes out unsigned and without a source (gossipsub's anonymous mode): a signed message
//! names its author's peer id to every subscriber of its topic, anyone can subscribe to a topic
//! a relay lists, and so anyone could learn which peers share a context. Instead the sender's
//! peer id travels encrypted (XChaCha20-Poly1305) under the topic's key, which the node derives
//! from the context id (members know it; a peer that saw only the topic's hash does not), bound
//! to the payload it came with. The payload itself is the node's sealed message, left as it is.
//!
//! Layout: version (1) ‖ nonce (24) ‖ length of the sealed id (1) ‖ sealed id ‖ payload.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use libp2p::PeerId;

/// The key a topic's envelopes are sealed under.
pub type TopicKey = [u8; 32];

const VERSION: u8 = 1;
const NONCE: usize = 24;

/// `payload` from `sender`, for those who hold `key`.
pub fn wrap(key: &TopicKey, sender: &PeerId, payload: &[u8]) -> Vec<u8> {
    let mut nonce = [0u8; NONCE];
    getrandom::fill(&mut nonce).expect("the platform gives random bytes");
    let bound = blake3::hash(payload);
    let sealed = XChaCha20Poly1305::new(key.into())
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: &sender.to_bytes(),
                aad: bound.as_bytes(),
            },
        )
        .expect("encryption of an in-memory message cannot fail");
    let mut out = Vec::with_capacity(2 + NONCE + sealed.len() + payload.len());
    out.push(VERSION);
    out.extend_from_slice(&nonce);
    out.push(u8::try_from(sealed.len()).expect("a peer id is under 240 bytes"));
    out.extend_from_slice(&sealed);
    out.extend_from_slice(payload);
    out
}

/// The sender and the payload, or `None` if `bytes` is not an envelope sealed under `key`.
pub fn unwrap<'a>(key: &TopicKey, bytes: &'a [u8]) -> Option<(PeerId, &'a [u8])> {
    let (&version, rest) = bytes.split_first()?;
    if version != VERSION || rest.len() < NONCE + 1 {
        return None;
    }
    let (nonce, rest) = rest.split_at(NONCE);
    let (&len, rest) = rest.split_first()?;
    if rest.len() < usize::from(len) {
        return None;
    }
    let (sealed, payload) = rest.split_at(usize::from(len));
    let bound = blake3::hash(payload);
    let id = XChaCha20Poly1305::new(key.into())
        .decrypt(
            XNonce::from_slice(nonce),
            Payload {
                msg: sealed,
                aad: bound.as_bytes(),
            },
        )
        .ok()?;
    Some((PeerId::from_bytes(&id).ok()?, payload))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_key_holder_learns_the_sender_and_the_id_stays_with_its_payload() {
        let (key, other) = ([1u8; 32], [2u8; 32]);
        let sender = PeerId::random();
        let wrapped = wrap(&key, &sender, b"sealed message");
        assert_eq!(
            unwrap(&key, &wrapped),
            Some((sender, &b"sealed message"[..]))
        );
        assert_ne!(
            wrap(&key, &sender, b"sealed message"),
            wrapped,
            "a fresh nonce each time"
        );
        assert_eq!(unwrap(&other, &wrapped), None, "another topic's key");
        let sender_bytes = sender.to_bytes();
        assert!(
            !wrapped
                .windows(sender_bytes.len())
                .any(|w| w == sender_bytes),
            "the peer id shows in the clear"
        );
        // The sealed id moved onto another payload, or the payload changed: refused.
        let mut moved = wrapped.clone();
        let last = moved.len() - 1;
        moved[last] ^= 1;
        assert_eq!(unwrap(&key, &moved), None);
        for cut in [0, 1, 25, 26, 40] {
            assert_eq!(unwrap(&key, &wrapped[..cut]), None, "cut at {cut}");
        }
        let mut version = wrapped;
        version[0] = 9;
        assert_eq!(unwrap(&key, &version), None);
    }
}
