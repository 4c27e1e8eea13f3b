//! Signing a call's user-storage actions, as merod 0.10 does before it sends them
//! (`sign_user_actions`, `crates/context/src/handlers/execute.rs` at tag 0.10.0).
//!
//! calimero-storage 0.10 writes an entry of a `UserStorage` with `StorageType::User { owner,
//! signature_data }`, the owner being the executor and the signature a placeholder of zeros;
//! every member that merges the action checks the owner's ed25519 signature over the action's
//! `payload_for_signing` (and that its nonce is newer than what it holds). The executing node
//! fills in the signature: this module finds each such action of `owner` in an artifact and
//! signs it, changing nothing else.
//!
//! Borsh layout read (calimero-storage 0.10 `delta.rs`, `action.rs`, `entities.rs`): the
//! artifact is `StorageDelta::Actions(Vec<Action>)` (tag 0); an action is `Add` (0) or `Update`
//! (3) `{ id: [u8; 32], data: Vec<u8>, ancestors: Vec<ChildInfo>, metadata: Metadata }`,
//! `Compare` (1) `{ id }` or `DeleteRef` (2) `{ id, deleted_at: u64, metadata }`, and
//! `Metadata` starts `created_at: u64, updated_at: u64, storage_type`, where `User` (1) is
//! `{ owner: [u8; 32], signature_data: Option<{ signature: [u8; 64], nonce: u64 }> }`.
//!
//! The payload signed is sha256 of: `v1_upsert` (or `v1_delete`), the id, the data (or
//! `deleted_at` little-endian), each ancestor's id and Merkle hash, then `created_at`,
//! `updated_at` and the storage type as borsh with the signature zeroed.

use sha2::{Digest, Sha256};

use crate::root::Reader;

/// `artifact` with every user-storage action of `owner` that carries a placeholder signature
/// signed by `sign` (ed25519 over the 32-byte payload). Anything else is left as it is. An
/// artifact that is not a list of actions in this layout (a comparison, an empty one, or a
/// guest's own format) is returned unchanged, as merod sends one it cannot read.
pub fn sign_user_actions(
    artifact: &[u8],
    owner: &[u8; 32],
    sign: impl Fn(&[u8; 32]) -> [u8; 64],
) -> Vec<u8> {
    let mut signed = artifact.to_vec();
    for (at, payload) in unsigned_user_actions(artifact, owner).unwrap_or_default() {
        signed[at..at + 64].copy_from_slice(&sign(&payload));
    }
    signed
}

/// Where each placeholder signature of `owner`'s user actions sits in `artifact`, with the
/// payload it signs. `None` if the artifact does not parse.
fn unsigned_user_actions(artifact: &[u8], owner: &[u8; 32]) -> Option<Vec<(usize, [u8; 32])>> {
    let mut r = Reader(artifact);
    let offset = |r: &Reader| artifact.len() - r.0.len();
    if artifact.is_empty() || r.u8()? != 0 {
        return Some(Vec::new()); // not `StorageDelta::Actions`: nothing to sign
    }
    let mut found = Vec::new();
    for _ in 0..r.u32()? {
        let mut payload = Sha256::new();
        let mut placeholder_at = None;
        match r.u8()? {
            0 | 3 => {
                // Add and Update are signed alike.
                payload.update(b"v1_upsert");
                payload.update(r.hash()?);
                let len = r.u32()? as usize;
                payload.update(r.take(len)?);
                for _ in 0..r.u32()? {
                    payload.update(r.hash()?); // ancestor id
                    payload.update(r.hash()?); // its Merkle hash
                    r.metadata()?;
                }
            }
            1 => {
                r.hash()?; // Compare: never signed
                continue;
            }
            2 => {
                payload.update(b"v1_delete");
                payload.update(r.hash()?);
                payload.update(r.take(8)?); // deleted_at
            }
            _ => return None,
        }
        payload.update(r.take(16)?); // created_at, updated_at
        match r.u8()? {
            tag @ (0 | 2) => payload.update([tag]), // Public, Frozen
            1 => {
                let key = r.hash()?;
                payload.update([1]);
                payload.update(key);
                if r.option()? {
                    let at = offset(&r);
                    let signature = r.take(64)?;
                    let nonce = r.take(8)?;
                    payload.update([1]);
                    payload.update([0; 64]);
                    payload.update(nonce);
                    if key == *owner && signature == [0; 64] {
                        placeholder_at = Some(at);
                    }
                } else {
                    payload.update([0]);
                }
            }
            _ => return None,
        }
        r.metadata_tail()?;
        if let Some(at) = placeholder_at {
            found.push((at, payload.finalize().into()));
        }
    }
    r.0.is_empty().then_some(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWNER: [u8; 32] = [4; 32];

    /// Borsh of a `Metadata` with `storage_type` bytes as given, no CRDT type or field name.
    fn metadata(storage_type: &[u8]) -> Vec<u8> {
        [
            &5u64.to_le_bytes()[..],
            &6u64.to_le_bytes(),
            storage_type,
            &[0, 0],
        ]
        .concat()
    }

    fn user(owner: [u8; 32], signature: [u8; 64]) -> Vec<u8> {
        [&[1][..], &owner, &[1], &signature, &6u64.to_le_bytes()].concat()
    }

    /// `StorageDelta::Actions` of an `Update` with one ancestor, then a `Compare`.
    fn artifact(storage_type: &[u8]) -> Vec<u8> {
        let mut b = vec![0];
        b.extend(2u32.to_le_bytes());
        b.push(3);
        b.extend([1; 32]); // id
        b.extend(3u32.to_le_bytes());
        b.extend(b"abc");
        b.extend(1u32.to_le_bytes());
        b.extend([2; 32]);
        b.extend([3; 32]);
        b.extend(metadata(&[0]));
        b.extend(metadata(storage_type));
        b.push(1);
        b.extend([9; 32]);
        b
    }

    fn expected_payload() -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(b"v1_upsert");
        h.update([1; 32]);
        h.update(b"abc");
        h.update([2; 32]);
        h.update([3; 32]);
        h.update(5u64.to_le_bytes());
        h.update(6u64.to_le_bytes());
        h.update(user(OWNER, [0; 64]));
        h.finalize().into()
    }

    #[test]
    fn signs_the_owners_placeholder_over_the_payload_and_nothing_else() {
        let unsigned = artifact(&user(OWNER, [0; 64]));
        let signed = sign_user_actions(&unsigned, &OWNER, |p| {
            assert_eq!(*p, expected_payload());
            [7; 64]
        });
        assert_eq!(signed, artifact(&user(OWNER, [7; 64])));
    }

    #[test]
    fn leaves_others_actions_public_ones_and_signed_ones_alone() {
        for storage_type in [
            user([8; 32], [0; 64]),
            user(OWNER, [7; 64]),
            vec![0],
            vec![2],
        ] {
            let a = artifact(&storage_type);
            let signed = sign_user_actions(&a, &OWNER, |_| panic!("nothing to sign"));
            assert_eq!(signed, a);
        }
        assert_eq!(
            sign_user_actions(&[], &OWNER, |_| [7; 64]),
            Vec::<u8>::new()
        );
    }

    #[test]
    fn an_artifact_in_another_layout_is_sent_as_it_is() {
        let good = artifact(&user(OWNER, [0; 64]));
        let cut = &good[..good.len() - 1];
        assert_eq!(sign_user_actions(cut, &OWNER, |_| [7; 64]), cut);
        let mut bad_tag = good.clone();
        bad_tag[5] = 9;
        assert_eq!(sign_user_actions(&bad_tag, &OWNER, |_| [7; 64]), bad_tag);
    }
}
