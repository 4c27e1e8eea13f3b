//! `blob put`, `blob get`.

use std::path::{Path, PathBuf};

use clap::Subcommand;
use serde_json::{json, Value};
use tabnode_types::{ContextId, Hash};

use crate::failure::{io_error, parse_id, Failure};
use crate::home::{CliDriver, CliNode};

#[derive(Subcommand)]
pub enum BlobCommand {
    /// Stores a file as a blob that guests can open by its id; prints {"blob_id", "size"}
    Put {
        /// The file
        file: PathBuf,
        /// A context the blob is for (it must be one this node holds); printed back
        #[arg(long, value_name = "CONTEXT_ID")]
        context: Option<String>,
    },
    /// Writes a blob to a file; prints {"blob_id", "size", "out"}. One this node lacks comes
    /// from the members of `--context` that announced it: through `--relay` (waiting, progress
    /// on stderr), or inside `run` (prints {"fetching": true}; a `blobProgress` line says when
    /// it is here, and `blob get` again writes it)
    Get {
        /// The blob (base58, as `blob put` printed it)
        blob_id: String,
        /// Where to write it (replaced if it exists)
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// A context whose members hold the blob (one this node holds)
        #[arg(long, value_name = "CONTEXT_ID")]
        context: Option<String>,
        /// A relay's multiaddr (…/p2p/PEER_ID), repeatable; not given inside `run` (its own are used)
        #[arg(long, value_name = "MULTIADDR")]
        relay: Vec<String>,
        /// Seconds to wait for the members to send it
        #[arg(long, value_name = "SECS", default_value_t = 60)]
        timeout: u64,
    },
}

pub async fn execute(node: &mut CliNode, command: BlobCommand) -> Result<Value, Failure> {
    match command {
        BlobCommand::Put { file, context } => {
            let context: Option<ContextId> = context.as_deref().map(parse_id).transpose()?;
            let data = super::read_file(&file)?;
            let size = data.len();
            let id = node.put_blob(data, context.as_ref()).await?;
            Ok(json!({
                "blob_id": id.to_string(),
                "size": size,
                "context_id": context.map(|c| c.to_string()),
            }))
        }
        BlobCommand::Get {
            blob_id,
            out,
            context,
            relay,
            ..
        } => {
            if !relay.is_empty() {
                return Err(Failure::Other(
                    "Usage",
                    "inside `run`, a blob comes through the node's own relays: drop --relay".into(),
                ));
            }
            let id: Hash = parse_id(&blob_id)?;
            if let Some(written) = write_blob(node, &id, &out).await? {
                return Ok(written);
            }
            let Some(context) = context else {
                return Err(no_blob(&id));
            };
            let context: ContextId = parse_id(&context)?;
            node.fetch_blob(&context, id).await?;
            Ok(
                json!({"blob_id": id.to_string(), "context_id": context.to_string(), "fetching": true}),
            )
        }
    }
}

/// [`write_blob`] as one input to the node's driver (outside a command).
pub async fn write_held_blob(
    driver: &mut CliDriver,
    id: Hash,
    out: &Path,
) -> Result<Option<Value>, Failure> {
    let out = out.to_path_buf();
    let (written, _) = driver
        .run(async move |node| write_blob(node, &id, &out).await)
        .await;
    written
}

/// Writes blob `id` to `out` if this node holds it; what `blob get` prints then.
pub async fn write_blob(node: &CliNode, id: &Hash, out: &Path) -> Result<Option<Value>, Failure> {
    let Some(data) = node.blob(id).await? else {
        return Ok(None);
    };
    std::fs::write(out, &data).map_err(|e| io_error(out, e))?;
    Ok(Some(
        json!({"blob_id": id.to_string(), "size": data.len(), "out": out}),
    ))
}

pub fn no_blob(id: &Hash) -> Failure {
    Failure::Other("NoBlob", format!("no blob {id} is held by this node"))
}
