//! The browser's own WebAssembly engine, in the page: the guest (as `tabnode-meter` rewrote it)
//! is compiled once into a `WebAssembly.Module` and instantiated per call, and each of its
//! imports is a small closure that forwards to [`HostState::call`], the one ABI every engine
//! shares. The call's state sits in a thread-local while the guest runs (the page has one
//! thread, and a host function never calls back into a guest).
//!
//! A host error travels through the guest as a thrown exception and is read back from the
//! thread-local; a trap the module recorded ([`tabnode_meter::TRAP`]) is fuel, stack or memory;
//! anything else is the guest's own trap, named as wasmi names it.

use std::cell::RefCell;

use js_sys::{Function, Object, Reflect, Uint8Array, WebAssembly};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};

use crate::engine::{exhausted, fuel_used, trap_name};
use crate::host::{GuestMemory, HostState, Import, Returns};
use crate::{Outcome, RuntimeError};

/// A compiled guest; cloning shares it.
#[derive(Clone)]
pub(crate) struct Module(WebAssembly::Module);

/// The call in progress.
struct Current {
    host: HostState,
    memory: Option<GuestBytes>,
    /// Why a host function stopped the call, if one did.
    error: Option<RuntimeError>,
}

thread_local! {
    static CURRENT: RefCell<Option<Current>> = const { RefCell::new(None) };
    /// The import object, built once: `{ env: { <import>: <closure>, ... } }`.
    static IMPORTS: Object = imports();
    /// A fresh instance of the module last run, made while the page had nothing else to do.
    static SPARE: RefCell<Option<(WebAssembly::Module, WebAssembly::Instance)>> =
        const { RefCell::new(None) };
}

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = queueMicrotask)]
    fn queue_microtask(task: &JsValue);
}

/// A new instance of `module`: the spare one if it is of this module.
fn instantiate(module: &WebAssembly::Module) -> Result<WebAssembly::Instance, JsValue> {
    let spare = SPARE.with(|spare| spare.borrow_mut().take_if(|(of, _)| Object::is(of, module)));
    match spare {
        Some((_, instance)) => Ok(instance),
        None => IMPORTS.with(|imports| WebAssembly::Instance::new(module, imports)),
    }
}

/// Makes a spare instance of `module` once the task under way is over: a call's instance is
/// then ready before the call comes. The node runs a call, then waits for IndexedDB to commit
/// its writes, so the spare is made while the page waits. An instance is fresh until its first
/// export runs, so the spare is what the next call would make itself (a module whose start
/// function calls the host cannot be made outside a call, and is not kept).
fn make_spare_soon(module: WebAssembly::Module) {
    let task = Closure::once_into_js(move || {
        if SPARE.with(|spare| {
            spare
                .borrow()
                .as_ref()
                .is_some_and(|(of, _)| Object::is(of, &module))
        }) {
            return;
        }
        if let Ok(instance) = IMPORTS.with(|imports| WebAssembly::Instance::new(&module, imports)) {
            SPARE.with(|spare| *spare.borrow_mut() = Some((module, instance)));
        }
    });
    queue_microtask(&task);
}

/// What a host function throws to unwind the guest; the error itself is in [`Current`].
const HOST_TRAP: &str = "tabnode: host function stopped the call";

/// The guest's memory as the host reaches it from the node's own wasm: one crossing into JS per
/// read or write, with the views of both memories kept from one host call to the next (a view
/// goes stale, length 0, when its memory grows, and is made again then). A copy of up to 32
/// bytes (an `i64`, a `Buffer` struct, a key) goes byte by byte, without a view of its own.
/// Before, each host call made a view of the guest's memory and each read or write two more
/// (`subarray`, then `copy_to`'s view of the node's memory): about 1,500 crossings in a kv-store
/// `set` at 1,000 keys, which makes some 270 host calls.
#[wasm_bindgen(inline_js = r#"
function copy(src, from, dst, to, len) {
  if (len <= 32) for (let i = 0; i < len; i++) dst[to + i] = src[from + i];
  else dst.set(src.subarray(from, from + len), to);
}
export class GuestBytes {
  constructor(guest, node) { this.guest = guest; this.node = node; this.g = new Uint8Array(0); this.n = new Uint8Array(0); }
  /** Whether `len` bytes at `ptr` are in the guest's memory, with both views fresh. */
  fits(ptr, len) {
    if (this.g.byteLength === 0) this.g = new Uint8Array(this.guest.buffer);
    if (this.n.byteLength === 0) this.n = new Uint8Array(this.node.buffer);
    return ptr + len <= this.g.length;
  }
  read(ptr, len, out) { return this.fits(ptr, len) && (copy(this.g, ptr, this.n, out, len), true); }
  write(ptr, len, from) { return this.fits(ptr, len) && (copy(this.n, from, this.g, ptr, len), true); }
}
"#)]
extern "C" {
    type GuestBytes;
    #[wasm_bindgen(constructor)]
    fn new(guest: &WebAssembly::Memory, node: &JsValue) -> GuestBytes;
    /// Copies `len` bytes at `ptr` of the guest's memory to `out` in the node's; `false` if out
    /// of bounds.
    #[wasm_bindgen(method)]
    fn read(this: &GuestBytes, ptr: usize, len: usize, out: usize) -> bool;
    /// Copies `len` bytes at `from` in the node's memory to `ptr` of the guest's; `false` if out
    /// of bounds.
    #[wasm_bindgen(method)]
    fn write(this: &GuestBytes, ptr: usize, len: usize, from: usize) -> bool;
}

