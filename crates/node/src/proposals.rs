//! Proposals: what merod sends to a context's proxy contract on a chain, carried here as the
//! context's own operations in its signed log ([`MemberOp::Propose`], [`MemberOp::Approve`]),
//! so every member holds the same proposals, approvals and outcomes with no chain.
//!
//! The proxy's state is a pure function of the DAG ([`Proxy::tally`]), as the membership log's
//! verdict is: the proposal operations that count (their authors could write in their causal
//! past) are folded in the log's order (causal, concurrent ones by id), so every member that
//! holds the same deltas sees the same proposals executed with the same effects, whatever order
//! they arrived in. The rules (docs/proposals.md) follow merod 0.10's proxy contract:
//!
//! - A proposal counts its author's approval; another member's [`MemberOp::Approve`] adds one.
//!   Once a proposal has as many approvals as the threshold (3 by default), its actions run, in
//!   order and all or none, and it is no longer active.
//! - An author has at most the active-proposal limit (10 by default) active at once; a
//!   proposal beyond it is refused.
//! - `SetNumApprovals`, `SetActiveProposalsLimit` and `DeleteProposal` change the proxy,
//!   `SetContextValue` its key-value store. A change of threshold counts from the next
//!   approval on (as on the chain: no pending proposal runs by it alone).
//! - `Transfer` and `ExternalFunctionCall` need a NEAR chain: a proposal holding one is kept
//!   and approved like any other, but none of its actions run here. At the threshold it ends
//!   [`Outcome::NeedsChain`] in the fold, and still takes approvals (they count on the chain); a node that holds the context's anchor shows it as
//!   [`Outcome::OnChain`] instead: its actions are the context's proxy contract's to run, each
//!   member sending its own signed part ([`proxy_payload`]) through the user's wallet.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
pub use tabnode_types::ProposalId;
use tabnode_types::{DeltaId, PublicKey, Signature};

use crate::log::{Entry, MemberOp, Verdict};
use crate::NodeError;

/// The approvals a proposal needs while no `SetNumApprovals` ran: the proxy contract's default.
pub const DEFAULT_NUM_APPROVALS: u32 = 3;
/// How many proposals one author may have active at once by default: the proxy's default.
pub const DEFAULT_ACTIVE_PROPOSALS_LIMIT: u32 = 10;
/// Actions one proposal may hold (the guest's buffer is bounded by the runtime already).
pub const MAX_ACTIONS: usize = 64;

/// One action of a proposal, encoded as calimero-sdk 0.10's `ProposalAction` (a guest's
/// `send_proposal` hands the node a borsh `Vec` of them), and shown as merod's admin API shows
/// one: `{"scope": name, "params": {fields}}`, amounts as decimal strings.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(tag = "scope", content = "params", deny_unknown_fields)]
pub enum ProposalAction {
    ExternalFunctionCall {
        receiver_id: String,
        method_name: String,
        args: String,
        #[serde(serialize_with = "decimal", deserialize_with = "decimal_in")]
        deposit: u128,
    },
    Transfer {
        receiver_id: String,
        #[serde(serialize_with = "decimal", deserialize_with = "decimal_in")]
        amount: u128,
    },
    SetNumApprovals {
        num_approvals: u32,
    },
    SetActiveProposalsLimit {
        active_proposals_limit: u32,
    },
    SetContextValue {
        key: Vec<u8>,
        value: Vec<u8>,
    },
    DeleteProposal {
        proposal_id: ProposalId,
    },
}

impl ProposalAction {
    /// The action's name, as calimero-sdk spells it.
    pub fn name(&self) -> &'static str {
        match self {
            Self::ExternalFunctionCall { .. } => "ExternalFunctionCall",
            Self::Transfer { .. } => "Transfer",
            Self::SetNumApprovals { .. } => "SetNumApprovals",
            Self::SetActiveProposalsLimit { .. } => "SetActiveProposalsLimit",
            Self::SetContextValue { .. } => "SetContextValue",
            Self::DeleteProposal { .. } => "DeleteProposal",
        }
    }

    /// Whether only a chain can run it (`Transfer`, `ExternalFunctionCall`).
    pub fn needs_chain(&self) -> bool {
        matches!(
            self,
            Self::ExternalFunctionCall { .. } | Self::Transfer { .. }
        )
    }
}

/// The name of the first of `actions` that only a chain can run, if any: such a proposal goes
/// to the context's proxy contract, the others run here.
pub fn chain_action(actions: &[ProposalAction]) -> Option<&'static str> {
    actions.iter().find(|a| a.needs_chain()).map(|a| a.name())
}

