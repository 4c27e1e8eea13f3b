//! Deterministic resource accounting for guest modules, written into the module itself.
//!
//! The node runs one guest on two engines: `wasmi` (natively, and as the page's fallback) and
//! the browser's own WebAssembly engine. Members must agree on whether a call succeeded, so a
//! call must run out of fuel, overflow its stack or fail to grow its memory at the same
//! instruction on every engine, and a float it stores must have the same bits. Left to
//! themselves the engines disagree on all four: wasmi counts fuel per instruction of its own IR
//! and V8 counts none; stack limits are native frame sizes; NaN bits follow the CPU and the
//! compiler. So [`instrument`] rewrites the module once, when the app is loaded, and every
//! engine runs the rewritten module with no metering of its own:
//!
//! - **Fuel.** Fuel is charged where control may enter code a different number of times than
//!   the code around it: at a function's start, at the top of each loop and at the start of
//!   each `if` arm. Each charge is the count of the instructions it covers (up to the next
//!   loop or arm inside it), taken in one step from an exported `i64` global ([`FUEL`]) that
//!   the host sets before the call and reads after it. A branch out of the middle has paid for
//!   the rest, so fuel counts instructions a little generously, the same on every engine. Only
//!   the charges at a function's start and a loop's top check what is left (an endless run
//!   must pass one of them): one that finds it below zero traps, with [`Exhausted::Fuel`] in
//!   the exported [`TRAP`] global, and the host refuses a call that ended below zero. A charge
//!   per straight-line run, each checked, cost wasmi half again as much.
//! - **Stack.** Each function charges its frame (parameters, locals, the deepest its operand
//!   stack gets, and a fixed overhead, in 8-byte slots) on entry and returns it on every way
//!   out; past [`Config::stack_slots`] it traps with [`Exhausted::Stack`]. The limit sits well
//!   inside the native stack V8 gives a page, so the browser never overflows first. A *leaf*
//!   (a function that calls no function of the module) only checks that its frame would fit:
//!   nothing that runs before it returns could see the frame taken, so it takes none and gives
//!   none back (`emit.rs`; on V8 every global read and write is a load and a store, chained
//!   from call to call). The result is exactly that of charging it, shown by running both ways
//!   side by side ([`Config::plain`]).
//! - **Memory.** Every memory's maximum is capped at [`Config::max_memory_pages`] and a
//!   `memory.grow` that fails traps with [`Exhausted::Memory`] (as wasmi's limiter did here
//!   before; a Rust guest's allocator would abort on the failure anyway).
//! - **NaN.** Every float instruction that can make a NaN (arithmetic, rounding, `min`/`max`,
//!   promotion and demotion) is followed by a select that turns any NaN into the canonical
//!   positive quiet NaN, so stored bits agree. `neg`, `abs` and `copysign` are exact bit
//!   operations and are left alone.
//!
//! Why not a crate made for metering: `wasm-instrument` rests on `parity-wasm`, which cannot
//! read the bulk-memory and saturating float-to-int instructions Rust 1.87+ emits for wasm32 by
//! default; NEAR's `finite-wasm` charges through a call to an imported host function per
//! block, which in the page is a crossing into JavaScript per block. This module does the same
//! analysis on Bytecode Alliance's `wasmparser` (validation gives the operand stack heights) and
//! writes the charges inline with `wasm-encoder`.
//!
//! Modules using SIMD, threads, exceptions, tail calls, memory64 or several memories are
//! refused with [`MeterError::Invalid`]: no calimero-sdk 0.10 app uses them, and each would need
//! its own accounting.

mod emit;

use std::collections::BTreeMap;

use emit::{charges, makes_nan, Emitter};
use wasm_encoder::reencode::{utils, Reencode};
use wasm_encoder::{BlockType, ConstExpr, ExportKind, GlobalType, InstructionSink};
use wasmparser::{FuncValidatorAllocations, Operator, Parser, ValidPayload, Validator};

/// The exported `i64` global holding the fuel left: the host sets it before a call.
pub const FUEL: &str = "__tabnode_fuel";
/// The exported `i32` global naming what ran out when a call trapped (an [`Exhausted`] code),
/// 0 for any other trap.
pub const TRAP: &str = "__tabnode_trap";