impl GuestMemory for &GuestBytes {
    fn read(&self, ptr: usize, out: &mut [u8]) -> bool {
        GuestBytes::read(self, ptr, out.len(), out.as_mut_ptr() as usize)
    }

    fn write(&mut self, ptr: usize, data: &[u8]) -> bool {
        GuestBytes::write(self, ptr, data.len(), data.as_ptr() as usize)
    }
}

/// Runs one import for the guest of the call in progress.
fn dispatch(import: Import, args: &[i64]) -> Result<i64, JsValue> {
    CURRENT.with(|current| {
        let mut current = current.borrow_mut();
        let Some(current) = current.as_mut() else {
            return Err(JsValue::from_str(HOST_TRAP));
        };
        let Some(memory) = &current.memory else {
            current.error = Some(RuntimeError::BadAbiUse(
                "a host function was called before the module was ready".into(),
            ));
            return Err(JsValue::from_str(HOST_TRAP));
        };
        current.host.call(import, &mut &*memory, args).map_err(|e| {
            current.error = Some(e);
            JsValue::from_str(HOST_TRAP)
        })
    })
}

/// One closure per import, with the import's exact arity (JS passes `i64` as `BigInt`).
fn import_function(import: Import) -> JsValue {
    macro_rules! closure {
        ($($arg:ident),*) => {
            match import.returns() {
                Returns::Nothing => Closure::<dyn Fn($(closure!(@ty $arg)),*) -> Result<(), JsValue>>::new(
                    move |$($arg: i64),*| dispatch(import, &[$($arg),*]).map(drop),
                ).into_js_value(),
                Returns::I32 => Closure::<dyn Fn($(closure!(@ty $arg)),*) -> Result<i32, JsValue>>::new(
                    move |$($arg: i64),*| dispatch(import, &[$($arg),*]).map(|v| v as i32),
                ).into_js_value(),
                Returns::I64 => Closure::<dyn Fn($(closure!(@ty $arg)),*) -> Result<i64, JsValue>>::new(
                    move |$($arg: i64),*| dispatch(import, &[$($arg),*]),
                ).into_js_value(),
            }
        };
        (@ty $arg:ident) => { i64 };
    }
    match import.arity() {
        0 => closure!(),
        1 => closure!(a),
        2 => closure!(a, b),
        3 => closure!(a, b, c),
        4 => closure!(a, b, c, d),
        _ => closure!(a, b, c, d, e),
    }
}

/// Runs one import for the guest, called straight from the guest's code (see [`direct`]): a
/// host error is thrown, unwinding the guest; it is kept in [`Current`].
fn direct_call(import: Import, args: &[i64]) -> i64 {
    match dispatch(import, args) {
        Ok(value) => value,
        // Nothing of this frame needs dropping: the call's state is in `CURRENT`, released.
        Err(_) => wasm_bindgen::throw_str(HOST_TRAP),
    }
}

/// One function of this module per import, exported as `tabnode_env_<import>` with the import's
/// exact type: the guest's instance imports these, so a host call goes from the guest's code to
/// the node's with no JS in between (no closure glue, no `BigInt` for each `i64`).
macro_rules! direct {
    ($($variant:ident = $name:literal ($arity:tt) -> $returns:ident,)*) => {
        $(direct!(@arity $variant $name $returns $arity);)*
    };
    (@arity $variant:ident $name:literal $returns:ident 0) => { direct!(@fn $variant $name $returns ()); };
    (@arity $variant:ident $name:literal $returns:ident 1) => { direct!(@fn $variant $name $returns (a)); };
    (@arity $variant:ident $name:literal $returns:ident 2) => { direct!(@fn $variant $name $returns (a, b)); };
    (@arity $variant:ident $name:literal $returns:ident 3) => { direct!(@fn $variant $name $returns (a, b, c)); };
    (@arity $variant:ident $name:literal $returns:ident 4) => { direct!(@fn $variant $name $returns (a, b, c, d)); };
    (@arity $variant:ident $name:literal $returns:ident 5) => { direct!(@fn $variant $name $returns (a, b, c, d, e)); };
    (@fn $variant:ident $name:literal Nothing ($($arg:ident),*)) => {
        const _: () = {
            #[export_name = concat!("tabnode_env_", $name)]
            extern "C" fn host($($arg: i64),*) {
                direct_call(Import::$variant, &[$($arg),*]);
            }
        };
    };
    (@fn $variant:ident $name:literal I32 ($($arg:ident),*)) => {
        const _: () = {
            #[export_name = concat!("tabnode_env_", $name)]
            extern "C" fn host($($arg: i64),*) -> i32 {
                direct_call(Import::$variant, &[$($arg),*]) as i32
            }
        };
    };
    (@fn $variant:ident $name:literal I64 ($($arg:ident),*)) => {
        const _: () = {
            #[export_name = concat!("tabnode_env_", $name)]
            extern "C" fn host($($arg: i64),*) -> i64 {
                direct_call(Import::$variant, &[$($arg),*])
            }
        };
    };
}
crate::host::for_each_import!(direct);

