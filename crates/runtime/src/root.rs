//! The state root of calimero-storage 0.10, read from stored state without running the guest.
//!
//! calimero-storage keeps one `EntityIndex` per entity under the key `sha256(0x00 ++ id)`, and
//! the root entity's id is the context id. The index carries the entity's full Merkle hash
//! (itself and all descendants): the hash the guest passes to `commit` after every call that
//! changed something and after every `__calimero_sync_next`. A node uses this to know the root
//! of state it loaded, or of state a call did not commit (reads commit nothing).
//!
//! Borsh layout of `EntityIndex` (calimero-storage 0.10 `index.rs`), up to the hash we need:
//! `id: [u8; 32]`, `parent_id: Option<[u8; 32]>`, `children: Option<Vec<ChildInfo>>`,
//! `full_hash: [u8; 32]`, ... where `ChildInfo = { id: [u8; 32], merkle_hash: [u8; 32],
//! metadata: Metadata }` and `Metadata = { created_at: u64, updated_at: u64,
//! storage_type: StorageType, crdt_type: Option<CrdtType>, field_name: Option<String> }`.

use sha2::{Digest, Sha256};

use crate::StateView;

/// The storage key of calimero-storage's index entry for entity `id`.
pub fn index_key(id: &[u8; 32]) -> [u8; 32] {
    let mut bytes = [0; 33];
    bytes[1..].copy_from_slice(id);
    Sha256::digest(bytes).into()
}

/// The storage key of calimero-storage's data entry for entity `id`.
pub fn entry_key(id: &[u8; 32]) -> [u8; 32] {
    let mut bytes = [1; 33];
    bytes[1..].copy_from_slice(id);
    Sha256::digest(bytes).into()
}

/// The parts of an `EntityIndex` its Merkle hashes are made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EntityIndex {
    pub id: [u8; 32],
    /// Each child's id and the merkle hash recorded for it, in stored order.
    pub children: Vec<([u8; 32], [u8; 32])>,
    pub full_hash: [u8; 32],
    pub own_hash: [u8; 32],
}

impl EntityIndex {
    /// Parses a whole borsh `EntityIndex`; `None` unless the bytes are exactly one.
    pub fn parse(bytes: &[u8]) -> Option<Self> {
        let mut r = Reader(bytes);
        let id = r.hash()?;
        if r.option()? {
            r.take(32)?; // parent id
        }
        let mut children = Vec::new();
        if r.option()? {
            for _ in 0..r.u32()? {
                children.push((r.hash()?, r.hash()?));
                r.metadata()?;
            }
        }
        let full_hash = r.hash()?;
        let own_hash = r.hash()?;
        r.metadata()?;
        if r.option()? {
            r.take(8)?; // deleted_at
        }
        r.0.is_empty().then_some(Self {
            id,
            children,
            full_hash,
            own_hash,
        })
    }
}

/// The storage key of the app's state struct: calimero-storage keeps it as the entry
/// `ROOT_STORAGE_ENTRY_ID` (32 bytes of `b'v'`), keyed `sha256(0x01 ++ id)`, which is what
/// calimero-sdk's `read_raw` reads during a migration.
pub fn state_entry_key() -> [u8; 32] {
    let mut bytes = [b'v'; 33];
    bytes[0] = 1;
    Sha256::digest(bytes).into()
}

/// The stored state entry after a migration: the new state's borsh bytes (what the app's
/// `#[app::migrate]` returned) followed by the entry's 32-byte element id, kept from `old`.
/// `None` if `old` is too short to be an entry.
pub fn migrated_state_entry(old: &[u8], new_state: &[u8]) -> Option<Vec<u8>> {
    let id = old.get(old.len().checked_sub(32)?..)?;
    Some([new_state, id].concat())
}

/// The Merkle root of a context's shared state as calimero-storage 0.10 stored it: the full hash
/// in the root entity's index (the root entity's id is the context id). `None` before `init`, if
/// the view has not loaded the entry, or if it is not in the layout of calimero-storage 0.10.
pub fn root_hash(shared: &dyn StateView, context_id: &[u8; 32]) -> Option<[u8; 32]> {
    let index = shared.get(&index_key(context_id)).ok()??;
    full_hash_of_index(&index)
}

/// Reads `full_hash` out of a borsh `EntityIndex`, skipping the fields before it.
fn full_hash_of_index(bytes: &[u8]) -> Option<[u8; 32]> {
    let mut r = Reader(bytes);
    r.take(32)?; // id
    if r.option()? {
        r.take(32)?; // parent id
    }
    if r.option()? {
        for _ in 0..r.u32()? {
            r.take(64)?; // id, merkle hash
            r.metadata()?;
        }
    }
    r.take(32)?.try_into().ok()
}

