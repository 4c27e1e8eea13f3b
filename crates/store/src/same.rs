//! Whether two byte strings are equal, compared eight bytes at a time. On wasm32, `==` on
//! slices calls compiler-builtins' `memcmp`, which compares a byte at a time; the store and the
//! Merkle tree compare a big value against the one it replaces on every write (89 KB a `set`
//! at 1,000 keys, twice), which that made 0.1 ms of a set in the page.

pub(crate) fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let ((a_words, a_rest), (b_words, b_rest)) = (a.as_chunks::<8>(), b.as_chunks::<8>());
    a_words
        .iter()
        .zip(b_words)
        .all(|(x, y)| u64::from_ne_bytes(*x) == u64::from_ne_bytes(*y))
        && a_rest == b_rest
}

#[cfg(test)]
mod tests {
    use super::same_bytes;

    #[test]
    fn equal_only_when_every_byte_is() {
        let a: Vec<u8> = (0..1003u32).map(|i| i as u8).collect();
        assert!(same_bytes(&a, &a.clone()));
        assert!(same_bytes(&[], &[]));
        assert!(!same_bytes(&a, &a[..1002]));
        for at in [0, 7, 8, 500, 999, 1000, 1002] {
            let mut b = a.clone();
            b[at] ^= 1;
            assert!(!same_bytes(&a, &b), "a difference at {at}");
        }
    }
}
