//! The context proxy contract the double keeps, one per context (its account is the context's
//! `proxy_contract`): its `mutate`, as calimero-network/contracts' `contracts/near/context-proxy`
//! (`src/mutate.rs`) has it. A TEST DOUBLE: no NEAR runs here, and the transfers and function
//! calls it would make are recorded ([`Proxy::ran`]) instead of sent.
//!
//! `mutate` takes a `Signed<ProxyMutateRequest>` (calimero-context-config 0.10's serde shapes,
//! read strictly as the contract reads them), checks the signature against the `author_id`
//! (`Propose`) or `signer_id` (`Approve`) the payload names, and that the signer is a member of
//! the context on the context-config contract (`has_member`); keeps proposals and approvals
//! (the author's counts); and, at the request that brings a proposal to `num_approvals`,
//! removes it and runs its actions: `Transfer` and `ExternalFunctionCall` first (recorded),
//! then the proxy's own. It answers `Option<ProposalWithApprovals>` as JSON.

use serde::Deserialize;

use super::*;

/// One action, as calimero-context-config's `ProposalAction` reads it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "scope", content = "params", deny_unknown_fields)]
pub enum Action {
    ExternalFunctionCall {
        receiver_id: String,
        method_name: String,
        args: String,
        deposit: u128,
    },
    Transfer {
        receiver_id: String,
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
        proposal_id: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Proposal {
    pub id: String,
    pub author_id: String,
    pub actions: Vec<Action>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Approval {
    proposal_id: String,
    signer_id: String,
    #[allow(dead_code)]
    added_timestamp: u64,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "scope", content = "params", deny_unknown_fields)]
enum Request {
    Propose { proposal: Proposal },
    Approve { approval: Approval },
}

/// A proxy contract's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proxy {
    pub context_id: Id,
    pub num_approvals: u32,
    pub active_proposals_limit: u32,
    pub proposals: BTreeMap<Id, Proposal>,
    /// Each pending proposal's approvals (the author's among them).
    pub approvals: BTreeMap<Id, BTreeSet<Id>>,
    pub active_per_author: BTreeMap<Id, u32>,
    pub storage: BTreeMap<Vec<u8>, Vec<u8>>,
    /// What it ran: each `Transfer` and `ExternalFunctionCall` of each proposal that reached
    /// the threshold, with the proposal's id, in order.
    pub ran: Vec<(Id, Action)>,
}

impl Proxy {
    /// As the contract's `init` leaves it: threshold 3, limit 10.
    pub fn new(context_id: Id) -> Self {
        Self {
            context_id,
            num_approvals: 3,
            active_proposals_limit: 10,
            proposals: BTreeMap::new(),
            approvals: BTreeMap::new(),
            active_per_author: BTreeMap::new(),
            storage: BTreeMap::new(),
            ran: Vec::new(),
        }
    }
}

fn id(text: &str, what: &str) -> Result<Id, String> {
    bs58::decode(text)
        .into_vec()
        .ok()
        .and_then(|b| Id::try_from(b).ok())
        .ok_or_else(|| format!("Invalid {what}"))
}

impl Chain {
    /// The proxy contract at `account` (created as `init` leaves it when first used), if a
    /// context has it.
    pub fn proxy_mut(&mut self, account: &str) -> Option<&mut Proxy> {
        let (context_id, _) = self.contexts.iter().find(|(_, c)| c.proxy == account)?;
        let context_id = *context_id;
        Some(
            self.proxies
                .entry(account.to_owned())
                .or_insert_with(|| Proxy::new(context_id)),
        )
    }

