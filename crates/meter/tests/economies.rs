//! The lean accounting against the plain one (`Config::plain`, meter 1; see `emit.rs`), run on
//! wasmi at every fuel budget from none to enough and at every stack limit up to enough: the
//! same results, the same host calls in the same order, the same trap, and the same fuel left,
//! both after a return and after running out of something (so the check that failed was the
//! same). The guest apps are compared through the runtime's host in
//! `crates/runtime/tests/meter_economies.rs`.

use tabnode_meter::{instrument, Config, Exhausted, FUEL, TRAP};
use wasmi::{Caller, Engine, Linker, Module, Store, Val};

/// Leaves (with loops, `if` arms, `br_table`, early returns from a loop, growth in a loop,
/// NaNs, several results, host calls) and functions that are not (callers, recursion, an
/// indirect call).
const GUEST: &str = r#"(module
  (import "env" "note" (func $note (param i64)))
  (import "env" "peek" (func $peek (result i64)))
  (memory (export "memory") 1)
  (table 2 funcref)
  (elem (i32.const 0) $square $spin)
  (type $unary (func (param i32) (result i32)))
  ;; A leaf with a loop, `if` arms, `br_table` and an early return from inside the loop.
  (func $spin (param $n i32) (result i32) (local $acc i32)
    (loop $l
      (call $note (i64.extend_i32_u (local.get $n)))
      (if (i32.and (local.get $n) (i32.const 1))
        (then (local.set $acc (i32.add (local.get $acc) (i32.const 3))))
        (else (local.set $acc (i32.xor (local.get $acc) (local.get $n)))))
      (block $a (block $b (block $c
        (br_table $a $b $c (i32.rem_u (local.get $n) (i32.const 3))))
        (if (i32.eq (local.get $n) (i32.const 77)) (then (return (i32.const -1)))))
        (local.set $acc (i32.add (local.get $acc) (i32.wrap_i64 (call $peek)))))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br_if $l (i32.gt_s (local.get $n) (i32.const 0))))
    (local.get $acc))
  ;; A leaf without a loop.
  (func $square (param $x i32) (result i32) (i32.mul (local.get $x) (local.get $x)))
  ;; A leaf with a loop that grows memory one page a turn (the cap stops it).
  (func $grow (param $pages i32) (result i32)
    (loop $l
      (drop (memory.grow (i32.const 1)))
      (call $note (i64.extend_i32_u (memory.size)))
      (local.set $pages (i32.sub (local.get $pages) (i32.const 1)))
      (br_if $l (local.get $pages)))
    (memory.size))
  ;; A leaf with a loop of float work whose NaNs must come out canonical.
  (func $floats (param $x f64) (result i64) (local $i i32) (local $acc f64)
    (loop $l
      (local.set $acc (f64.add (local.get $acc) (f64.div (local.get $x) (f64.convert_i32_s (local.get $i)))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_s (local.get $i) (i32.const 4))))
    (i64.reinterpret_f64 (local.get $acc)))
  ;; Multi-value from a leaf with a loop.
  (func $pair (param $n i32) (result i32 i32)
    (loop $l (local.set $n (i32.shr_u (local.get $n) (i32.const 1))) (br_if $l (local.get $n)))
    (local.get $n) (i32.const 5))
  ;; No leaf, though its only call is through the table.
  (func $via_table (param $x i32) (result i32)
    (call_indirect (type $unary) (local.get $x) (i32.const 0)))
  ;; Recursion through a caller that is no leaf.
  (func $down (param $n i32) (result i32)
    (if (result i32) (i32.eqz (local.get $n))
      (then (i32.add (call $spin (i32.const 4)) (call $via_table (i32.const 3))))
      (else (i32.add (call $square (local.get $n))
                     (call $down (i32.sub (local.get $n) (i32.const 1)))))))
  (func (export "run") (param $n i32) (param $pages i32) (result i64) (local $acc i32)
    (loop $l
      (local.set $acc (i32.add (local.get $acc) (call $spin (local.get $n))))
      (local.set $acc (i32.add (local.get $acc)
        (call_indirect (type $unary) (local.get $n) (i32.and (local.get $n) (i32.const 1)))))
      (local.set $acc (i32.add (local.get $acc) (call $down (i32.and (local.get $n) (i32.const 15)))))
      (call $pair (local.get $n)) (drop) (drop)
      (local.set $acc (i32.add (local.get $acc) (i32.wrap_i64 (call $floats (f64.const 0)))))
      (local.set $n (i32.sub (local.get $n) (i32.const 7)))
      (br_if $l (i32.gt_s (local.get $n) (i32.const 0))))
    (i64.add (i64.extend_i32_u (local.get $acc))
             (i64.extend_i32_u (call $grow (local.get $pages))))))"#;

