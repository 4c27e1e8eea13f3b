//! The anchor: what a node needs from a chain that holds the truth about a context.
//!
//! A node keeps its own membership (certificates, the membership log); an anchored context has
//! a second source, a contract that lists who may take part. [`Anchor`] is the small interface
//! a node reads it through, so that other chains can follow NEAR: Calimero keeps the same
//! context-config model on Starknet, ICP, Stellar and EVM chains, so an implementation there
//! maps the same five reads onto its contract and returns the same types.
//!
//! To add a chain: implement [`Anchor`] for a type holding that chain's client; return members
//! as ed25519 [`PublicKey`]s (Calimero's context identities), privileges as [`Capability`]s and
//! the application as [`Application`] (whose blob id a node checks against its wasm with
//! [`Application::verify_wasm`]). Report "no such context" as an error, not as an empty list,
//! and say which errors mean it ([`Anchor::says_unknown`]) and which mean that the chain could
//! not be asked ([`Anchor::is_unavailable`]). The flows that read an anchor into a node and
//! write one (`tabnode-account`) take any [`Anchor`]; [`QuorumAnchor`] asks several alike.

use std::collections::BTreeMap;
use std::ops::AsyncFn;

use tabnode_types::{ContextId, PublicKey};

use crate::calimero::{Application, Capability};
use crate::client::{CallError, Transport};
use crate::context_config::ContextConfig;
use crate::write::Recorded;

/// Counters the contract bumps on each change, so a node can tell cheaply whether to re-read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Revisions {
    pub members: u64,
    pub application: u64,
}

/// A role as the chain grants it. The contract has two kinds of member; tabnode's third role,
/// reader, has no counterpart on chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum AnchoredRole {
    /// A member holding [`Capability::ManageMembers`]: may add and remove members.
    Admin,
    Member,
}

/// Everything an anchor says about one context, read together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnchorSnapshot {
    pub members: Vec<PublicKey>,
    /// Every privileged identity's capabilities.
    pub privileges: BTreeMap<PublicKey, Vec<Capability>>,
    pub application: Application,
    pub revisions: Revisions,
}

impl AnchorSnapshot {
    /// The role the chain gives `key`, or `None` if it is not a member.
    pub fn role(&self, key: &PublicKey) -> Option<AnchoredRole> {
        if !self.members.contains(key) {
            return None;
        }
        let admin = self
            .privileges
            .get(key)
            .is_some_and(|caps| caps.contains(&Capability::ManageMembers));
        Some(if admin {
            AnchoredRole::Admin
        } else {
            AnchoredRole::Member
        })
    }
}

/// A source of truth for contexts: members, their privileges, and the application.
#[allow(async_fn_in_trait)]
pub trait Anchor {
    type Error: std::error::Error;

    /// Every member's public key.
    async fn members(&self, context: &ContextId) -> Result<Vec<PublicKey>, Self::Error>;

    async fn is_member(&self, context: &ContextId, key: &PublicKey) -> Result<bool, Self::Error>;

    /// The capabilities of `keys`, or of every privileged member when `keys` is empty.
    async fn privileges(
        &self,
        context: &ContextId,
        keys: &[PublicKey],
    ) -> Result<BTreeMap<PublicKey, Vec<Capability>>, Self::Error>;

    /// The application the context runs, with the hash to check a binary against.
    async fn application(&self, context: &ContextId) -> Result<Application, Self::Error>;

    async fn revisions(&self, context: &ContextId) -> Result<Revisions, Self::Error>;

    /// The nonce `key`'s next signed request must carry; `None` when the chain keeps none for
    /// it (an unknown context or member: not checked).
    async fn nonce(&self, context: &ContextId, key: &PublicKey)
        -> Result<Option<u64>, Self::Error>;

    /// The account of the context's proxy contract, which runs its proposals' chain actions.
    async fn proxy_contract(&self, context: &ContextId) -> Result<String, Self::Error>;

    /// Whether `error` is the chain's answer that it records no such context: "not anchored",
    /// as opposed to a failure to ask, which must never be taken for it.
    fn says_unknown(error: &Self::Error) -> bool;

