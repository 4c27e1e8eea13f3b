//! The meter's lean accounting (what every runtime writes) against the plain one it replaced
//! (meter 1, `Runtime::with_plain_meter`): the guest apps' calls give the same outcome on both
//! (returns, logs, events, writes, fuel used, or the same error), at full fuel and at budgets
//! swept so that running out falls in many places of each call, and with stack and memory
//! limits that stop recursion and growth at many depths. Natively the lean module runs on
//! wasmi; in headless Chromium on the browser's engine; always against the plain module on
//! wasmi.

#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

mod common;

use common::{apply, guest_app, Replica};
use serde_json::{json, Value};
use tabnode_runtime::{App, Call, EngineKind, Limits, Outcome, Runtime, RuntimeError, Views};

type Step = Result<Outcome, RuntimeError>;

/// The engines the lean module runs on here: natively wasmi; in the browser its own engine
/// (wasmi against wasmi is the native run's).
fn engines() -> Vec<EngineKind> {
    if cfg!(target_arch = "wasm32") {
        vec![EngineKind::Browser]
    } else {
        vec![EngineKind::Wasmi]
    }
}

/// One app compiled the plain way (on wasmi) and the lean way (on `engine`).
struct Pair {
    plain: (Runtime, App),
    lean: (Runtime, App),
}

impl Pair {
    fn new(name: &str, limits: &Limits, engine: EngineKind) -> Self {
        let plain = Runtime::with_plain_meter(limits.clone(), EngineKind::Wasmi).unwrap();
        let lean = Runtime::with_engine(limits.clone(), engine).unwrap();
        let (plain_app, lean_app) = (guest_app(&plain, name), guest_app(&lean, name));
        assert_eq!(lean_app.engine(), engine);
        Self {
            plain: (plain, plain_app),
            lean: (lean, lean_app),
        }
    }

    /// Runs the call on both with `fuel`, asserts they agree, and returns what they gave.
    fn same(&self, replica: &Replica, method: &str, input: &[u8], fuel: u64) -> Step {
        let call = Call {
            method,
            input,
            context_id: [7; 32],
            executor_id: [replica.executor; 32],
            time_now_nanos: replica.clock,
            random_seed: replica.seed(),
        };
        let run = |(rt, app): &(Runtime, App)| {
            let views = Views::new(replica.shared.clone(), replica.private.clone());
            rt.call_with_fuel(app, &call, views, fuel)
        };
        let (plain, lean) = (run(&self.plain), run(&self.lean));
        assert!(
            plain == lean,
            "{method} with {fuel} fuel: plain {plain:?}\nlean {lean:?}"
        );
        lean
    }

    /// Runs `calls` in turn on one replica. Before each call is made for good, runs it at
    /// budgets below what it uses (spread over the whole call, and the last few units), and
    /// for a call that runs out at full fuel, at budgets spread up to `cap`. Returns each
    /// call's result at full fuel, and how many budgets ran out of fuel on the way.
    fn script(&self, calls: &[(&str, Value)], cap: u64) -> (Vec<Step>, usize) {
        const SPREAD: u64 = 24;
        const NEAR: u64 = 6;
        let full = self.lean.0.limits().fuel;
        let mut replica = Replica::new(4);
        let (mut steps, mut ran_out) = (Vec::new(), 0);
        for (method, args) in calls {
            replica.clock += 1_000_000;
            let input = serde_json::to_vec(args).unwrap();
            let step = self.same(&replica, method, &input, full);
            let top = match &step {
                Ok(outcome) => outcome.fuel_used,
                Err(_) => cap,
            };
            let budgets = (0..SPREAD)
                .map(|i| top * i / SPREAD)
                .chain((1..=NEAR).map(|k| top.saturating_sub(k)))
                .chain([top, top + 1]);
            for fuel in budgets {
                if let Err(RuntimeError::OutOfFuel(_)) = self.same(&replica, method, &input, fuel) {
                    ran_out += 1;
                }
            }
            if let Ok(outcome) = &step {
                if outcome.returns.is_ok() {
                    apply(&mut replica.shared, &outcome.shared_writes);
                    apply(&mut replica.private, &outcome.private_writes);
                }
            }
            steps.push(step);
        }
        (steps, ran_out)
    }
}

fn limits() -> Limits {
    Limits {
        fuel: 50_000_000,
        max_memory_pages: 64,
        ..Limits::default()
    }
}