/// A token amount as a decimal string: a `u128` is beyond a JSON number's exact range.
fn decimal<S: Serializer>(amount: &u128, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(amount)
}

fn decimal_in<'de, D: Deserializer<'de>>(d: D) -> Result<u128, D::Error> {
    let text = <String as Deserialize>::deserialize(d)?;
    text.parse().map_err(|_| {
        serde::de::Error::custom(format!("{text:?} is not an amount (a decimal string)"))
    })
}

/// Decodes the actions a guest proposed and checks them before any member sees them: the bytes
/// must be a borsh `Vec<ProposalAction>` and nothing else, with 1 to [`MAX_ACTIONS`] actions,
/// and no threshold or limit of zero (a proxy that could never act again).
pub fn decode_actions(bytes: &[u8]) -> Result<Vec<ProposalAction>, NodeError> {
    let actions: Vec<ProposalAction> = borsh::from_slice(bytes)
        .map_err(|e| NodeError::BadProposal(format!("the actions are not borsh: {e}")))?;
    check_actions(&actions)?;
    Ok(actions)
}

/// See [`decode_actions`].
pub fn check_actions(actions: &[ProposalAction]) -> Result<(), NodeError> {
    if actions.is_empty() || actions.len() > MAX_ACTIONS {
        return Err(NodeError::BadProposal(format!(
            "a proposal holds 1 to {MAX_ACTIONS} actions, not {}",
            actions.len()
        )));
    }
    for action in actions {
        let zero = match action {
            ProposalAction::SetNumApprovals { num_approvals } => *num_approvals == 0,
            ProposalAction::SetActiveProposalsLimit {
                active_proposals_limit,
            } => *active_proposals_limit == 0,
            _ => false,
        };
        if zero {
            return Err(NodeError::BadProposal(format!(
                "{} to 0 would leave the context unable to act",
                action.name()
            )));
        }
    }
    Ok(())
}

