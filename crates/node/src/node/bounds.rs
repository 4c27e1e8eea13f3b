//! What a context keeps of deltas it cannot use: void deltas within a budget, and the ids of
//! deltas it refused for good.
//!
//! - *Void deltas* (the membership log lets them stand nowhere: a removed key's, a demoted
//!   writer's) must be kept while members may build on them, or the DAG splits by order of
//!   arrival. But anyone whose key was removed can go on signing them, and each one kept is
//!   stored and replicated by every member. So each key answerable for them (see
//!   [`Log::answerable_for`]) gets a budget of [`VOID_DELTAS_PER_KEY`] deltas and
//!   [`VOID_BYTES_PER_KEY`] bytes per context, and the context keeps at most
//!   [`VOID_DELTAS_PER_CONTEXT`] and [`VOID_BYTES_PER_CONTEXT`] in all (an admin in good
//!   standing can mint keys, each answerable for itself once removed); past either, a void delta whose author may not make
//!   it now is refused before it is stored (`Busy`), unless a waiting delta of another member in
//!   good standing builds on it, or holds it and announced it among its heads (that member took
//!   it within its own budget; the DAG must stay one), or a snapshot covers it. A refusal is not
//!   remembered: such a delta is taken when it comes again vouched for. So the deltas kept are
//!   at most one budget per honest member, and members that kept different ones converge even
//!   when none of them writes again.
//! - *Refused for good* ([`RefusedDeltas`]): a delta whose merge needs more than a merge's fuel
//!   ([`NodeError::OverBudget`]) is refused alike by every member and every time: its id, and
//!   those of deltas built on it, are remembered (a bounded number, the oldest forgotten first)
//!   so that anti-entropy bringing them again costs a lookup, not a merge. They are kept in the
//!   store too (`refused:` rows, see docs/storage.md), so a restart does not merge them again.
//!   Only ids of deltas whose author's signature and certificate verified and whose author
//!   may write are remembered: an id is the hash of the whole signed content, so no one can
//!   get another's delta remembered by sending something else under its id.

use std::collections::{HashMap, VecDeque};

use tabnode_types::{DeltaId, PublicKey};

/// Void deltas one key may have a context keep (see the module docs).
pub const VOID_DELTAS_PER_KEY: usize = 64;
/// Bytes of void deltas one key may have a context keep: at least a few of the largest.
pub const VOID_BYTES_PER_KEY: usize = 4 * 1024 * 1024;
/// Void deltas a context keeps in all, whoever answers for them: an admin in good standing can
/// mint keys (each its own answerable key), so a budget per key alone does not bound the store.
pub const VOID_DELTAS_PER_CONTEXT: usize = 16 * VOID_DELTAS_PER_KEY;
/// Bytes of void deltas a context keeps in all.
pub const VOID_BYTES_PER_CONTEXT: usize = 16 * VOID_BYTES_PER_KEY;
/// Ids of deltas refused for good a context remembers (and of heads members announced).
pub const REFUSED_DELTAS: usize = 4096;

/// The void deltas a context took, by the key answerable for each and in all: how many, how
/// many bytes. A tally of what came in (a delta that comes to stand later stays counted), so
/// it only grows while the context is loaded.
#[derive(Debug, Default)]
pub struct VoidTally {
    by_key: HashMap<PublicKey, (usize, usize)>,
    total: (usize, usize),
}

impl VoidTally {
    /// Why one more void delta of `size` bytes charged to `key` is over its budget, or over
    /// the context's, if it is.
    pub fn over_budget(&self, key: &PublicKey, size: usize) -> Option<String> {
        let over = |(count, bytes): (usize, usize), most: usize, most_bytes: usize| {
            count >= most || bytes.saturating_add(size) > most_bytes
        };
        let (count, bytes) = self.by_key.get(key).copied().unwrap_or_default();
        if over((count, bytes), VOID_DELTAS_PER_KEY, VOID_BYTES_PER_KEY) {
            return Some(format!(
                "{count} void deltas ({bytes} bytes) {key} answers for are kept already, the \
                 most a context keeps ({VOID_DELTAS_PER_KEY}, {VOID_BYTES_PER_KEY} bytes)"
            ));
        }
        let (count, bytes) = self.total;
        over(self.total, VOID_DELTAS_PER_CONTEXT, VOID_BYTES_PER_CONTEXT).then(|| {
            format!(
                "{count} void deltas ({bytes} bytes) are kept already, the most a context keeps \
                 in all ({VOID_DELTAS_PER_CONTEXT}, {VOID_BYTES_PER_CONTEXT} bytes)"
            )
        })
    }

    pub fn charge(&mut self, key: PublicKey, size: usize) {
        for (count, bytes) in [self.by_key.entry(key).or_default(), &mut self.total] {
            *count += 1;
            *bytes = bytes.saturating_add(size);
        }
    }
}

/// Ids of deltas refused for good (see the module docs), each with the number it was
/// remembered under: its row in the store is ordered by it, so the oldest is forgotten first
/// after a restart too.
#[derive(Debug, Default)]
pub struct RefusedDeltas {
    ids: RecentIds<u64>,
    next: u64,
}

/// What remembering one more refused id changes: the id's number, and the id forgotten to
/// make room, if one was.
#[derive(Debug, PartialEq, Eq)]
pub struct Remembered {
    pub number: u64,
    pub forgotten: Option<DeltaId>,
}

