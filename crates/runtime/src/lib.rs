//! Runs guest apps built with `calimero-sdk` 0.10 through the host ABI that `calimero-sys` 0.10
//! declares in module `"env"`: under `wasmi` everywhere, and in a page also on the browser's own
//! WebAssembly engine. Both run the module as `tabnode-meter` rewrites it, which counts its own
//! fuel and stack and canonicalises NaNs, so a call's outcome, fuel and errors are the same on
//! either engine; the ABI is written once (`host.rs`) and each engine only forwards to it.
//!
//! A call is a pure function: (compiled app, [`Call`], read-only views of shared and private
//! state) -> [`Outcome`] with the call's write sets. The runtime never mutates state itself, so a
//! call that traps, panics or runs out of fuel changes nothing, and the caller decides what to
//! persist. The only non-deterministic inputs, time and randomness, come from the [`Call`]: a
//! call replayed with the same record on the same state gives a byte-identical outcome.
//!
//! Shape of the API:
//! - [`Runtime::new`]`(Limits) -> Runtime` runs guests on wasmi ([`Runtime::with_engine`] picks
//!   the engine) with every `"env"` import of calimero-sys 0.10; imports this node cannot serve
//!   trap with [`RuntimeError::Unsupported`] naming the import, so every calimero module links.
//! - [`Runtime::compile`]`(&[u8]) -> Result<App, RuntimeError>` validates (size, exported memory,
//!   only known imports with their signatures), rewrites and compiles once; [`App`] is an `Arc`, carries the blake3 of the wasm.
//! - [`Runtime::call`]`(&App, &Call, Views) -> Result<Outcome, RuntimeError>` runs one method on a
//!   fresh instance ([`Runtime::call_with_fuel`]: with a budget other than a call's). `Err`
//!   means the call changed nothing; an app error (`app::bail!`) is
//!   `Ok(Outcome { returns: Err(bytes), .. })` and its writes should not be persisted either.
//!
//! Root hash: calimero-storage passes its Merkle root to `commit` after every call that changed
//! state and after every `__calimero_sync_next` (it re-commits the root's stored hash once the
//! artifact is merged), so [`Outcome::root_hash`] has it in both cases. For state no call just
//! committed (read-only calls commit nothing, or a node loading state) [`root_hash`] reads the
//! same hash from calimero-storage's index entry of the root.

mod abi;
#[cfg(target_arch = "wasm32")]
mod browser_engine;
mod engine;
mod error;
mod host;
mod limits;
mod proof;
mod root;
mod user_actions;
mod wasmi_engine;

use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::sync::Arc;

pub use error::{RuntimeError, ViewKind};
pub use host::IMPORTS;
pub use limits::Limits;
pub use proof::{prove_state, verify_rows, ProofError, ProvenState};
pub use root::{entry_key, index_key, migrated_state_entry, root_hash, state_entry_key};
pub use user_actions::sign_user_actions;

use host::HostState;

/// Reads state for a call. Reads see the call's own earlier writes through an overlay.
///
/// A view need not hold all of its state: the node reads rows from its store as calls touch
/// them, so a large context opens without loading every entry. A read of a row the view has not
/// loaded sees it absent, and the call ends in [`RuntimeError::NotLoaded`] naming every such
/// row, with the result it reached; the caller loads them, and runs the call again only if one
/// exists. Calls are deterministic, so the re-run is the same call.
pub trait StateView {
    /// The value under `key`, `Ok(None)` if there is none, `Err(NotLoaded)` if not known yet.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, NotLoaded>;
}

/// A [`StateView`] has not loaded the row asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotLoaded;

/// A whole state in memory: every key it lacks is absent.
impl StateView for BTreeMap<Vec<u8>, Vec<u8>> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, NotLoaded> {
        Ok(BTreeMap::get(self, key).cloned())
    }
}

/// What a call reads: shared state, this member's private state, the blobs this node holds
/// (keyed by blob id) and the context's members. All read-only; the call's writes come back in its [`Outcome`].
#[derive(Clone)]
pub struct Views {
    pub shared: Rc<dyn StateView>,
    pub private: Rc<dyn StateView>,
    pub blobs: Rc<dyn StateView>,
    /// The context's members as the node knows them (for `context_is_member`/`context_members`).
    pub members: Rc<std::collections::BTreeSet<[u8; 32]>>,
    /// The node's context aliases (for `context_resolve_alias`).
    pub aliases: Rc<BTreeMap<String, [u8; 32]>>,
}

impl Views {
    /// Views with no blobs.
    pub fn new(shared: Rc<dyn StateView>, private: Rc<dyn StateView>) -> Self {
        Self {
            shared,
            private,
            blobs: Rc::new(BTreeMap::<Vec<u8>, Vec<u8>>::new()),
            members: Rc::default(),
            aliases: Rc::default(),
        }
    }
}

/// A call the guest asked for in another context (`xcall`), run by the node after this one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XCallRequest {
    pub context_id: [u8; 32],
    pub function: String,
    pub params: Vec<u8>,
}

