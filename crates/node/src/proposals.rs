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
//! - `Transfer` and `ExternalFunctionCall` need a NEAR chain: a proposal holding one is kept,
//!   approved and, at the threshold, fails as a whole with [`Outcome::NeedsChain`].

use std::collections::{BTreeMap, BTreeSet, HashMap};

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
pub use tabnode_types::ProposalId;
use tabnode_types::{DeltaId, PublicKey};

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

    fn needs_chain(&self) -> bool {
        matches!(
            self,
            Self::ExternalFunctionCall { .. } | Self::Transfer { .. }
        )
    }
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
    /// has none of: none of its actions ran.
    NeedsChain { action: &'static str },
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
    /// it already.
    pub fn check_approval(&self, id: &ProposalId, member: &PublicKey) -> Result<(), NodeError> {
        let proposal = self
            .proposals
            .get(id)
            .ok_or_else(|| NodeError::UnknownProposal(id.to_string()))?;
        if proposal.outcome != Outcome::Active {
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
        if let Some(action) = actions.iter().find(|a| a.needs_chain()) {
            self.set_outcome(
                id,
                Outcome::NeedsChain {
                    action: action.name(),
                },
            );
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

    fn set_outcome(&mut self, id: &ProposalId, outcome: Outcome) {
        self.proposals
            .get_mut(id)
            .expect("a known proposal")
            .outcome = outcome;
    }
}
