//! Why a call (or a module) was refused. Every kind carries what a user needs to fix it.

/// A failed compile or call. A failed call leaves no writes behind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuntimeError {
    #[error("invalid module: {0}")]
    InvalidModule(String),
    #[error("the app has no method {0:?}")]
    MethodNotFound(String),
    #[error("the call ran out of fuel after {0} units")]
    OutOfFuel(u64),
    #[error("the call needs more memory than the limit of {max_pages} pages")]
    OutOfMemory { max_pages: u32 },
    #[error("the call nested its functions deeper than the limit of {max_slots} stack slots")]
    StackOverflow { max_slots: u32 },
    #[error("the app panicked: {message}{}", location.as_ref().map(|l| format!(" at {l}")).unwrap_or_default())]
    Panic {
        message: String,
        location: Option<String>,
    },
    #[error("limit exceeded: {0}")]
    LimitExceeded(String),
    #[error("host function `{import}` is not supported by this node: {reason}")]
    Unsupported {
        import: &'static str,
        reason: &'static str,
    },
    #[error("the app broke the host ABI: {0}")]
    BadAbiUse(String),
    /// The guest's own fault, named alike on every engine (`unreachable`, `integer divide by
    /// zero`, `memory out of bounds`, ...).
    #[error("the app trapped: {0}")]
    Trap(String),
    /// The call read rows its views have not loaded (see [`crate::StateView`]): not a failure
    /// of the app. It ran on as if they were absent, and `if_absent` is what it gave: load the
    /// rows; if none exists, `if_absent` is the call's result, the same a run with them known
    /// absent gives (calls are deterministic); otherwise run the call again.
    #[error("the call read {} rows that are not loaded yet", rows.len())]
    NotLoaded {
        rows: Vec<(ViewKind, Vec<u8>)>,
        if_absent: Box<Result<crate::Outcome, RuntimeError>>,
    },
}

/// Which of a call's views a row belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ViewKind {
    Shared,
    Private,
    Blob,
}
