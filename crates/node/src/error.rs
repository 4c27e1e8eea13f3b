//! Every way a node operation can fail, each with a stable kind for callers to match on.

use tabnode_runtime::RuntimeError;
use tabnode_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("invalid application: {0}")]
    InvalidApp(RuntimeError),
    #[error("application {0} is not installed on this node")]
    AppNotInstalled(String),
    #[error("context {0} is not known to this node")]
    UnknownContext(String),
    #[error("context {0} has no state yet: waiting for a member to send it")]
    NotSynced(String),
    #[error("invalid invitation: {0}")]
    BadInvitation(String),
    #[error("not allowed: {0}")]
    Unauthorized(String),
    #[error("invalid id: {0}")]
    BadId(String),
    #[error("arguments must be a JSON object, got {0}")]
    BadArgs(String),
    /// No proposal of the context has this id (see [`crate::proposals`]).
    #[error("the context has no proposal {0}")]
    UnknownProposal(String),
    /// A proposal or approval the proxy would not take: malformed actions, a proposal no
    /// longer active, an approval made already.
    #[error("proposal refused: {0}")]
    BadProposal(String),
    #[error("the app has no method {0:?}")]
    MethodNotFound(String),
    #[error("the call failed: {0}")]
    Execution(RuntimeError),
    #[error("the app returned an error: {0}")]
    AppError(String),
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// The store was written by a newer build, in a format this one does not know: it is
    /// left as it is (see "Format versions" in docs/storage.md).
    #[error("the store is in format {found}, newer than this build knows ({known}); open it with a newer build")]
    StoreFormatTooNew { found: u32, known: u32 },
    /// Asked to sign something that is not a context-config request this node signs (see
    /// [`Node::sign_context_request`](crate::Node::sign_context_request)).
    #[error("not a request this node signs for the chain: {0}")]
    BadChainRequest(String),
    /// A part of an app binary a member sent a joiner did not hold (see
    /// [`PartError`](crate::PartError)); its kind is the part's own.
    #[error("{0}")]
    BadAppPart(#[from] crate::node::PartError),
    /// A state snapshot from a member did not hold (see [`crate::snapshot`]).
    #[error("{0}")]
    BadSnapshot(#[from] crate::snapshot::SnapshotError),
    /// A remote delta is stamped later than this node's clock allows (now plus
    /// [`MAX_CLOCK_SKEW_NANOS`](crate::MAX_CLOCK_SKEW_NANOS)): refused for now and not kept,
    /// so anti-entropy brings it again once it is no longer in the future.
    #[error("{0}")]
    FutureDelta(String),
    /// No timestamp later than the delta's parents is left (they are at the end of `u64`): the
    /// call that needed a delta changed nothing.
    #[error("{0}")]
    ClockExhausted(String),
    /// A budget for what peers may make this node hold is spent (e.g. deltas waiting for
    /// their parents): refused for now and not kept; anti-entropy brings it again later.
    #[error("{0}")]
    Busy(String),
    /// A user action ran out of its budget (the calls and fuel every call it causes shares, see
    /// `Limits::action_calls`), or a member's delta needs more than a merge may use
    /// (`Limits::merge_fuel`): none of it stands.
    #[error("over budget: {0}")]
    OverBudget(String),
    /// A guest asked for something that cannot be undone (deleting a context) and the embedder
    /// did not consent (see [`GuestPolicy`](crate::GuestPolicy)): nothing was done.
    #[error("no consent: {0}")]
    NoConsent(String),
    /// The operation got no answer from the task that owns the node: it panicked (what it did
    /// before stands; later operations run), or the node was closed.
    #[error("no answer from the node: {0}")]
    Stopped(String),
    /// The task that owns the node panicked where panics cannot unwind (in a page, wasm32):
    /// the node is gone until it is opened again; what was committed before stands.
    #[error("the node crashed: {0}")]
    Crashed(String),
}

impl NodeError {
    /// A short, stable name for the kind of error (what JS sees as `error.name`).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::InvalidApp(_) => "InvalidApp",
            Self::AppNotInstalled(_) => "AppNotInstalled",
            Self::UnknownContext(_) => "UnknownContext",
            Self::NotSynced(_) => "NotSynced",
            Self::BadInvitation(_) => "BadInvitation",
            Self::Unauthorized(_) => "Unauthorized",
            Self::BadId(_) => "BadId",
            Self::BadArgs(_) => "BadArgs",
            Self::UnknownProposal(_) => "UnknownProposal",
            Self::BadProposal(_) => "BadProposal",
            Self::MethodNotFound(_) => "MethodNotFound",
            Self::Execution(_) => "ExecutionFailed",
            Self::AppError(_) => "AppError",
            Self::Store(StoreError::QuotaExceeded) => "QuotaExceeded",
            Self::Store(_) => "StoreError",
            Self::Corrupt(_) => "Corrupt",
            Self::StoreFormatTooNew { .. } => "StoreFormatTooNew",
            Self::BadChainRequest(_) => "BadChainRequest",
            Self::BadSnapshot(_) => "BadSnapshot",
            Self::BadAppPart(e) => e.kind(),
            Self::FutureDelta(_) => "FutureDelta",
            Self::ClockExhausted(_) => "ClockExhausted",
            Self::Busy(_) => "Busy",
            Self::OverBudget(_) => "OverBudget",
            Self::NoConsent(_) => "NoConsent",
            Self::Stopped(_) => "Stopped",
            Self::Crashed(_) => "Crashed",
        }
    }
}
