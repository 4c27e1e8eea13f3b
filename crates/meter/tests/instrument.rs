//! The rewritten module, run on wasmi with no fuel of its own: what it charges, where it traps,
//! and that it computes what the original computed.

use tabnode_meter::{instrument, Config, Exhausted, MeterError, FUEL, TRAP};
use wasmi::{Engine, Instance, Linker, Module, Store, Val};

struct Run {
    result: Result<Vec<Val>, String>,
    fuel_left: i64,
    trap: Option<Exhausted>,
}

fn run(wat: &str, config: &Config, func: &str, args: &[Val], fuel: i64) -> Run {
    let wasm = instrument(&wat::parse_str(wat).unwrap(), config).expect("instruments");
    let engine = Engine::default();
    let module = Module::new(&engine, &wasm[..]).expect("the rewritten module is valid");
    let mut store = Store::new(&engine, ());
    let instance: Instance = Linker::new(&engine)
        .instantiate_and_start(&mut store, &module)
        .unwrap();
    instance
        .get_global(&store, FUEL)
        .unwrap()
        .set(&mut store, Val::I64(fuel))
        .unwrap();
    let f = instance.get_func(&store, func).unwrap();
    let mut out = vec![Val::I32(0); f.ty(&store).results().len()];
    let result = f
        .call(&mut store, args, &mut out)
        .map(|()| out)
        .map_err(|e| e.to_string());
    let global = |name| instance.get_global(&store, name).unwrap().get(&store);
    let Val::I64(fuel_left) = global(FUEL) else {
        panic!()
    };
    let Val::I32(trap) = global(TRAP) else {
        panic!()
    };
    Run {
        result,
        fuel_left,
        trap: Exhausted::from_code(trap),
    }
}

fn i32_of(run: &Run) -> i32 {
    match run.result.as_ref().unwrap()[..] {
        [Val::I32(v)] => v,
        ref other => panic!("{other:?}"),
    }
}

const SUM: &str = r#"(module
  (memory (export "memory") 1)
  (func (export "sum") (param $n i32) (result i32) (local $acc i32)
    (block $done
      (loop $again
        (br_if $done (i32.eqz (local.get $n)))
        (local.set $acc (i32.add (local.get $acc) (local.get $n)))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $again)))
    (local.get $acc)))"#;

#[test]
fn computes_what_the_original_computes_and_charges_per_instruction() {
    let c = Config::default();
    let small = run(SUM, &c, "sum", &[Val::I32(10)], 1_000_000);
    assert_eq!(i32_of(&small), 55);
    assert_eq!(small.trap, None);
    let big = run(SUM, &c, "sum", &[Val::I32(20)], 1_000_000);
    let (used_small, used_big) = (1_000_000 - small.fuel_left, 1_000_000 - big.fuel_left);
    // Each turn of the loop costs its 13 instructions, from after `loop` to its `end`.
    assert_eq!((used_big - used_small) % 10, 0, "{used_small} {used_big}");
    assert_eq!((used_big - used_small) / 10, 13);
}

#[test]
fn an_endless_loop_runs_out_of_fuel_at_the_same_point_every_time() {
    let wat = r#"(module (memory (export "memory") 1)
      (func (export "spin") (loop $l (br $l))))"#;
    let c = Config::default();
    let a = run(wat, &c, "spin", &[], 100_000);
    let b = run(wat, &c, "spin", &[], 100_000);
    assert!(a.result.is_err());
    assert_eq!(a.trap, Some(Exhausted::Fuel));
    assert!(a.fuel_left < 0);
    assert_eq!(a.fuel_left, b.fuel_left);
}

#[test]
fn deep_recursion_traps_on_the_stack_limit_and_shallow_recursion_runs() {
    let wat = r#"(module (memory (export "memory") 1)
      (func $down (export "down") (param $n i32) (result i32)
        (if (result i32) (i32.eqz (local.get $n))
          (then (i32.const 0))
          (else (i32.add (i32.const 1) (call $down (i32.sub (local.get $n) (i32.const 1))))))))"#;
    let c = Config {
        stack_slots: 1000,
        ..Config::default()
    };
    let shallow = run(wat, &c, "down", &[Val::I32(20)], 1_000_000);
    assert_eq!(i32_of(&shallow), 20);
    let deep = run(wat, &c, "down", &[Val::I32(10_000)], 10_000_000);
    assert!(deep.result.is_err());
    assert_eq!(deep.trap, Some(Exhausted::Stack));
}

