//! The code the rewrite writes into one function: where it charges fuel ([`charges`]) and
//! what it writes there, at entry and on the way out ([`Emitter`]).
//!
//! Two ways of writing the same accounting, which behave exactly alike (the same fuel left
//! after every successful call, the same outcome, the same trap at the same instruction: the
//! tests `crates/meter/tests/economies.rs` and `crates/runtime/tests/meter_economies.rs` run
//! both side by side):
//!
//! - **Plain** (meter 1, kept only for those tests, [`crate::Config::plain`]): every function
//!   takes its frame from the stack global at entry, checks what is left, and gives the frame
//!   back on every way out.
//! - **Lean** (what the node writes): a *leaf*, a function that calls no function of the module
//!   (imports only, no `call_indirect`), checks `stack - frame < 0` at entry but writes nothing
//!   and gives nothing back. Between its entry and its exit no code runs that reads the stack
//!   global (host functions never touch the accounting globals, and a trap ends the call with
//!   nothing read but the trap global), so no one can tell. On the browser's engine each write
//!   and read of a global is a store and a load, and every call's frame made a chain of them
//!   from one call to the next: a call-heavy guest paid most of its metering there.

use wasm_encoder::{BlockType, InstructionSink};
use wasmparser::Operator;

use crate::{Config, Exhausted, Function, Plan};

/// A place the rewrite charges fuel: what the code from there costs, and whether to check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Charge {
    pub(crate) cost: u64,
    /// At a function's start and a loop's top: the places any endless run must pass.
    pub(crate) check: bool,
}

/// What opens a new charge just after it, and what closes one.
enum Region {
    /// `loop` (checked) or an `if` arm: the code inside may run a different number of times
    /// than the code around it.
    Opens { check: bool },
    /// `else`: closes the `then` arm's charge and opens the `else` arm's.
    Switches,
    /// The `end` of a loop or an `if`: back to the charge around it.
    Closes,
    /// Anything else, `block` and its `end` included: a block's code runs at most once each
    /// time the code around it does, so it is charged with it.
    Neither,
}

/// The charges of one function body, in the order the rewrite meets their places: the
/// function's start first, then one after each `loop`, `if` and `else`. Every instruction is
/// counted in the charge of the innermost loop or `if` arm around it (or the function's).
pub(crate) fn charges<'o>(ops: impl Iterator<Item = &'o Operator<'o>>) -> Vec<Charge> {
    let mut charges = vec![Charge {
        cost: 0,
        check: true,
    }];
    // The charges instructions count into, innermost last; per open construct, whether it
    // opened a charge (blocks do not).
    let mut open = vec![0usize];
    let mut constructs = Vec::new();
    for op in ops {
        let current = *open.last().expect("the function's charge stays open");
        charges[current].cost += 1;
        match region(op, &mut constructs) {
            Region::Opens { check } => {
                open.push(charges.len());
                charges.push(Charge { cost: 0, check });
            }
            Region::Switches => {
                open.pop();
                open.push(charges.len());
                charges.push(Charge {
                    cost: 0,
                    check: false,
                });
            }
            Region::Closes => {
                open.pop();
            }
            Region::Neither => {}
        }
    }
    charges
}

/// How `op` changes the charges; `constructs` tracks, per open construct, whether its `end`
/// closes a charge.
fn region(op: &Operator<'_>, constructs: &mut Vec<bool>) -> Region {
    match op {
        Operator::Loop { .. } => {
            constructs.push(true);
            Region::Opens { check: true }
        }
        Operator::If { .. } => {
            constructs.push(true);
            Region::Opens { check: false }
        }
        Operator::Else => Region::Switches,
        Operator::Block { .. } => {
            constructs.push(false);
            Region::Neither
        }
        Operator::End => match constructs.pop() {
            Some(true) => Region::Closes,
            // A block's end, or the function's own.
            _ => Region::Neither,
        },
        _ => Region::Neither,
    }
}

#[derive(Clone, Copy)]
pub(crate) enum Width {
    F32,
    F64,
}

