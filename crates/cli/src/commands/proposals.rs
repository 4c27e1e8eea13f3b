//! `proposals list | get | propose | approve | value`: the context's proxy, carried in its log (see
//! docs/proposals.md).

use clap::Subcommand;
use serde_json::{json, Value};
use tabnode_node::{NodeError, ProposalAction, ProposalId};
use tabnode_types::ContextId;

use crate::failure::{parse_id, parse_json, Failure};
use crate::home::CliNode;

#[derive(Subcommand)]
pub enum ProposalsCommand {
    /// The context's proposals, whatever became of them, with its threshold and limit:
    /// {"numApprovals", "activeProposalsLimit", "proposals": [...]}
    List {
        /// The context (base58)
        context_id: String,
    },
    /// One proposal with its approvers: {"id", "author", "actions", "approvers", "status", ...}
    Get {
        /// The context (base58)
        context_id: String,
        /// The proposal (base58, as the app's call returned it)
        proposal_id: String,
    },
    /// Proposes actions as this node's member (merod's create-and-approve: the proposal counts
    /// its author's approval); prints {"proposal_id", "proposal"}
    Propose {
        /// The context (base58)
        context_id: String,
        /// The actions, a JSON array as `get` shows them, e.g.
        /// [{"scope":"SetNumApprovals","params":{"num_approvals":2}}]
        actions_json: String,
    },
    /// Approves a proposal as this node's member (an operation sent to every member; the
    /// approval that reaches the threshold runs its actions); prints {"delta_id", "proposal"}
    Approve {
        /// The context (base58)
        context_id: String,
        /// The proposal (base58)
        proposal_id: String,
    },
    /// The value approved `SetContextValue` actions set for KEY (UTF-8): {"key", "value"},
    /// the value null if none did
    Value {
        /// The context (base58)
        context_id: String,
        /// The key, as the app proposed it
        key: String,
    },
}

pub async fn execute(node: &mut CliNode, command: ProposalsCommand) -> Result<Value, Failure> {
    let proposal_id = |text: &str| parse_id::<ProposalId>(text);
    match command {
        ProposalsCommand::List { context_id } => {
            let context_id: ContextId = parse_id(&context_id)?;
            let proxy = node.proxy(&context_id)?;
            Ok(serde_json::to_value(proxy).expect("a proxy encodes"))
        }
        ProposalsCommand::Get {
            context_id,
            proposal_id: id,
        } => {
            let context_id: ContextId = parse_id(&context_id)?;
            let proposal = node.proposal(&context_id, &proposal_id(&id)?)?;
            Ok(serde_json::to_value(proposal).expect("a proposal encodes"))
        }
        ProposalsCommand::Propose {
            context_id,
            actions_json,
        } => {
            let context_id: ContextId = parse_id(&context_id)?;
            let actions: Vec<ProposalAction> =
                serde_json::from_value(parse_json("ACTIONS_JSON", &actions_json)?).map_err(
                    |e| Failure::Node(NodeError::BadProposal(format!("ACTIONS_JSON: {e}"))),
                )?;
            let id = node.propose(&context_id, actions).await?;
            let proposal = node.proposal(&context_id, &id)?;
            Ok(json!({"proposal_id": id.to_string(), "proposal": proposal}))
        }
        ProposalsCommand::Approve {
            context_id,
            proposal_id: id,
        } => {
            let context_id: ContextId = parse_id(&context_id)?;
            let id = proposal_id(&id)?;
            let delta_id = node.approve_proposal(&context_id, &id).await?;
            let proposal = node.proposal(&context_id, &id)?;
            Ok(json!({"delta_id": delta_id.to_string(), "proposal": proposal}))
        }
        ProposalsCommand::Value { context_id, key } => {
            let context_id: ContextId = parse_id(&context_id)?;
            let value = node.context_value(&context_id, key.as_bytes())?;
            let value = value.map(|v| match String::from_utf8(v) {
                Ok(text) => Value::from(text),
                Err(e) => Value::from(e.into_bytes()),
            });
            Ok(json!({"key": key, "value": value}))
        }
    }
}