/// Slots a frame costs beyond its values: return address, frame pointer and the like.
const FRAME_OVERHEAD: u32 = 4;
/// Values the inserted code pushes on top of the guest's own operand stack.
const OWN_OPERANDS: u32 = 3;

/// What a trapped call ran out of, as the module records it in [`TRAP`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum Exhausted {
    Fuel = 1,
    Stack = 2,
    Memory = 3,
}

impl Exhausted {
    /// The value of [`TRAP`] after a trap: `None` if the trap was the guest's own.
    pub fn from_code(code: i32) -> Option<Self> {
        match code {
            1 => Some(Self::Fuel),
            2 => Some(Self::Stack),
            3 => Some(Self::Memory),
            _ => None,
        }
    }
}

/// The limits written into a module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Slots (8 bytes) of frames a call may hold at once.
    pub stack_slots: u32,
    /// Pages (64 KiB) the memory may grow to.
    pub max_memory_pages: u32,
    /// Whether to charge fuel. Off only to measure what metering costs: a module without
    /// charges can loop forever.
    pub charge_fuel: bool,
    /// Writes the stack accounting the plain way, as meter 1 did: every function, a leaf too,
    /// takes its frame from the stack global and gives it back (see `emit.rs`). The module
    /// behaves exactly as the lean way's does; only for the tests that show it.
    #[doc(hidden)]
    pub plain: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            // 256 KiB of frames: a few thousand calls deep for small functions, and far inside
            // the ~1 MiB native stack of a page's main thread, which also carries the node.
            stack_slots: 32 * 1024,
            max_memory_pages: 1024,
            charge_fuel: true,
            plain: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MeterError {
    /// Not a module this node can run deterministically; the message says why.
    #[error("{0}")]
    Invalid(String),
}

impl From<wasmparser::BinaryReaderError> for MeterError {
    fn from(e: wasmparser::BinaryReaderError) -> Self {
        Self::Invalid(format!("not a valid wasm module: {e}"))
    }
}

impl From<wasm_encoder::reencode::Error<MeterError>> for MeterError {
    fn from(e: wasm_encoder::reencode::Error<MeterError>) -> Self {
        match e {
            wasm_encoder::reencode::Error::UserError(e) => e,
            wasm_encoder::reencode::Error::ParseError(e) => e.into(),
            other => Self::Invalid(format!("cannot rewrite the module: {other}")),
        }
    }
}

/// The instruction set a guest may use: WebAssembly 2.0 without SIMD.
fn features() -> wasmparser::WasmFeatures {
    use wasmparser::WasmFeatures as F;
    F::WASM2 - F::SIMD - F::RELAXED_SIMD
}

/// Rewrites `wasm` as the module doc says. Deterministic: the same bytes and config give the
/// same module.
pub fn instrument(wasm: &[u8], config: &Config) -> Result<Vec<u8>, MeterError> {
    let plan = Plan::of(wasm, config)?;
    let mut rewriter = Rewriter {
        plan: &plan,
        config,
        next_function: 0,
        globals_written: false,
        exports_written: false,
    };
    let mut module = wasm_encoder::Module::new();
    rewriter.parse_core_module(&mut module, Parser::new(0), wasm)?;
    Ok(module.finish())
}

/// What the rewrite needs to know of the module, read (and validated) before it starts.
struct Plan {
    /// Per defined function: its result types, frame cost and scratch locals.
    functions: Vec<Function>,
    /// Global indices of the fuel, trap and stack globals the rewrite adds.
    fuel: u32,
    trap: u32,
    stack: u32,
    /// Types the rewrite adds (`[] -> results` for wrapping multi-value bodies), by results.
    extra_types: BTreeMap<Vec<wasmparser::ValType>, u32>,
}

struct Function {
    results: Vec<wasmparser::ValType>,
    /// Slots this function's frame costs.
    frame: u32,
    /// Index of the first scratch local the rewrite adds (i32, then f32, then f64).
    scratch: u32,
    /// Calls no function of the module: imports only, no `call_indirect`.
    leaf: bool,
}

