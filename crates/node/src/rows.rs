//! What a context (or the node's blob store) has read of its rows so far.
//!
//! A node does not load a context's state when it opens: a call reads the rows it touches. A
//! run takes a row the node has not read yet as absent and names it in
//! [`RuntimeError::NotLoaded`]; the node reads the rows named from its store, and runs the call
//! again only if one of them exists (calls are deterministic, so the re-run is the same call). A
//! context with 100,000 entries thus answers its first `get` after a handful of reads, and
//! memory holds what calls touched, not the whole state.
//!
//! A set of a new key misses rows that do not exist yet, and reading them costs a round trip to
//! IndexedDB per call. So once a missed row turns out absent, the node lists the
//! context's keys (not values) in one request, if there are at most [`MAX_LISTED_ROWS`]: from
//! then on a row neither known nor listed is absent, and needs no read.
//!
//! [`RuntimeError::NotLoaded`]: tabnode_runtime::RuntimeError::NotLoaded

use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use tabnode_runtime::{NotLoaded, StateView, WriteSet};

/// Rows read from the store or written since, by key.
#[derive(Debug, Clone, Default)]
pub struct Rows {
    /// `None`: known to be absent.
    known: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    /// Every row is in `known` (a context this node started, or one read whole): a key that is
    /// not there is absent, not unread.
    complete: bool,
    /// Every key the store held when it was listed (values unread); rows written since are in
    /// `known`. A key in neither is absent.
    listed: Option<Rc<BTreeSet<Vec<u8>>>>,
    /// The store held more than [`MAX_LISTED_ROWS`] keys when asked: rows are read one by one.
    too_many_to_list: bool,
}

/// The most keys of one context's shared or private state the node lists (about 100 bytes of
/// memory each); a larger state is read row by row.
pub const MAX_LISTED_ROWS: usize = 32 * 1024;

impl Rows {
    /// Rows that are all in memory from the start (a new context: the store has none of them).
    pub fn complete(rows: impl IntoIterator<Item = (Vec<u8>, Vec<u8>)>) -> Self {
        Self {
            known: rows.into_iter().map(|(k, v)| (k, Some(v))).collect(),
            complete: true,
            ..Self::default()
        }
    }

    /// Rows still in the store: each is read when a call asks for it.
    pub fn unread() -> Self {
        Self::default()
    }

    /// Whether listing the store's keys would tell absent rows apart (not yet listed, not
    /// known whole, not found too many).
    pub fn wants_listing(&self) -> bool {
        !self.complete && self.listed.is_none() && !self.too_many_to_list
    }

    /// Takes the keys the store holds (`None`: more than [`MAX_LISTED_ROWS`]); rows written
    /// since the listing began must not exist (the node runs one operation at a time).
    pub fn list(&mut self, keys: Option<Vec<Vec<u8>>>) {
        match keys {
            Some(keys) => self.listed = Some(Rc::new(keys.into_iter().collect())),
            None => self.too_many_to_list = true,
        }
    }

    /// Whether `key`, not in `known`, is absent (not merely unread).
    fn absent_unless_known(&self, key: &[u8]) -> bool {
        self.complete || self.listed.as_ref().is_some_and(|l| !l.contains(key))
    }

    /// Records what the store holds under `key` (`None`: nothing).
    pub fn learn(&mut self, key: Vec<u8>, value: Option<Vec<u8>>) {
        self.known.insert(key, value);
    }

    /// Takes the whole set of rows, read from the store in one scan; rows written since the
    /// scan began must not exist (the node runs one operation at a time).
    pub fn learn_all(&mut self, rows: impl IntoIterator<Item = (Vec<u8>, Vec<u8>)>) {
        *self = Self::complete(rows);
    }

    /// Applies a call's writes (after they are stored).
    pub fn apply(&mut self, writes: WriteSet) {
        if self.complete {
            for (key, value) in writes {
                match value {
                    Some(v) => self.known.insert(key, Some(v)),
                    None => self.known.remove(&key),
                };
            }
        } else {
            self.known.extend(writes);
        }
    }

