//! A blake3 Merkle checkpoint of a context's shared state, kept up to date write by write.
//!
//! Two levels: each entry is a leaf `blake3(len ‖ key ‖ value)`; entries fall into 256 buckets by
//! the first byte of `blake3(key)`; a bucket hashes its leaves in key order, and the root hashes
//! the 256 bucket hashes. A write rehashes only its bucket, and two members can compare bucket
//! by bucket to find where they differ. It depends only on the bytes stored, so it is the same
//! natively and in the browser.
//!
//! A big value is rehashed only where it changed: calimero-storage rewrites a collection's whole
//! index row on every insert (89 KB at 1,000 keys, 890 KB at 10,000), of which a few bytes at
//! its start and end differ. For a leaf of [`BIG_LEAF`] bytes or more the tree keeps the value
//! and the chaining values of its input's 1 KiB chunks ([`crate::blake3_tree`]), and a write
//! hashes only the chunks whose bytes differ from the value it replaces; the leaf is the same
//! hash. What it keeps is about the size of the big values themselves.

use std::collections::{BTreeMap, HashMap};

use crate::blake3_tree::{self, ChainingValue};
use crate::same::same_bytes;

/// A leaf whose input (`len ‖ key ‖ value`) is this long or longer is kept with its chunks'
/// chaining values.
const BIG_LEAF: usize = 8 * 1024;
/// blake3's chunk: the finest part of its tree.
const CHUNK: usize = 1024;

#[derive(Debug, Clone)]
pub struct MerkleTree {
    leaves: Vec<BTreeMap<Vec<u8>, [u8; 32]>>,
    buckets: Vec<[u8; 32]>,
    root: [u8; 32],
    /// Per big leaf, its value and the chaining value of each chunk of its input: the next
    /// write of the key hashes only the chunks whose bytes differ.
    big: HashMap<Vec<u8>, (Vec<u8>, Vec<ChainingValue>)>,
}

fn bucket_of(key: &[u8]) -> usize {
    blake3::hash(key).as_bytes()[0] as usize
}

/// A leaf's input, `len(key) ‖ key ‖ value` (`len` as a u64, little-endian), as its pieces.
struct Input<'a> {
    key_len: [u8; 8],
    key: &'a [u8],
    value: &'a [u8],
}

impl<'a> Input<'a> {
    fn new(key: &'a [u8], value: &'a [u8]) -> Self {
        Self {
            key_len: (key.len() as u64).to_le_bytes(),
            key,
            value,
        }
    }

    fn len(&self) -> usize {
        8 + self.key.len() + self.value.len()
    }

    /// The pieces of bytes `start..end` of the input (at most three).
    fn slice(&self, start: usize, end: usize) -> impl Iterator<Item = &[u8]> {
        let mut at = 0;
        [&self.key_len[..], self.key, self.value]
            .into_iter()
            .filter_map(move |piece| {
                let (from, to) = (at, at + piece.len());
                at = to;
                (start < to && end > from)
                    .then(|| &piece[start.max(from) - from..end.min(to) - from])
            })
    }
}

/// A leaf's hash: the blake3 of its input.
fn leaf(key: &[u8], value: &[u8]) -> [u8; 32] {
    let input = Input::new(key, value);
    let mut hasher = blake3::Hasher::new();
    for piece in input.slice(0, input.len()) {
        hasher.update(piece);
    }
    *hasher.finalize().as_bytes()
}

