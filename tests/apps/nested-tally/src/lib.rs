//! A map of G-Counters (`UnorderedMap<String, Counter>`), each created by the first `bump` of
//! its key, as a Calimero app writes a nested CRDT: read the entry, or make a new `Counter`
//! (calimero-storage 0.10 gives it a random id), increment, insert it under the key.
//!
//! Two members that bump a key neither has yet each create the entry: calimero-storage keeps
//! one of the two creations (the entry's last write by its HLC timestamp) and the other's
//! counts are not in the tally; a bump made after the other member's creation arrived
//! increments the same counter and adds up.

use calimero_sdk::app;
use calimero_sdk::borsh::{BorshDeserialize, BorshSerialize};
use calimero_storage::collections::{Counter, UnorderedMap};

#[app::state]
#[derive(Debug, BorshSerialize, BorshDeserialize)]
#[borsh(crate = "calimero_sdk::borsh")]
pub struct NestedTally {
    tallies: UnorderedMap<String, Counter>,
}

#[app::logic]
impl NestedTally {
    #[app::init]
    pub fn init() -> NestedTally {
        NestedTally {
            tallies: UnorderedMap::new(),
        }
    }

    /// Adds one to `key`'s counter, creating it if this node has none; the counter's value.
    pub fn bump(&mut self, key: String) -> app::Result<u64> {
        let mut counter = self.tallies.get(&key)?.unwrap_or_else(Counter::new);
        counter.increment()?;
        let value = counter.value()?;
        drop(self.tallies.insert(key, counter)?);
        Ok(value)
    }

    /// `key`'s counter, if this node has the entry.
    pub fn tally(&self, key: String) -> app::Result<Option<u64>> {
        Ok(self.tallies.get(&key)?.map(|c| c.value()).transpose()?)
    }
}