    /// Whether `key` is known to hold `value` (`None`: known to be absent).
    pub fn holds(&self, key: &[u8], value: Option<&[u8]>) -> bool {
        match self.known.get(key) {
            Some(known) => known.as_deref() == value,
            None => self.absent_unless_known(key) && value.is_none(),
        }
    }

    /// The rows known to exist, in key order (the whole state if [`Self::is_complete`]).
    pub fn present(&self) -> impl Iterator<Item = (&Vec<u8>, &Vec<u8>)> {
        self.known
            .iter()
            .filter_map(|(k, v)| v.as_ref().map(|v| (k, v)))
    }

    /// How many rows are in memory (read or written), present or known absent.
    pub fn len(&self) -> usize {
        self.known.len()
    }
}

impl StateView for Rows {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, NotLoaded> {
        match self.known.get(key) {
            Some(value) => Ok(value.clone()),
            None if self.absent_unless_known(key) => Ok(None),
            None => Err(NotLoaded),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unread_rows_ask_complete_rows_answer() {
        let mut rows = Rows::unread();
        assert_eq!(rows.get(b"k"), Err(NotLoaded));
        rows.learn(b"k".to_vec(), None);
        assert_eq!(rows.get(b"k"), Ok(None));
        rows.apply(WriteSet::from([(b"j".to_vec(), Some(b"v".to_vec()))]));
        assert_eq!(rows.get(b"j"), Ok(Some(b"v".to_vec())));
        rows.apply(WriteSet::from([(b"j".to_vec(), None)]));
        assert_eq!(rows.get(b"j"), Ok(None), "a removal is known, not unread");

        assert!(rows.holds(b"j", None) && rows.holds(b"k", None));
        assert!(!rows.holds(b"j", Some(b"v")) && !rows.holds(b"unread", None));

        let mut whole = Rows::complete([(b"a".to_vec(), b"1".to_vec())]);
        assert!(whole.holds(b"a", Some(b"1")) && whole.holds(b"zzz", None));
        assert!(!whole.holds(b"a", Some(b"2")) && !whole.holds(b"a", None));
        assert_eq!(whole.get(b"zzz"), Ok(None));
        whole.apply(WriteSet::from([(b"a".to_vec(), None)]));
        assert_eq!(whole.get(b"a"), Ok(None));
        assert_eq!(whole.present().count(), 0);
    }

    #[test]
    fn listed_rows_tell_absent_from_unread() {
        let mut rows = Rows::unread();
        assert!(rows.wants_listing());
        rows.learn(b"read".to_vec(), Some(b"1".to_vec()));
        rows.list(Some(vec![b"read".to_vec(), b"stored".to_vec()]));
        assert!(!rows.wants_listing());
        assert_eq!(rows.get(b"read"), Ok(Some(b"1".to_vec())));
        assert_eq!(rows.get(b"stored"), Err(NotLoaded), "listed, not read");
        assert_eq!(
            rows.get(b"new"),
            Ok(None),
            "neither known nor listed: absent"
        );
        assert!(rows.holds(b"new", None) && !rows.holds(b"stored", None));
        rows.apply(WriteSet::from([
            (b"new".to_vec(), Some(b"2".to_vec())),
            (b"stored".to_vec(), None),
        ]));
        assert_eq!(rows.get(b"new"), Ok(Some(b"2".to_vec())), "written since");
        assert_eq!(rows.get(b"stored"), Ok(None), "removed since");

        let mut large = Rows::unread();
        large.list(None);
        assert!(!large.wants_listing(), "too many: not asked again");
        assert_eq!(large.get(b"new"), Err(NotLoaded));
        large.learn_all([(b"a".to_vec(), b"1".to_vec())]);
        assert_eq!(large.get(b"new"), Ok(None), "read whole");
    }
}
