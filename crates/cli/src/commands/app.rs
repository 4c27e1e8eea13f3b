//! `app install`, `app abi`.

use std::path::PathBuf;
use std::rc::Rc;

use clap::Subcommand;
use serde_json::{json, Value};
use tabnode_bundle::Bundle;
use tabnode_node::NodeError;
use tabnode_store::FileStore;
use tabnode_types::AppId;

use crate::failure::{parse_id, Failure};
use crate::home::CliNode;

#[derive(Subcommand)]
pub enum AppCommand {
    /// Validates and stores an app, a wasm module or an .mpk bundle (told apart by content);
    /// prints {"app_id"} (for a bundle also "package", "app_version", "abi": whether it had one,
    /// and "signer_id": the did:key that signed its manifest, or null)
    Install {
        /// The app's wasm or .mpk file
        file: PathBuf,
    },
    /// Prints the ABI (JSON) an app's bundle held
    Abi {
        /// The app (base58)
        app_id: String,
    },
}

pub async fn execute(
    node: &mut CliNode,
    store: &Rc<FileStore>,
    command: AppCommand,
) -> Result<Value, Failure> {
    match command {
        AppCommand::Install { file } => {
            let bytes = super::read_file(&file)?;
            if !tabnode_bundle::is_bundle(&bytes) {
                let app_id = node.install_app(&bytes).await?;
                return Ok(json!({"app_id": app_id.to_string()}));
            }
            let bundle =
                Bundle::unpack(&bytes).map_err(|e| Failure::Other(e.kind(), e.to_string()))?;
            let app_id = tabnode_bundle::install(node, store, &bundle).await?;
            Ok(json!({
                "app_id": app_id.to_string(),
                "package": bundle.manifest.package,
                "app_version": bundle.manifest.app_version,
                "abi": bundle.abi.is_some(),
                "signer_id": bundle.signer_id,
            }))
        }
        AppCommand::Abi { app_id } => {
            let app_id: AppId = parse_id(&app_id)?;
            let abi = tabnode_bundle::abi(store, &app_id)
                .await
                .map_err(|e| Failure::Node(NodeError::Store(e)))?
                .ok_or_else(|| {
                    Failure::Other(
                        "NoAbi",
                        format!(
                            "no ABI is kept for {app_id}: not installed from a bundle with one"
                        ),
                    )
                })?;
            serde_json::from_slice(&abi)
                .map_err(|e| Failure::Node(NodeError::Corrupt(format!("the ABI of {app_id}: {e}"))))
        }
    }
}
