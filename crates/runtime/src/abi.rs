//! The `"env"` imports of calimero-sys 0.10 and the checks a module passes before it is stored.

use crate::{Limits, RuntimeError};

/// Every import calimero-sys 0.10 declares in module `"env"`; a module may import only these.
pub const IMPORTS: &[&str] = &[
    "panic",
    "panic_utf8",
    "register_len",
    "read_register",
    "context_id",
    "executor_id",
    "input",
    "value_return",
    "log_utf8",
    "emit",
    "emit_with_handler",
    "xcall",
    "commit",
    "storage_read",
    "storage_remove",
    "storage_write",
    "private_storage_read",
    "private_storage_remove",
    "private_storage_write",
    "fetch",
    "random_bytes",
    "time_now",
    "ed25519_verify",
    "send_proposal",
    "approve_proposal",
    "context_create",
    "context_delete",
    "context_add_member",
    "context_remove_member",
    "context_is_member",
    "context_members",
    "context_resolve_alias",
    "blob_create",
    "blob_open",
    "blob_read",
    "blob_write",
    "blob_close",
    "blob_announce_to_context",
];

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

pub(crate) fn validate_module(module: &wasmi::Module, limits: &Limits) -> Result<(), RuntimeError> {
    let invalid = |why: String| Err(RuntimeError::InvalidModule(why));
    for import in module.imports() {
        let (ns, name) = (import.module(), import.name());
        if let wasmi::ExternType::Memory(_) = import.ty() {
            return invalid(format!(
                "it imports memory `{ns}.{name}`; an app must export its own"
            ));
        }
        if ns != "env" || !IMPORTS.contains(&name) {
            return invalid(format!(
                "unknown import `{ns}.{name}` (not in the calimero-sys 0.10 ABI)"
            ));
        }
        if !matches!(import.ty(), wasmi::ExternType::Func(_)) {
            return invalid(format!("import `{ns}.{name}` must be a function"));
        }
    }
    match module.get_export("memory") {
        Some(wasmi::ExternType::Memory(memory)) => {
            let minimum = memory.minimum();
            if minimum > u64::from(limits.max_memory_pages) {
                return invalid(format!(
                    "its memory starts at {minimum} pages, over the limit of {}",
                    limits.max_memory_pages
                ));
            }
        }
        _ => return invalid("it does not export `memory`".into()),
    }
    if module.get_export("_start").is_some() {
        return invalid("it exports `_start`; apps are libraries of methods".into());
    }
    Ok(())
}
