//! `tabnode`: a headless node on the command line, for app authors, scripts and test suites.
//!
//! The same core as the browser node, on a file-backed store in `--home`. Every command prints
//! one JSON value on stdout and exits 0, or prints `{"error": {"kind", "message"}}` and exits 1
//! (2 for a usage error). `--help`, `help COMMAND` and `--version` print text and exit 0.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{SystemTime, UNIX_EPOCH};

use clap::{Parser, Subcommand};
use futures::executor::block_on;
use serde_json::{json, Value};
use tabnode_bundle::Bundle;
use tabnode_node::{Env, Node, NodeError};
use tabnode_runtime::{Limits, Runtime};
use tabnode_store::FileStore;
use tabnode_types::{AppId, ContextId};

/// A headless tabnode node: the browser node's core on a file store, JSON on stdout.
///
/// Every command prints one JSON value and exits 0, or prints {"error": {"kind", "message"}}
/// and exits 1 (2 for a usage error).
#[derive(Parser)]
#[command(name = "tabnode", version, max_term_width = 100)]
struct Cli {
    /// The node's directory: its key, apps, contexts and their history (created 0700)
    #[arg(long, value_name = "DIR", global = true)]
    home: Option<PathBuf>,

    /// Fuel for each guest call, one unit per executed wasm instruction [default: 10^10]
    #[arg(long, value_name = "N", global = true)]
    fuel: Option<u64>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Apps: install one, read its ABI
    #[command(subcommand)]
    App(AppCommand),
    /// Contexts: create one
    #[command(subcommand)]
    Context(ContextCommand),
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

#[derive(Subcommand)]
enum AppCommand {
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

#[derive(Subcommand)]
enum ContextCommand {
    /// Creates a context running an installed app, initialised by its `init`; prints {"context_id"}
    Create {
        /// The app (base58)
        app_id: String,
        /// The arguments of `init`, a JSON object
        #[arg(long, value_name = "JSON")]
        args: Option<String>,
    },
}

type CliNode = Node<Rc<FileStore>, SystemEnv>;

/// The machine's clock (the node orders its own calls on a hybrid logical clock) and the OS's
/// randomness.
struct SystemEnv;

impl Env for SystemEnv {
    fn now_nanos(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
    }

    fn random32(&self) -> [u8; 32] {
        let mut out = [0; 32];
        getrandom::fill(&mut out).expect("the OS provides randomness");
        out
    }
}

/// A failure to report: a node error, or another kind with its message.
enum Failure {
    Node(NodeError),
    Other(&'static str, String),
}

impl From<NodeError> for Failure {
    fn from(e: NodeError) -> Self {
        Self::Node(e)
    }
}

fn parse_json(what: &str, text: &str) -> Result<Value, Failure> {
    serde_json::from_str(text)
        .map_err(|e| Failure::Other("BadArgs", format!("{what} is not JSON: {e}")))
}

fn parse_id<T: std::str::FromStr<Err = tabnode_types::IdParseError>>(
    text: &str,
) -> Result<T, Failure> {
    text.parse()
        .map_err(|e: tabnode_types::IdParseError| Failure::Node(NodeError::BadId(e.to_string())))
}

/// Prints `{"error": {kind, message}}` on stdout and exits with `code`.
fn fail(code: i32, kind: &str, message: &str) -> ! {
    println!("{}", json!({"error": {"kind": kind, "message": message}}));
    std::process::exit(code);
}

fn main() {
    // `args_os`: an argument that is not UTF-8 is a usage error, not a panic.
    let args: Vec<OsString> = std::env::args_os().collect();
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help, help COMMAND, --version: text on stdout, exit 0.
            print!("{}", e.render());
            std::process::exit(0);
        }
        Err(e) => {
            // JSON on stdout for scripts, the same text for people on stderr.
            eprint!("{}", e.render());
            fail(2, "Usage", e.render().to_string().trim_end())
        }
    };
    let Some(home) = cli.home.clone() else {
        fail(2, "Usage", "--home DIR is required (see tabnode --help)");
    };
    match run(&home, cli) {
        Ok(value) => println!("{value}"),
        Err(Failure::Node(e)) => fail(1, e.kind(), &e.to_string()),
        Err(Failure::Other(kind, m)) => fail(1, kind, &m),
    }
}

/// A home made before (or by hand) that others may read is left as it is (it may be a
/// directory of the user's), but said: the store inside it is made the owner's alone.
#[cfg(unix)]
fn warn_if_open_to_others(home: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(meta) = std::fs::metadata(home) else {
        return;
    };
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        eprintln!(
            "warning: {} is open to others ({mode:o}); the node's key is in its store/ (kept 0700)",
            home.display()
        );
    }
}