/// Each app's calls: state built up, read, changed, refused.
fn scripts() -> Vec<(&'static str, Vec<(&'static str, Value)>)> {
    let kv = |set: &'static str| {
        let mut calls = vec![("init", json!({}))];
        for k in 0..12 {
            calls.push((
                set,
                json!({"key": format!("k{k}"), "value": format!("v{k}")}),
            ));
        }
        calls.extend([
            ("get", json!({"key": "k3"})),
            ("get", json!({"key": "none"})),
            ("remove", json!({"key": "k4"})),
            ("entries", json!({})),
            ("len", json!({})),
            ("set", json!({"key": "k1", "value": "again"})),
            ("set", json!({"key": 5})),
        ]);
        calls
    };
    let mut apps = vec![
        ("kv_store", kv("set")),
        (
            "handler_counter",
            vec![
                ("init", json!({})),
                ("set", json!({"key": "a", "value": "1"})),
                ("count", json!({"key": "b", "value": "2"})),
                ("echo", json!({"key": "c", "value": "3"})),
                ("announce", json!({"key": "d", "value": "4"})),
                ("refuse", json!({"key": "e", "value": "5"})),
                ("set_refused", json!({"key": "f", "value": "6"})),
                ("get", json!({"key": "a"})),
                ("handled", json!({})),
                ("seen", json!({})),
            ],
        ),
        (
            "probe",
            vec![
                ("init", json!({"title": "first"})),
                ("visit", json!({})),
                ("tag", json!({"tag": "b"})),
                ("push_line", json!({"line": "one"})),
                ("name", json!({"key": "k", "value": "v"})),
                ("write", json!({"pos": 0, "text": "hello"})),
                ("note", json!({"secret": "s"})),
                ("notes", json!({})),
                ("store_blob", json!({"data": "x".repeat(2500)})),
                ("fail", json!({"reason": "no"})),
                ("explode", json!({})),
                ("spin", json!({})),
                ("hog", json!({})),
                ("recurse", json!({"depth": 50})),
                ("recurse", json!({"depth": 1_000_000})),
                ("floats", json!({"x": 2.5})),
                ("floats", json!({"x": -0.0})),
                ("log_many", json!({"count": 20})),
                ("title", json!({})),
            ],
        ),
    ];
    // The browser tests carry only the guests above (common::guest_bytes).
    if cfg!(not(target_arch = "wasm32")) {
        let mut v2 = kv("set");
        v2.push(("schema", json!({})));
        apps.extend([
            ("kv_store_v2", v2),
            (
                "nested_tally",
                vec![
                    ("init", json!({})),
                    ("bump", json!({"key": "a"})),
                    ("bump", json!({"key": "a"})),
                    ("bump", json!({"key": "b"})),
                    ("tally", json!({"key": "a"})),
                    ("tally", json!({"key": "z"})),
                ],
            ),
            (
                "user_notes",
                vec![
                    ("init", json!({})),
                    ("set_mine", json!({"note": "mine"})),
                    ("mine", json!({})),
                    ("freeze", json!({"note": "cold"})),
                    ("frozen", json!({"hash": "nothing"})),
                ],
            ),
        ]);
    }
    apps
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn every_guest_call_alike_at_full_fuel_and_at_budgets_that_run_out_anywhere() {
    for engine in engines() {
        for (app, calls) in scripts() {
            let (steps, ran_out) = Pair::new(app, &limits(), engine).script(&calls, 3_000_000);
            assert!(steps.iter().any(Result::is_ok), "{app}: some calls succeed");
            // Each call ran out at most of its budgets (all but the full ones).
            eprintln!("{app}: {} calls, {ran_out} budgets ran out", calls.len());
            assert!(
                ran_out >= calls.len() * 10,
                "{app}: {ran_out} budgets ran out"
            );
            if app == "probe" {
                let err = |m: &str| {
                    let i = calls.iter().position(|(name, _)| *name == m).unwrap();
                    steps[i].as_ref().err().cloned()
                };
                assert!(matches!(err("spin"), Some(RuntimeError::OutOfFuel(_))));
                assert!(matches!(err("hog"), Some(RuntimeError::OutOfMemory { .. })));
                assert!(matches!(err("explode"), Some(RuntimeError::Panic { .. })));
                assert!(steps[14]
                    .as_ref()
                    .is_err_and(|e| matches!(e, RuntimeError::StackOverflow { .. })));
            }
        }
    }
}

/// Recursion stopped by the stack limit at many depths, and growth stopped by the memory cap
/// at many sizes: the same outcome, and for each success the same fuel.
#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn the_stack_and_memory_limits_stop_a_call_at_the_same_point() {
    // The probe's state, made once under the usual limits.
    let mut replica = Replica::new(4);
    let init = serde_json::to_vec(&json!({"title": "t"})).unwrap();
    let made = Pair::new("probe", &limits(), EngineKind::Wasmi)
        .same(&replica, "init", &init, limits().fuel)
        .unwrap();
    apply(&mut replica.shared, &made.shared_writes);
    for engine in engines() {
        let (mut overflowed, mut ran) = (0, 0);
        for stack_slots in (200..6_000).step_by(29) {
            let limits = Limits {
                stack_slots,
                ..limits()
            };
            let pair = Pair::new("probe", &limits, engine);
            let input = serde_json::to_vec(&json!({"depth": 60})).unwrap();
            match pair.same(&replica, "recurse", &input, limits.fuel) {
                Err(RuntimeError::StackOverflow { .. }) => overflowed += 1,
                Ok(_) => ran += 1,
                other => panic!("{other:?}"),
            }
        }
        assert!(
            overflowed > 5 && ran > 5,
            "{overflowed} overflowed, {ran} ran"
        );
        let mut out_of_memory = 0;
        for max_memory_pages in [24, 30, 41, 64] {
            let limits = Limits {
                max_memory_pages,
                ..limits()
            };
            let pair = Pair::new("probe", &limits, engine);
            let hog = serde_json::to_vec(&json!({})).unwrap();
            if let Err(RuntimeError::OutOfMemory { .. }) =
                pair.same(&replica, "hog", &hog, limits.fuel)
            {
                out_of_memory += 1;
            }
        }
        assert_eq!(out_of_memory, 4);
    }
}
