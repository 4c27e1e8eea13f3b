//! The runtime benchmark: kv-store `set` and `get` calls per second through `tabnode-runtime`,
//! with fuel metering on and off. The same code runs natively (`tabnode-bench`) and in the page
//! (`bench/run.mjs` loads this crate built for wasm32), so the browser/native ratio compares
//! one harness on two platforms.

use std::collections::BTreeMap;
use std::rc::Rc;

use serde::Serialize;
use tabnode_runtime::{Call, Limits, Runtime, Views};

/// Calls per second of each measured operation.
#[derive(Debug, Clone, Serialize)]
pub struct Figures {
    pub calls: u32,
    pub set_per_sec: f64,
    pub get_per_sec: f64,
    pub set_unmetered_per_sec: f64,
    pub get_unmetered_per_sec: f64,
}

#[cfg(not(target_arch = "wasm32"))]
fn now_ms() -> f64 {
    use std::sync::OnceLock;
    static START: OnceLock<std::time::Instant> = OnceLock::new();
    START
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_secs_f64()
        * 1000.0
}

#[cfg(target_arch = "wasm32")]
fn now_ms() -> f64 {
    js_sys::Date::now()
}

type State = BTreeMap<Vec<u8>, Vec<u8>>;

/// How many times the get run reads every key.
const GET_ROUNDS: u32 = 10;

/// `calls` sets of distinct keys, then [`GET_ROUNDS`] gets of each; returns (sets/s, gets/s).
fn measure(runtime: &Runtime, wasm: &[u8], calls: u32) -> Result<(f64, f64), String> {
    let app = runtime.compile(wasm).map_err(|e| e.to_string())?;
    let private: Rc<State> = Rc::default();
    let mut shared: Rc<State> = Rc::default();
    let mut clock = 1_700_000_000_000_000_000u64;
    let mut run = |shared: &mut Rc<State>, method: &str, input: String| -> Result<(), String> {
        clock += 1_000;
        let mut seed = [0u8; 32];
        seed[..8].copy_from_slice(&clock.to_le_bytes());
        let call = Call {
            method,
            input: input.as_bytes(),
            context_id: [1; 32],
            executor_id: [2; 32],
            time_now_nanos: clock,
            random_seed: seed,
        };
        let outcome = runtime
            .call(&app, &call, Views::new(shared.clone(), private.clone()))
            .map_err(|e| e.to_string())?;
        let state = Rc::make_mut(shared);
        for (k, v) in outcome.shared_writes {
            match v {
                Some(v) => state.insert(k, v),
                None => state.remove(&k),
            };
        }
        Ok(())
    };
    run(&mut shared, "init", "{}".into())?;
    let start = now_ms();
    for i in 0..calls {
        run(
            &mut shared,
            "set",
            format!(r#"{{"key":"key-{i}","value":"value {i}"}}"#),
        )?;
    }
    let set_ms = now_ms() - start;
    // Gets are some 40 times faster than sets: several rounds keep their run long enough to
    // measure on a busy machine.
    let start = now_ms();
    for _ in 0..GET_ROUNDS {
        for i in 0..calls {
            run(&mut shared, "get", format!(r#"{{"key":"key-{i}"}}"#))?;
        }
    }
    let get_ms = now_ms() - start;
    let per_sec = |n: u32, ms: f64| f64::from(n) / (ms.max(0.001) / 1000.0);
    Ok((per_sec(calls, set_ms), per_sec(calls * GET_ROUNDS, get_ms)))
}

/// Runs every measurement on the kv-store binary `wasm`.
///
/// A warm-up run comes first and is dropped: in the page V8 tiers wasmi's interpreter loop up
/// during about the first second, which would otherwise land on whichever run is first. Then
/// metered and unmetered runs alternate (metered, unmetered, unmetered, metered) and each figure
/// is the mean of its two runs, so drift in the machine's speed falls on both alike.
pub fn run(wasm: &[u8], calls: u32) -> Result<Figures, String> {
    let metered = Runtime::new(Limits::default());
    let unmetered = Runtime::unmetered(Limits::default(), tabnode_runtime::EngineKind::Wasmi);
    measure(&unmetered, wasm, calls.min(200))?;
    let m1 = measure(&metered, wasm, calls)?;
    let u1 = measure(&unmetered, wasm, calls)?;
    let u2 = measure(&unmetered, wasm, calls)?;
    let m2 = measure(&metered, wasm, calls)?;
    let mean = |a: (f64, f64), b: (f64, f64)| ((a.0 + b.0) / 2.0, (a.1 + b.1) / 2.0);
    let (set_per_sec, get_per_sec) = mean(m1, m2);
    let (set_unmetered_per_sec, get_unmetered_per_sec) = mean(u1, u2);
    Ok(Figures {
        calls,
        set_per_sec,
        get_per_sec,
        set_unmetered_per_sec,
        get_unmetered_per_sec,
    })
}

/// The page's entry point: figures as a JSON string.
#[cfg(target_arch = "wasm32")]
#[wasm_bindgen::prelude::wasm_bindgen(js_name = runBench)]
pub fn run_bench(wasm: &[u8], calls: u32) -> Result<String, String> {
    run(wasm, calls).map(|f| serde_json::to_string(&f).expect("figures encode"))
}
