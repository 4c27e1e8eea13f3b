//! A key-value store: a map of last-writer-wins strings, with events and logs.

use std::collections::BTreeMap;

use calimero_sdk::borsh::{BorshDeserialize, BorshSerialize};
use calimero_sdk::{app, env};
use calimero_storage::collections::{LwwRegister, UnorderedMap};

#[app::state(emits = Event)]
#[derive(Debug, BorshSerialize, BorshDeserialize)]
#[borsh(crate = "calimero_sdk::borsh")]
pub struct KvStore {
    items: UnorderedMap<String, LwwRegister<String>>,
}

#[app::event]
pub enum Event {
    Inserted { key: String, value: String },
    Updated { key: String, value: String },
    Removed { key: String },
}

#[app::logic]
impl KvStore {
    #[app::init]
    pub fn init() -> KvStore {
        KvStore {
            items: UnorderedMap::new(),
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
}
