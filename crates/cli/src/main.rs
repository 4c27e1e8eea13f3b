//! `tabnode`: a headless node on the command line, for app authors, scripts and test suites.
//!
//! The same core as the browser node, on a file-backed store in `--home`. Every command prints
//! one JSON value on stdout and exits 0, or prints `{"error": {"kind", "message"}}` and exits 1
//! (2 for a usage error). `--help`, `help COMMAND` and `--version` print text and exit 0.
//! `run` is the node on the network: one JSON line per event, commands on its stdin.
//!
//! Modules: [`commands`] (what the node does, the same from the command line and from `run`'s
//! stdin), [`home`] (the node's directory, locked, and the node opened on it), [`online`]
//! (`run` and `context join --relay`, through `tabnode-driver`), [`failure`] (typed errors).

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use serde_json::Value;

mod commands;
mod failure;
mod home;
mod online;
mod workflow;

use commands::{write_held_blob, BlobCommand, Command, ContextCommand};
use failure::{fail, parse_id, Failure};
use home::{GuestRequests, Home};

/// A headless tabnode node: the browser node's core on a file store, JSON on stdout.
///
/// Every command prints one JSON value and exits 0, or prints {"error": {"kind", "message"}}
/// and exits 1 (2 for a usage error). `run` prints one JSON line per event.
#[derive(Parser)]
#[command(name = "tabnode", version, max_term_width = 100)]
struct Cli {
    /// The node's directory: its key, apps, contexts and their history (created 0700)
    #[arg(long, value_name = "DIR", global = true)]
    home: Option<PathBuf>,

    /// Fuel for each guest call, one unit per executed wasm instruction [default: 10^10]
    #[arg(long, value_name = "N", global = true)]
    fuel: Option<u64>,

    /// What the node answers a guest's request to delete a context, to add or remove a member,
    /// or to xcall into another context of the node [default: refuse; `workflow run` gives its
    /// nodes allow, as merod does]
    #[arg(long, value_name = "ANSWER", value_enum, global = true)]
    guest_requests: Option<GuestRequests>,

    #[command(subcommand)]
    command: TopCommand,
}

#[derive(Subcommand)]
enum TopCommand {
    #[command(flatten)]
    Node(Command),
    /// Runs the node on the network until SIGINT, SIGTERM or the end of stdin: syncs its
    /// contexts with their members through the relays, prints one JSON line per event, and
    /// takes commands on stdin, one per line as a JSON array of words (e.g.
    /// ["call", "CONTEXT_ID", "get", "{\"key\":\"k\"}"]), each answered by a "result" or
    /// "error" line
    Run {
        /// A relay's multiaddr (…/p2p/PEER_ID), repeatable
        #[arg(long, value_name = "MULTIADDR", required = true)]
        relay: Vec<String>,
        /// Reads no commands from stdin and runs on at its end (a service whose stdin is
        /// /dev/null); it stops on SIGINT or SIGTERM only
        #[arg(long)]
        no_stdin: bool,
    },
    /// Merobox workflows (Calimero's end-to-end test format) on tabnode nodes, no Docker
    #[command(subcommand)]
    Workflow(WorkflowCommand),
}

#[derive(Subcommand)]
enum WorkflowCommand {
    /// Starts a relay on 127.0.0.1 and a node per node the workflow names (a `tabnode run`, or
    /// a page in headless Chromium with --nodes browser|mixed), runs its
    /// steps in order (one JSON line each on stdout, text on stderr), and stops them all;
    /// exits 1 naming the first step that failed and why
    Run {
        /// The workflow (YAML); paths in it are relative to the current directory
        file: PathBuf,
        /// Keeps the nodes' homes in DIR/NODE_NAME (default: a temporary directory, removed)
        #[arg(long, value_name = "DIR")]
        homes: Option<PathBuf>,
        /// The relay binary [default: TABNODE_RELAY, else tabnode-relay beside this binary]
        #[arg(long, value_name = "PATH")]
        relay_bin: Option<PathBuf>,
        /// Runs the steps after a failed one too (its outputs stay unbound), to count what passes
        #[arg(long)]
        keep_going: bool,
        /// Where the nodes run: `tabnode run` processes, pages in headless Chromium (needs
        /// Node.js, the built package and Chromium), or both in turn
        #[arg(long, value_enum, default_value = "native")]
        nodes: workflow::NodeKinds,
        /// The page-node script [default: TABNODE_PAGE_NODE, else the repository's
        /// scripts/page-node.mjs]
        #[arg(long, value_name = "PATH")]
        page_node: Option<PathBuf>,
        /// Runs every fuzzy_test for M minutes instead of its duration_minutes (a fraction is
        /// fine: 0.05 is 3 s), to try a long load test quickly
        #[arg(long, value_name = "M", value_parser = positive_minutes)]
        fuzzy_minutes: Option<f64>,
        /// The seed of fuzzy_test's random choices (operations, nodes, generated values); a
        /// run prints the one it used, so a failing run's choices can be made again
        #[arg(long, value_name = "N")]
        fuzzy_seed: Option<u64>,
    },
}