/// Whether `op` can produce a NaN whose bits depend on the engine, and of which width.
pub(crate) fn makes_nan(op: &Operator<'_>) -> Option<Width> {
    use Operator as O;
    match op {
        O::F32Add
        | O::F32Sub
        | O::F32Mul
        | O::F32Div
        | O::F32Sqrt
        | O::F32Min
        | O::F32Max
        | O::F32Ceil
        | O::F32Floor
        | O::F32Trunc
        | O::F32Nearest
        | O::F32DemoteF64 => Some(Width::F32),
        O::F64Add
        | O::F64Sub
        | O::F64Mul
        | O::F64Div
        | O::F64Sqrt
        | O::F64Min
        | O::F64Max
        | O::F64Ceil
        | O::F64Floor
        | O::F64Trunc
        | O::F64Nearest
        | O::F64PromoteF32 => Some(Width::F64),
        _ => None,
    }
}

/// Writes the inserted code of one function (see the module doc).
pub(crate) struct Emitter<'p> {
    plan: &'p Plan,
    function: &'p Function,
    charge_fuel: bool,
    /// The frame is checked at entry but neither taken nor given back: a leaf, written the
    /// lean way.
    check_only: bool,
}

impl<'p> Emitter<'p> {
    pub(crate) fn new(plan: &'p Plan, function: &'p Function, config: &Config) -> Self {
        Self {
            plan,
            function,
            charge_fuel: config.charge_fuel,
            check_only: function.leaf && !config.plain,
        }
    }

    fn trap(&self, out: &mut Vec<u8>, why: Exhausted) {
        InstructionSink::new(out)
            .if_(BlockType::Empty)
            .i32_const(why as i32)
            .global_set(self.plan.trap)
            .unreachable()
            .end();
    }

    /// Takes the charge's cost from the fuel; if it checks, traps if that leaves less than none.
    pub(crate) fn charge(&self, out: &mut Vec<u8>, charge: Option<Charge>) {
        let Some(Charge { cost, check }) = charge.filter(|c| c.cost > 0 && self.charge_fuel) else {
            return;
        };
        let fuel = self.plan.fuel;
        InstructionSink::new(out)
            .global_get(fuel)
            .i64_const(cost as i64)
            .i64_sub()
            .global_set(fuel);
        if check {
            InstructionSink::new(out)
                .global_get(fuel)
                .i64_const(0)
                .i64_lt_s();
            self.trap(out, Exhausted::Fuel);
        }
    }

    /// At entry: takes the frame from the stack (a leaf written the lean way only checks that
    /// it could); traps if that leaves less than none.
    pub(crate) fn stack_entry(&self, out: &mut Vec<u8>) {
        let stack = self.plan.stack;
        let mut sink = InstructionSink::new(out);
        sink.global_get(stack)
            .i32_const(self.function.frame as i32)
            .i32_sub();
        if !self.check_only {
            sink.global_set(stack).global_get(stack);
        }
        sink.i32_const(0).i32_lt_s();
        self.trap(out, Exhausted::Stack);
    }

    /// On the way out (after the body's wrapper): the frame back to the stack.
    pub(crate) fn stack_exit(&self, out: &mut Vec<u8>) {
        if self.check_only {
            return;
        }
        let stack = self.plan.stack;
        InstructionSink::new(out)
            .global_get(stack)
            .i32_const(self.function.frame as i32)
            .i32_add()
            .global_set(stack);
    }

    /// After `memory.grow`: a failed growth (-1) traps; otherwise its result stays.
    pub(crate) fn grow_check(&self, out: &mut Vec<u8>) {
        let scratch = self.function.scratch;
        InstructionSink::new(out)
            .local_tee(scratch)
            .i32_const(-1)
            .i32_eq();
        self.trap(out, Exhausted::Memory);
        InstructionSink::new(out).local_get(scratch);
    }

    /// Replaces a NaN on top of the stack by the canonical one (`x == x` is false only for NaN).
    pub(crate) fn canonical_nan(&self, out: &mut Vec<u8>, width: Width) {
        match width {
            Width::F32 => {
                let local = self.function.scratch + 1;
                InstructionSink::new(out)
                    .local_tee(local)
                    .f32_const(f32::from_bits(0x7fc0_0000))
                    .local_get(local)
                    .local_get(local)
                    .f32_eq();
            }
            Width::F64 => {
                let local = self.function.scratch + 2;
                InstructionSink::new(out)
                    .local_tee(local)
                    .f64_const(f64::from_bits(0x7ff8_0000_0000_0000))
                    .local_get(local)
                    .local_get(local)
                    .f64_eq();
            }
        }
        InstructionSink::new(out).select();
    }
}
