//! A key-value store: a map of last-writer-wins strings, with events and logs.
//!
//! Built twice from this one source: `kv-store` (version 1) and, with the `v2` feature,
//! `kv-store-v2`, whose state has one more field (`schema`) and which carries the
//! `#[app::migrate]` that turns a version-1 state into a version-2 one (app upgrades).

use std::collections::BTreeMap;

use calimero_sdk::borsh::{BorshDeserialize, BorshSerialize};
use calimero_sdk::{app, env};
use calimero_storage::collections::{LwwRegister, UnorderedMap};

// calimero-sdk's state macros see every field whatever its `cfg`, so each version declares
// its whole state.
#[cfg(not(feature = "v2"))]
#[app::state(emits = Event)]
#[derive(Debug, BorshSerialize, BorshDeserialize)]
#[borsh(crate = "calimero_sdk::borsh")]
pub struct KvStore {
    items: UnorderedMap<String, LwwRegister<String>>,
}

#[cfg(feature = "v2")]
#[app::state(emits = Event)]
#[derive(Debug, BorshSerialize, BorshDeserialize)]
#[borsh(crate = "calimero_sdk::borsh")]
pub struct KvStore {
    items: UnorderedMap<String, LwwRegister<String>>,
    schema: LwwRegister<String>,
}

#[app::event]
pub enum Event {
    Inserted { key: String, value: String },
    Updated { key: String, value: String },
    Removed { key: String },
    #[cfg(feature = "v2")]
    Migrated { from: String, to: String },
}

/// The state of version 1, as its bytes lie in storage.
#[cfg(feature = "v2")]
#[derive(BorshDeserialize)]
#[borsh(crate = "calimero_sdk::borsh")]
struct KvStoreV1 {
    items: UnorderedMap<String, LwwRegister<String>>,
}

/// Keeps every item of version 1 and records the schema the state now has.
#[cfg(feature = "v2")]
#[app::migrate]
pub fn migrate_v1_to_v2() -> KvStore {
    let bytes = calimero_sdk::state::read_raw()
        .unwrap_or_else(|| env::panic_str("there is no state to migrate"));
    let old = KvStoreV1::deserialize(&mut &bytes[..])
        .unwrap_or_else(|e| env::panic_str(&format!("not a kv-store version 1 state: {e}")));
    app::emit!(Event::Migrated {
        from: "1".into(),
        to: "2".into()
    });
    KvStore {
        items: old.items,
        schema: LwwRegister::new("2".to_owned()),
    }
}

#[app::logic]
impl KvStore {
    #[app::init]
    pub fn init() -> KvStore {
        KvStore {
            items: UnorderedMap::new(),
            #[cfg(feature = "v2")]
            schema: LwwRegister::new("2".to_owned()),
        }
    }

    pub fn set(&mut self, key: String, value: String) -> app::Result<()> {
        if key.is_empty() {
            app::bail!("the key must not be empty");
        }
        env::log(&format!("set {key:?}"));
        let existed = self.items.get(&key)?.is_some();
        self.items.insert(key.clone(), value.clone().into())?;
        if existed {
            app::emit!(Event::Updated { key, value });
        } else {
            app::emit!(Event::Inserted { key, value });
        }
        Ok(())
    }

    pub fn get(&self, key: String) -> app::Result<Option<String>> {
        Ok(self.items.get(&key)?.map(|v| v.get().clone()))
    }

    pub fn remove(&mut self, key: String) -> app::Result<Option<String>> {
        env::log(&format!("remove {key:?}"));
        let old = self.items.remove(&key)?.map(|v| v.get().clone());
        if old.is_some() {
            app::emit!(Event::Removed { key });
        }
        Ok(old)
    }

    pub fn entries(&self) -> app::Result<BTreeMap<String, String>> {
        Ok(self
            .items
            .entries()?
            .map(|(k, v)| (k, v.get().clone()))
            .collect())
    }

    pub fn len(&self) -> app::Result<usize> {
        Ok(self.items.len()?)
    }

    /// The version of the state's schema.
    pub fn schema(&self) -> app::Result<String> {
        #[cfg(feature = "v2")]
        return Ok(self.schema.get().clone());
        #[cfg(not(feature = "v2"))]
        Ok("1".to_owned())
    }
}