/// A big leaf's hash and its chunks' chaining values, reusing those of `old` (the value it
/// replaces under the same key, and its chunks' values) for chunks whose bytes are the same:
/// the input's `len ‖ key` is, so only the value's bytes are compared.
fn big_leaf(
    key: &[u8],
    value: &[u8],
    old: Option<(&[u8], &[ChainingValue])>,
) -> ([u8; 32], Vec<ChainingValue>) {
    let input = Input::new(key, value);
    let (len, head) = (input.len(), 8 + key.len());
    let chunks: Vec<ChainingValue> = (0..len.div_ceil(CHUNK))
        .map(|i| {
            let (start, end) = (i * CHUNK, ((i + 1) * CHUNK).min(len));
            // The old chunk's value, if it spanned the same bytes and they are the same.
            let kept = old.and_then(|(was, chunks)| {
                let (from, to) = (start.saturating_sub(head), end - head);
                let same = ((i + 1) * CHUNK).min(head + was.len()) == end
                    && was
                        .get(from..to)
                        .is_some_and(|was| same_bytes(was, &value[from..to]));
                same.then(|| chunks.get(i).copied()).flatten()
            });
            kept.unwrap_or_else(|| blake3_tree::part_hash(CHUNK, i, input.slice(start, end)))
        })
        .collect();
    (blake3_tree::root_of(len as u64, CHUNK, &chunks), chunks)
}

