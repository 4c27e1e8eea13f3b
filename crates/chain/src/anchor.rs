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
//! [`Application::verify_wasm`]). Report "no such context" as an error, not as an empty list.

use std::collections::BTreeMap;

use tabnode_types::{ContextId, PublicKey};

use crate::calimero::{Application, Capability};
use crate::client::{CallError, Transport};
use crate::context_config::ContextConfig;

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

    /// What the contract records of a context, for a node that runs `wasm` as its app: `None`
    /// when the contract says it does not record the context (it panics with
    /// [`UNKNOWN_CONTEXT_PANIC`]: not anchored there); otherwise its members, and whether `wasm`
    /// is the recorded application. Anything else is an error, a failure to ask, that must not
    /// be taken for "not anchored": another panic (out of gas, a changed contract), an
    /// unreachable RPC, a malformed answer.
    pub async fn anchored(
        &self,
        context: &ContextId,
        wasm: &[u8],
    ) -> Result<Option<Anchored>, CallError> {
        let read = async {
            let members = self.members(context).await?;
            let application = self.application(context).await?;
            Ok::<_, CallError>((members, application))
        };
        match read.await {
            Ok((members, application)) => Ok(Some(Anchored {
                members,
                app_matches: application.verify_wasm(wasm).is_ok(),
            })),
            // The contract panics so on a context it does not know: the chain's answer.
            Err(e) if e.error.panic_message() == Some(UNKNOWN_CONTEXT_PANIC) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// The context-config contract's panic message for a context it does not record (its
/// `context does not exist`, in `query.rs`): the only contract error that means "not anchored".
pub const UNKNOWN_CONTEXT_PANIC: &str = "context does not exist";

/// Reads an anchor from several RPC endpoints and takes an answer only when `quorum` of them
/// give the same one, so that one dishonest or broken endpoint can neither invent members nor
/// hide the anchor. With a quorum of one it is a single [`NearAnchor`] (whose client fails over
/// between its URLs).
pub struct QuorumAnchor<T> {
    endpoints: Vec<NearAnchor<T>>,
    quorum: usize,
}

/// Why [`QuorumAnchor::anchored`] has no answer: too few endpoints agreed. The anchor's state is
/// then unknown, which is neither "anchored" nor "not anchored".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{agreeing} of {asked} RPC endpoints agree on the anchor, {quorum} must; failures: {failures:?}")]
pub struct NoQuorum {
    pub asked: usize,
    /// The largest number of endpoints that gave one same answer.
    pub agreeing: usize,
    pub quorum: usize,
    /// Each endpoint's failure to answer, as text.
    pub failures: Vec<String>,
}

impl<T: Transport> QuorumAnchor<T> {
    /// `endpoints` are asked alike (each its own client); `quorum` is clamped to 1..=their number.
    pub fn new(endpoints: Vec<NearAnchor<T>>, quorum: usize) -> Self {
        let quorum = quorum.clamp(1, endpoints.len().max(1));
        Self { endpoints, quorum }
    }

    pub fn quorum(&self) -> usize {
        self.quorum
    }

    /// [`NearAnchor::anchored`] on every endpoint in turn (stopping once `quorum` agree): the
    /// answer that many gave, or [`NoQuorum`].
    pub async fn anchored(
        &self,
        context: &ContextId,
        wasm: &[u8],
    ) -> Result<Option<Anchored>, NoQuorum> {
        let mut answers: Vec<(Option<Anchored>, usize)> = Vec::new();
        let mut failures = Vec::new();
        for endpoint in &self.endpoints {
            match endpoint.anchored(context, wasm).await {
                Ok(answer) => {
                    let count = match answers.iter_mut().find(|(a, _)| *a == answer) {
                        Some((_, n)) => {
                            *n += 1;
                            *n
                        }
                        None => {
                            answers.push((answer.clone(), 1));
                            1
                        }
                    };
                    if count >= self.quorum {
                        return Ok(answer);
                    }
                }
                Err(e) => failures.push(e.to_string()),
            }
        }
        Err(NoQuorum {
            asked: self.endpoints.len(),
            agreeing: answers.iter().map(|(_, n)| *n).max().unwrap_or(0),
            quorum: self.quorum,
            failures,
        })
    }
}

/// A context as its contract records it, against the app a node runs (see
/// [`NearAnchor::anchored`]).
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
}