impl RefusedDeltas {
    /// The ids kept in the store, each with its number, in any order.
    pub fn from_stored(stored: impl IntoIterator<Item = (u64, DeltaId)>) -> Self {
        let mut stored: Vec<(u64, DeltaId)> = stored.into_iter().collect();
        stored.sort();
        let mut refused = Self::default();
        for (number, id) in stored {
            refused.ids.insert(id, number);
            refused.next = number + 1;
        }
        refused
    }

    /// Remembers `id`; `None` if it was already.
    pub fn remember(&mut self, id: DeltaId) -> Option<Remembered> {
        if self.ids.contains(&id) {
            return None;
        }
        let number = self.next;
        self.next += 1;
        let forgotten = self.ids.insert(id, number);
        Some(Remembered { number, forgotten })
    }

    pub fn contains(&self, id: &DeltaId) -> bool {
        self.ids.contains(id)
    }

    /// Forgets every id, and says which.
    pub fn clear(&mut self) -> Vec<DeltaId> {
        let ids = self.ids.order.drain(..).collect();
        self.ids.clear();
        ids
    }
}

/// Ids of deltas members in good standing announced as their heads (signed sync requests, under
/// the current secret), each with the last member that did: a void delta one of them holds and
/// announces is vouched for, as if that member had built on it (see the module docs).
pub type AnnouncedHeads = RecentIds<PublicKey>;

/// At most [`REFUSED_DELTAS`] ids, each with a value, the oldest forgotten first.
#[derive(Debug)]
pub struct RecentIds<V> {
    ids: HashMap<DeltaId, V>,
    order: VecDeque<DeltaId>,
}

impl<V> Default for RecentIds<V> {
    fn default() -> Self {
        Self {
            ids: HashMap::new(),
            order: VecDeque::new(),
        }
    }
}

impl<V> RecentIds<V> {
    /// Keeps `id` with `value`; returns the oldest id if it was forgotten to make room.
    pub fn insert(&mut self, id: DeltaId, value: V) -> Option<DeltaId> {
        if self.ids.insert(id, value).is_some() {
            return None;
        }
        self.order.push_back(id);
        if self.order.len() > REFUSED_DELTAS {
            let oldest = self.order.pop_front().expect("over the bound");
            self.ids.remove(&oldest);
            return Some(oldest);
        }
        None
    }

    pub fn get(&self, id: &DeltaId) -> Option<&V> {
        self.ids.get(id)
    }

    pub fn contains(&self, id: &DeltaId) -> bool {
        self.ids.contains_key(id)
    }

    /// Forgets every id.
    pub fn clear(&mut self) {
        self.ids.clear();
        self.order.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_ids_are_bounded_and_the_oldest_go_first() {
        let mut refused = RefusedDeltas::default();
        let id = |n: usize| DeltaId(blake3::hash(&n.to_le_bytes()).into());
        for n in 0..REFUSED_DELTAS + 10 {
            let forgotten = (n >= REFUSED_DELTAS).then(|| id(n - REFUSED_DELTAS));
            let number = n as u64;
            assert_eq!(
                refused.remember(id(n)),
                Some(Remembered { number, forgotten })
            );
            assert_eq!(refused.remember(id(n)), None);
        }
        assert_eq!(refused.ids.order.len(), REFUSED_DELTAS);
        assert!(!refused.contains(&id(9)));
        assert!(refused.contains(&id(10)));
        assert!(refused.contains(&id(REFUSED_DELTAS + 9)));
        // As stored (in any order), the same ids in the same order, numbered on.
        let stored = refused.ids.ids.iter().map(|(id, n)| (*n, *id));
        let mut again = RefusedDeltas::from_stored(stored.collect::<Vec<_>>());
        assert_eq!(again.ids.order, refused.ids.order);
        let next = (REFUSED_DELTAS + 10) as u64;
        let forgotten = Some(id(10));
        assert_eq!(
            again.remember(id(0)),
            Some(Remembered {
                number: next,
                forgotten
            })
        );
    }

    #[test]
    fn a_void_budget_counts_deltas_and_bytes_per_key() {
        let (mut tally, key, other) =
            (VoidTally::default(), PublicKey([1; 32]), PublicKey([2; 32]));
        for _ in 0..VOID_DELTAS_PER_KEY {
            assert_eq!(tally.over_budget(&key, 10), None);
            tally.charge(key, 10);
        }
        assert!(tally.over_budget(&key, 10).is_some());
        assert_eq!(tally.over_budget(&other, VOID_BYTES_PER_KEY), None);
        tally.charge(other, VOID_BYTES_PER_KEY);
        assert!(tally.over_budget(&other, 1).is_some());
    }

    #[test]
    fn a_void_budget_per_context_bounds_what_many_keys_have_kept() {
        let mut tally = VoidTally::default();
        let keys = VOID_DELTAS_PER_CONTEXT / VOID_DELTAS_PER_KEY;
        for k in 0..keys {
            for _ in 0..VOID_DELTAS_PER_KEY {
                assert_eq!(tally.over_budget(&PublicKey([k as u8; 32]), 1), None);
                tally.charge(PublicKey([k as u8; 32]), 1);
            }
        }
        let fresh = PublicKey([255; 32]);
        let why = tally
            .over_budget(&fresh, 1)
            .expect("over the context's budget");
        assert!(why.contains("in all"), "{why}");
    }
}
