//! What one call may use, and what one user action and one merge may use. The per-call
//! defaults are Calimero's (merod's `VMLimits`); the action and merge budgets are tabnode's.

/// Resource limits of a call; exceeding one ends the call with an error and no writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    pub max_module_size: usize,
    /// Linear memory, in 64 KiB pages.
    pub max_memory_pages: u32,
    pub max_registers: usize,
    pub max_register_size: usize,
    pub max_logs: usize,
    pub max_log_size: usize,
    pub max_events: usize,
    pub max_event_kind_size: usize,
    pub max_event_data_size: usize,
    pub max_storage_key_size: usize,
    pub max_storage_value_size: usize,
    pub max_return_size: usize,
    /// Bytes of one blob written by a call.
    pub max_blob_size: usize,
    /// Cross-context calls one call may queue.
    pub max_xcalls: usize,
    /// Requests to create or delete contexts or change membership one call may queue.
    pub max_context_requests: usize,
    /// Fuel per call: one unit per executed wasm instruction, counted by the module itself
    /// (see `tabnode-meter`), so the same on every engine.
    pub fuel: u64,
    /// Frames a call may hold at once, in 8-byte slots (see `tabnode-meter`): deep recursion
    /// stops at the same call on every engine, well before a page's native stack would.
    pub stack_slots: u32,
    /// Calls one user action may make in all: the call itself and every xcall it causes, at
    /// every level. Without it 16 xcalls a call, 4 levels deep, make about 70,000 calls.
    pub action_calls: usize,
    /// Fuel one user action may use in all: each call it causes runs on what the calls before
    /// it left (and at most [`Self::fuel`]), so xcalls cannot multiply the cost of one action.
    pub action_fuel: u64,
    /// Fuel of one merge of a member's delta (`__calimero_sync_next`). A merge applies the
    /// actions a delta records, so its cost follows the delta's size (at most 1 MiB), not the
    /// author's code: a tenth of a call's fuel is ample, and a crafted delta costs each member
    /// at most that. Deterministic: every member, and every replay, refuses the same deltas.
    pub merge_fuel: u64,
}

impl Default for Limits {
    fn default() -> Self {
        const KIB: usize = 1024;
        const MIB: usize = 1024 * KIB;
        Self {
            max_module_size: 20 * MIB,
            max_memory_pages: 1024,
            max_registers: 100,
            max_register_size: 100 * MIB,
            max_logs: 1024,
            max_log_size: 16 * KIB,
            max_events: 100,
            max_event_kind_size: 100,
            max_event_data_size: 16 * KIB,
            max_storage_key_size: MIB,
            max_storage_value_size: 10 * MIB,
            max_return_size: 16 * MIB,
            max_blob_size: 64 * MIB,
            max_xcalls: 16,
            max_context_requests: 16,
            fuel: 10_000_000_000,
            stack_slots: 32 * 1024,
            action_calls: 64,
            action_fuel: 10_000_000_000,
            merge_fuel: 1_000_000_000,
        }
    }
}
