//! Modules are checked before they are stored.

#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

use tabnode_runtime::{Limits, Runtime, RuntimeError};

fn compile(wat: &str) -> Result<(), RuntimeError> {
    Runtime::new(Limits::default())
        .compile(&wat::parse_str(wat).unwrap())
        .map(|_| ())
}

fn refused(wat: &str) -> String {
    match compile(wat) {
        Err(RuntimeError::InvalidModule(why)) => why,
        other => panic!("expected InvalidModule, got {other:?}"),
    }
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn a_minimal_app_compiles() {
    compile(MINIMAL_APP).unwrap();
}

const MINIMAL_APP: &str = r#"(module (import "env" "log_utf8" (func (param i64))) (memory (export "memory") 1) (func (export "m")))"#;

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn unknown_imports_are_named() {
    let why =
        refused(r#"(module (import "env" "steal_keys" (func)) (memory (export "memory") 1))"#);
    assert!(why.contains("env.steal_keys"), "{why}");
    let why = refused(r#"(module (import "wasi" "fd_write" (func)) (memory (export "memory") 1))"#);
    assert!(why.contains("wasi.fd_write"), "{why}");
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn memory_must_be_exported_not_imported_and_within_limits() {
    assert!(refused(r#"(module (func (export "m")))"#).contains("memory"));
    assert!(refused(r#"(module (import "env" "memory" (memory 1)))"#).contains("imports memory"));
    assert!(refused(r#"(module (memory (export "memory") 2000))"#).contains("pages"));
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn start_functions_and_garbage_are_refused() {
    assert!(
        refused(r#"(module (memory (export "memory") 1) (func (export "_start")))"#)
            .contains("_start")
    );
    assert!(refused_bytes(b"\0asm\x01\0\0\0garbage").contains("not a valid wasm module"));
}

/// A valid module padded with a custom section to `len` bytes in all.
fn valid_module_of(len: usize) -> Vec<u8> {
    let mut wasm = wat::parse_str(MINIMAL_APP).unwrap();
    // A custom section: id 0, its size (LEB128, padded to 5 bytes), a 1-byte name "x", then
    // padding up to `len`.
    let payload = len - wasm.len() - 1 - 5;
    let mut size = Vec::new();
    let mut rest = payload as u32;
    for i in 0..5 {
        let last = i == 4;
        size.push((rest & 0x7f) as u8 | if last { 0 } else { 0x80 });
        rest >>= 7;
    }
    wasm.push(0);
    wasm.extend(size);
    wasm.extend([1, b'x']);
    wasm.resize(len, 0);
    wasm
}

/// The module size limit (20 MiB by default) refuses a module that is valid wasm in every other
/// respect, and the same module at exactly the limit compiles.
#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn a_valid_module_over_the_size_limit_is_refused_for_its_size() {
    let limit = Limits::default().max_module_size;
    assert_eq!(limit, 20 * 1024 * 1024);
    let rt = Runtime::new(Limits::default());
    rt.compile(&valid_module_of(limit))
        .expect("a valid module at the limit compiles");
    match rt.compile(&valid_module_of(limit + 1)) {
        Err(RuntimeError::InvalidModule(why)) => {
            assert!(why.contains("over the limit of 20971520 bytes"), "{why}")
        }
        other => panic!("expected InvalidModule, got {:?}", other.map(|_| ())),
    }
}

/// A guest that executes `unreachable` (what a Rust guest's abort compiles to) fails the call
/// with `Trap`, naming what happened.
#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn a_guest_trap_is_a_trap_error() {
    let rt = Runtime::new(Limits::default());
    let app = rt
        .compile(
            &wat::parse_str(
                r#"(module (memory (export "memory") 1) (func (export "m") unreachable))"#,
            )
            .unwrap(),
        )
        .unwrap();
    match call_m(&rt, &app) {
        Err(RuntimeError::Trap(why)) => assert!(why.contains("unreachable"), "{why}"),
        other => panic!("expected Trap, got {:?}", other.map(|_| ())),
    }
}

/// Calls the module's method `m` with no arguments on empty state.
fn call_m(
    rt: &Runtime,
    app: &tabnode_runtime::App,
) -> Result<tabnode_runtime::Outcome, RuntimeError> {
    let call = tabnode_runtime::Call {
        method: "m",
        input: b"",
        context_id: [0; 32],
        executor_id: [0; 32],
        time_now_nanos: 0,
        random_seed: [0; 32],
    };
    let empty = std::rc::Rc::new(std::collections::BTreeMap::new());
    rt.call(
        app,
        &call,
        tabnode_runtime::Views::new(empty.clone(), empty),
    )
}

fn refused_bytes(bytes: &[u8]) -> String {
    match Runtime::new(Limits::default()).compile(bytes) {
        Err(RuntimeError::InvalidModule(why)) => why,
        other => panic!("expected InvalidModule, got {:?}", other.map(|_| ())),
    }
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn unsupported_imports_fail_loudly_when_called() {
    let rt = Runtime::new(Limits::default());
    let app = rt
        .compile(&wat::parse_str(r#"(module (import "env" "fetch" (func $f (param i64 i64 i64 i64 i64) (result i32)))
            (memory (export "memory") 1)
            (func (export "m") (drop (call $f (i64.const 0) (i64.const 0) (i64.const 0) (i64.const 0) (i64.const 0)))))"#).unwrap())
        .unwrap();
    let err = call_m(&rt, &app).unwrap_err();
    assert!(
        matches!(
            err,
            RuntimeError::Unsupported {
                import: "fetch",
                ..
            }
        ),
        "{err}"
    );
}

/// A long-running guest must not grow the host's native stack (a wasmi dispatch that does not
/// tail-call overflowed the 2 MiB stack of a test thread within a few thousand instructions).
#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn a_long_loop_runs_in_constant_native_stack() {
    let rt = Runtime::new(Limits::default());
    let app = rt
        .compile(
            &wat::parse_str(
                r#"(module (memory (export "memory") 1) (global $g (mut i32) (i32.const 0))
                (func (export "m") (local $i i32)
                  (loop $l
                    (global.set $g (i32.xor (global.get $g) (i32.add (local.get $i) (i32.const 7))))
                    (i32.store (i32.const 0) (global.get $g))
                    (local.set $i (i32.add (local.get $i) (i32.const 1)))
                    (br_if $l (i32.lt_u (local.get $i) (i32.const 1000000))))))"#,
            )
            .unwrap(),
        )
        .unwrap();
    let outcome = call_m(&rt, &app).unwrap();
    assert!(outcome.fuel_used > 1_000_000, "{}", outcome.fuel_used);
}
