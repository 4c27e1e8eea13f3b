//! A state checked from its rows alone (`verify_rows`): real states of the test apps verify to
//! the root the guest committed, across every collection, removals and merges; a changed
//! entity, a missing row or an extra one is caught and named.

#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

mod common;

use std::collections::BTreeMap;

use common::{guest_app, Replica};
use serde_json::json;
use tabnode_runtime::{prove_state, root_hash, verify_rows, Limits, ProofError, Runtime};

const CONTEXT: [u8; 32] = [7; 32];

/// A probe state that uses every collection, with a removal and an RGA edit.
fn probe_state() -> (BTreeMap<Vec<u8>, Vec<u8>>, [u8; 32]) {
    let rt = Runtime::new(Limits::default());
    let app = guest_app(&rt, "probe");
    let mut r = Replica::new(4);
    r.call(&rt, &app, "init", json!({"title": "first"}));
    for (method, args) in [
        ("visit", json!({})),
        ("tag", json!({"tag": "a"})),
        ("tag", json!({"tag": "b"})),
        ("push_line", json!({"line": "one"})),
        ("set_title", json!({"title": "second"})),
        ("write", json!({"pos": 0, "text": "hello"})),
    ] {
        r.call(&rt, &app, method, args);
    }
    let root = root_hash(&*r.shared, &CONTEXT).expect("a committed root");
    ((*r.shared).clone(), root)
}

/// Two kv-store replicas that wrote, removed and merged each other's artifacts.
fn merged_kv_state() -> (BTreeMap<Vec<u8>, Vec<u8>>, [u8; 32]) {
    let rt = Runtime::new(Limits::default());
    let app = guest_app(&rt, "kv_store");
    let mut a = Replica::new(1);
    let init = a.call(&rt, &app, "init", json!({}));
    let mut b = Replica::new(2);
    b.shared = a.shared.clone();
    let _ = init;
    let mut from_a = Vec::new();
    for i in 0..20 {
        let out = a.call(
            &rt,
            &app,
            "set",
            json!({"key": format!("a{i}"), "value": "x"}),
        );
        from_a.push((out.artifact.clone(), a.clock));
    }
    let out = a.call(&rt, &app, "remove", json!({"key": "a3"}));
    from_a.push((out.artifact.clone(), a.clock));
    b.call(&rt, &app, "set", json!({"key": "b", "value": "y"}));
    for (artifact, time) in from_a {
        b.sync(&rt, &app, &artifact, time);
    }
    let root = root_hash(&*b.shared, &CONTEXT).expect("a committed root");
    // The removed key's tombstone is outside the tree (as in calimero's network snapshots, a
    // snapshot leaves it out): the rows the tree reaches are the state.
    let proven = prove_state(&*b.shared, &CONTEXT).unwrap().unwrap();
    assert_eq!(proven.root_hash, root);
    let rows: BTreeMap<_, _> = b
        .shared
        .iter()
        .filter(|(k, _)| {
            proven
                .rows
                .contains(&<[u8; 32]>::try_from(k.as_slice()).unwrap())
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    assert_eq!(
        rows.len(),
        b.shared.len() - 1,
        "only the tombstone is left out"
    );
    (rows, root)
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn real_states_verify_to_their_committed_root() {
    for (name, (rows, root)) in [("probe", probe_state()), ("kv-store", merged_kv_state())] {
        assert_eq!(verify_rows(&rows, &CONTEXT), Ok(Some(root)), "{name}");
    }
    assert_eq!(verify_rows(&BTreeMap::new(), &CONTEXT), Ok(None));
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn any_changed_missing_or_extra_row_is_caught() {
    let (rows, _) = merged_kv_state();
    for (i, key) in rows.keys().enumerate() {
        // The first and last bytes: an index's id and its tombstone tag, or an entry's data.
        // (An index's metadata, its timestamps and CRDT type, is not in calimero-storage's
        // hashes, so no check from rows can see a change there.)
        for at in [0, rows[key].len() - 1] {
            let mut changed = rows.clone();
            changed.get_mut(key).unwrap()[at] ^= 1;
            assert!(
                verify_rows(&changed, &CONTEXT).is_err(),
                "row {i} changed at {at}"
            );
        }

        let mut missing = rows.clone();
        missing.remove(key);
        assert!(verify_rows(&missing, &CONTEXT).is_err(), "row {i} missing");
    }
    let mut extra = rows.clone();
    extra.insert(vec![9; 32], b"smuggled".to_vec());
    assert!(matches!(
        verify_rows(&extra, &CONTEXT),
        Err(ProofError::Unreached(_))
    ));
}

/// Concurrent writes of one key can leave calimero-storage listing the key's entry twice in
/// the map, one listing with a hash it no longer updates: such a state still verifies.
#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn concurrent_writes_of_one_key_still_verify() {
    let rt = Runtime::new(Limits::default());
    let app = guest_app(&rt, "kv_store");
    let mut a = Replica::new(1);
    a.call(&rt, &app, "init", json!({}));
    let mut b = Replica::new(2);
    b.shared = a.shared.clone();
    b.clock += 500_000;
    for round in 0..3 {
        let from_a = a.call(
            &rt,
            &app,
            "set",
            json!({"key": "same", "value": format!("a{round}")}),
        );
        let from_b = b.call(
            &rt,
            &app,
            "set",
            json!({"key": "same", "value": format!("b{round}")}),
        );
        b.sync(&rt, &app, &from_a.artifact, a.clock);
        a.sync(&rt, &app, &from_b.artifact, b.clock);
    }
    for replica in [&a, &b] {
        let root = root_hash(&*replica.shared, &CONTEXT).unwrap();
        let proven = prove_state(&*replica.shared, &CONTEXT).unwrap().unwrap();
        assert_eq!(proven.root_hash, root);
    }
}
