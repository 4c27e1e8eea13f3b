//! What every engine shares: the rewritten module, what a trap means, and the limits an engine
//! must leave to the module's own accounting.

use tabnode_meter::Exhausted;

use crate::{Limits, RuntimeError};

/// The accounting [`tabnode_meter`] writes into a module under these limits.
pub(crate) fn meter_config(limits: &Limits) -> tabnode_meter::Config {
    tabnode_meter::Config {
        stack_slots: limits.stack_slots,
        max_memory_pages: limits.max_memory_pages,
        ..Default::default()
    }
}

/// A trap the module recorded as running out of something (its `__tabnode_trap` global).
pub(crate) fn exhausted(code: i32, limits: &Limits) -> Option<RuntimeError> {
    Some(match Exhausted::from_code(code)? {
        Exhausted::Fuel => RuntimeError::OutOfFuel(limits.fuel),
        Exhausted::Stack => RuntimeError::StackOverflow {
            max_slots: limits.stack_slots,
        },
        Exhausted::Memory => RuntimeError::OutOfMemory {
            max_pages: limits.max_memory_pages,
        },
    })
}

/// The fuel a call used, from what its module's fuel global holds after it. The module checks
/// its fuel only at function starts and loop tops, so a call may end a little below zero
/// without trapping: it ran out all the same, on every engine alike.
pub(crate) fn fuel_used(limits: &Limits, left: i64) -> Result<u64, RuntimeError> {
    match u64::try_from(left) {
        Ok(left) => Ok(limits.fuel.saturating_sub(left)),
        Err(_) => Err(RuntimeError::OutOfFuel(limits.fuel)),
    }
}

/// One name per kind of trap, whichever engine raised it (wasmi names its trap codes, V8 writes
/// a message): the same guest fault reads the same on every engine.
pub(crate) fn trap_name(message: &str) -> &'static str {
    let m = message.to_ascii_lowercase();
    let has = |s: &str| m.contains(s);
    if has("unreachable") {
        "unreachable"
    } else if has("by zero") {
        "integer divide by zero"
    } else if has("unrepresentable in integer") || has("conversion to integer") {
        "invalid conversion to integer"
    } else if has("overflow") || has("unrepresentable") {
        "integer overflow"
    } else if has("table") && has("bounds") {
        "table out of bounds"
    } else if has("bounds") {
        "memory out of bounds"
    } else if has("null") || has("signature") {
        "indirect call failed"
    } else {
        "other trap"
    }
}
