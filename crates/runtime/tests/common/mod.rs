//! Shared by the runtime's integration tests: guest apps built from source and a replica that
//! applies write sets the way the node does.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::rc::Rc;

use serde_json::Value;
use tabnode_runtime::{App, Call, Outcome, Runtime, RuntimeError, Views, WriteSet};

pub type State = BTreeMap<Vec<u8>, Vec<u8>>;

/// A guest app from `tests/apps/dist` (built by `bash tests/apps/build.sh`): read at run time
/// natively, compiled into the test binary for the browser (which has no file system).
pub fn guest_app(runtime: &Runtime, name: &str) -> App {
    let wasm = guest_bytes(name);
    runtime
        .compile(&wasm)
        .unwrap_or_else(|e| panic!("{name} compiles: {e}"))
}

#[cfg(not(target_arch = "wasm32"))]
fn guest_bytes(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/../../tests/apps/dist/{name}.wasm",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!("{path}: {e}; build the guest apps with `bash tests/apps/build.sh`")
    })
}

#[cfg(target_arch = "wasm32")]
fn guest_bytes(name: &str) -> Vec<u8> {
    match name {
        "kv_store" => include_bytes!("../../../../tests/apps/dist/kv_store.wasm").to_vec(),
        "probe" => include_bytes!("../../../../tests/apps/dist/probe.wasm").to_vec(),
        "handler_counter" => {
            include_bytes!("../../../../tests/apps/dist/handler_counter.wasm").to_vec()
        }
        other => panic!("no guest app {other} is compiled into the browser tests"),
    }
}

/// A member's replica: shared and private state, and a clock.
pub struct Replica {
    pub shared: Rc<State>,
    pub private: Rc<State>,
    pub executor: u8,
    pub clock: u64,
}

pub fn apply(state: &mut Rc<State>, writes: &WriteSet) {
    let state = Rc::make_mut(state);
    for (k, v) in writes {
        match v {
            Some(v) => state.insert(k.clone(), v.clone()),
            None => state.remove(k),
        };
    }
}

impl Replica {
    pub fn new(executor: u8) -> Self {
        Self {
            shared: Rc::default(),
            private: Rc::default(),
            executor,
            clock: 1_700_000_000_000_000_000,
        }
    }

    pub fn try_call(
        &mut self,
        rt: &Runtime,
        app: &App,
        method: &str,
        input: &[u8],
    ) -> Result<Outcome, RuntimeError> {
        self.clock += 1_000_000;
        let call = Call {
            method,
            input,
            context_id: [7; 32],
            executor_id: [self.executor; 32],
            time_now_nanos: self.clock,
            random_seed: self.seed(),
        };
        let outcome = rt.call(
            app,
            &call,
            Views::new(self.shared.clone(), self.private.clone()),
        )?;
        if outcome.returns.is_ok() {
            apply(&mut self.shared, &outcome.shared_writes);
            apply(&mut self.private, &outcome.private_writes);
        }
        Ok(outcome)
    }

    /// Merges a peer's artifact, replaying the author's clock as merod's deltas do.
    pub fn sync(
        &mut self,
        rt: &Runtime,
        app: &App,
        artifact: &[u8],
        author_time: u64,
    ) -> Option<[u8; 32]> {
        let saved = self.clock;
        self.clock = author_time - 1_000_000;
        let root = self
            .try_call(rt, app, "__calimero_sync_next", artifact)
            .unwrap()
            .root_hash;
        self.clock = saved;
        root
    }

    /// A fresh seed per call, as a node draws one (collections derive element ids from it).
    pub fn seed(&self) -> [u8; 32] {
        let mut seed = [self.executor; 32];
        seed[..8].copy_from_slice(&self.clock.to_le_bytes());
        seed
    }

    pub fn call(&mut self, rt: &Runtime, app: &App, method: &str, args: Value) -> Outcome {
        self.try_call(rt, app, method, &serde_json::to_vec(&args).unwrap())
            .unwrap()
    }

    pub fn output(&mut self, rt: &Runtime, app: &App, method: &str, args: Value) -> Value {
        let out = self.call(rt, app, method, args);
        serde_json::from_slice(&out.returns.unwrap().unwrap()).unwrap()
    }
}