/// What one call did: its result (or that it trapped, and on what), the host calls it made,
/// and the fuel global afterwards.
#[derive(Debug, PartialEq)]
struct Run {
    result: Result<Vec<i64>, Option<Exhausted>>,
    host_calls: Vec<(&'static str, i64)>,
    fuel_left: i64,
}

fn run(module: &Module, fuel: i64, args: [i32; 2]) -> Run {
    let engine = module.engine();
    let mut store = Store::new(engine, Vec::<(&'static str, i64)>::new());
    let mut linker = Linker::new(engine);
    linker
        .func_wrap("env", "note", |mut c: Caller<'_, Vec<_>>, v: i64| {
            c.data_mut().push(("note", v));
        })
        .unwrap();
    linker
        .func_wrap("env", "peek", |mut c: Caller<'_, Vec<_>>| -> i64 {
            let n = c.data().len() as i64;
            c.data_mut().push(("peek", n));
            n
        })
        .unwrap();
    let instance = linker.instantiate_and_start(&mut store, module).unwrap();
    let fuel_global = instance.get_global(&store, FUEL).unwrap();
    fuel_global.set(&mut store, Val::I64(fuel)).unwrap();
    let f = instance.get_func(&store, "run").unwrap();
    let mut out = [Val::I64(0)];
    let result = match f.call(
        &mut store,
        &[Val::I32(args[0]), Val::I32(args[1])],
        &mut out,
    ) {
        Ok(()) => Ok(out.iter().map(|v| v.i64().unwrap()).collect()),
        Err(_) => {
            let trap = instance.get_global(&store, TRAP).unwrap().get(&store);
            Err(Exhausted::from_code(trap.i32().unwrap()))
        }
    };
    Run {
        result,
        fuel_left: fuel_global.get(&store).i64().unwrap(),
        host_calls: std::mem::take(store.data_mut()),
    }
}

/// The guest written the plain way and the lean way, compiled.
fn both(config: &Config) -> (Module, Module) {
    let wasm = wat::parse_str(GUEST).unwrap();
    let plain = Config {
        plain: true,
        ..config.clone()
    };
    let lean = Config {
        plain: false,
        ..config.clone()
    };
    let (plain, lean) = (
        instrument(&wasm, &plain).unwrap(),
        instrument(&wasm, &lean).unwrap(),
    );
    assert_ne!(plain, lean, "the lean way writes other code");
    let engine = Engine::default();
    (
        Module::new(&engine, &plain[..]).unwrap(),
        Module::new(&engine, &lean[..]).unwrap(),
    )
}

#[test]
fn at_every_fuel_budget_the_same_results_host_calls_traps_and_fuel() {
    let config = Config {
        max_memory_pages: 6,
        ..Config::default()
    };
    let (plain, lean) = both(&config);
    for args in [[40, 3], [90, 2], [12, 9]] {
        let enough = 1_000_000;
        let full = run(&plain, enough, args);
        assert_eq!(full, run(&lean, enough, args));
        let used = enough - full.fuel_left;
        let mut ran_out = 0;
        for fuel in 0..=used + 3 {
            let (p, l) = (run(&plain, fuel, args), run(&lean, fuel, args));
            assert_eq!(p, l, "{args:?} with {fuel} fuel");
            ran_out += usize::from(p.result == Err(Some(Exhausted::Fuel)));
        }
        if args[1] < 6 {
            assert!(full.result.is_ok(), "{args:?}: {full:?}");
            // Below what it uses, every budget traps or ends below zero.
            assert!(ran_out as i64 > used / 2, "{args:?}: {ran_out} of {used}");
        } else {
            assert_eq!(full.result, Err(Some(Exhausted::Memory)), "{args:?}");
        }
    }
}

#[test]
fn at_every_stack_limit_the_same_results_host_calls_traps_and_fuel() {
    let mut overflowed = 0;
    for stack_slots in 0..400 {
        let (plain, lean) = both(&Config {
            stack_slots,
            ..Config::default()
        });
        let (p, l) = (
            run(&plain, 1_000_000, [15, 1]),
            run(&lean, 1_000_000, [15, 1]),
        );
        assert_eq!(p, l, "{stack_slots} slots");
        overflowed += usize::from(p.result == Err(Some(Exhausted::Stack)));
    }
    assert!(overflowed > 50, "{overflowed}");
}