/// A borsh cursor over just the shapes an index entry (and an artifact's action, see
/// [`crate::user_actions`]) uses.
pub(crate) struct Reader<'a>(pub(crate) &'a [u8]);

impl<'a> Reader<'a> {
    pub(crate) fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Some(head)
    }

    pub(crate) fn hash(&mut self) -> Option<[u8; 32]> {
        self.take(32)?.try_into().ok()
    }

    pub(crate) fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    pub(crate) fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }

    pub(crate) fn option(&mut self) -> Option<bool> {
        match self.u8()? {
            0 => Some(false),
            1 => Some(true),
            _ => None,
        }
    }

    fn string(&mut self) -> Option<()> {
        let len = self.u32()? as usize;
        self.take(len).map(drop)
    }

    pub(crate) fn metadata(&mut self) -> Option<()> {
        self.take(16)?; // created_at, updated_at
        match self.u8()? {
            0 | 2 => {} // Public, Frozen
            1 => {
                // User { owner: [u8; 32], signature_data: Option<{[u8; 64], u64}> }
                self.take(32)?;
                if self.option()? {
                    self.take(72)?;
                }
            }
            _ => return None,
        }
        self.metadata_tail()
    }

    /// What follows the storage type in a `Metadata`: its CRDT type and field name.
    pub(crate) fn metadata_tail(&mut self) -> Option<()> {
        if self.option()? {
            // CrdtType, in declaration order.
            match self.u8()? {
                0 | 5 | 6 | 9 => self.string()?, // LwwRegister, UnorderedSet, Vector, Custom
                4 => {
                    // UnorderedMap { key_type, value_type }
                    self.string()?;
                    self.string()?;
                }
                1 | 2 | 3 | 7 | 8 => {} // GCounter, PnCounter, Rga, UserStorage, FrozenStorage
                _ => return None,
            }
        }
        if self.option()? {
            self.string()?; // field name
        }
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An index entry with one child whose metadata uses the rarer shapes (user storage with a
    /// signature, a map CRDT type, a field name).
    fn index_with_user_child() -> Vec<u8> {
        let mut b = vec![1; 32]; // id
        b.push(0); // no parent
        b.push(1); // children: Some
        b.extend(1u32.to_le_bytes());
        b.extend([2; 64]); // child id, merkle hash
        b.extend([3; 16]); // created_at, updated_at
        b.push(1); // StorageType::User
        b.extend([4; 32]);
        b.push(1);
        b.extend([5; 72]);
        b.push(1); // Some(CrdtType::UnorderedMap { key_type, value_type })
        b.push(4);
        for s in ["String", "u64"] {
            b.extend((s.len() as u32).to_le_bytes());
            b.extend(s.as_bytes());
        }
        b.push(1); // Some(field name)
        b.extend(5u32.to_le_bytes());
        b.extend(b"items");
        b.extend([9; 32]); // full hash
        b.extend([8; 32]); // own hash, then metadata etc. (not read)
        b
    }

    #[test]
    fn reads_the_full_hash_past_children() {
        assert_eq!(full_hash_of_index(&index_with_user_child()), Some([9; 32]));
    }

    #[test]
    fn malformed_entries_give_none() {
        let good = index_with_user_child();
        let full_hash_at = good.len() - 64;
        assert_eq!(full_hash_of_index(&good[..full_hash_at + 31]), None);
        let mut bad_tag = good.clone();
        bad_tag[32] = 7; // parent option tag
        assert_eq!(full_hash_of_index(&bad_tag), None);
    }

    #[test]
    fn a_migrated_entry_keeps_the_element_id() {
        let old = [vec![1, 2, 3], vec![b'v'; 32]].concat();
        assert_eq!(
            migrated_state_entry(&old, &[9, 9]),
            Some([vec![9, 9], vec![b'v'; 32]].concat())
        );
        assert_eq!(migrated_state_entry(&[1; 31], &[9]), None);
    }

    #[test]
    fn index_key_is_sha256_of_tag_and_id() {
        let mut bytes = [0u8; 33];
        bytes[1..].copy_from_slice(&[7; 32]);
        assert_eq!(index_key(&[7; 32]), <[u8; 32]>::from(Sha256::digest(bytes)));
        assert_ne!(index_key(&[7; 32]), index_key(&[8; 32]));
    }
}
