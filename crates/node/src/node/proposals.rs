//! Proposals this node makes and reads: the context's proxy, as its log gives it (see
//! [`crate::proposals`]).

use super::*;

impl<S: Store, E: Env> Node<S, E> {
    /// The context's proxy state: threshold, limit, proposals and key-value store, as every
    /// member that holds the same deltas sees it.
    pub fn proxy(&self, id: &ContextId) -> Result<Proxy, NodeError> {
        let ctx = self.context(id)?;
        Ok(Proxy::tally(&ctx.dag, ctx.log.verdict()))
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
}
