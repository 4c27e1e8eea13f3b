//! Proposals this node makes and reads: the context's proxy, as its log gives it (see
//! [`crate::proposals`]).

use super::*;
use crate::proposals::{proxy_payload, Outcome, ProxyRequest, ProxyScope};

impl<S: Store, E: Env> Node<S, E> {
    /// The context's proxy state: threshold, limit, proposals and key-value store, as every
    /// member that holds the same deltas sees it. When this node holds the context's anchor, a
    /// proposal that reached the threshold with a chain action shows as
    /// [`Outcome::OnChain`](crate::ProposalOutcome::OnChain) (its actions are the proxy
    /// contract's), otherwise as `NeedsChain`.
    pub fn proxy(&self, id: &ContextId) -> Result<Proxy, NodeError> {
        let ctx = self.context(id)?;
        let proxy = Proxy::tally(&ctx.dag, ctx.log.verdict());
        Ok(match ctx.anchor {
            Some(_) => proxy.anchored(),
            None => proxy,
        })
    }

    /// Every proposal of the context, whatever became of it.
    pub fn proposals(&self, id: &ContextId) -> Result<Vec<Proposal>, NodeError> {
        Ok(self.proxy(id)?.proposals.into_values().collect())
    }

    /// One proposal, with who approved it.
    pub fn proposal(&self, id: &ContextId, proposal: &ProposalId) -> Result<Proposal, NodeError> {
        self.proxy(id)?
            .proposals
            .remove(proposal)
            .ok_or_else(|| NodeError::UnknownProposal(proposal.to_string()))
    }

    /// The value an approved `SetContextValue` set for `key`, if one did.
    pub fn context_value(&self, id: &ContextId, key: &[u8]) -> Result<Option<Vec<u8>>, NodeError> {
        Ok(self.proxy(id)?.values.remove(key))
    }

    /// Proposes `actions` as this node's member, under a new id: an operation replicated to
    /// every member, which counts as this member's approval.
    pub async fn propose(
        &mut self,
        id: &ContextId,
        actions: Vec<ProposalAction>,
    ) -> Result<ProposalId, NodeError> {
        let proposal = ProposalId(self.env.random32());
        self.propose_as(id, proposal, actions).await?;
        Ok(proposal)
    }

    /// Proposes `actions` under `proposal` (a guest's `send_proposal` names the id).
    pub(super) async fn propose_as(
        &mut self,
        id: &ContextId,
        proposal: ProposalId,
        actions: Vec<ProposalAction>,
    ) -> Result<DeltaId, NodeError> {
        crate::proposals::check_actions(&actions)?;
        let proxy = self.proxy(id)?;
        if proxy.proposals.contains_key(&proposal) {
            return Err(NodeError::BadProposal(format!(
                "the context has a proposal {proposal} already"
            )));
        }
        let me = self.key.public();
        let active = proxy.active().filter(|p| p.author == me).count();
        if active >= proxy.active_proposals_limit as usize {
            return Err(NodeError::BadProposal(format!(
                "{me} has {active} proposals active, the limit of {}",
                proxy.active_proposals_limit
            )));
        }
        self.member_op(id, MemberOp::Propose { proposal, actions })
            .await
    }

    /// Approves `proposal` as this node's member: an operation replicated to every member; the
    /// approval that reaches the threshold runs the proposal's actions on each of them.
    pub async fn approve_proposal(
        &mut self,
        id: &ContextId,
        proposal: &ProposalId,
    ) -> Result<DeltaId, NodeError> {
        self.proxy(id)?
            .check_approval(proposal, &self.key.public())?;
        self.member_op(
            id,
            MemberOp::Approve {
                proposal: *proposal,
            },
        )
        .await
    }

    /// What this member did with `proposal` in the context's log, as the request the context's
    /// proxy contract takes, signed with this node's key (its identity on the contract), as
    /// merod signs it: the proposal itself when this node proposed it, its approval when this
    /// node approved it. Nothing else is signed, so this is no signing oracle: the payload is
    /// built here, from the log.
    ///
    /// Refused ([`NodeError::BadProposal`]) for a proposal with no action that needs a chain
    /// (it runs here), one this node has not approved (approve it first), or one that will not
    /// run (`tooManyActive`, `deleted`); [`NodeError::UnknownProposal`] for an unknown id.
    pub fn proxy_request(
        &self,
        id: &ContextId,
        proposal: &ProposalId,
    ) -> Result<ProxyRequest, NodeError> {
        let proposal = self.proposal(id, proposal)?;
        let pid = proposal.id;
        let action = crate::proposals::chain_action(&proposal.actions).ok_or_else(|| {
            NodeError::BadProposal(format!(
                "proposal {pid} holds no action that needs a chain: it runs here"
            ))
        })?;
        if matches!(
            proposal.outcome,
            Outcome::TooManyActive { .. } | Outcome::Deleted { .. }
        ) {
            return Err(NodeError::BadProposal(format!(
                "proposal {pid} will not run ({:?}): nothing goes to the chain",
                proposal.outcome
            )));
        }
        let me = self.key.public();
        let scope = if proposal.author == me {
            ProxyScope::Propose
        } else if proposal.approvers.contains(&me) {
            ProxyScope::Approve
        } else {
            return Err(NodeError::BadProposal(format!(
                "{me} has not approved proposal {pid}: approve it first"
            )));
        };
        let payload = proxy_payload(&proposal, scope, &me);
        Ok(ProxyRequest {
            scope,
            action,
            signature: self.key.sign(&payload),
            payload,
            signer: me,
        })
    }
}
