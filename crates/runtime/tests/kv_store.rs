//! The runtime against a real calimero-sdk 0.10 app (tests/apps/kv-store, built from source).

#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

mod common;

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::rc::Rc;

use common::{guest_app, Replica, State};
use serde_json::{json, Value};
use tabnode_runtime::{
    root_hash, App, Call, Limits, NotLoaded, Runtime, RuntimeError, StateView, ViewKind, Views,
};

/// The context every test replica runs in (see `common::Replica`).
const CONTEXT: [u8; 32] = [7; 32];

fn kv_store(runtime: &Runtime) -> App {
    guest_app(runtime, "kv_store")
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn set_get_entries_remove_with_events_and_logs() {
    let rt = Runtime::new(Limits::default());
    let app = kv_store(&rt);
    let mut r = Replica::new(1);
    let init = r.call(&rt, &app, "init", json!({}));
    assert!(init.root_hash.is_some(), "init commits a root");
    assert!(!init.artifact.is_empty(), "init produces a sync artifact");

    let set = r.call(&rt, &app, "set", json!({"key": "k", "value": "v"}));
    assert!(!set.artifact.is_empty(), "a write commits a sync artifact");
    assert_eq!(set.logs, vec![r#"set "k""#.to_string()]);
    assert_eq!(set.events.len(), 1);
    assert_eq!(set.events[0].kind, "Inserted");
    let data: Value = serde_json::from_slice(&set.events[0].data).unwrap();
    assert_eq!(data, json!({"key": "k", "value": "v"}));
    assert_ne!(set.root_hash, init.root_hash);

    assert_eq!(r.output(&rt, &app, "get", json!({"key": "k"})), json!("v"));
    let updated = r.call(&rt, &app, "set", json!({"key": "k", "value": "w"}));
    assert_eq!(updated.events[0].kind, "Updated");
    assert_eq!(r.output(&rt, &app, "entries", json!({})), json!({"k": "w"}));
    assert_eq!(r.output(&rt, &app, "len", json!({})), json!(1));
    assert_eq!(
        r.output(&rt, &app, "remove", json!({"key": "k"})),
        json!("w")
    );
    assert_eq!(r.output(&rt, &app, "get", json!({"key": "k"})), Value::Null);
    let get = r.call(&rt, &app, "get", json!({"key": "k"}));
    assert!(
        get.artifact.is_empty() && get.shared_writes.is_empty(),
        "a read writes nothing"
    );
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn errors_are_typed_and_write_nothing() {
    let rt = Runtime::new(Limits::default());
    let app = kv_store(&rt);
    let mut r = Replica::new(1);
    r.call(&rt, &app, "init", json!({}));
    let before = r.shared.clone();

    assert_eq!(
        r.try_call(&rt, &app, "nope", b"{}").unwrap_err(),
        RuntimeError::MethodNotFound("nope".into())
    );
    let err = r.try_call(&rt, &app, "set", b"[1]").unwrap_err();
    assert!(matches!(err, RuntimeError::Panic { .. }), "{err}");
    let err = r
        .try_call(&rt, &app, "set", br#"{"key": 5, "value": "x"}"#)
        .unwrap_err();
    assert!(matches!(err, RuntimeError::Panic { .. }), "{err}");
    let bail = r
        .try_call(&rt, &app, "set", br#"{"key": "", "value": "x"}"#)
        .unwrap();
    let message = String::from_utf8(bail.returns.unwrap_err()).unwrap();
    assert!(message.contains("must not be empty"), "{message}");
    assert_eq!(r.shared, before, "failed calls changed nothing");

    let tiny = Runtime::new(Limits {
        fuel: 1_000,
        ..Limits::default()
    });
    let err = r.try_call(&tiny, &app, "entries", b"{}").unwrap_err();
    assert!(
        matches!(err, RuntimeError::InvalidModule(_)),
        "an app is bound to its runtime: {err}"
    );
    let small_app = kv_store(&tiny);
    let err = r.try_call(&tiny, &small_app, "entries", b"{}").unwrap_err();
    assert!(matches!(err, RuntimeError::OutOfFuel(_)), "{err}");
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn concurrent_writes_merge_to_the_same_root() {
    let rt = Runtime::new(Limits::default());
    let app = kv_store(&rt);
    let mut a = Replica::new(1);
    let init = a.call(&rt, &app, "init", json!({}));
    // A joiner does not merge the init artifact (calimero-storage re-ids the root's collections
    // during init, and the artifact does not carry the removal): it replays the init call with
    // the author's record, which the deterministic runtime turns into the same state and root.
    let mut b = Replica::new(1);
    let replayed = b.call(&rt, &app, "init", json!({}));
    assert_eq!(
        replayed, init,
        "replaying init with the same record gives the same outcome"
    );
    b.executor = 2;
    b.clock += 500; // distinct clocks: an exact tie between writers is not what this tests
    let mut from_a = Vec::new();
    let mut from_b = Vec::new();
    for i in 0..50 {
        let out = a.call(
            &rt,
            &app,
            "set",
            json!({"key": format!("a{i}"), "value": "x"}),
        );
        from_a.push((out.artifact, a.clock));
        let out = b.call(
            &rt,
            &app,
            "set",
            json!({"key": format!("b{i}"), "value": "y"}),
        );
        from_b.push((out.artifact, b.clock));
    }
    let mut root_a = None;
    let mut root_b = None;
    for (artifact, time) in &from_b {
        root_a = a.sync(&rt, &app, artifact, *time);
        assert!(root_a.is_some(), "every sync commits a root");
        assert_eq!(
            root_a,
            root_hash(&*a.shared, &CONTEXT),
            "committed = stored"
        );
    }
    for (artifact, time) in &from_a {
        root_b = b.sync(&rt, &app, artifact, *time);
        assert!(root_b.is_some(), "every sync commits a root");
        assert_eq!(
            root_b,
            root_hash(&*b.shared, &CONTEXT),
            "committed = stored"
        );
    }
    let (ea, eb) = (
        a.output(&rt, &app, "entries", json!({})),
        b.output(&rt, &app, "entries", json!({})),
    );
    assert_eq!(ea, eb);
    assert_eq!(ea.as_object().unwrap().len(), 100);
    assert!(root_a.is_some());
    assert_eq!(root_a, root_b, "both replicas end on the same root");
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn replay_with_the_same_record_is_byte_identical() {
    let rt = Runtime::new(Limits::default());
    let app = kv_store(&rt);
    let mut r = Replica::new(3);
    r.call(&rt, &app, "init", json!({}));
    let call = Call {
        method: "set",
        input: br#"{"key":"k","value":"v"}"#,
        context_id: [7; 32],
        executor_id: [3; 32],
        time_now_nanos: r.clock + 1_000_000,
        random_seed: [9; 32],
    };
    let first = rt
        .call(&app, &call, Views::new(r.shared.clone(), r.private.clone()))
        .unwrap();
    let second = rt
        .call(&app, &call, Views::new(r.shared.clone(), r.private.clone()))
        .unwrap();
    assert_eq!(first, second);
}

/// Concurrent writes to one key settle on one value on both replicas.
///
/// Their calimero-storage roots still differ afterwards, for a reason inside calimero-storage
/// 0.10 (guest code, so merod sees the same): `Index::add_child_to` keeps a parent's children in
/// a `BTreeSet` ordered by `(created_at, id)` and calls `replace`, so when the replica that
/// created the key first merges the peer's later create of the same key (same id, later
/// `created_at`), the map's index lists that child twice and its full hash differs. The member
/// that created it last rejects the older create (last-writer-wins) and lists it once. Values,
/// `len` and `entries` agree on both; only the Merkle root (and the entry's `created_at`) differ.
#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn concurrent_writes_to_one_key_settle_on_one_value() {
    let rt = Runtime::new(Limits::default());
    let app = kv_store(&rt);
    let mut a = Replica::new(1);
    a.call(&rt, &app, "init", json!({}));
    let mut b = Replica::new(1);
    b.call(&rt, &app, "init", json!({}));
    b.executor = 2;
    b.clock += 500;
    let out_a = a.call(&rt, &app, "set", json!({"key": "both", "value": "a"}));
    let time_a = a.clock;
    let out_b = b.call(&rt, &app, "set", json!({"key": "both", "value": "b"}));
    let time_b = b.clock;
    a.sync(&rt, &app, &out_b.artifact, time_b);
    b.sync(&rt, &app, &out_a.artifact, time_a);
    let (va, vb) = (
        a.output(&rt, &app, "get", json!({"key": "both"})),
        b.output(&rt, &app, "get", json!({"key": "both"})),
    );
    assert_eq!(va, vb);
    assert_eq!(va, json!("b"), "the later write wins");
    for r in [&mut a, &mut b] {
        assert_eq!(r.output(&rt, &app, "len", json!({})), json!(1));
        assert_eq!(
            r.output(&rt, &app, "entries", json!({})),
            json!({"both": "b"})
        );
    }
}

/// One concurrent write on each side, the brief's minimal case: both replicas end with {a, b}
/// and the same root, whether read from the sync's commit or from the stored index.
#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn one_concurrent_write_each_converges() {
    let rt = Runtime::new(Limits::default());
    let app = kv_store(&rt);
    let mut a = Replica::new(1);
    a.call(&rt, &app, "init", json!({}));
    let mut b = Replica::new(1);
    b.call(&rt, &app, "init", json!({}));
    b.executor = 2;
    b.clock += 500;
    let out_a = a.call(&rt, &app, "set", json!({"key": "a", "value": "1"}));
    let time_a = a.clock;
    let out_b = b.call(&rt, &app, "set", json!({"key": "b", "value": "2"}));
    let time_b = b.clock;
    assert_ne!(out_a.root_hash, out_b.root_hash, "diverged before sync");
    let root_a = a.sync(&rt, &app, &out_b.artifact, time_b);
    let root_b = b.sync(&rt, &app, &out_a.artifact, time_a);
    let expected = json!({"a": "1", "b": "2"});
    assert_eq!(a.output(&rt, &app, "entries", json!({})), expected);
    assert_eq!(b.output(&rt, &app, "entries", json!({})), expected);
    assert!(root_a.is_some());
    assert_eq!(root_a, root_b);
    assert_eq!(root_hash(&*a.shared, &CONTEXT), root_a);
    assert_eq!(root_hash(&*b.shared, &CONTEXT), root_b);
}

/// The root read from stored state is the one the last committing call reported, and read-only
/// calls (which commit nothing) leave it unchanged.
#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn stored_root_hash_matches_the_committed_one() {
    let rt = Runtime::new(Limits::default());
    let app = kv_store(&rt);
    let mut r = Replica::new(4);
    assert_eq!(root_hash(&*r.shared, &CONTEXT), None, "no root before init");
    let init = r.call(&rt, &app, "init", json!({}));
    assert_eq!(root_hash(&*r.shared, &CONTEXT), init.root_hash);
    assert_eq!(root_hash(&*r.shared, &[8; 32]), None, "another context");
    let mut last = init.root_hash;
    for i in 0..5 {
        let set = r.call(
            &rt,
            &app,
            "set",
            json!({"key": format!("k{i}"), "value": "v"}),
        );
        assert_ne!(set.root_hash, last);
        assert_eq!(root_hash(&*r.shared, &CONTEXT), set.root_hash);
        last = set.root_hash;
    }
    let removed = r.call(&rt, &app, "remove", json!({"key": "k0"}));
    assert_eq!(root_hash(&*r.shared, &CONTEXT), removed.root_hash);
    let read = r.call(&rt, &app, "entries", json!({}));
    assert_eq!(read.root_hash, None, "a read commits nothing");
    assert_eq!(root_hash(&*r.shared, &CONTEXT), removed.root_hash);
}

/// A view that has loaded only some rows of the state (a node reading rows from its store as
/// calls touch them): a read of any other row stops the call with `NotLoaded`, naming the row.
struct Partial {
    full: Rc<State>,
    loaded: RefCell<BTreeSet<Vec<u8>>>,
}

impl StateView for Partial {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, NotLoaded> {
        if self.loaded.borrow().contains(key) {
            Ok(self.full.get(key).cloned())
        } else {
            Err(NotLoaded)
        }
    }
}

/// Runs `call` on `partial`, loading the rows each run names as not loaded, until it runs
/// through; returns the outcome and how many runs it took.
fn run_loading_rows(
    rt: &Runtime,
    app: &App,
    call: &Call<'_>,
    partial: &Rc<Partial>,
    private: &Rc<State>,
) -> (tabnode_runtime::Outcome, usize) {
    let mut runs = 0;
    loop {
        runs += 1;
        match rt.call(app, call, Views::new(partial.clone(), private.clone())) {
            Ok(outcome) => return (outcome, runs),
            Err(RuntimeError::NotLoaded { rows, .. }) => {
                for (view, key) in rows {
                    assert_eq!(view, ViewKind::Shared);
                    assert!(
                        partial.loaded.borrow_mut().insert(key),
                        "each row is asked for once"
                    );
                }
            }
            Err(other) => panic!("{other}"),
        }
    }
}

/// A replica (executor 3) with kv-store holding `keys` keys, `k0` = `v0` and on.
fn filled(rt: &Runtime, app: &App, keys: usize) -> Replica {
    let mut r = Replica::new(3);
    r.call(rt, app, "init", json!({}));
    for i in 0..keys {
        r.call(
            rt,
            app,
            "set",
            json!({"key": format!("k{i}"), "value": format!("v{i}")}),
        );
    }
    r
}

/// The call `r` would make next, for running by hand on views of its state.
fn next_call<'a>(r: &Replica, method: &'a str, input: &'a [u8]) -> Call<'a> {
    Call {
        method,
        input,
        context_id: CONTEXT,
        executor_id: [r.executor; 32],
        time_now_nanos: r.clock + 1,
        random_seed: [1; 32],
    }
}

/// Loading the rows a run names as not loaded and running the call again ends in the outcome
/// the whole state gives, byte for byte, after touching only the rows the call needs; a run
/// names every row it missed, not only the first.
#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn a_call_on_a_partly_loaded_state_asks_for_rows_until_it_runs() {
    let rt = Runtime::new(Limits::default());
    let app = kv_store(&rt);
    let r = filled(&rt, &app, 50);
    let input = serde_json::to_vec(&json!({"key": "k7"})).unwrap();
    let call = next_call(&r, "get", &input);
    let whole = rt
        .call(&app, &call, Views::new(r.shared.clone(), r.private.clone()))
        .unwrap();
    let partial = Rc::new(Partial {
        full: r.shared.clone(),
        loaded: RefCell::default(),
    });
    let (outcome, runs) = run_loading_rows(&rt, &app, &call, &partial, &r.private);
    assert_eq!(outcome, whole);
    assert_eq!(
        serde_json::from_slice::<Value>(&outcome.returns.unwrap().unwrap()).unwrap(),
        json!("v7")
    );
    let touched = partial.loaded.borrow().len();
    assert!(
        touched < r.shared.len() / 4,
        "{touched} of {} rows read",
        r.shared.len()
    );
    assert!(runs <= touched, "{runs} runs for {touched} rows");
}

/// A set of a new key on a partly loaded state misses rows that do not exist (the new entry's
/// own): one run names them all and gives, for the case they are absent, exactly the outcome a
/// run with them known absent gives. The node then needs one run and one round of reads, where
/// it ran the call once per missed row.
#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn a_run_that_misses_only_absent_rows_gives_the_outcome_of_a_run_that_knows_them_absent() {
    let rt = Runtime::new(Limits::default());
    let app = kv_store(&rt);
    let r = filled(&rt, &app, 20);
    let input = serde_json::to_vec(&json!({"key": "new", "value": "n"})).unwrap();
    let call = next_call(&r, "set", &input);
    let whole = rt
        .call(&app, &call, Views::new(r.shared.clone(), r.private.clone()))
        .unwrap();
    // Every row that exists is loaded; the new entry's rows are not (a reopened context).
    let partial = Rc::new(Partial {
        full: r.shared.clone(),
        loaded: RefCell::new(r.shared.keys().cloned().collect()),
    });
    let Err(RuntimeError::NotLoaded { rows, if_absent }) =
        rt.call(&app, &call, Views::new(partial.clone(), r.private.clone()))
    else {
        panic!("the new entry's rows are not loaded");
    };
    assert!(
        rows.len() >= 2,
        "one run names every row it missed: {rows:?}"
    );
    assert!(rows.iter().all(|(_, key)| !r.shared.contains_key(key)));
    assert_eq!(*if_absent, Ok(whole));
}