impl MerkleTree {
    pub fn build<'a>(entries: impl IntoIterator<Item = (&'a Vec<u8>, &'a Vec<u8>)>) -> Self {
        let mut tree = Self {
            leaves: vec![BTreeMap::new(); 256],
            buckets: vec![[0; 32]; 256],
            root: [0; 32],
            big: HashMap::new(),
        };
        for (key, value) in entries {
            let hash = tree.leaf(key, value);
            tree.leaves[bucket_of(key)].insert(key.clone(), hash);
        }
        for b in 0..256 {
            tree.rehash_bucket(b);
        }
        tree.rehash_root();
        tree
    }

    /// The leaf of `key` holding `value`; a big leaf is hashed against, and then kept as, the
    /// one before it.
    fn leaf(&mut self, key: &[u8], value: &[u8]) -> [u8; 32] {
        if 8 + key.len() + value.len() < BIG_LEAF {
            self.big.remove(key);
            return leaf(key, value);
        }
        let old = self
            .big
            .get(key)
            .map(|(was, chunks)| (was.as_slice(), chunks.as_slice()));
        let (hash, chunks) = big_leaf(key, value, old);
        self.big.insert(key.to_vec(), (value.to_vec(), chunks));
        hash
    }

    fn rehash_bucket(&mut self, b: usize) {
        let mut hasher = blake3::Hasher::new();
        for hash in self.leaves[b].values() {
            hasher.update(hash);
        }
        self.buckets[b] = *hasher.finalize().as_bytes();
    }

    fn rehash_root(&mut self) {
        let mut hasher = blake3::Hasher::new();
        for bucket in &self.buckets {
            hasher.update(bucket);
        }
        self.root = *hasher.finalize().as_bytes();
    }

    /// Applies writes (`None` removes) and rehashes only the buckets they touched.
    pub fn update<'a>(
        &mut self,
        writes: impl IntoIterator<Item = (&'a Vec<u8>, &'a Option<Vec<u8>>)>,
    ) {
        let mut dirty = [false; 256];
        for (key, value) in writes {
            let b = bucket_of(key);
            match value {
                Some(value) => {
                    let hash = self.leaf(key, value);
                    self.leaves[b].insert(key.clone(), hash)
                }
                None => {
                    self.big.remove(key.as_slice());
                    self.leaves[b].remove(key)
                }
            };
            dirty[b] = true;
        }
        if !dirty.contains(&true) {
            return;
        }
        for (b, _) in dirty.iter().enumerate().filter(|(_, d)| **d) {
            self.rehash_bucket(b);
        }
        self.rehash_root();
    }

    pub fn root(&self) -> [u8; 32] {
        self.root
    }

    /// The 256 bucket hashes, to find where two states differ.
    pub fn buckets(&self) -> &[[u8; 32]] {
        &self.buckets
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(n: u32) -> BTreeMap<Vec<u8>, Vec<u8>> {
        (0..n)
            .map(|i| (format!("k{i}").into_bytes(), format!("v{i}").into_bytes()))
            .collect()
    }

    #[test]
    fn incremental_updates_equal_a_fresh_build() {
        let mut state = entries(1000);
        let mut tree = MerkleTree::build(&state);
        let before = tree.root();
        let writes: BTreeMap<Vec<u8>, Option<Vec<u8>>> = [
            (b"k1".to_vec(), Some(b"changed".to_vec())),
            (b"k2".to_vec(), None),
            (b"new".to_vec(), Some(b"x".to_vec())),
        ]
        .into_iter()
        .collect();
        tree.update(&writes);
        for (k, v) in &writes {
            match v {
                Some(v) => state.insert(k.clone(), v.clone()),
                None => state.remove(k),
            };
        }
        assert_ne!(tree.root(), before);
        assert_eq!(tree.root(), MerkleTree::build(&state).root());
        let differing = tree
            .buckets()
            .iter()
            .zip(MerkleTree::build(&entries(1000)).buckets())
            .filter(|(a, b)| a != b)
            .count();
        assert!(
            (1..=3).contains(&differing),
            "only the touched buckets changed: {differing}"
        );
    }

    #[test]
    fn empty_and_value_sensitive() {
        let empty = MerkleTree::build(&BTreeMap::new());
        let mut a = BTreeMap::new();
        a.insert(b"k".to_vec(), b"v".to_vec());
        let mut b = a.clone();
        b.insert(b"k".to_vec(), b"w".to_vec());
        assert_ne!(MerkleTree::build(&a).root(), empty.root());
        assert_ne!(MerkleTree::build(&a).root(), MerkleTree::build(&b).root());
    }

    /// Big values edited the ways a collection's index is (and others): each update's root is
    /// a fresh build's, so a chunk kept though its bytes changed would show.
    #[test]
    fn big_values_rehashed_in_part_equal_a_fresh_build() {
        let mut state = entries(50);
        let mut tree = MerkleTree::build(&state);
        let key = b"index".to_vec();
        let mut value: Vec<u8> = (0..20_000u32).map(|i| (i % 253) as u8).collect();
        let mut seed = 7u64;
        let mut next = |n: usize| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) as usize % n.max(1)
        };
        for round in 0..60 {
            match round % 6 {
                0 => value.extend((0..89).map(|i| i as u8)), // a child added at the end
                1 => value[0] = value[0].wrapping_add(1),    // the count at the start
                2 => value.truncate(value.len() - 1 - next(3000)), // shrinks
                3 => {
                    let at = next(value.len());
                    value[at] ^= 0x5a; // one byte anywhere
                }
                4 => value.splice(0..0, [1, 2, 3]).for_each(drop), // everything shifts
                _ => value.truncate(next(12_000)),                 // perhaps under BIG_LEAF
            }
            if value.len() < 9000 {
                value.extend((0..15_000u32).map(|i| (i * 3) as u8));
            }
            let writes: BTreeMap<Vec<u8>, Option<Vec<u8>>> =
                [(key.clone(), Some(value.clone()))].into_iter().collect();
            tree.update(&writes);
            state.insert(key.clone(), value.clone());
            assert_eq!(
                tree.root(),
                MerkleTree::build(&state).root(),
                "round {round}"
            );
        }
        let removed: BTreeMap<Vec<u8>, Option<Vec<u8>>> =
            [(key.clone(), None)].into_iter().collect();
        tree.update(&removed);
        state.remove(&key);
        assert!(tree.big.is_empty());
        assert_eq!(tree.root(), MerkleTree::build(&state).root());
    }

    #[test]
    fn a_big_leaf_is_the_blake3_of_its_input() {
        let value = vec![9u8; 50_000];
        let (hash, chunks) = big_leaf(b"k", &value, None);
        assert_eq!(hash, leaf(b"k", &value));
        assert_eq!(chunks.len(), (8 + 1 + 50_000usize).div_ceil(CHUNK));
    }
}