fn imports() -> Object {
    let env = Object::new();
    // This module's own export for each import where there is one (a build whose exports were
    // stripped falls back to a JS closure per import).
    let exports = wasm_bindgen::exports();
    for &import in Import::ALL {
        let own = Reflect::get(&exports, &format!("tabnode_env_{}", import.name()).into())
            .ok()
            .filter(|f| f.is_function());
        let function = own.unwrap_or_else(|| import_function(import));
        Reflect::set(&env, &import.name().into(), &function)
            .expect("setting a property of a new object");
    }
    let imports = Object::new();
    Reflect::set(&imports, &"env".into(), &env).expect("setting a property of a new object");
    imports
}

fn describe(error: &JsValue) -> String {
    error
        .dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| error.as_string())
        .unwrap_or_else(|| format!("{error:?}"))
}

fn export(exports: &JsValue, name: &str) -> Option<JsValue> {
    Reflect::get(exports, &name.into())
        .ok()
        .filter(|v| !v.is_undefined())
}

impl Module {
    /// Compiles the rewritten module. Fails only where the page refuses to compile it (a
    /// module over the browser's limit for synchronous compiles on the main thread).
    pub(crate) fn compile(wasm: &[u8]) -> Result<Self, RuntimeError> {
        WebAssembly::Module::new(&Uint8Array::from(wasm).into())
            .map(Self)
            .map_err(|e| {
                RuntimeError::InvalidModule(format!("the page cannot compile it: {}", describe(&e)))
            })
    }

    /// Instantiates the module and runs one exported method with the fuel budget.
    pub(crate) fn run(&self, host: HostState, method: &str) -> Result<Outcome, RuntimeError> {
        let limits = host.limits.clone();
        CURRENT.with(|c| {
            *c.borrow_mut() = Some(Current {
                host,
                memory: None,
                error: None,
            })
        });
        let result = self.run_current(method, &limits);
        make_spare_soon(self.0.clone());
        let current = CURRENT
            .with(|c| c.borrow_mut().take())
            .expect("the call's state stays until the call ends");
        current.host.finish(result)
    }

    fn run_current(&self, method: &str, limits: &crate::Limits) -> Result<u64, RuntimeError> {
        let instance = instantiate(&self.0).map_err(|e| {
            RuntimeError::InvalidModule(format!("cannot instantiate: {}", describe(&e)))
        })?;
        let exports = instance.exports();
        let global = |name| -> WebAssembly::Global {
            export(&exports, name)
                .and_then(|g| g.dyn_into().ok())
                .expect("the rewritten module exports its accounting globals")
        };
        let (fuel, trap) = (global(tabnode_meter::FUEL), global(tabnode_meter::TRAP));
        let memory = export(&exports, "memory")
            .and_then(|m| m.dyn_into::<WebAssembly::Memory>().ok())
            .map(|m| GuestBytes::new(&m, &wasm_bindgen::memory()));
        CURRENT.with(|c| {
            if let Some(current) = c.borrow_mut().as_mut() {
                current.memory = memory;
            }
        });
        let budget = limits.fuel.min(i64::MAX as u64) as i64;
        fuel.set_value(&js_sys::BigInt::from(budget).into());
        let classify = |error: JsValue| -> RuntimeError {
            if let Some(e) = CURRENT.with(|c| c.borrow_mut().as_mut().and_then(|c| c.error.take()))
            {
                return e;
            }
            let code = trap.value().as_f64().unwrap_or(0.0) as i32;
            exhausted(code, limits)
                .unwrap_or_else(|| RuntimeError::Trap(trap_name(&describe(&error)).into()))
        };
        // calimero-sdk apps register their state's CRDT merge function in a global of the
        // instance; merod calls this once per loaded module, and an instance lives for one call.
        for name in ["__calimero_register_merge", method] {
            let Some(func) = export(&exports, name).and_then(|f| f.dyn_into::<Function>().ok())
            else {
                if name == method {
                    return Err(RuntimeError::MethodNotFound(method.to_owned()));
                }
                continue;
            };
            func.call0(&JsValue::UNDEFINED).map_err(classify)?;
        }
        let left = js_sys::BigInt::from(fuel.value());
        let left = i64::try_from(left).unwrap_or(-1);
        fuel_used(limits, left)
    }
}
