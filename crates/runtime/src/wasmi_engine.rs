//! wasmi, the reference engine: natively, in the CLI, in replays, and as the page's fallback.
//! It runs the rewritten module with no fuel of its own (the module meters itself).

use std::fmt;

use wasmi::{Caller, Engine, Error, Linker, Memory, Module, Store, Val};

use crate::engine::{exhausted, fuel_used, trap_name};
use crate::host::{HostState, Import, Returns, SliceMemory};
use crate::{Limits, Outcome, RuntimeError};

/// Why the host stopped a call; carried through wasmi as a host error.
#[derive(Debug)]
struct HostTrap(RuntimeError);

impl fmt::Display for HostTrap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl wasmi::errors::HostError for HostTrap {}

/// A call's state in wasmi's store: the host's, and the guest memory once instantiated.
pub(crate) struct Data {
    host: HostState,
    memory: Option<Memory>,
}

pub(crate) fn engine(limits: &Limits) -> Engine {
    let mut config = wasmi::Config::default();
    config.consume_fuel(false);
    // The module's own stack accounting must trap before wasmi's limits could: the smallest
    // frame it charges is 10 slots.
    config.set_max_recursion_depth(limits.stack_slots as usize / 10 + 16);
    config.set_max_stack_height(limits.stack_slots as usize * 8 * 4);
    Engine::new(&config)
}

/// The linker with every import of the ABI forwarded to [`HostState::call`], built once.
pub(crate) fn linker(engine: &Engine) -> Linker<Data> {
    let mut linker = Linker::new(engine);
    for &import in Import::ALL {
        let ty = wasmi::FuncType::new(
            vec![wasmi::ValType::I64; import.arity()],
            match import.returns() {
                Returns::Nothing => vec![],
                Returns::I32 => vec![wasmi::ValType::I32],
                Returns::I64 => vec![wasmi::ValType::I64],
            },
        );
        linker
            .func_new(
                "env",
                import.name(),
                ty,
                move |mut caller: Caller<'_, Data>, params: &[Val], results: &mut [Val]| {
                    let mut args = [0i64; 5];
                    for (arg, param) in args.iter_mut().zip(params) {
                        *arg = param.i64().unwrap_or(0);
                    }
                    let memory = caller.data().memory;
                    let result = match memory {
                        Some(memory) => {
                            let (bytes, data) = memory.data_and_store_mut(&mut caller);
                            data.host.call(import, &mut SliceMemory(bytes), &args)
                        }
                        None => Err(RuntimeError::BadAbiUse(
                            "a host function was called before the module was ready".into(),
                        )),
                    }
                    .map_err(|e| Error::host(HostTrap(e)))?;
                    match (import.returns(), results.first_mut()) {
                        (Returns::I32, Some(out)) => *out = Val::I32(result as i32),
                        (Returns::I64, Some(out)) => *out = Val::I64(result),
                        _ => {}
                    }
                    Ok(())
                },
            )
            .expect("each import is defined once");
    }
    linker
}

/// Instantiates the module and runs one exported method with the fuel budget.
pub(crate) fn run(
    engine: &Engine,
    linker: &Linker<Data>,
    module: &Module,
    host: HostState,
    method: &str,
) -> Result<Outcome, RuntimeError> {
    let mut store = Store::new(engine, Data { host, memory: None });
    let ran = run_in(&mut store, linker, module, method);
    store.into_data().host.finish(ran)
}

/// [`run`] up to the fuel the call used.
fn run_in(
    store: &mut Store<Data>,
    linker: &Linker<Data>,
    module: &Module,
    method: &str,
) -> Result<u64, RuntimeError> {
    let limits = store.data().host.limits.clone();
    let instance = linker
        .instantiate_and_start(&mut *store, module)
        .map_err(|e| RuntimeError::InvalidModule(format!("cannot instantiate: {e}")))?;
    store.data_mut().memory = instance.get_memory(&*store, "memory");
    let global = |name| {
        instance
            .get_global(&*store, name)
            .expect("the rewritten module exports its accounting globals")
    };
    let (fuel, trap) = (global(tabnode_meter::FUEL), global(tabnode_meter::TRAP));
    fuel.set(
        &mut *store,
        Val::I64(limits.fuel.min(i64::MAX as u64) as i64),
    )
    .expect("the fuel global is a mutable i64");
    let classify = |store: &Store<Data>, err: Error| -> RuntimeError {
        if let Some(HostTrap(e)) = err.downcast_ref::<HostTrap>() {
            return e.clone();
        }
        let code = trap.get(store).i32().unwrap_or(0);
        exhausted(code, &limits).unwrap_or_else(|| match err.as_trap_code() {
            Some(code) => RuntimeError::Trap(trap_name(&code.to_string()).into()),
            None => RuntimeError::Trap(trap_name(&err.to_string()).into()),
        })
    };
    // calimero-sdk apps register their state's CRDT merge function in a global of the instance;
    // merod calls this once per loaded module, and an instance here lives for one call.
    if let Ok(register) = instance.get_typed_func::<(), ()>(&*store, "__calimero_register_merge") {
        register
            .call(&mut *store, ())
            .map_err(|e| classify(store, e))?;
    }
    let func = instance
        .get_typed_func::<(), ()>(&*store, method)
        .map_err(|_| RuntimeError::MethodNotFound(method.to_owned()))?;
    func.call(&mut *store, ()).map_err(|e| classify(store, e))?;
    let left = fuel.get(&*store).i64().unwrap_or(0);
    fuel_used(&limits, left)
}