#[test]
fn every_way_out_of_a_function_gives_its_frame_back() {
    // `return` from inside blocks, and a branch to the function's own label, many times over:
    // if either kept its frame, the loop would exhaust the stack.
    let wat = r#"(module (memory (export "memory") 1)
      (func $early (param i32) (result i32)
        (block (block (br_if 1 (local.get 0)) (return (i32.const 7)))) (i32.const 8))
      (func $label (param i32) (result i32)
        (i32.const 9) (br_if 0 (local.get 0)) (drop) (i32.const 10))
      (func (export "many") (param $n i32) (result i32) (local $acc i32)
        (block $done (loop $l
          (br_if $done (i32.eqz (local.get $n)))
          (local.set $acc (i32.add (local.get $acc) (call $early (i32.and (local.get $n) (i32.const 1)))))
          (local.set $acc (i32.add (local.get $acc) (call $label (i32.and (local.get $n) (i32.const 1)))))
          (local.set $n (i32.sub (local.get $n) (i32.const 1)))
          (br $l)))
        (local.get $acc)))"#;
    let c = Config {
        stack_slots: 200,
        ..Config::default()
    };
    let r = run(wat, &c, "many", &[Val::I32(1000)], 10_000_000);
    // 500 odd n: early 8 + label 9; 500 even: early 7 + label 10.
    assert_eq!(i32_of(&r), 500 * 17 + 500 * 17);
}

#[test]
fn a_failed_memory_grow_traps_past_the_cap() {
    let wat = r#"(module (memory (export "memory") 1)
      (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0))))"#;
    let c = Config {
        max_memory_pages: 4,
        ..Config::default()
    };
    let ok = run(wat, &c, "grow", &[Val::I32(3)], 1000);
    assert_eq!(i32_of(&ok), 1, "the old size");
    let over = run(wat, &c, "grow", &[Val::I32(4)], 1000);
    assert!(over.result.is_err());
    assert_eq!(over.trap, Some(Exhausted::Memory));
}

#[test]
fn nan_results_have_the_canonical_bits() {
    // 0/0 and sqrt(-1) give a NaN whose sign and payload depend on the CPU; a NaN operand's
    // payload may be carried through. Every one comes out as the canonical positive quiet NaN.
    let wat = r#"(module (memory (export "memory") 1)
      (func (export "div") (param f64 f64) (result i64)
        (i64.reinterpret_f64 (f64.div (local.get 0) (local.get 1))))
      (func (export "payload") (result i64)
        (i64.reinterpret_f64 (f64.add (f64.const -nan:0x12345) (f64.const 1))))
      (func (export "narrow") (result i32)
        (i32.reinterpret_f32 (f32.demote_f64 (f64.const -nan:0x8000000000001))))
      (func (export "fine") (result i64)
        (i64.reinterpret_f64 (f64.mul (f64.const 1.5) (f64.const 2)))))"#;
    let c = Config::default();
    let i64_of = |r: Run| match r.result.unwrap()[..] {
        [Val::I64(v)] => v as u64,
        ref other => panic!("{other:?}"),
    };
    let zero = Val::F64(0f64.into());
    assert_eq!(
        i64_of(run(wat, &c, "div", &[zero.clone(), zero], 100)),
        0x7ff8_0000_0000_0000
    );
    assert_eq!(
        i64_of(run(wat, &c, "payload", &[], 100)),
        0x7ff8_0000_0000_0000
    );
    assert_eq!(
        i32_of(&run(wat, &c, "narrow", &[], 100)) as u32,
        0x7fc0_0000
    );
    assert_eq!(i64_of(run(wat, &c, "fine", &[], 100)), 3f64.to_bits());
}

#[test]
fn multi_value_functions_and_modules_without_globals_or_exports_are_rewritten() {
    let wat = r#"(module
      (func $pair (param i32) (result i32 i32) (local.get 0) (i32.const 1) (return))
      (func $start (drop (drop (call $pair (i32.const 3)))))
      (memory 1))"#;
    let wasm = instrument(&wat::parse_str(wat).unwrap(), &Config::default()).unwrap();
    let engine = Engine::default();
    Module::new(&engine, &wasm[..]).expect("valid");
}

