//! What the IndexedDB store knows of its values in parts: which keys may have parts and, when
//! the store is its database's only writer, the value each one's parts hold now, so that a
//! rewrite writes only the parts that changed. Plain bookkeeping with no browser types, so it
//! is tested natively.
//!
//! A part `i` of a value is its bytes `i * PART_BYTES ..` (at most [`PART_BYTES`]). A kept value
//! is exactly what the database's parts hold, so a part of a new value equal to the kept one's
//! at the same place need not be written. What keeps that true (the store's side): a value is
//! kept when its write is issued, and every kept value is forgotten when a write fails; a write
//! compares against kept values only when no other write is under way; a value read is kept
//! only if no write began meanwhile and its parts are laid out in [`PART_BYTES`].

use std::collections::HashMap;

use crate::same::same_bytes;
use crate::{Namespace, PARTED_MAX, PART_BYTES, WHOLE_MAX};

/// The most bytes of values kept to compare against: past it every kept value is forgotten
/// (each such key's next write writes all its parts) and keeping starts over.
const KEPT_MAX: usize = 32 << 20;

/// Keys that may have parts, by namespace, each with its value if known.
#[derive(Default)]
pub(crate) struct Parted {
    keys: HashMap<Namespace, HashMap<Vec<u8>, Option<Vec<u8>>>>,
    kept_bytes: usize,
}

/// The parts of a value to write.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct PartWrites {
    /// The numbers of the parts to write; `None`: every part.
    pub only: Option<Vec<u32>>,
    /// Whether parts past the value's last may exist and must be deleted.
    pub trim: bool,
}

/// Whether a value of `len` bytes in `ns` is stored in parts: over [`WHOLE_MAX`], and in the
/// state namespace at any size (rewritten with small changes), elsewhere up to [`PARTED_MAX`]
/// (blobs and apps are written once: one record is cheaper).
pub(crate) fn in_parts(ns: Namespace, len: usize) -> bool {
    len > WHOLE_MAX && (len <= PARTED_MAX || ns == Namespace::State)
}

/// How many parts a value of `len` bytes has.
pub(crate) fn parts_of(len: usize) -> usize {
    len.div_ceil(PART_BYTES)
}

impl Parted {
    /// Whether `key` in `ns` may have parts.
    pub fn may_have(&self, ns: Namespace, key: &[u8]) -> bool {
        self.keys
            .get(&ns)
            .is_some_and(|keys| keys.contains_key(key))
    }

    /// Whether a key of `ns` that starts with `prefix` may have parts.
    pub fn any_under(&self, ns: Namespace, prefix: &[u8]) -> bool {
        self.keys
            .get(&ns)
            .is_some_and(|keys| keys.keys().any(|key| key.starts_with(prefix)))
    }

    /// `key` may have parts (met at open, or in a read); what is kept of it stays.
    pub fn note(&mut self, ns: Namespace, key: &[u8]) {
        if !self.may_have(ns, key) {
            self.keys.entry(ns).or_default().insert(key.to_vec(), None);
        }
    }

    /// Whether `key` may have parts, before a write of it that is not in parts (a smaller value,
    /// a delete) deletes them: what they held is then no longer known.
    pub fn forget(&mut self, ns: Namespace, key: &[u8]) -> bool {
        let Some(kept) = self.keys.get_mut(&ns).and_then(|keys| keys.get_mut(key)) else {
            return false;
        };
        self.kept_bytes -= kept.take().map_or(0, |value| value.len());
        true
    }

    /// The parts of `value` to write under `key` (with `compare`, only those that differ from
    /// the kept value's; else all), and, with `keep`, `value` kept as what they hold then.
    pub fn rewrite(
        &mut self,
        ns: Namespace,
        key: &[u8],
        value: &[u8],
        compare: bool,
        keep: bool,
    ) -> PartWrites {
        let writes = match compare {
            true => self.writes(ns, key, value),
            false => PartWrites {
                only: None,
                trim: true,
            },
        };
        match keep {
            true => self.keep(ns, key, value),
            false => {
                self.note(ns, key);
                self.forget(ns, key);
            }
        }
        writes
    }

    /// `key`'s parts hold `value` now (the kept copy's buffer is reused).
    pub fn keep(&mut self, ns: Namespace, key: &[u8], value: &[u8]) {
        if self.kept_bytes + value.len() > KEPT_MAX {
            self.forget_values();
        }
        let slot = self
            .keys
            .entry(ns)
            .or_default()
            .entry(key.to_vec())
            .or_default();
        let mut kept = slot.take().unwrap_or_default();
        self.kept_bytes = self.kept_bytes - kept.len() + value.len();
        kept.clear();
        kept.extend_from_slice(value);
        *slot = Some(kept);
    }

    /// Forgets every kept value (the keys still may have parts).
    pub fn forget_values(&mut self) {
        for value in self.keys.values_mut().flat_map(|keys| keys.values_mut()) {
            *value = None;
        }
        self.kept_bytes = 0;
    }

