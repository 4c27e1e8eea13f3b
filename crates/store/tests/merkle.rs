//! The Merkle checkpoint is a function of the stored bytes alone: the same content gives the same
//! root natively and in the browser (this file runs in both: `cargo test -p tabnode-store`, and
//! in headless Chromium through `scripts/wasm-test.sh -p tabnode-store`), checked against a root
//! computed once and written down here.

#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

use std::collections::BTreeMap;

use tabnode_store::MerkleTree;

/// 1,000 entries of mixed sizes, some empty values, one long one.
fn content() -> BTreeMap<Vec<u8>, Vec<u8>> {
    (0..1000u32)
        .map(|i| {
            let key = format!("key-{i}").into_bytes();
            let value = match i % 7 {
                0 => Vec::new(),
                3 => vec![i as u8; 4096],
                _ => format!("value {i}").into_bytes(),
            };
            (key, value)
        })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The root of [`content`], as this implementation computes it on every platform.
const ROOT: &str = "f350acf5e1ea957a13bb07061fdcd30dc49c714d6b4f4f663f312d071ab9ff0f";

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn the_same_content_gives_the_same_root_everywhere() {
    let content = content();
    let tree = MerkleTree::build(&content);
    assert_eq!(hex(&tree.root()), ROOT);

    // Kept up to date write by write, it ends where a fresh build of the result does.
    let mut updated = MerkleTree::build(&BTreeMap::new());
    let writes: BTreeMap<Vec<u8>, Option<Vec<u8>>> = content
        .iter()
        .map(|(k, v)| (k.clone(), Some(v.clone())))
        .collect();
    updated.update(&writes);
    assert_eq!(hex(&updated.root()), ROOT);
}

/// A big value (a collection's index row) edited where calimero-storage edits it, at its start
/// and end: the tree rehashes only the chunks that changed, and ends on a fresh build's root,
/// in the browser as natively.
#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn a_big_value_edited_in_place_ends_on_a_fresh_builds_root() {
    let mut content = content();
    let mut tree = MerkleTree::build(&content);
    let key = b"index".to_vec();
    let mut index: Vec<u8> = (0..90_000u32).map(|i| (i % 241) as u8).collect();
    for child in 0..5u8 {
        index[0] = index[0].wrapping_add(1);
        index.extend([child; 89]);
        let writes: BTreeMap<Vec<u8>, Option<Vec<u8>>> =
            [(key.clone(), Some(index.clone()))].into_iter().collect();
        tree.update(&writes);
        content.insert(key.clone(), index.clone());
        assert_eq!(
            tree.root(),
            MerkleTree::build(&content).root(),
            "child {child}"
        );
    }
}