impl Plan {
    fn of(wasm: &[u8], config: &Config) -> Result<Self, MeterError> {
        let mut validator = Validator::new_with_features(features());
        let mut allocs = FuncValidatorAllocations::default();
        // (function index, locals, deepest operand stack, leaf), in code order.
        let mut bodies = Vec::new();
        let mut imported_functions = 0;
        let mut types = None;
        for payload in Parser::new(0).parse_all(wasm) {
            let payload = payload?;
            match &payload {
                wasmparser::Payload::ImportSection(imports) => {
                    for import in imports.clone() {
                        if matches!(import?.ty, wasmparser::TypeRef::Func(_)) {
                            imported_functions += 1;
                        }
                    }
                }
                wasmparser::Payload::ExportSection(exports) => {
                    for export in exports.clone() {
                        let name = export?.name;
                        if name == FUEL || name == TRAP {
                            return Err(MeterError::Invalid(format!(
                                "the module already exports {name}"
                            )));
                        }
                    }
                }
                wasmparser::Payload::MemorySection(memories) => {
                    for memory in memories.clone() {
                        let memory = memory?;
                        if memory.initial > u64::from(config.max_memory_pages) {
                            return Err(MeterError::Invalid(format!(
                                "the module starts with {} pages of memory (limit {})",
                                memory.initial, config.max_memory_pages
                            )));
                        }
                    }
                }
                _ => {}
            }
            match validator.payload(&payload)? {
                ValidPayload::Func(to_validate, body) => {
                    let mut func = to_validate.into_validator(allocs);
                    let mut locals = 0u32;
                    let mut reader = body.get_locals_reader()?;
                    for _ in 0..reader.get_count() {
                        let offset = reader.original_position();
                        let (count, ty) = reader.read()?;
                        func.define_locals(offset, count, ty)?;
                        locals = locals.saturating_add(count);
                    }
                    let (mut deepest, mut leaf) = (0, true);
                    let mut ops = body.get_operators_reader()?;
                    while !ops.eof() {
                        let (op, offset) = ops.read_with_offset()?;
                        func.op(offset, &op)?;
                        deepest = deepest.max(func.operand_stack_height());
                        match op {
                            Operator::Call { function_index } => {
                                leaf &= function_index < imported_functions;
                            }
                            Operator::CallIndirect { .. } => leaf = false,
                            _ => {}
                        }
                    }
                    ops.ensure_end()?;
                    bodies.push((func.index(), locals, deepest, leaf));
                    allocs = func.into_allocations();
                }
                ValidPayload::End(t) => types = Some(t),
                _ => {}
            }
        }
        let types = types.ok_or_else(|| MeterError::Invalid("the module ends early".into()))?;
        let types = types.as_ref();
        if types.memory_count() > 1 {
            return Err(MeterError::Invalid(
                "the module has several memories".into(),
            ));
        }
        let globals = types.global_count();
        let mut next_type = types.core_type_count_in_module();
        let mut extra_types = BTreeMap::new();
        let mut functions = Vec::with_capacity(bodies.len());
        for (index, locals, deepest, leaf) in bodies {
            let ty = types[types.core_function_at(index)].unwrap_func();
            let params = ty.params().len() as u32;
            let results = ty.results().to_vec();
            if results.len() > 1 && !extra_types.contains_key(&results) {
                extra_types.insert(results.clone(), next_type);
                next_type += 1;
            }
            let frame = params
                .saturating_add(locals)
                .saturating_add(3)
                .saturating_add(deepest)
                .saturating_add(OWN_OPERANDS + FRAME_OVERHEAD);
            functions.push(Function {
                results,
                frame,
                scratch: params.saturating_add(locals),
                leaf,
            });
        }
        Ok(Self {
            functions,
            fuel: globals,
            trap: globals + 1,
            stack: globals + 2,
            extra_types,
        })
    }
}

/// The rewrite: wasm-encoder's re-encoder, with the sections that change overridden. The
/// guest's own instructions (function bodies, constant expressions) and custom sections are
/// copied as written, not translated one by one: the rewrite only appends types and globals, so
/// no index in them changes. What it adds it writes through wasm-encoder's `InstructionSink`.
/// (Translating and writing every instruction kept about 100 KB of wasm-encoder and wasmparser
/// in the page's wasm for the few kinds the rewrite adds: docs/performance.md.)
struct Rewriter<'p> {
    plan: &'p Plan,
    config: &'p Config,
    /// The defined function whose body comes next in the code section.
    next_function: usize,
    globals_written: bool,
    exports_written: bool,
}