#[cfg(not(unix))]
fn warn_if_open_to_others(_: &Path) {}

fn run(home: &Path, cli: Cli) -> Result<Value, Failure> {
    warn_if_open_to_others(home);
    let mut limits = Limits::default();
    if let Some(fuel) = cli.fuel {
        limits.fuel = fuel;
    }
    // The node, and its store shared (an app's ABI is kept beside the node's records).
    let open = || -> Result<(CliNode, Rc<FileStore>), Failure> {
        let store = block_on(FileStore::open(&home.join("store")))
            .map_err(|e| Failure::Node(NodeError::Store(e)))?;
        let store = Rc::new(store);
        let node = block_on(Node::open(
            store.clone(),
            SystemEnv,
            Runtime::new(limits.clone()),
        ))?;
        Ok((node, store))
    };

    match cli.command {
        Command::App(AppCommand::Install { file }) => {
            let bytes = std::fs::read(&file)
                .map_err(|e| Failure::Other("Io", format!("{}: {e}", file.display())))?;
            if !tabnode_bundle::is_bundle(&bytes) {
                let app_id = block_on(open()?.0.install_app(&bytes))?;
                return Ok(json!({"app_id": app_id.to_string()}));
            }
            let bundle =
                Bundle::unpack(&bytes).map_err(|e| Failure::Other(e.kind(), e.to_string()))?;
            let (mut node, store) = open()?;
            let app_id = block_on(tabnode_bundle::install(&mut node, &store, &bundle))?;
            Ok(json!({
                "app_id": app_id.to_string(),
                "package": bundle.manifest.package,
                "app_version": bundle.manifest.app_version,
                "abi": bundle.abi.is_some(),
                "signer_id": bundle.signer_id,
            }))
        }
        Command::App(AppCommand::Abi { app_id }) => {
            let app_id: AppId = parse_id(&app_id)?;
            let (_, store) = open()?;
            let abi = block_on(tabnode_bundle::abi(&store, &app_id))
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
        Command::Context(ContextCommand::Create { app_id, args }) => {
            let app_id: AppId = parse_id(&app_id)?;
            let args = args
                .as_deref()
                .map(|a| parse_json("--args", a))
                .transpose()?
                .unwrap_or(Value::Null);
            let context_id = block_on(open()?.0.create_context(app_id, args))?;
            Ok(json!({"context_id": context_id.to_string()}))
        }
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
            let result = block_on(open()?.0.execute(&context_id, &method, args))?;
            Ok(json!({
                "output": result.output,
                "events": result.events,
                "logs": result.logs,
                "root_hash": result.root_hash.map(|h| h.to_string()),
                "delta_id": result.delta_id.map(|d| d.to_string()),
            }))
        }
        Command::Replay { context_id } => {
            let context_id: ContextId = parse_id(&context_id)?;
            let report = block_on(open()?.0.replay(&context_id))?;
            Ok(json!({
                "root_hash": report.root_hash.map(|h| h.to_string()),
                "matches": report.matches,
                "deltas": report.deltas,
            }))
        }
        Command::Audit { context_id, verify } => {
            let context_id: ContextId = parse_id(&context_id)?;
            let (node, _) = open()?;
            if verify {
                let report = block_on(node.verify_audit(&context_id))?;
                Ok(serde_json::to_value(report).expect("a report encodes"))
            } else {
                let records = block_on(node.audit(&context_id))?;
                Ok(json!({"records": records.iter().map(|r| r.to_json()).collect::<Vec<_>>()}))
            }
        }
    }
}