    /// Plays the proxy contract's `mutate` at `account` with `args` (the function call's JSON
    /// argument bytes): its answer as JSON, or its panic message; a panic leaves the state as
    /// it was.
    pub fn apply_proxy_mutate(&mut self, account: &str, args: &[u8]) -> Result<Value, String> {
        let members = {
            let proxy = self
                .proxy_mut(account)
                .ok_or_else(|| format!("account {account} does not exist"))?;
            let context_id = proxy.context_id;
            self.contexts[&context_id].members.clone()
        };
        let mut proxy = self.proxies[account].clone();
        let answer = proxy_mutate(&mut proxy, &members, args)?;
        self.proxies.insert(account.to_owned(), proxy);
        self.height += 1;
        Ok(answer)
    }
}

fn proxy_mutate(proxy: &mut Proxy, members: &[Id], args: &[u8]) -> Result<Value, String> {
    let parse = || "failed to parse input".to_owned();
    let signed: Value = serde_json::from_slice(args).map_err(|_| parse())?;
    let Value::Object(fields) = &signed else {
        return Err(parse());
    };
    if fields.len() != 2 {
        return Err(parse());
    }
    let payload = bs58::decode(signed["payload"].as_str().ok_or_else(parse)?)
        .into_vec()
        .map_err(|_| parse())?;
    let signature: [u8; 64] = bs58::decode(signed["signature"].as_str().ok_or_else(parse)?)
        .into_vec()
        .ok()
        .and_then(|s| s.try_into().ok())
        .ok_or_else(parse)?;
    let request: Request = serde_json::from_slice(&payload)
        .map_err(|e| format!("Invalid input: the payload is not a request: {e}"))?;
    let signer = match &request {
        Request::Propose { proposal } => id(&proposal.author_id, "signer")?,
        Request::Approve { approval } => id(&approval.signer_id, "signer")?,
    };
    tabnode_types::verify_signature(
        &tabnode_types::PublicKey(signer),
        &payload,
        &tabnode_types::Signature(signature),
    )
    .map_err(|_| "Invalid input: invalid signature".to_owned())?;

    let proposal_id = match request {
        Request::Propose { proposal } => {
            let pid = id(&proposal.id, "proposal ID")?;
            if proxy.proposals.contains_key(&pid) {
                return Err("Proposal already exists".into());
            }
            if let Some(Action::DeleteProposal { proposal_id }) = proposal.actions.first() {
                let target = id(proposal_id, "proposal ID")?;
                let existing = proxy
                    .proposals
                    .get(&target)
                    .ok_or("Proposal to delete does not exist")?;
                if existing.author_id != proposal.author_id {
                    return Err("Can only delete own proposals".into());
                }
                remove(proxy, &target);
                return Ok(Value::Null);
            }
            let active = proxy.active_per_author.get(&signer).copied().unwrap_or(0) + 1;
            if active > proxy.active_proposals_limit {
                return Err(
                    "Account has too many active proposals. Confirm or delete some.".into(),
                );
            }
            // The membership check is a call to the context-config contract; its callback
            // keeps the proposal.
            if !members.contains(&signer) {
                return Err("Is not a member".into());
            }
            proxy.active_per_author.insert(signer, active);
            proxy.proposals.insert(pid, proposal);
            proxy.approvals.insert(pid, BTreeSet::new());
            pid
        }
        Request::Approve { approval } => {
            if !members.contains(&signer) {
                return Err("Is not a member".into());
            }
            id(&approval.proposal_id, "proposal ID")?
        }
    };
    confirm(proxy, proposal_id, signer)?;
    Ok(match proxy.approvals.get(&proposal_id) {
        Some(approvals) => json!({
            "proposal_id": b58(&proposal_id),
            "num_approvals": approvals.len(),
        }),
        None => Value::Null,
    })
}

/// The contract's `internal_confirm`: counts `signer`'s approval, and at the threshold removes
/// the proposal and runs it.
fn confirm(proxy: &mut Proxy, proposal_id: Id, signer: Id) -> Result<(), String> {
    let approvals = proxy
        .approvals
        .get_mut(&proposal_id)
        .ok_or("called `Option::unwrap()` on a `None` value")?;
    if approvals.contains(&signer) {
        return Err("Already confirmed this proposal with this key".into());
    }
    if approvals.len() as u32 + 1 >= proxy.num_approvals {
        let proposal = remove(proxy, &proposal_id);
        run(proxy, proposal_id, proposal);
    } else {
        approvals.insert(signer);
    }
    Ok(())
}

fn remove(proxy: &mut Proxy, proposal_id: &Id) -> Proposal {
    proxy.approvals.remove(proposal_id);
    let proposal = proxy
        .proposals
        .remove(proposal_id)
        .expect("Failed to remove existing element");
    let author = id(&proposal.author_id, "signer").expect("checked when proposed");
    let active = proxy.active_per_author.entry(author).or_default();
    *active = active.saturating_sub(1);
    proposal
}

/// `execute_proposal` then `finalize_execution`: the promises (recorded here, all succeed),
/// then the proxy's own actions.
fn run(proxy: &mut Proxy, proposal_id: Id, proposal: Proposal) {
    for action in &proposal.actions {
        if matches!(
            action,
            Action::Transfer { .. } | Action::ExternalFunctionCall { .. }
        ) {
            proxy.ran.push((proposal_id, action.clone()));
        }
    }
    for action in proposal.actions {
        match action {
            Action::SetNumApprovals { num_approvals } => proxy.num_approvals = num_approvals,
            Action::SetActiveProposalsLimit {
                active_proposals_limit,
            } => proxy.active_proposals_limit = active_proposals_limit,
            Action::SetContextValue { key, value } => {
                proxy.storage.insert(key, value);
            }
            _ => {}
        }
    }
}