/// `--fuzzy-minutes`: a positive, finite number.
fn positive_minutes(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(minutes) if minutes.is_finite() && minutes > 0.0 => Ok(minutes),
        _ => Err(format!("{text:?} is not a positive number of minutes")),
    }
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
    if let TopCommand::Workflow(WorkflowCommand::Run {
        file,
        homes,
        relay_bin,
        keep_going,
        nodes,
        page_node,
        fuzzy_minutes,
        fuzzy_seed,
    }) = cli.command
    {
        let options = workflow::Options {
            file,
            homes,
            relay_bin,
            keep_going,
            fuel: cli.fuel,
            guest_requests: cli.guest_requests.unwrap_or(GuestRequests::Allow),
            nodes,
            page_node,
            fuzzy_minutes,
            fuzzy_seed,
        };
        finish(workflow::run(options).map(Some));
    }
    let Some(home) = cli.home.clone() else {
        fail(2, "Usage", "--home DIR is required (see tabnode --help)");
    };
    // One thread: the node is not `Send`; the network's task runs beside it on this runtime.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let result = runtime.block_on(run(home, cli));
    // Not a wait for the blocked read of stdin that `run` may leave behind (tokio reads stdin
    // on a thread of its own, which only the end of stdin would end).
    runtime.shutdown_background();
    finish(result);
}

/// Prints a command's answer, or its failure, and exits with its code.
fn finish(result: Result<Option<Value>, Failure>) -> ! {
    match result {
        Ok(Some(value)) => println!("{value}"),
        Ok(None) => {}
        Err(Failure::Node(e)) => fail(1, e.kind(), &e.to_string()),
        Err(Failure::Other("Usage", m)) => fail(2, "Usage", &m),
        Err(Failure::Other(kind, m)) => fail(1, kind, &m),
    }
    std::process::exit(0)
}

/// Runs the command; `None` when it printed its own lines (`run`).
async fn run(home: PathBuf, cli: Cli) -> Result<Option<Value>, Failure> {
    let guest_requests = cli.guest_requests.unwrap_or(GuestRequests::Refuse);
    let home = Home::open(&home, cli.fuel, guest_requests).await?;
    match cli.command {
        TopCommand::Run { relay, no_stdin } => {
            online::run(home, relay, no_stdin).await.map(|()| None)
        }
        TopCommand::Node(Command::Context(ContextCommand::Join {
            link,
            relay,
            timeout,
        })) => {
            if relay.is_empty() {
                return Err(Failure::Other(
                    "Usage",
                    "context join needs --relay MULTIADDR: the members answer through a relay"
                        .into(),
                ));
            }
            online::join(home, &link, relay, timeout).await.map(Some)
        }
        TopCommand::Node(Command::Blob(BlobCommand::Get {
            blob_id,
            out,
            context,
            relay,
            timeout,
        })) if context.is_some() || !relay.is_empty() => {
            let id = parse_id(&blob_id)?;
            let Some(context) = context else {
                return Err(Failure::Other(
                    "Usage",
                    "blob get --relay needs --context CONTEXT_ID: the context whose members hold it"
                        .into(),
                ));
            };
            if relay.is_empty() {
                let mut home = home;
                return match write_held_blob(&mut home.driver, id, &out).await? {
                    Some(written) => Ok(Some(written)),
                    None => Err(Failure::Other(
                        "Usage",
                        "blob get --context fetches from the members: give --relay MULTIADDR"
                            .into(),
                    )),
                };
            }
            let context = parse_id(&context)?;
            online::get_blob(home, (id, context), &out, relay, timeout)
                .await
                .map(Some)
        }
        TopCommand::Workflow(_) => unreachable!("a workflow runs before a home is opened"),
        TopCommand::Node(command) => {
            let Home {
                mut driver, store, ..
            } = home;
            let (result, _) = driver
                .run(async move |node| commands::execute(node, &store, command).await)
                .await;
            result.map(Some)
        }
    }
}