#[test]
fn modules_it_cannot_account_for_are_refused() {
    let simd = r#"(module (func (result v128) (v128.const i64x2 0 0)))"#;
    let err = instrument(&wat::parse_str(simd).unwrap(), &Config::default()).unwrap_err();
    assert!(
        matches!(err, MeterError::Invalid(ref m) if m.contains("SIMD")),
        "{err}"
    );
    let huge = r#"(module (memory 2000))"#;
    let err = instrument(&wat::parse_str(huge).unwrap(), &Config::default()).unwrap_err();
    assert!(err.to_string().contains("2000 pages"), "{err}");
    let clash = r#"(module (global (export "__tabnode_fuel") i32 (i32.const 0)))"#;
    assert!(instrument(&wat::parse_str(clash).unwrap(), &Config::default()).is_err());
    assert!(instrument(b"\0asm\x01\0\0\0\x01", &Config::default()).is_err());
}

#[test]
fn the_same_bytes_give_the_same_module() {
    let wasm = wat::parse_str(SUM).unwrap();
    assert_eq!(
        instrument(&wasm, &Config::default()).unwrap(),
        instrument(&wasm, &Config::default()).unwrap()
    );
}

/// Padded LEB128s, as wasm-ld leaves them where it relocated an index: the rewrite copies the
/// guest's instructions and constant expressions as written, and they still mean what they did.
#[test]
fn instructions_and_constant_expressions_written_with_padded_numbers_keep_their_meaning() {
    use wasm_encoder::{
        CodeSection, ConstExpr, DataSection, ExportKind, ExportSection, Function, FunctionSection,
        GlobalSection, GlobalType, MemorySection, MemoryType, Module as Encoded, TypeSection,
        ValType,
    };
    // `n` (under 128) as a five-byte LEB128.
    let padded = |n: u8| [n | 0x80, 0x80, 0x80, 0x80, 0x00];
    let mut module = Encoded::new();
    let mut types = TypeSection::new();
    types.ty().function([], [ValType::I32]);
    module.section(&types);
    let mut functions = FunctionSection::new();
    functions.function(0).function(0);
    module.section(&functions);
    let mut memories = MemorySection::new();
    memories.memory(MemoryType {
        minimum: 1,
        maximum: None,
        memory64: false,
        shared: false,
        page_size_log2: None,
    });
    module.section(&memories);
    let mut globals = GlobalSection::new();
    let i32_const = |n: u8| ConstExpr::raw([[0x41].as_slice(), &padded(n)].concat());
    let immutable = GlobalType {
        val_type: ValType::I32,
        mutable: false,
        shared: false,
    };
    globals.global(immutable, &i32_const(41));
    module.section(&globals);
    let mut exports = ExportSection::new();
    exports
        .export("memory", ExportKind::Memory, 0)
        .export("get", ExportKind::Func, 1);
    module.section(&exports);
    let mut code = CodeSection::new();
    let mut seven = Function::new([]);
    seven.raw([[0x41].as_slice(), &padded(7), &[0x0b]].concat());
    code.function(&seven);
    let mut get = Function::new([]);
    get.raw(
        [
            [0x23].as_slice(), // global.get 0
            &padded(0),
            &[0x10], // call 0
            &padded(0),
            &[0x6a, 0x41, 0x00, 0x28, 0x02], // i32.add, i32.const 0, i32.load align 4 offset …
            &padded(16),
            &[0x6a, 0x0b], // i32.add, end
        ]
        .concat(),
    );
    code.function(&get);
    module.section(&code);
    let mut data = DataSection::new();
    data.active(0, &i32_const(16), [1, 0, 0, 0]);
    module.section(&data);

    let wasm = instrument(&module.finish(), &Config::default()).expect("instruments");
    let engine = Engine::default();
    let module = Module::new(&engine, &wasm[..]).expect("the rewritten module is valid");
    let mut store = Store::new(&engine, ());
    let instance = Linker::new(&engine)
        .instantiate_and_start(&mut store, &module)
        .unwrap();
    instance
        .get_global(&store, FUEL)
        .unwrap()
        .set(&mut store, Val::I64(1_000))
        .unwrap();
    let mut out = [Val::I32(0)];
    let get = instance.get_func(&store, "get").unwrap();
    get.call(&mut store, &[], &mut out).unwrap();
    assert!(matches!(out, [Val::I32(49)]), "41 + 7 + 1: {out:?}");
}