    /// Whether `error` means no endpoint gave a usable answer (as opposed to the chain's own).
    fn is_unavailable(error: &Self::Error) -> bool;

    /// Whether `error` means the endpoints asked gave different answers (a [`QuorumAnchor`]
    /// short of its quorum): the chain's state is unknown, and one of them lies or lags.
    fn is_disagreement(_error: &Self::Error) -> bool {
        false
    }

    /// What the chain records of a context, for a node that runs `wasm` as its app: `None`
    /// when it records no such context ([`Anchor::says_unknown`]); otherwise its members, and
    /// whether `wasm` is the recorded application. Any other error is a failure to ask.
    async fn anchored(
        &self,
        context: &ContextId,
        wasm: &[u8],
    ) -> Result<Option<Anchored>, Self::Error> {
        let read = async {
            let members = self.members(context).await?;
            let application = self.application(context).await?;
            Ok::<_, Self::Error>((members, application))
        };
        match read.await {
            Ok((members, application)) => Ok(Some(Anchored {
                members,
                app_matches: application.verify_wasm(wasm).is_ok(),
            })),
            Err(e) if Self::says_unknown(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// What a write signed by `signer` starts from ([`crate::write::plan`]): the context's
    /// members and application, and `signer`'s nonce and capabilities; `None` when the chain
    /// records no such context (the write then adds it).
    async fn recorded(
        &self,
        context: &ContextId,
        signer: &PublicKey,
    ) -> Result<Option<Recorded>, Self::Error> {
        let application = match self.application(context).await {
            Err(e) if Self::says_unknown(&e) => return Ok(None),
            application => application?,
        };
        Ok(Some(Recorded {
            members: self.members(context).await?,
            application,
            signer_nonce: self.nonce(context, signer).await?,
            signer_capabilities: self
                .privileges(context, &[*signer])
                .await?
                .remove(signer)
                .unwrap_or_default(),
        }))
    }

    /// All of the above. The reads are separate requests: a change landing between them can
    /// show; compare [`Revisions`] before and after when that matters.
    async fn snapshot(&self, context: &ContextId) -> Result<AnchorSnapshot, Self::Error> {
        let revisions = self.revisions(context).await?;
        Ok(AnchorSnapshot {
            members: self.members(context).await?,
            privileges: self.privileges(context, &[]).await?,
            application: self.application(context).await?,
            revisions,
        })
    }
}

/// The NEAR anchor: Calimero's context-config contract read over JSON-RPC.
pub struct NearAnchor<T> {
    contract: ContextConfig<T>,
    page: usize,
}

impl<T: Transport> NearAnchor<T> {
    /// Reads members 100 at a time.
    pub fn new(contract: ContextConfig<T>) -> Self {
        Self {
            contract,
            page: 100,
        }
    }

    pub fn with_page(mut self, page: usize) -> Self {
        self.page = page.max(1);
        self
    }

    pub fn contract(&self) -> &ContextConfig<T> {
        &self.contract
    }
}

/// The context-config contract's panic message for a context it does not record (its
/// `context does not exist`, in `query.rs`): the only contract error that means "not anchored".
pub const UNKNOWN_CONTEXT_PANIC: &str = "context does not exist";

/// Reads an anchor from several endpoints (for NEAR, RPC URLs: each a [`NearAnchor`]) and takes
/// an answer only when `quorum` of them give the same one, so that one dishonest or broken
/// endpoint can neither invent members nor hide the anchor. With a quorum of one it is a single
/// anchor (a [`NearAnchor`]'s client fails over between its URLs).
pub struct QuorumAnchor<A> {
    endpoints: Vec<A>,
    quorum: usize,
}

/// Why a [`QuorumAnchor`] read has no answer: too few endpoints agreed. The anchor's state is
/// then unknown, which is neither "anchored" nor "not anchored".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{agreeing} of {asked} RPC endpoints agree on the anchor, {quorum} must; failures: {failures:?}")]
pub struct NoQuorum {
    pub asked: usize,
    /// The largest number of endpoints that gave one same answer.
    pub agreeing: usize,
    pub quorum: usize,
    /// How many endpoints could not be asked at all ([`Anchor::is_unavailable`]).
    pub unavailable: usize,
    /// Each endpoint's failure to answer, as text.
    pub failures: Vec<String>,
}

impl<A: Anchor> QuorumAnchor<A> {
    /// `endpoints` are asked alike (each its own client); `quorum` is clamped to 1..=their number.
    pub fn new(endpoints: Vec<A>, quorum: usize) -> Self {
        let quorum = quorum.clamp(1, endpoints.len().max(1));
        Self { endpoints, quorum }
    }

    pub fn quorum(&self) -> usize {
        self.quorum
    }

    /// `read` on every endpoint in turn, stopping once `quorum` give one same answer: that
    /// answer. The chain's own "no such context" ([`Anchor::says_unknown`]) is an answer too
    /// ([`QuorumError::Unknown`] when that many give it); any other error is a failure to answer.
    async fn agreed<T: PartialEq>(
        &self,
        read: impl AsyncFn(&A) -> Result<T, A::Error>,
    ) -> Result<T, QuorumError> {
        // `None`: the chain records no such context.
        let mut answers: Vec<(Option<T>, usize)> = Vec::new();
        let mut failures = Vec::new();
        let mut unavailable = 0;
        for endpoint in &self.endpoints {
            let answer = match read(endpoint).await {
                Ok(answer) => Some(answer),
                Err(e) if A::says_unknown(&e) => None,
                Err(e) => {
                    unavailable += usize::from(A::is_unavailable(&e));
                    failures.push(e.to_string());
                    continue;
                }
            };
            let at = match answers.iter().position(|(a, _)| *a == answer) {
                Some(at) => at,
                None => {
                    answers.push((answer, 0));
                    answers.len() - 1
                }
            };
            answers[at].1 += 1;
            if answers[at].1 >= self.quorum {
                return answers.swap_remove(at).0.ok_or(QuorumError::Unknown);
            }
        }
        Err(QuorumError::NoQuorum(NoQuorum {
            asked: self.endpoints.len(),
            agreeing: answers.iter().map(|(_, n)| *n).max().unwrap_or(0),
            quorum: self.quorum,
            unavailable,
            failures,
        }))
    }
}

/// Why a [`QuorumAnchor`] read has no answer to give.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuorumError {
    /// A quorum of endpoints agree that the chain records no such context.
    #[error("the RPC endpoints agree: {UNKNOWN_CONTEXT_PANIC}")]
    Unknown,
    /// Too few endpoints agreed: the chain's state is unknown.
    #[error(transparent)]
    NoQuorum(#[from] NoQuorum),
}

impl QuorumError {
    /// The disagreement, when that is what it is.
    pub fn no_quorum(&self) -> Option<&NoQuorum> {
        match self {
            QuorumError::NoQuorum(n) => Some(n),
            QuorumError::Unknown => None,
        }
    }
}

/// Each read asks every endpoint (until `quorum` agree) and gives the answer that many gave, or
/// [`QuorumError`]; a write planned over it ([`crate::write::plan_write`]) takes the nonces it
/// has signed, and what it plans from, only from an agreed answer.
impl<A: Anchor> Anchor for QuorumAnchor<A> {
    type Error = QuorumError;

    async fn members(&self, context: &ContextId) -> Result<Vec<PublicKey>, QuorumError> {
        self.agreed(async |e: &A| e.members(context).await).await
    }

    async fn is_member(&self, context: &ContextId, key: &PublicKey) -> Result<bool, QuorumError> {
        self.agreed(async |e: &A| e.is_member(context, key).await)
            .await
    }

    async fn privileges(
        &self,
        context: &ContextId,
        keys: &[PublicKey],
    ) -> Result<BTreeMap<PublicKey, Vec<Capability>>, QuorumError> {
        self.agreed(async |e: &A| e.privileges(context, keys).await)
            .await
    }

    async fn application(&self, context: &ContextId) -> Result<Application, QuorumError> {
        self.agreed(async |e: &A| e.application(context).await)
            .await
    }

    async fn revisions(&self, context: &ContextId) -> Result<Revisions, QuorumError> {
        self.agreed(async |e: &A| e.revisions(context).await).await
    }

    async fn nonce(
        &self,
        context: &ContextId,
        key: &PublicKey,
    ) -> Result<Option<u64>, QuorumError> {
        self.agreed(async |e: &A| e.nonce(context, key).await).await
    }

    async fn proxy_contract(&self, context: &ContextId) -> Result<String, QuorumError> {
        self.agreed(async |e: &A| e.proxy_contract(context).await)
            .await
    }

    fn says_unknown(error: &QuorumError) -> bool {
        matches!(error, QuorumError::Unknown)
    }

    /// No endpoint gave a usable answer (each failed to be asked).
    fn is_unavailable(error: &QuorumError) -> bool {
        matches!(error, QuorumError::NoQuorum(n) if n.unavailable == n.asked)
    }

    fn is_disagreement(error: &QuorumError) -> bool {
        matches!(error, QuorumError::NoQuorum(_)) && !Self::is_unavailable(error)
    }

    /// Each endpoint's [`Anchor::anchored`], compared whole: the answer `quorum` gave.
    async fn anchored(
        &self,
        context: &ContextId,
        wasm: &[u8],
    ) -> Result<Option<Anchored>, QuorumError> {
        self.agreed(async |e: &A| e.anchored(context, wasm).await)
            .await
    }

    /// Each endpoint's [`Anchor::recorded`] (members, application, the signer's nonce and
    /// capabilities), compared whole: a write signs the nonce `quorum` endpoints gave, with the
    /// rest of what they gave, never one endpoint's alone.
    async fn recorded(
        &self,
        context: &ContextId,
        signer: &PublicKey,
    ) -> Result<Option<Recorded>, QuorumError> {
        self.agreed(async |e: &A| e.recorded(context, signer).await)
            .await
    }
}

/// A context as its contract records it, against the app a node runs (see
/// [`Anchor::anchored`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anchored {
    pub members: Vec<PublicKey>,
    pub app_matches: bool,
}

impl<T: Transport> Anchor for NearAnchor<T> {
    type Error = CallError;

    async fn members(&self, context: &ContextId) -> Result<Vec<PublicKey>, CallError> {
        Ok(self.contract.all_members(context, self.page).await?.value)
    }

    async fn is_member(&self, context: &ContextId, key: &PublicKey) -> Result<bool, CallError> {
        Ok(self.contract.has_member(context, key).await?.value)
    }

    async fn privileges(
        &self,
        context: &ContextId,
        keys: &[PublicKey],
    ) -> Result<BTreeMap<PublicKey, Vec<Capability>>, CallError> {
        Ok(self.contract.privileges(context, keys).await?.value)
    }

    async fn application(&self, context: &ContextId) -> Result<Application, CallError> {
        Ok(self.contract.application(context).await?.value)
    }

    async fn revisions(&self, context: &ContextId) -> Result<Revisions, CallError> {
        Ok(Revisions {
            members: self.contract.members_revision(context).await?.value,
            application: self.contract.application_revision(context).await?.value,
        })
    }

    async fn nonce(&self, context: &ContextId, key: &PublicKey) -> Result<Option<u64>, CallError> {
        Ok(self.contract.fetch_nonce(context, key).await?.value)
    }

    async fn proxy_contract(&self, context: &ContextId) -> Result<String, CallError> {
        Ok(self.contract.proxy_contract(context).await?.value)
    }

    /// The contract panics so on a context it does not know: the chain's answer.
    fn says_unknown(error: &CallError) -> bool {
        error.error.panic_message() == Some(UNKNOWN_CONTEXT_PANIC)
    }

    fn is_unavailable(error: &CallError) -> bool {
        error.error.is_node_failure()
    }

    /// As the contract's own reads for a write do ([`ContextConfig::recorded`]).
    async fn recorded(
        &self,
        context: &ContextId,
        signer: &PublicKey,
    ) -> Result<Option<Recorded>, CallError> {
        self.contract.recorded(context, signer).await
    }
}