/// What a guest asked the node to do to contexts and their membership: made by the node after
/// the call, in order, with the caller's authority.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContextRequest {
    /// `context_add_member`: make the key a member of the calling context.
    AddMember([u8; 32]),
    /// `context_remove_member`: remove the key from the calling context.
    RemoveMember([u8; 32]),
    /// `context_create`: a new context running `app_id`, initialised with `args` (JSON), known
    /// on this node as `alias` if given. `protocol` names a chain in merod; a context here is
    /// anchored by its own membership log, so it is recorded, not acted on.
    Create {
        protocol: String,
        app_id: [u8; 32],
        args: Vec<u8>,
        alias: Option<String>,
    },
    /// `context_delete`: this node drops the context (only its admins may).
    Delete([u8; 32]),
    /// `send_proposal`: propose `actions` (a borsh `Vec<ProposalAction>`, as the guest gave
    /// it) under the id the host wrote back to the guest.
    Propose { id: [u8; 32], actions: Vec<u8> },
    /// `approve_proposal`: approve the proposal `id` as the caller.
    Approve([u8; 32]),
}

/// One method call and its recorded non-deterministic inputs.
#[derive(Debug, Clone)]
pub struct Call<'a> {
    pub method: &'a str,
    pub input: &'a [u8],
    pub context_id: [u8; 32],
    /// The calling member's public key, as `executor_id` returns it.
    pub executor_id: [u8; 32],
    /// What `time_now` returns (ns since the epoch), for every read of the call.
    pub time_now_nanos: u64,
    /// Seeds the stream `random_bytes` reads from.
    pub random_seed: [u8; 32],
}

/// An event the guest emitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub kind: String,
    pub data: Vec<u8>,
    /// The method to call on receivers, for `emit_with_handler`.
    pub handler: Option<String>,
}

/// Writes of one call: `None` removes the key.
pub type WriteSet = BTreeMap<Vec<u8>, Option<Vec<u8>>>;

/// Everything a successful call produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// What the guest passed to `value_return`: `Ok` bytes, or `Err` bytes for an app error.
    pub returns: Result<Option<Vec<u8>>, Vec<u8>>,
    pub logs: Vec<String>,
    pub events: Vec<Event>,
    /// The state root the guest committed (calimero-storage's Merkle root), if it committed:
    /// after a call that changed state and after `__calimero_sync_next`; see also [`root_hash`].
    pub root_hash: Option<[u8; 32]>,
    /// The sync artifact the guest committed: what peers feed to `__calimero_sync_next`.
    pub artifact: Vec<u8>,
    pub shared_writes: WriteSet,
    pub private_writes: WriteSet,
    /// Blobs the call created, by id (blake3 of the content); the node stores them.
    pub blobs: BTreeMap<[u8; 32], Vec<u8>>,
    /// Blobs the call announced to its context.
    pub announced_blobs: Vec<[u8; 32]>,
    /// Blobs the guest opened that this node does not have (`blob_open` answered 0): the
    /// node may fetch them from the context's members.
    pub missing_blobs: Vec<[u8; 32]>,
    /// Calls to run after this one, in order.
    pub xcalls: Vec<XCallRequest>,
    /// What to do to contexts and membership after this call, in order.
    pub context_requests: Vec<ContextRequest>,
    pub fuel_used: u64,
}

/// Which engine runs guests. Both run the same rewritten module (see `tabnode-meter`), so a
/// call gives the same outcome, fuel and errors on either.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineKind {
    /// The wasmi interpreter: every build, the reference.
    Wasmi,
    /// The browser's own WebAssembly engine: in the page only (wasm32 in a browser).
    Browser,
}

impl EngineKind {
    pub fn name(self) -> &'static str {
        match self {
            Self::Wasmi => "wasmi",
            Self::Browser => "browser",
        }
    }
}

/// A validated, compiled app; cheap to clone. Compiled once, instantiated per call.
#[derive(Clone)]
pub struct App {
    compiled: Compiled,
    methods: Arc<BTreeSet<String>>,
    hash: [u8; 32],
}

#[derive(Clone)]
enum Compiled {
    Wasmi(Arc<wasmi::Module>),
    #[cfg(target_arch = "wasm32")]
    Browser(browser_engine::Module),
}

impl App {
    /// blake3 of the wasm binary as installed (before it is rewritten): the application id.
    pub fn hash(&self) -> [u8; 32] {
        self.hash
    }

    /// Whether the app exports a callable method of this name.
    pub fn has_method(&self, name: &str) -> bool {
        self.methods.contains(name)
    }

    /// The engine that runs this app: the runtime's, or wasmi where the page would not compile
    /// the module.
    pub fn engine(&self) -> EngineKind {
        match self.compiled {
            Compiled::Wasmi(_) => EngineKind::Wasmi,
            #[cfg(target_arch = "wasm32")]
            Compiled::Browser(_) => EngineKind::Browser,
        }
    }
}

/// A guest engine and the limits every call runs under.
pub struct Runtime {
    kind: EngineKind,
    engine: wasmi::Engine,
    linker: wasmi::Linker<wasmi_engine::Data>,
    limits: Limits,
    /// How [`Runtime::compile`] rewrites a module: the limits' accounting, with or without
    /// fuel (see [`Runtime::unmetered`]).
    meter: tabnode_meter::Config,
}