/// What became of a proposal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(
    tag = "status",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum Outcome {
    /// Waiting for approvals.
    Active,
    /// Its actions ran when the approval `at` brought it to the threshold.
    Executed { at: DeltaId },
    /// It reached the threshold with an action that needs a NEAR chain, which this context
    /// has none of (this node holds no anchor of it): none of its actions ran.
    NeedsChain { action: &'static str },
    /// It reached the threshold with an action that needs a NEAR chain, and the context is
    /// anchored: its actions are the proxy contract's to run, all of them, when the approvals
    /// sent there reach the proxy's threshold (see docs/proposals.md); none ran here.
    OnChain { action: &'static str },
    /// An approved `DeleteProposal` (of proposal `by`) removed it while it was active.
    Deleted { by: ProposalId },
    /// Refused when proposed: its author had the active-proposal limit active already.
    TooManyActive { limit: u32 },
}

/// One proposal as the log holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Proposal {
    pub id: ProposalId,
    pub author: PublicKey,
    pub actions: Vec<ProposalAction>,
    /// Who approved it (its author first), each once.
    pub approvers: BTreeSet<PublicKey>,
    /// The operation that proposed it.
    pub proposed_in: DeltaId,
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// A context's proxy state: its proposals, threshold, limit and key-value store (shown as
/// `{numApprovals, activeProposalsLimit, proposals}`; values are read by key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Proxy {
    pub num_approvals: u32,
    pub active_proposals_limit: u32,
    /// What approved `SetContextValue` actions set.
    #[serde(skip)]
    pub values: BTreeMap<Vec<u8>, Vec<u8>>,
    /// Every proposal, whatever became of it (a list, in id order, when shown).
    #[serde(serialize_with = "values_of")]
    pub proposals: BTreeMap<ProposalId, Proposal>,
}

fn values_of<S: Serializer>(map: &BTreeMap<ProposalId, Proposal>, s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(map.values())
}

impl Default for Proxy {
    fn default() -> Self {
        Self {
            num_approvals: DEFAULT_NUM_APPROVALS,
            active_proposals_limit: DEFAULT_ACTIVE_PROPOSALS_LIMIT,
            values: BTreeMap::new(),
            proposals: BTreeMap::new(),
        }
    }
}

impl Proxy {
    /// The proxy state the DAG's proposal operations that count give (see the module docs).
    pub fn tally(dag: &HashMap<DeltaId, Entry>, verdict: &Verdict) -> Self {
        let mut proxy = Self::default();
        for id in &verdict.applied_ops {
            let entry = &dag[id];
            match &entry.op {
                Some(MemberOp::Propose { proposal, actions }) => {
                    proxy.propose(*id, entry.author, *proposal, actions);
                }
                Some(MemberOp::Approve { proposal }) => {
                    proxy.approve(*id, entry.author, proposal);
                }
                _ => {}
            }
        }
        proxy
    }

    /// Proposals still waiting for approvals.
    pub fn active(&self) -> impl Iterator<Item = &Proposal> {
        self.proposals
            .values()
            .filter(|p| p.outcome == Outcome::Active)
    }

    /// Whether `member` may approve `id` now: [`NodeError::UnknownProposal`] if no proposal
    /// has that id, [`NodeError::BadProposal`] if it is no longer active or `member` approved
    /// it already. A proposal that reached the threshold with a chain action still takes
    /// approvals: they count on the chain, whose threshold may be higher than this one.
    pub fn check_approval(&self, id: &ProposalId, member: &PublicKey) -> Result<(), NodeError> {
        let proposal = self
            .proposals
            .get(id)
            .ok_or_else(|| NodeError::UnknownProposal(id.to_string()))?;
        let open = matches!(
            proposal.outcome,
            Outcome::Active | Outcome::NeedsChain { .. } | Outcome::OnChain { .. }
        );
        if !open {
            return Err(NodeError::BadProposal(format!(
                "proposal {id} is no longer active ({:?})",
                proposal.outcome
            )));
        }
        if proposal.approvers.contains(member) {
            return Err(NodeError::BadProposal(format!(
                "{member} approved proposal {id} already"
            )));
        }
        Ok(())
    }

    fn propose(
        &mut self,
        op: DeltaId,
        author: PublicKey,
        id: ProposalId,
        actions: &[ProposalAction],
    ) {
        if self.proposals.contains_key(&id) || check_actions(actions).is_err() {
            return; // an id is used once; a malformed proposal counts for nothing
        }
        let active = self.active().filter(|p| p.author == author).count();
        let outcome = if active >= self.active_proposals_limit as usize {
            Outcome::TooManyActive {
                limit: self.active_proposals_limit,
            }
        } else {
            Outcome::Active
        };
        self.proposals.insert(
            id,
            Proposal {
                id,
                author,
                actions: actions.to_vec(),
                approvers: BTreeSet::from([author]),
                proposed_in: op,
                outcome,
            },
        );
        self.run_if_approved(op, &id);
    }

    fn approve(&mut self, op: DeltaId, member: PublicKey, id: &ProposalId) {
        if self.check_approval(id, &member).is_err() {
            return; // approving twice, or what is gone, changes nothing
        }
        let proposal = self.proposals.get_mut(id).expect("checked");
        proposal.approvers.insert(member);
        self.run_if_approved(op, id);
    }

    /// Runs proposal `id`'s actions if it is active and has the approvals the threshold asks.
    fn run_if_approved(&mut self, op: DeltaId, id: &ProposalId) {
        let proposal = &self.proposals[id];
        if proposal.outcome != Outcome::Active
            || proposal.approvers.len() < self.num_approvals as usize
        {
            return;
        }
        let actions = proposal.actions.clone();
        if let Some(action) = chain_action(&actions) {
            self.set_outcome(id, Outcome::NeedsChain { action });
            return;
        }
        self.set_outcome(id, Outcome::Executed { at: op });
        for action in actions {
            match action {
                ProposalAction::SetNumApprovals { num_approvals } => {
                    self.num_approvals = num_approvals;
                }
                ProposalAction::SetActiveProposalsLimit {
                    active_proposals_limit,
                } => self.active_proposals_limit = active_proposals_limit,
                ProposalAction::SetContextValue { key, value } => {
                    self.values.insert(key, value);
                }
                ProposalAction::DeleteProposal { proposal_id } => {
                    if self
                        .proposals
                        .get(&proposal_id)
                        .is_some_and(|p| p.outcome == Outcome::Active)
                    {
                        self.set_outcome(&proposal_id, Outcome::Deleted { by: *id });
                    }
                }
                ProposalAction::ExternalFunctionCall { .. } | ProposalAction::Transfer { .. } => {
                    unreachable!("refused above")
                }
            }
        }
    }

    /// The fold's outcomes as a node that holds the context's anchor shows them: a proposal
    /// that reached the threshold with a chain action went to the proxy contract.
    pub fn anchored(mut self) -> Self {
        for proposal in self.proposals.values_mut() {
            if let Outcome::NeedsChain { action } = proposal.outcome {
                proposal.outcome = Outcome::OnChain { action };
            }
        }
        self
    }

    fn set_outcome(&mut self, id: &ProposalId, outcome: Outcome) {
        self.proposals
            .get_mut(id)
            .expect("a known proposal")
            .outcome = outcome;
    }
}

/// Which request a member's part in a proposal is on the proxy contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ProxyScope {
    /// The author's: the proposal itself, which counts as its approval.
    Propose,
    /// Another member's approval.
    Approve,
}

