//! The checks a module passes before it is stored (the imports themselves are in `host.rs`).

use std::collections::BTreeSet;

use crate::host::{Import, Returns};
use crate::{Limits, RuntimeError};

pub(crate) fn validate_size(wasm: &[u8], limits: &Limits) -> Result<(), RuntimeError> {
    if wasm.len() > limits.max_module_size {
        return Err(RuntimeError::InvalidModule(format!(
            "{} bytes is over the limit of {} bytes",
            wasm.len(),
            limits.max_module_size
        )));
    }
    Ok(())
}

/// What the node needs to know of a valid module: its exported functions (the app's methods).
pub(crate) struct Shape {
    pub(crate) methods: BTreeSet<String>,
}

/// Checks a module against the ABI before anything runs it, the same for every engine: only
/// `"env"` functions of calimero-sys 0.10 with their exact signatures, an exported memory
/// within the limit, no imported memory, no `_start`.
pub(crate) fn validate_module(wasm: &[u8], limits: &Limits) -> Result<Shape, RuntimeError> {
    let invalid = |why: String| Err(RuntimeError::InvalidModule(why));
    let parse = |e: wasmparser::BinaryReaderError| {
        RuntimeError::InvalidModule(format!("not a valid wasm module: {e}"))
    };
    let mut func_types: Vec<Option<wasmparser::FuncType>> = Vec::new();
    let mut memories = Vec::new();
    let mut methods = BTreeSet::new();
    let mut memory_export = None;
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        match payload.map_err(parse)? {
            wasmparser::Payload::TypeSection(types) => {
                for group in types {
                    for sub in group.map_err(parse)?.into_types() {
                        func_types.push(match sub.composite_type.inner {
                            wasmparser::CompositeInnerType::Func(f) => Some(f),
                            _ => None,
                        });
                    }
                }
            }
            wasmparser::Payload::ImportSection(imports) => {
                for import in imports {
                    let import = import.map_err(parse)?;
                    let (ns, name) = (import.module, import.name);
                    let wasmparser::TypeRef::Func(ty) = import.ty else {
                        if let wasmparser::TypeRef::Memory(_) = import.ty {
                            return invalid(format!(
                                "it imports memory `{ns}.{name}`; an app must export its own"
                            ));
                        }
                        return invalid(format!("import `{ns}.{name}` must be a function"));
                    };
                    let Some(abi) = Import::named(name).filter(|_| ns == "env") else {
                        return invalid(format!(
                            "unknown import `{ns}.{name}` (not in the calimero-sys 0.10 ABI)"
                        ));
                    };
                    let ty = func_types.get(ty as usize).cloned().flatten();
                    let results: &[wasmparser::ValType] = match abi.returns() {
                        Returns::Nothing => &[],
                        Returns::I32 => &[wasmparser::ValType::I32],
                        Returns::I64 => &[wasmparser::ValType::I64],
                    };
                    let fits = ty.is_some_and(|ty| {
                        ty.params().len() == abi.arity()
                            && ty.params().iter().all(|p| *p == wasmparser::ValType::I64)
                            && ty.results() == results
                    });
                    if !fits {
                        return invalid(format!(
                            "import `env.{name}` has another signature than calimero-sys 0.10's"
                        ));
                    }
                }
            }
            wasmparser::Payload::MemorySection(section) => {
                for memory in section {
                    memories.push(memory.map_err(parse)?.initial);
                }
            }
            wasmparser::Payload::ExportSection(exports) => {
                for export in exports {
                    let export = export.map_err(parse)?;
                    match export.kind {
                        wasmparser::ExternalKind::Func => {
                            methods.insert(export.name.to_owned());
                        }
                        wasmparser::ExternalKind::Memory if export.name == "memory" => {
                            memory_export = Some(export.index as usize);
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    match memory_export.and_then(|i| memories.get(i)) {
        Some(&minimum) if minimum > u64::from(limits.max_memory_pages) => {
            return invalid(format!(
                "its memory starts at {minimum} pages, over the limit of {}",
                limits.max_memory_pages
            ));
        }
        Some(_) => {}
        None => return invalid("it does not export `memory`".into()),
    }
    if methods.contains("_start") {
        return invalid("it exports `_start`; apps are libraries of methods".into());
    }
    Ok(Shape { methods })
}