impl Runtime {
    /// A runtime on wasmi.
    pub fn new(limits: Limits) -> Self {
        Self::build(limits, EngineKind::Wasmi, true)
    }

    /// A runtime on the given engine; [`EngineKind::Browser`] exists only in a page.
    pub fn with_engine(limits: Limits, kind: EngineKind) -> Result<Self, RuntimeError> {
        if kind == EngineKind::Browser && !cfg!(target_arch = "wasm32") {
            return Err(RuntimeError::Unsupported {
                import: "engine",
                reason: "the browser's engine runs only in a page",
            });
        }
        Ok(Self::build(limits, kind, true))
    }

    /// A runtime whose modules charge no fuel: a guest's endless loop would hang the caller.
    /// Only for measuring what metering costs (`bench/`); never for running apps.
    pub fn unmetered(limits: Limits, kind: EngineKind) -> Self {
        Self::build(limits, kind, false)
    }

    /// A runtime whose modules carry the accounting written the plain way (meter 1), which
    /// behaves exactly as the lean way every other runtime writes: only for the test that
    /// shows it (`tests/meter_economies.rs`).
    #[doc(hidden)]
    pub fn with_plain_meter(limits: Limits, kind: EngineKind) -> Result<Self, RuntimeError> {
        let mut runtime = Self::with_engine(limits, kind)?;
        runtime.meter.plain = true;
        Ok(runtime)
    }

    fn build(limits: Limits, kind: EngineKind, metered: bool) -> Self {
        let engine = wasmi_engine::engine(&limits);
        let linker = wasmi_engine::linker(&engine);
        let meter = tabnode_meter::Config {
            charge_fuel: metered,
            ..engine::meter_config(&limits)
        };
        Self {
            kind,
            engine,
            linker,
            limits,
            meter,
        }
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The engine this runtime runs guests on.
    pub fn engine_kind(&self) -> EngineKind {
        self.kind
    }

    /// Validates, rewrites (see `tabnode-meter`) and compiles a guest app. Refuses modules that
    /// could not run here: too large, not wasm, no exported memory, an imported memory, a
    /// `_start`, an import outside the ABI, or instructions the metering cannot account for.
    pub fn compile(&self, wasm: &[u8]) -> Result<App, RuntimeError> {
        abi::validate_size(wasm, &self.limits)?;
        let shape = abi::validate_module(wasm, &self.limits)?;
        let metered = tabnode_meter::instrument(wasm, &self.meter)
            .map_err(|e| RuntimeError::InvalidModule(e.to_string()))?;
        let on_wasmi = || -> Result<Compiled, RuntimeError> {
            let module = wasmi::Module::new(&self.engine, &metered[..]).map_err(|e| {
                RuntimeError::InvalidModule(format!("not a valid wasm module: {e}"))
            })?;
            Ok(Compiled::Wasmi(Arc::new(module)))
        };
        let compiled = match self.kind {
            // A module the page will not compile (over its limit for synchronous compiles)
            // runs on wasmi: the same outcome, only slower.
            #[cfg(target_arch = "wasm32")]
            EngineKind::Browser => match browser_engine::Module::compile(&metered) {
                Ok(module) => Compiled::Browser(module),
                Err(_) => on_wasmi()?,
            },
            _ => on_wasmi()?,
        };
        Ok(App {
            compiled,
            methods: Arc::new(shape.methods),
            hash: *blake3::hash(wasm).as_bytes(),
        })
    }

    /// Runs `call` on a fresh instance of `app`, with the fuel of a call ([`Limits::fuel`]).
    pub fn call(&self, app: &App, call: &Call<'_>, views: Views) -> Result<Outcome, RuntimeError> {
        self.call_with_fuel(app, call, views, self.limits.fuel)
    }

    /// Runs `call` with `fuel` rather than a call's: what a user action has left for it, or a
    /// merge's budget ([`Limits::merge_fuel`]). Running out is [`RuntimeError::OutOfFuel`]
    /// with `fuel`.
    pub fn call_with_fuel(
        &self,
        app: &App,
        call: &Call<'_>,
        views: Views,
        fuel: u64,
    ) -> Result<Outcome, RuntimeError> {
        if !app.has_method(call.method) {
            return Err(RuntimeError::MethodNotFound(call.method.to_owned()));
        }
        let limits = Limits {
            fuel,
            ..self.limits.clone()
        };
        let state = HostState::new(&limits, call, views);
        match &app.compiled {
            Compiled::Wasmi(module) => {
                if !wasmi::Engine::same(&self.engine, module.engine()) {
                    return Err(RuntimeError::InvalidModule(
                        "the app was compiled by another runtime; compile it with this one".into(),
                    ));
                }
                wasmi_engine::run(&self.engine, &self.linker, module, state, call.method)
            }
            #[cfg(target_arch = "wasm32")]
            Compiled::Browser(module) => module.run(state, call.method),
        }
    }
}
