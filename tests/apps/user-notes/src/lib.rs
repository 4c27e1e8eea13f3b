//! User and frozen storage (calimero-storage 0.10): each member writes its own note, in a slot
//! keyed by its key that only it may write (members check the owner's signature on every
//! change they merge), and anyone adds frozen notes, stored once under their hash and never
//! changed or deleted.

use calimero_sdk::borsh::{BorshDeserialize, BorshSerialize};
use calimero_sdk::{app, PublicKey};
use calimero_storage::collections::{FrozenStorage, LwwRegister, UserStorage};

#[app::state]
#[derive(Debug, BorshSerialize, BorshDeserialize)]
#[borsh(crate = "calimero_sdk::borsh")]
pub struct UserNotes {
    notes: UserStorage<LwwRegister<String>>,
    frozen: FrozenStorage<String>,
}

#[app::logic]
impl UserNotes {
    #[app::init]
    pub fn init() -> UserNotes {
        UserNotes {
            notes: UserStorage::new(),
            frozen: FrozenStorage::new(),
        }
    }

    /// Writes the caller's own note.
    pub fn set_mine(&mut self, note: String) -> app::Result<()> {
        self.notes.insert(note.into())?;
        Ok(())
    }

    /// The caller's own note.
    pub fn mine(&self) -> app::Result<Option<String>> {
        Ok(self.notes.get()?.map(|n| n.get().clone()))
    }

    /// The note of the member whose key is `owner`.
    pub fn note_of(&self, owner: PublicKey) -> app::Result<Option<String>> {
        Ok(self.notes.get_for_user(&owner)?.map(|n| n.get().clone()))
    }

    /// Adds a frozen note; returns its hash (hex), the key to read it by.
    pub fn freeze(&mut self, note: String) -> app::Result<String> {
        let hash = self.frozen.insert(note)?;
        Ok(hash.iter().map(|b| format!("{b:02x}")).collect())
    }

    /// The frozen note under `hash` (hex).
    pub fn frozen(&self, hash: String) -> app::Result<Option<String>> {
        let bytes: Vec<u8> = (0..hash.len())
            .step_by(2)
            .filter_map(|i| u8::from_str_radix(hash.get(i..i + 2)?, 16).ok())
            .collect();
        let Ok(key) = <[u8; 32]>::try_from(bytes) else {
            app::bail!("a frozen note's hash is 64 hex digits")
        };
        Ok(self.frozen.get(&key)?)
    }
}
