//! blake3 of a whole from the hashes of its parts: blake3 hashes its input as a tree of 1 KiB
//! chunks, so a part that is a whole subtree (a power of two of chunks, at a multiple of its
//! size) has a chaining value of its own, and the parts' values merge to the hash of the whole.
//! The node checks an app's or a blob's parts against its id this way as they arrive; the
//! state's Merkle tree ([`crate::MerkleTree`]) rehashes only the parts of a big value that
//! changed.

use blake3::hazmat::{
    left_subtree_len, merge_subtrees_non_root, merge_subtrees_root, HasherExt, Mode,
};

pub use blake3::hazmat::ChainingValue;

/// The chaining value of part `index` (`part`, in pieces, at most `part_bytes` long in all) of a whole cut in
/// parts of `part_bytes`, a power of two of at least 1 KiB. Not a hash on its own: only
/// [`root_of`] makes one of it.
pub fn part_hash<'a>(
    part_bytes: usize,
    index: usize,
    part: impl IntoIterator<Item = &'a [u8]>,
) -> ChainingValue {
    let mut hasher = blake3::Hasher::new();
    hasher.set_input_offset((index * part_bytes) as u64);
    for piece in part {
        hasher.update(piece);
    }
    hasher.finalize_non_root()
}

/// The blake3 of a whole of `size` bytes cut in parts of `part_bytes` (more than one part),
/// from the parts' [`part_hash`]es: blake3's tree puts the largest power of two of bytes that
/// leaves some on the right in its left subtree, a whole number of parts for any whole of more
/// than one part.
pub fn root_of(size: u64, part_bytes: usize, hashes: &[ChainingValue]) -> [u8; 32] {
    let part_bytes = part_bytes as u64;
    let split = |len: u64| {
        let left = left_subtree_len(len);
        (left, (left / part_bytes) as usize)
    };
    fn merge(
        len: u64,
        hashes: &[ChainingValue],
        split: &dyn Fn(u64) -> (u64, usize),
    ) -> ChainingValue {
        if hashes.len() == 1 {
            return hashes[0];
        }
        let (left, at) = split(len);
        let (l, r) = (
            merge(left, &hashes[..at], split),
            merge(len - left, &hashes[at..], split),
        );
        merge_subtrees_non_root(&l, &r, Mode::Hash)
    }
    if hashes.len() == 1 {
        return hashes[0];
    }
    let (left, at) = split(size);
    let (l, r) = (
        merge(left, &hashes[..at], &split),
        merge(size - left, &hashes[at..], &split),
    );
    *merge_subtrees_root(&l, &r, Mode::Hash).as_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_merge_to_the_hash_of_the_whole() {
        let whole: Vec<u8> = (0..70_000u32).map(|i| (i * 7 % 251) as u8).collect();
        for part_bytes in [1024, 4096, 16 * 1024] {
            for len in [part_bytes + 1, 2 * part_bytes, 3 * part_bytes + 5, 70_000] {
                let whole = &whole[..len];
                let hashes: Vec<_> = whole
                    .chunks(part_bytes)
                    .enumerate()
                    .map(|(i, part)| part_hash(part_bytes, i, [part]))
                    .collect();
                assert_eq!(
                    root_of(len as u64, part_bytes, &hashes),
                    *blake3::hash(whole).as_bytes(),
                    "{len} bytes in parts of {part_bytes}"
                );
            }
        }
    }
}