/// This member's part in a proposal, signed for the context's proxy contract (see
/// `Node::proxy_request`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyRequest {
    pub scope: ProxyScope,
    /// The proposal's first action that needs a chain (`Transfer`, `ExternalFunctionCall`).
    pub action: &'static str,
    /// calimero-context-config's `ProxyMutateRequest` JSON ([`proxy_payload`]).
    pub payload: Vec<u8>,
    /// This node's key: the `author_id` or `signer_id` the payload names.
    pub signer: PublicKey,
    /// The signer's ed25519 signature of exactly `payload`.
    pub signature: Signature,
}

/// The JSON of calimero-context-config 0.10's `ProxyMutateRequest` (its serde derives:
/// `{"scope", "params"}` tags, snake_case fields, ids base58, amounts as JSON numbers, keys and
/// values as arrays of bytes): what a member signs and the proxy contract's `mutate` verifies
/// against the `author_id` (for `Propose`) or `signer_id` (for `Approve`) it names. An
/// approval's `added_timestamp` is 0, as merod sends it.
pub fn proxy_payload(proposal: &Proposal, scope: ProxyScope, signer: &PublicKey) -> Vec<u8> {
    let request = match scope {
        ProxyScope::Propose => wire::Request::Propose {
            proposal: wire::Proposal {
                id: proposal.id,
                author_id: proposal.author,
                actions: proposal.actions.iter().map(wire::Action::from).collect(),
            },
        },
        ProxyScope::Approve => wire::Request::Approve {
            approval: wire::Approval {
                proposal_id: proposal.id,
                signer_id: *signer,
                added_timestamp: 0,
            },
        },
    };
    serde_json::to_vec(&request).expect("the request serializes")
}

/// calimero-context-config's shapes, for [`proxy_payload`] only (the admin API shows amounts
/// as strings; the contract reads them as numbers).
mod wire {
    use super::{ProposalAction, ProposalId, PublicKey};
    use serde::Serialize;

    #[derive(Serialize)]
    #[serde(tag = "scope", content = "params")]
    pub enum Request<'a> {
        Propose { proposal: Proposal<'a> },
        Approve { approval: Approval },
    }

    #[derive(Serialize)]
    pub struct Proposal<'a> {
        pub id: ProposalId,
        pub author_id: PublicKey,
        pub actions: Vec<Action<'a>>,
    }

    #[derive(Serialize)]
    pub struct Approval {
        pub proposal_id: ProposalId,
        pub signer_id: PublicKey,
        pub added_timestamp: u64,
    }

    #[derive(Serialize)]
    #[serde(tag = "scope", content = "params")]
    pub enum Action<'a> {
        ExternalFunctionCall {
            receiver_id: &'a str,
            method_name: &'a str,
            args: &'a str,
            deposit: u128,
        },
        Transfer {
            receiver_id: &'a str,
            amount: u128,
        },
        SetNumApprovals {
            num_approvals: u32,
        },
        SetActiveProposalsLimit {
            active_proposals_limit: u32,
        },
        SetContextValue {
            key: &'a [u8],
            value: &'a [u8],
        },
        DeleteProposal {
            proposal_id: ProposalId,
        },
    }

    impl<'a> From<&'a ProposalAction> for Action<'a> {
        fn from(action: &'a ProposalAction) -> Self {
            match action {
                ProposalAction::ExternalFunctionCall {
                    receiver_id,
                    method_name,
                    args,
                    deposit,
                } => Action::ExternalFunctionCall {
                    receiver_id,
                    method_name,
                    args,
                    deposit: *deposit,
                },
                ProposalAction::Transfer {
                    receiver_id,
                    amount,
                } => Action::Transfer {
                    receiver_id,
                    amount: *amount,
                },
                ProposalAction::SetNumApprovals { num_approvals } => Action::SetNumApprovals {
                    num_approvals: *num_approvals,
                },
                ProposalAction::SetActiveProposalsLimit {
                    active_proposals_limit,
                } => Action::SetActiveProposalsLimit {
                    active_proposals_limit: *active_proposals_limit,
                },
                ProposalAction::SetContextValue { key, value } => {
                    Action::SetContextValue { key, value }
                }
                ProposalAction::DeleteProposal { proposal_id } => Action::DeleteProposal {
                    proposal_id: *proposal_id,
                },
            }
        }
    }
}
