//! `tabnode`: a headless node on the command line, for app authors, scripts and test suites.
//!
//! The same core as the browser node, on a file-backed store in `--home`. Every command prints
//! one JSON value on stdout and exits 0, or prints `{"error": {"kind", "message"}}` and exits 1
//! (2 for a usage error).

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use futures::executor::block_on;
use serde_json::{json, Value};
use tabnode_node::{Env, Node, NodeError};
use tabnode_runtime::{Limits, Runtime};
use tabnode_store::FileStore;
use tabnode_types::{AppId, ContextId};

const USAGE: &str = "usage: tabnode --home DIR COMMAND
  app install FILE.wasm                 -> {\"app_id\"}
  context create APP_ID [--args JSON]   -> {\"context_id\"}
  call CONTEXT_ID METHOD [ARGS_JSON] [--fuel N]
                                        -> {\"output\", \"events\", \"logs\", \"root_hash\"}
  replay CONTEXT_ID                     -> {\"root_hash\", \"matches\", \"deltas\"}
  audit CONTEXT_ID                      -> {\"records\": [...]}
  audit CONTEXT_ID --verify             -> {\"ok\", \"records\", \"badSeq\", \"reason\"}";

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

/// A failure to report: a node error, or a usage error.
enum Failure {
    Usage(String),
    Node(NodeError),
    Other(&'static str, String),
}

impl From<NodeError> for Failure {
    fn from(e: NodeError) -> Self {
        Self::Node(e)
    }
}

fn usage(message: impl Into<String>) -> Failure {
    Failure::Usage(message.into())
}

/// Pulls `--name VALUE` out of `args`.
fn take_flag(args: &mut Vec<String>, name: &str) -> Result<Option<String>, Failure> {
    let Some(i) = args.iter().position(|a| a == name) else {
        return Ok(None);
    };
    if i + 1 >= args.len() {
        return Err(usage(format!("{name} needs a value")));
    }
    let value = args.remove(i + 1);
    args.remove(i);
    Ok(Some(value))
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

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let result = run(&mut args);
    match result {
        Ok(value) => println!("{value}"),
        Err(failure) => {
            let (code, kind, message) = match failure {
                Failure::Usage(m) => (2, "Usage", format!("{m}\n{USAGE}")),
                Failure::Node(e) => (1, e.kind(), e.to_string()),
                Failure::Other(kind, m) => (1, kind, m),
            };
            println!("{}", json!({"error": {"kind": kind, "message": message}}));
            std::process::exit(code);
        }
    }
}

fn run(args: &mut Vec<String>) -> Result<Value, Failure> {
    let home = take_flag(args, "--home")?.ok_or_else(|| usage("--home DIR is required"))?;
    let fuel = take_flag(args, "--fuel")?
        .map(|f| {
            f.parse::<u64>()
                .map_err(|_| usage(format!("--fuel {f}: not a number")))
        })
        .transpose()?;
    let init_args = take_flag(args, "--args")?;
    let verify = args
        .iter()
        .position(|a| a == "--verify")
        .map(|i| args.remove(i))
        .is_some();
    let words: Vec<&str> = args.iter().map(String::as_str).collect();

    let mut limits = Limits::default();
    if let Some(fuel) = fuel {
        limits.fuel = fuel;
    }
    let open = || -> Result<Node<FileStore, SystemEnv>, Failure> {
        let store = block_on(FileStore::open(&PathBuf::from(&home).join("store")))
            .map_err(|e| Failure::Node(NodeError::Store(e)))?;
        Ok(block_on(Node::open(
            store,
            SystemEnv,
            Runtime::new(limits.clone()),
        ))?)
    };

    match words.as_slice() {
        ["app", "install", file] => {
            let wasm =
                std::fs::read(file).map_err(|e| Failure::Other("Io", format!("{file}: {e}")))?;
            let app_id = block_on(open()?.install_app(&wasm))?;
            Ok(json!({"app_id": app_id.to_string()}))
        }
        ["context", "create", app_id] => {
            let app_id: AppId = parse_id(app_id)?;
            let args = init_args
                .as_deref()
                .map(|a| parse_json("--args", a))
                .transpose()?
                .unwrap_or(Value::Null);
            let context_id = block_on(open()?.create_context(app_id, args))?;
            Ok(json!({"context_id": context_id.to_string()}))
        }
        ["call", context_id, method, rest @ ..] if rest.len() <= 1 => {
            let context_id: ContextId = parse_id(context_id)?;
            let args = rest
                .first()
                .map(|a| parse_json("ARGS_JSON", a))
                .transpose()?
                .unwrap_or(Value::Null);
            let result = block_on(open()?.execute(&context_id, method, args))?;
            Ok(json!({
                "output": result.output,
                "events": result.events,
                "logs": result.logs,
                "root_hash": result.root_hash.map(|h| h.to_string()),
                "delta_id": result.delta_id.map(|d| d.to_string()),
            }))
        }
        ["replay", context_id] => {
            let context_id: ContextId = parse_id(context_id)?;
            let report = block_on(open()?.replay(&context_id))?;
            Ok(json!({
                "root_hash": report.root_hash.map(|h| h.to_string()),
                "matches": report.matches,
                "deltas": report.deltas,
            }))
        }
        ["audit", context_id] => {
            let context_id: ContextId = parse_id(context_id)?;
            let node = open()?;
            if verify {
                let report = block_on(node.verify_audit(&context_id))?;
                Ok(serde_json::to_value(report).expect("a report encodes"))
            } else {
                let records = block_on(node.audit(&context_id))?;
                Ok(json!({"records": records.iter().map(|r| r.to_json()).collect::<Vec<_>>()}))
            }
        }
        [] => Err(usage("no command given")),
        other => Err(usage(format!("unknown command: {}", other.join(" ")))),
    }
}
