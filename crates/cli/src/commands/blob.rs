//! `blob put`, `blob get`.

use std::path::PathBuf;

use clap::Subcommand;
use serde_json::{json, Value};
use tabnode_types::{ContextId, Hash};

use crate::failure::{io_error, parse_id, Failure};
use crate::home::CliNode;

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
    /// Writes a blob this node holds to a file; prints {"blob_id", "size", "out"}
    Get {
        /// The blob (base58, as `blob put` printed it)
        blob_id: String,
        /// Where to write it (replaced if it exists)
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
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
        BlobCommand::Get { blob_id, out } => {
            let id: Hash = parse_id(&blob_id)?;
            let data = node.blob(&id).await?.ok_or_else(|| {
                Failure::Other("NoBlob", format!("no blob {id} is held by this node"))
            })?;
            std::fs::write(&out, &data).map_err(|e| io_error(&out, e))?;
            Ok(json!({"blob_id": id.to_string(), "size": data.len(), "out": out}))
        }
    }
}
