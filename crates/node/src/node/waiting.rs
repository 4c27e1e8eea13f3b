//! Deltas waiting for their parents, within a budget of bytes per author and in all.
//!
//! Anyone who can seal a message to a context can send deltas whose parents never come. They
//! must not crowd out the deltas honest members are waiting for: each author gets a share of
//! the budget, and a delta over its author's share (or the whole budget) is refused, not kept,
//! so what others sent stays. A refused delta is asked for again, with the rest, by anti-entropy.
//! A delta whose parents are all in is kept whatever the budget: it waits for nothing, and it
//! may be the parent the waiting ones need (refused, they would wait for it for good).

use std::collections::{HashMap, HashSet};

use tabnode_types::{DeltaId, PublicKey};

use crate::delta::Delta;

/// Bytes of waiting deltas one context keeps in all.
pub const WAITING_BYTES: usize = 64 * 1024 * 1024;
/// Bytes of waiting deltas one author may hold in a context: a quarter of the whole.
pub const WAITING_BYTES_PER_AUTHOR: usize = WAITING_BYTES / 4;
/// Waiting deltas one context keeps, whatever their size, and one author's share of them.
pub const WAITING_DELTAS: usize = 10_000;
pub const WAITING_DELTAS_PER_AUTHOR: usize = WAITING_DELTAS / 4;

/// A context's waiting deltas, and the bytes each author's take.
#[derive(Debug, Default)]
pub struct Waiting {
    deltas: HashMap<DeltaId, (Delta, usize)>,
    /// Bytes and deltas waiting, per author.
    by_author: HashMap<PublicKey, (usize, usize)>,
    bytes: usize,
}

impl Waiting {
    /// Keeps `delta` (its id `id`) if the budget allows; otherwise says which budget is spent.
    pub fn insert(&mut self, id: DeltaId, delta: Delta) -> Result<(), String> {
        if self.deltas.contains_key(&id) {
            return Ok(());
        }
        let size = borsh::object_length(&delta).unwrap_or(usize::MAX);
        let author = delta.body.author;
        let (bytes, count) = self.by_author.get(&author).copied().unwrap_or((0, 0));
        if bytes.saturating_add(size) > WAITING_BYTES_PER_AUTHOR
            || count >= WAITING_DELTAS_PER_AUTHOR
        {
            return Err(format!(
                "{author} already has {count} deltas ({bytes} bytes) waiting for their parents, \
                 the most one author may ({WAITING_DELTAS_PER_AUTHOR}, {WAITING_BYTES_PER_AUTHOR} bytes)"
            ));
        }
        if self.bytes.saturating_add(size) > WAITING_BYTES || self.deltas.len() >= WAITING_DELTAS {
            return Err(format!(
                "{} deltas ({} bytes) already wait for their parents, the most a context keeps",
                self.deltas.len(),
                self.bytes
            ));
        }
        self.keep(id, delta, size);
        Ok(())
    }

    /// Keeps `delta` (its id `id`), which can be applied at once, whatever the budget: it is
    /// applied before anything else arrives, so it holds its place for no time.
    pub fn insert_ready(&mut self, id: DeltaId, delta: Delta) {
        if self.deltas.contains_key(&id) {
            return;
        }
        let size = borsh::object_length(&delta).unwrap_or(usize::MAX);
        self.keep(id, delta, size);
    }

    fn keep(&mut self, id: DeltaId, delta: Delta, size: usize) {
        let share = self.by_author.entry(delta.body.author).or_default();
        *share = (share.0 + size, share.1 + 1);
        self.bytes += size;
        self.deltas.insert(id, (delta, size));
    }

    pub fn remove(&mut self, id: &DeltaId) -> Option<Delta> {
        let (delta, size) = self.deltas.remove(id)?;
        let author = delta.body.author;
        if let Some(share) = self.by_author.get_mut(&author) {
            *share = (share.0 - size, share.1 - 1);
            if share.1 == 0 {
                self.by_author.remove(&author);
            }
        }
        self.bytes -= size;
        Some(delta)
    }

    pub fn contains_key(&self, id: &DeltaId) -> bool {
        self.deltas.contains_key(id)
    }

    pub fn len(&self) -> usize {
        self.deltas.len()
    }

    pub fn is_empty(&self) -> bool {
        self.deltas.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&DeltaId, &Delta)> {
        self.deltas.iter().map(|(id, (delta, _))| (id, delta))
    }

    /// The waiting deltas that build on `id`, directly or through other waiting deltas.
    pub fn descendants(&self, id: DeltaId) -> impl Iterator<Item = &Delta> {
        let mut children: HashMap<DeltaId, Vec<(DeltaId, &Delta)>> = HashMap::new();
        for (child, delta) in self.iter() {
            for parent in &delta.body.parents {
                children.entry(*parent).or_default().push((*child, delta));
            }
        }
        let mut found = Vec::new();
        let mut seen = HashSet::new();
        let mut stack = vec![id];
        while let Some(next) = stack.pop() {
            for (child, delta) in children.get(&next).into_iter().flatten() {
                if seen.insert(*child) {
                    found.push(*delta);
                    stack.push(*child);
                }
            }
        }
        found.into_iter()
    }
}