    /// The parts of `value` to write under `key`: the ones that differ from the kept value's,
    /// or all of them if none is kept.
    fn writes(&self, ns: Namespace, key: &[u8], value: &[u8]) -> PartWrites {
        let kept = self
            .keys
            .get(&ns)
            .and_then(|keys| keys.get(key))
            .and_then(Option::as_deref);
        let Some(old) = kept else {
            return PartWrites {
                only: None,
                trim: true,
            };
        };
        let only = value
            .chunks(PART_BYTES)
            .enumerate()
            .filter(|(i, part)| {
                let at = i * PART_BYTES;
                !old.get(at..old.len().min(at + PART_BYTES))
                    .is_some_and(|was| same_bytes(was, part))
            })
            .map(|(i, _)| i as u32)
            .collect();
        PartWrites {
            only: Some(only),
            trim: parts_of(old.len()) > parts_of(value.len()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NS: Namespace = Namespace::State;

    fn value(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31) ^ seed)
            .collect()
    }

    #[test]
    fn with_nothing_kept_every_part_is_written_and_the_rest_deleted() {
        let mut parted = Parted::default();
        let all = PartWrites {
            only: None,
            trim: true,
        };
        assert_eq!(parted.writes(NS, b"k", &value(3 * PART_BYTES, 1)), all);
        parted.note(NS, b"k");
        assert!(parted.may_have(NS, b"k") && parted.any_under(NS, b""));
        assert_eq!(parted.writes(NS, b"k", &value(3 * PART_BYTES, 1)), all);
    }

    #[test]
    fn only_the_parts_that_differ_from_the_kept_value_are_written() {
        let mut parted = Parted::default();
        let old = value(5 * PART_BYTES + 100, 1);
        parted.keep(NS, b"k", &old);
        // A byte changed in part 0, bytes added at the end (the last part grows, one more).
        let mut new = old.clone();
        new[66] ^= 1;
        new.extend_from_slice(&[7; PART_BYTES]);
        let writes = parted.writes(NS, b"k", &new);
        assert_eq!(writes.only, Some(vec![0, 5, 6]));
        assert!(!writes.trim, "the new value has more parts");
        // The same value again: nothing to write.
        assert_eq!(parted.writes(NS, b"k", &old).only, Some(vec![]));
        // A shorter one: its last part differs, the parts past it go.
        let short = old[..2 * PART_BYTES + 1].to_vec();
        assert_eq!(
            parted.writes(NS, b"k", &short),
            PartWrites {
                only: Some(vec![2]),
                trim: true
            }
        );
        // Another key, or the same key in another namespace, knows nothing.
        assert_eq!(parted.writes(Namespace::Deltas, b"k", &old).only, None);
        assert_eq!(parted.writes(NS, b"j", &old).only, None);
    }

    #[test]
    fn forgetting_drops_what_was_kept_and_noting_does_not() {
        let mut parted = Parted::default();
        parted.keep(NS, b"a", &value(2 * PART_BYTES, 1));
        parted.keep(NS, b"b", &value(2 * PART_BYTES, 2));
        parted.note(NS, b"b");
        assert_eq!(
            parted.writes(NS, b"b", &value(2 * PART_BYTES, 2)).only,
            Some(vec![])
        );
        assert!(parted.forget(NS, b"a"));
        assert!(!parted.forget(NS, b"c"), "never had parts");
        assert!(!parted.may_have(NS, b"c"));
        assert_eq!(
            parted.writes(NS, b"a", &value(2 * PART_BYTES, 1)).only,
            None
        );
        assert_eq!(parted.kept_bytes, 2 * PART_BYTES);
        parted.forget_values();
        assert_eq!(
            parted.writes(NS, b"b", &value(2 * PART_BYTES, 2)).only,
            None
        );
        assert!(parted.may_have(NS, b"a") && parted.may_have(NS, b"b"));
        assert_eq!(parted.kept_bytes, 0);
    }

    #[test]
    fn past_the_most_kept_bytes_the_older_values_are_forgotten() {
        let mut parted = Parted::default();
        let big = value(KEPT_MAX / 2 + 1, 1);
        parted.keep(NS, b"a", &big);
        parted.keep(NS, b"b", &big);
        assert_eq!(parted.writes(NS, b"a", &big).only, None, "forgotten");
        assert_eq!(parted.writes(NS, b"b", &big).only, Some(vec![]), "kept");
        assert_eq!(parted.kept_bytes, big.len());
    }

    #[test]
    fn state_values_go_in_parts_at_any_size_over_the_whole_max_and_others_up_to_the_parted_max() {
        for ns in [Namespace::State, Namespace::Blobs] {
            assert!(!in_parts(ns, WHOLE_MAX));
            assert!(in_parts(ns, WHOLE_MAX + 1));
            assert!(in_parts(ns, PARTED_MAX));
        }
        assert!(in_parts(Namespace::State, PARTED_MAX + 1));
        assert!(!in_parts(Namespace::Blobs, PARTED_MAX + 1));
    }

    #[test]
    fn a_rewrite_keeps_its_value_only_when_asked_and_compares_only_when_asked() {
        let mut parted = Parted::default();
        let old = vec![1; 3 * PART_BYTES];
        assert_eq!(parted.rewrite(NS, b"k", &old, true, true).only, None);
        let mut new = old.clone();
        new[0] = 2;
        assert_eq!(
            parted.rewrite(NS, b"k", &new, true, true).only,
            Some(vec![0])
        );
        assert_eq!(parted.rewrite(NS, b"k", &old, false, true).only, None);
        parted.rewrite(NS, b"k", &new, true, false);
        assert_eq!(parted.writes(NS, b"k", &new).only, None, "not kept");
        assert!(parted.may_have(NS, b"k"));
        assert_eq!(parted.kept_bytes, 0);
    }
}