type ReencodeResult = Result<(), wasm_encoder::reencode::Error<MeterError>>;

/// Where a section goes in a module (binary order, which is not the order of section ids).
fn order(id: wasm_encoder::SectionId) -> u8 {
    use wasm_encoder::SectionId as S;
    match id {
        S::Custom => 0,
        S::Type => 1,
        S::Import => 2,
        S::Function => 3,
        S::Table => 4,
        S::Memory => 5,
        S::Tag => 6,
        S::Global => 7,
        S::Export => 8,
        S::Start => 9,
        S::Element => 10,
        S::DataCount => 11,
        S::Code => 12,
        S::Data => 13,
    }
}

impl Rewriter<'_> {
    fn our_globals(&self, globals: &mut wasm_encoder::GlobalSection) {
        let mutable = |val_type| GlobalType {
            val_type,
            mutable: true,
            shared: false,
        };
        globals.global(
            mutable(wasm_encoder::ValType::I64),
            &ConstExpr::i64_const(0),
        );
        globals.global(
            mutable(wasm_encoder::ValType::I32),
            &ConstExpr::i32_const(0),
        );
        globals.global(
            mutable(wasm_encoder::ValType::I32),
            &ConstExpr::i32_const(self.config.stack_slots as i32),
        );
    }

    fn our_exports(&self, exports: &mut wasm_encoder::ExportSection) {
        exports.export(FUEL, ExportKind::Global, self.plan.fuel);
        exports.export(TRAP, ExportKind::Global, self.plan.trap);
    }
}

