//! A blake3 Merkle checkpoint of a context's shared state, kept up to date write by write.
//!
//! Two levels: each entry is a leaf `blake3(len ‖ key ‖ value)`; entries fall into 256 buckets by
//! the first byte of `blake3(key)`; a bucket hashes its leaves in key order, and the root hashes
//! the 256 bucket hashes. A write rehashes only its bucket, and two members can compare bucket
//! by bucket to find where they differ. It depends only on the bytes stored, so it is the same
//! natively and in the browser.

use std::collections::BTreeMap;

#[derive(Debug, Clone)]
pub struct MerkleTree {
    leaves: Vec<BTreeMap<Vec<u8>, [u8; 32]>>,
    buckets: Vec<[u8; 32]>,
    root: [u8; 32],
}

fn bucket_of(key: &[u8]) -> usize {
    blake3::hash(key).as_bytes()[0] as usize
}

fn leaf(key: &[u8], value: &[u8]) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new();
    hasher.update(&(key.len() as u64).to_le_bytes());
    hasher.update(key);
    hasher.update(value);
    *hasher.finalize().as_bytes()
}

impl MerkleTree {
    pub fn build<'a>(entries: impl IntoIterator<Item = (&'a Vec<u8>, &'a Vec<u8>)>) -> Self {
        let mut tree = Self {
            leaves: vec![BTreeMap::new(); 256],
            buckets: vec![[0; 32]; 256],
            root: [0; 32],
        };
        for (key, value) in entries {
            tree.leaves[bucket_of(key)].insert(key.clone(), leaf(key, value));
        }
        for b in 0..256 {
            tree.rehash_bucket(b);
        }
        tree.rehash_root();
        tree
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
                Some(value) => self.leaves[b].insert(key.clone(), leaf(key, value)),
                None => self.leaves[b].remove(key),
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
}
