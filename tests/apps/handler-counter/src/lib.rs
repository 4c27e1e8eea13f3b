//! Event handlers (`emit_with_handler`): every write emits an event naming a handler, which the
//! node that made the write runs after it (merod 0.10's rule; members that apply the write run
//! none, unless an older build's delta still names it).
//!
//! `count` counts each run in a G-Counter, per node that ran it: `handled` is the total every
//! member converges to, `handled_here` the runs of the node asked. `refuse` always fails, so a
//! test can see what a failing handler leaves behind.

use std::collections::BTreeMap;

use calimero_sdk::borsh::{BorshDeserialize, BorshSerialize};
use calimero_sdk::{app, env};
use calimero_storage::collections::{Counter, LwwRegister, UnorderedMap};

#[app::state(emits = Event)]
#[derive(Debug, BorshSerialize, BorshDeserialize)]
#[borsh(crate = "calimero_sdk::borsh")]
pub struct HandlerCounter {
    items: UnorderedMap<String, LwwRegister<String>>,
    handled: Counter,
    /// The value each handled key carried when the handler ran (what the event gave it).
    seen: UnorderedMap<String, LwwRegister<String>>,
}

#[app::event]
pub enum Event {
    Set { key: String, value: String },
}

#[app::logic]
impl HandlerCounter {
    #[app::init]
    pub fn init() -> HandlerCounter {
        HandlerCounter {
            items: UnorderedMap::new(),
            handled: Counter::new(),
            seen: UnorderedMap::new(),
        }
    }

    /// Stores `value` under `key`; the node that called it then runs `count`.
    pub fn set(&mut self, key: String, value: String) -> app::Result<()> {
        self.items.insert(key.clone(), value.clone().into())?;
        app::emit!((Event::Set { key, value }, "count"));
        Ok(())
    }

    /// Stores `value` under `key` with two events: the first names `refuse` (which fails), the
    /// second `count`.
    pub fn set_refused(&mut self, key: String, value: String) -> app::Result<()> {
        self.items.insert(key.clone(), value.clone().into())?;
        let refused = Event::Set {
            key: key.clone(),
            value: value.clone(),
        };
        app::emit!((refused, "refuse"));
        app::emit!((Event::Set { key, value }, "count"));
        Ok(())
    }

    /// The handler of `set`: one more run by this node, and what the event carried.
    pub fn count(&mut self, key: String, value: String) -> app::Result<()> {
        env::log(&format!("count {key:?}"));
        self.handled.increment()?;
        self.seen.insert(key, value.into())?;
        Ok(())
    }

    /// Writes nothing, and names `count` all the same: its caller runs it.
    pub fn announce(&self, key: String, value: String) -> app::Result<()> {
        app::emit!((Event::Set { key, value }, "count"));
        Ok(())
    }

    /// A handler that names itself again: a chain of handlers with no end but the node's.
    pub fn echo(&mut self, key: String, value: String) -> app::Result<()> {
        self.handled.increment()?;
        app::emit!((Event::Set { key, value }, "echo"));
        Ok(())
    }

    /// A handler that always fails.
    pub fn refuse(&mut self, key: String, value: String) -> app::Result<()> {
        app::bail!("refused {key:?} = {value:?}")
    }

    pub fn get(&self, key: String) -> app::Result<Option<String>> {
        Ok(self.items.get(&key)?.map(|v| v.get().clone()))
    }

    /// Handler runs by every member.
    pub fn handled(&self) -> app::Result<u64> {
        Ok(self.handled.value()?)
    }

    /// Handler runs by the node asked (its executor).
    pub fn handled_here(&self) -> app::Result<u64> {
        Ok(self.handled.get_positive_count(&env::executor_id())?)
    }

    /// Each key a handler ran for, with the value its event carried.
    pub fn seen(&self) -> app::Result<BTreeMap<String, String>> {
        Ok(self
            .seen
            .entries()?
            .map(|(k, v)| (k, v.get().clone()))
            .collect())
    }
}
