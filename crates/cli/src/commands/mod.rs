//! The node's commands: the same on the command line (one process, one command) and on the
//! stdin of `tabnode run` (one line, one command, on the running node). Each gives one JSON value.

use std::path::PathBuf;
use std::rc::Rc;

use clap::Subcommand;
use serde_json::{json, Value};
use tabnode_store::FileStore;
use tabnode_types::ContextId;

use crate::failure::{parse_id, parse_json, Failure};
use crate::home::CliNode;

mod app;
mod blob;
mod context;
mod proposals;

pub use blob::{no_blob, write_held_blob, BlobCommand};
pub use context::{invitation_of_link, ContextCommand};

#[derive(Subcommand)]
pub enum Command {
    /// Prints this node's identity: {"public_key": its key as a member, "peer_id": on the network}
    Identity,
    /// Apps: install one, read its ABI
    #[command(subcommand)]
    App(app::AppCommand),
    /// Contexts: create, list, invite, join, members, position, upgrade
    #[command(subcommand)]
    Context(ContextCommand),
    /// Blobs: put a file in the node, get one out
    #[command(subcommand)]
    Blob(BlobCommand),
    /// Proposals: list them, read one with its approvers, approve, read an approved value
    #[command(subcommand)]
    Proposals(proposals::ProposalsCommand),
    /// Calls METHOD of a context's app; prints {"output", "events", "logs", "root_hash", "delta_id"}
    Call {
        /// The context (base58)
        context_id: String,
        /// The app's method
        method: String,
        /// Its arguments, a JSON object (none: null)
        args_json: Option<String>,
    },
    /// Rebuilds a context's state from its deltas; prints {"root_hash", "matches", "deltas"}
    Replay {
        /// The context (base58)
        context_id: String,
    },
    /// Prints a context's audit trail, {"records": [...]}
    Audit {
        /// The context (base58)
        context_id: String,
        /// Checks the trail's chain instead; prints {"ok", "records", "badSeq", "reason"}
        #[arg(long)]
        verify: bool,
    },
}

/// Runs one command on the node. `store` is the node's own (an app's ABI is kept there).
/// A join only starts here (the node asks the members); who waits for it is the caller's
/// business (see `crate::run`).
pub async fn execute(
    node: &mut CliNode,
    store: &Rc<FileStore>,
    command: Command,
) -> Result<Value, Failure> {
    match command {
        Command::Identity => {
            let peer_id = tabnode_net::peer_id_of(node.network_identity_seed())
                .map_err(|e| Failure::Other("NetworkError", e.to_string()))?;
            Ok(json!({"public_key": node.public_key().to_string(), "peer_id": peer_id}))
        }
        Command::App(command) => app::execute(node, store, command).await,
        Command::Context(command) => context::execute(node, store, command).await,
        Command::Blob(command) => blob::execute(node, command).await,
        Command::Proposals(command) => proposals::execute(node, command).await,
        Command::Call {
            context_id,
            method,
            args_json,
        } => {
            let context_id: ContextId = parse_id(&context_id)?;
            let args = args_json
                .as_deref()
                .map(|a| parse_json("ARGS_JSON", a))
                .transpose()?
                .unwrap_or(Value::Null);
            let result = node.execute(&context_id, &method, args).await?;
            Ok(json!({
                "output": result.output,
                "events": result.events,
                "logs": result.logs,
                "root_hash": result.root_hash.map(|h| h.to_string()),
                "delta_id": result.delta_id.map(|d| d.to_string()),
                // What the guest asked of the node beyond its call, and how each went.
                "context_requests": result.context_requests,
            }))
        }
        Command::Replay { context_id } => {
            let context_id: ContextId = parse_id(&context_id)?;
            let report = node.replay(&context_id).await?;
            Ok(json!({
                "root_hash": report.root_hash.map(|h| h.to_string()),
                "matches": report.matches,
                "deltas": report.deltas,
            }))
        }
        Command::Audit { context_id, verify } => {
            let context_id: ContextId = parse_id(&context_id)?;
            if verify {
                let report = node.verify_audit(&context_id).await?;
                Ok(serde_json::to_value(report).expect("a report encodes"))
            } else {
                let records = node.audit(&context_id).await?;
                Ok(json!({"records": records.iter().map(|r| r.to_json()).collect::<Vec<_>>()}))
            }
        }
    }
}

/// A file a command reads.
fn read_file(path: &PathBuf) -> Result<Vec<u8>, Failure> {
    std::fs::read(path).map_err(|e| crate::failure::io_error(path, e))
}