impl Reencode for Rewriter<'_> {
    type Error = MeterError;

    fn parse_type_section(
        &mut self,
        types: &mut wasm_encoder::TypeSection,
        section: wasmparser::TypeSectionReader<'_>,
    ) -> ReencodeResult {
        utils::parse_type_section(self, types, section)?;
        for results in self.plan.extra_types.keys() {
            let results = results
                .iter()
                .map(|t| self.val_type(*t))
                .collect::<Result<Vec<_>, _>>()?;
            types.ty().function([], results);
        }
        Ok(())
    }

    /// Copied as written, the name section too (see [`Rewriter`]).
    fn parse_custom_section(
        &mut self,
        module: &mut wasm_encoder::Module,
        section: wasmparser::CustomSectionReader<'_>,
    ) -> ReencodeResult {
        module.section(&self.custom_section(section));
        Ok(())
    }

    /// Copied as written (see [`Rewriter`]): the module was validated, so it ends with `end`,
    /// which [`ConstExpr`] adds back.
    fn const_expr(
        &mut self,
        const_expr: wasmparser::ConstExpr,
    ) -> Result<ConstExpr, wasm_encoder::reencode::Error<MeterError>> {
        let mut reader = const_expr.get_binary_reader();
        match reader.read_bytes(reader.bytes_remaining())?.split_last() {
            Some((0x0b, expr)) => Ok(ConstExpr::raw(expr.iter().copied())),
            _ => Err(wasm_encoder::reencode::Error::UserError(
                MeterError::Invalid("a constant expression without its end".into()),
            )),
        }
    }

    fn parse_memory_section(
        &mut self,
        memories: &mut wasm_encoder::MemorySection,
        section: wasmparser::MemorySectionReader<'_>,
    ) -> ReencodeResult {
        let cap = u64::from(self.config.max_memory_pages);
        for memory in section {
            let mut memory = self.memory_type(memory?);
            memory.maximum = Some(memory.maximum.map_or(cap, |max| max.min(cap)));
            memories.memory(memory);
        }
        Ok(())
    }

    fn parse_global_section(
        &mut self,
        globals: &mut wasm_encoder::GlobalSection,
        section: wasmparser::GlobalSectionReader<'_>,
    ) -> ReencodeResult {
        utils::parse_global_section(self, globals, section)?;
        self.our_globals(globals);
        self.globals_written = true;
        Ok(())
    }

    fn parse_export_section(
        &mut self,
        exports: &mut wasm_encoder::ExportSection,
        section: wasmparser::ExportSectionReader<'_>,
    ) -> ReencodeResult {
        utils::parse_export_section(self, exports, section)?;
        self.our_exports(exports);
        self.exports_written = true;
        Ok(())
    }

    /// Adds the global and export sections where the module has none.
    fn intersperse_section_hook(
        &mut self,
        module: &mut wasm_encoder::Module,
        _after: Option<wasm_encoder::SectionId>,
        before: Option<wasm_encoder::SectionId>,
    ) -> ReencodeResult {
        let past = |id: wasm_encoder::SectionId| before.is_none_or(|b| order(b) > order(id));
        if !self.globals_written && past(wasm_encoder::SectionId::Global) {
            let mut globals = wasm_encoder::GlobalSection::new();
            self.our_globals(&mut globals);
            module.section(&globals);
            self.globals_written = true;
        }
        if !self.exports_written && past(wasm_encoder::SectionId::Export) {
            let mut exports = wasm_encoder::ExportSection::new();
            self.our_exports(&mut exports);
            module.section(&exports);
            self.exports_written = true;
        }
        Ok(())
    }

    fn parse_function_body(
        &mut self,
        code: &mut wasm_encoder::CodeSection,
        body: wasmparser::FunctionBody<'_>,
    ) -> ReencodeResult {
        let plan = self.plan;
        let function = plan.functions.get(self.next_function).ok_or_else(|| {
            wasm_encoder::reencode::Error::UserError(MeterError::Invalid(
                "more bodies than functions".into(),
            ))
        })?;
        self.next_function += 1;
        let mut locals = Vec::new();
        for pair in body.get_locals_reader()? {
            let (count, ty) = pair?;
            locals.push((count, self.val_type(ty)?));
        }
        locals.push((1, wasm_encoder::ValType::I32));
        locals.push((1, wasm_encoder::ValType::F32));
        locals.push((1, wasm_encoder::ValType::F64));
        let mut rewritten = wasm_encoder::Function::new(locals);

        // Each operator with its bytes: what the rewrite keeps is copied as written (see
        // `Rewriter`), so that wasm-encoder's operator-by-operator translation (and the `Debug`
        // of every operator it keeps for its error) stays out of the page's wasm.
        let bytes = body.as_bytes();
        let base = body.range().start;
        let mut ops = Vec::new();
        let mut reader = body.get_operators_reader()?;
        while !reader.eof() {
            let (op, start) = reader.read_with_offset()?;
            ops.push((op, &bytes[start - base..reader.original_position() - base]));
        }
        let charges = charges(ops.iter().map(|(op, _)| op));
        let emit = Emitter::new(plan, function, self.config);
        let wrapper = match function.results.as_slice() {
            [] => BlockType::Empty,
            [one] => BlockType::Result(self.val_type(*one)?),
            many => BlockType::FunctionType(plan.extra_types[many]),
        };

        let out = &mut Vec::new();
        emit.stack_entry(out);
        InstructionSink::new(out).block(wrapper);
        let mut charges = charges.into_iter();
        emit.charge(out, charges.next());
        let mut depth = 0u32;
        for (op, raw) in ops {
            let opens = matches!(
                op,
                Operator::Loop { .. } | Operator::If { .. } | Operator::Else
            );
            match &op {
                Operator::Block { .. } | Operator::Loop { .. } | Operator::If { .. } => {
                    depth += 1;
                    out.extend_from_slice(raw);
                }
                Operator::End if depth == 0 => {
                    // The body's own end closes the wrapper; the frame is given back after it.
                    InstructionSink::new(out).end();
                    emit.stack_exit(out);
                    InstructionSink::new(out).end();
                    break;
                }
                Operator::End => {
                    depth -= 1;
                    InstructionSink::new(out).end();
                }
                // Leaving through the wrapper's end gives the frame back on the way out.
                Operator::Return => {
                    InstructionSink::new(out).br(depth);
                }
                Operator::MemoryGrow { .. } => {
                    out.extend_from_slice(raw);
                    emit.grow_check(out);
                }
                _ => {
                    let nan = makes_nan(&op);
                    out.extend_from_slice(raw);
                    if let Some(width) = nan {
                        emit.canonical_nan(out, width);
                    }
                }
            }
            if opens {
                emit.charge(out, charges.next());
            }
        }
        rewritten.raw(out.iter().copied());
        code.function(&rewritten);
        Ok(())
    }
}
