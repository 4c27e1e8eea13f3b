//! The node on the network: `tabnode run`, `tabnode context join --relay` and `tabnode blob get
//! --context --relay`.
//!
//! The node core is driven by `tabnode-driver` (the same functions the page uses): what it
//! queues goes out through `tabnode-net` (natively, on this process's tokio runtime), what
//! comes in goes to it, and its timers run when [`tabnode_node::Node::poll_timeout`] says.
//! What happens is printed as JSON lines: the node's events as the page's subscribers get
//! them (`{"type": "deltaApplied", "contextId", ...}`), and this driver's own: `started`,
//! `synced` (a context's state is here, its calls can run), `peerConnected`,
//! `peerDisconnected`, `reserved`, `result` / `error` (a command from stdin), `stopped`.

use std::collections::BTreeSet;
use std::future::Future;
use std::rc::Rc;
use std::time::Duration;

use clap::Parser;
use serde_json::{json, Value};
use tabnode_driver::{Driver, Step as DriverStep};
use tabnode_net::{NetConfig, NetEvent};
use tabnode_node::{NodeError, NodeEvent};
use tabnode_store::FileStore;
use tabnode_types::{ContextId, Hash};
use tokio::io::AsyncBufReadExt;

use crate::commands::{
    self, invitation_of_link, no_blob, write_held_blob, Command, ContextCommand,
};
use crate::failure::Failure;
use crate::home::{CliNode, Home, SystemEnv};

/// The node on the network.
struct Online {
    driver: Driver<Rc<FileStore>, SystemEnv>,
    store: Rc<FileStore>,
    /// Contexts held or being joined whose state is not here yet: `synced` is said once it is.
    unsynced: BTreeSet<ContextId>,
    /// Keeps the home locked while the node runs.
    _home: HomeLock,
}

/// What of [`Home`] stays behind when its node goes to the driver: its lock.
struct HomeLock(#[allow(dead_code)] std::fs::File);

/// What happened in one step: lines to print, what the caller's own future gave, or the end
/// of the network task (it stops only on a fault of its own).
enum Step<T> {
    Lines(Vec<Value>),
    Done(T),
    NetworkStopped,
}

fn event_line(event: &NodeEvent) -> Value {
    serde_json::to_value(event).expect("an event encodes")
}

impl Online {
    /// Starts the network with the node's own peer identity and dials the relays.
    fn connect(home: Home, relays: Vec<String>) -> Result<(Self, Vec<Value>), Failure> {
        let Home {
            mut driver,
            store,
            lock,
        } = home;
        let seed = driver.node().network_identity_seed();
        let (net, net_events) = tabnode_net::start(NetConfig {
            relays,
            identity_ed25519_secret: seed,
            direct: false,
            ice_servers: Vec::new(),
        })
        .map_err(|e| match e {
            tabnode_net::NetError::BadAddress { .. } => Failure::Other("BadAddress", e.to_string()),
            e => Failure::Other("NetworkError", e.to_string()),
        })?;
        let node = driver.node();
        let started = json!({
            "type": "started",
            "publicKey": node.public_key().to_string(),
            "peerId": net.peer_id(),
            "contexts": node.context_ids().iter().map(|c| c.to_string()).collect::<Vec<_>>(),
        });
        let unsynced = node
            .context_ids()
            .into_iter()
            .filter(|id| !node.is_synced(id))
            .collect();
        drop(node);
        let events = driver.connect(Some(net), Some(net_events));
        let mut online = Self {
            driver,
            store,
            unsynced,
            _home: HomeLock(lock),
        };
        let mut lines = vec![started];
        lines.extend(online.lines(events));
        Ok((online, lines))
    }

    /// The lines for a step's events, and `synced` for each context whose state came.
    fn lines(&mut self, events: Vec<NodeEvent>) -> Vec<Value> {
        let mut lines: Vec<Value> = Vec::with_capacity(events.len());
        for event in &events {
            if let NodeEvent::Joined { context_id, .. } = event {
                self.unsynced.insert(*context_id);
            }
            lines.push(event_line(event));
        }
        let node = self.driver.node();
        let synced: Vec<ContextId> = self
            .unsynced
            .iter()
            .filter(|id| node.is_synced(id))
            .copied()
            .collect();
        for id in synced {
            self.unsynced.remove(&id);
            lines.push(json!({"type": "synced", "contextId": id.to_string()}));
        }
        lines
    }

    /// Waits for the next thing to do (a network event, the node's timer, or `input`), does
    /// it, and says what happened (the page's node task steps the same way).
    async fn step<T>(&mut self, input: impl Future<Output = T>) -> Step<T> {
        match self.driver.step(tokio::time::sleep, input).await {
            DriverStep::Ran { events, other } => {
                let mut lines = self.lines(events);
                lines.extend(other.and_then(|e| net_line(&e)));
                Step::Lines(lines)
            }
            DriverStep::Input(done) => Step::Done(done),
            DriverStep::NetworkStopped => Step::NetworkStopped,
        }
    }

    /// Runs the node until `done` holds of it, progress on stderr, for at most `timeout_secs`:
    /// `false` if the time passed first.
    async fn wait_for(
        &mut self,
        done: impl Fn(&CliNode) -> bool,
        timeout_secs: u64,
    ) -> Result<bool, Failure> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(timeout_secs);
        while !done(&self.driver.node()) {
            match self.step(tokio::time::sleep_until(deadline)).await {
                Step::Lines(lines) => progress(lines),
                Step::NetworkStopped => {
                    return Err(Failure::Other(
                        "NetworkError",
                        "the network task stopped".into(),
                    ))
                }
                Step::Done(()) => return Ok(false),
            }
        }
        Ok(true)
    }

    /// Runs a command from stdin on the node; its answer comes first, then what it caused.
    async fn command(&mut self, number: usize, line: &str) -> Vec<Value> {
        let store = self.store.clone();
        let (result, events) = match parse_line(line) {
            Ok(command) => {
                let join = matches!(command, Command::Context(ContextCommand::Join { .. }));
                let (result, events) = self
                    .driver
                    .run(async move |node| commands::execute(node, &store, command).await)
                    .await;
                // A join started: `synced` is said once the context's state is here.
                if let (true, Ok(value)) = (join, &result) {
                    let id = value["context_id"]
                        .as_str()
                        .and_then(|id| id.parse::<ContextId>().ok());
                    self.unsynced.extend(id);
                }
                (result, events)
            }
            Err(failure) => (Err(failure), Vec::new()),
        };
        let answer = match result {
            Ok(value) => json!({"type": "result", "line": number, "value": value}),
            Err(failure) => {
                let mut error = failure.to_json();
                error["type"] = json!("error");
                error["line"] = json!(number);
                error
            }
        };
        let mut lines = vec![answer];
        lines.extend(self.lines(events));
        lines
    }
}

/// What a network event that is not a message means to someone watching the node.
fn net_line(event: &NetEvent) -> Option<Value> {
    Some(match event {
        NetEvent::Connected { peer, via } => {
            json!({"type": "peerConnected", "peer": peer, "via": via.as_str()})
        }
        NetEvent::Disconnected { peer } => json!({"type": "peerDisconnected", "peer": peer}),
        NetEvent::Reserved { relay } => json!({"type": "reserved", "relay": relay}),
        _ => return None,
    })
}

/// A command line from stdin: a JSON array of the words one would give `tabnode`.
fn parse_line(line: &str) -> Result<Command, Failure> {
    #[derive(Parser)]
    #[command(name = "tabnode", no_binary_name = true)]
    struct Line {
        #[command(subcommand)]
        command: Command,
    }
    let words: Vec<String> = serde_json::from_str(line).map_err(|e| {
        Failure::Other(
            "Usage",
            format!("a command is a JSON array of strings, e.g. [\"identity\"]: {e}"),
        )
    })?;
    Line::try_parse_from(words)
        .map(|line| line.command)
        .map_err(|e| Failure::Other("Usage", e.render().to_string().trim_end().to_owned()))
}

fn print(lines: Vec<Value>) {
    for line in lines {
        println!("{line}");
    }
}

/// The reason `run` gives when the network task ended under it (a failure: exit 1).
const NETWORK_STOPPED: &str = "network stopped";

/// Why `run` stops.
enum Input {
    Line(Option<String>),
    Signal(&'static str),
}

/// The process's SIGINT and SIGTERM, as one future per wait.
struct Signals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> Result<Self, Failure> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let io = |e: std::io::Error| Failure::Other("Io", format!("signals: {e}"));
            Ok(Self {
                interrupt: signal(SignalKind::interrupt()).map_err(io)?,
                terminate: signal(SignalKind::terminate()).map_err(io)?,
            })
        }
        #[cfg(not(unix))]
        Ok(Self {})
    }

    async fn next(&mut self) -> &'static str {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.interrupt.recv() => "SIGINT",
                _ = self.terminate.recv() => "SIGTERM",
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            "interrupt"
        }
    }
}

/// `tabnode run`: the node on the network until a signal or (unless `no_stdin`) the end of
/// stdin.
pub async fn run(home: Home, relays: Vec<String>, no_stdin: bool) -> Result<(), Failure> {
    let mut signals = Signals::new()?;
    let (mut online, lines) = Online::connect(home, relays)?;
    print(lines);
    let mut stdin = (!no_stdin).then(|| tokio::io::BufReader::new(tokio::io::stdin()).lines());
    let mut number = 0;
    let reason = loop {
        let input = async {
            let line = async {
                match &mut stdin {
                    Some(stdin) => Input::Line(stdin.next_line().await.ok().flatten()),
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                line = line => line,
                signal = signals.next() => Input::Signal(signal),
            }
        };
        match online.step(input).await {
            Step::Lines(lines) => print(lines),
            Step::Done(Input::Line(Some(line))) => {
                number += 1;
                if !line.trim().is_empty() {
                    let lines = online.command(number, &line).await;
                    print(lines);
                }
            }
            Step::Done(Input::Line(None)) => break "stdin closed",
            Step::Done(Input::Signal(signal)) => break signal,
            Step::NetworkStopped => break NETWORK_STOPPED,
        }
    };
    print(vec![json!({"type": "stopped", "reason": reason})]);
    if reason == NETWORK_STOPPED {
        return Err(Failure::Other(
            "NetworkError",
            "the network task stopped".into(),
        ));
    }
    Ok(())
}

/// `tabnode blob get BLOB --context CTX --relay ...`: writes the blob to `out`, fetching it from
/// the context's members first if this node lacks it, and waits until it is whole (or no member
/// served it, or `timeout_secs` passed). Progress goes to stderr as JSON lines.
pub async fn get_blob(
    home: Home,
    (id, context_id): (Hash, ContextId),
    out: &std::path::Path,
    relays: Vec<String>,
    timeout_secs: u64,
) -> Result<Value, Failure> {
    let mut home = home;
    if let Some(written) = write_held_blob(&mut home.driver, id, out).await? {
        return Ok(written);
    }
    let (mut online, lines) = Online::connect(home, relays)?;
    progress(lines);
    let (started, events) = online
        .driver
        .run(async move |node| node.fetch_blob(&context_id, id).await)
        .await;
    started?;
    progress(online.lines(events));
    let fetched = |node: &CliNode| !node.is_fetching_blob(&context_id, &id);
    if !online.wait_for(fetched, timeout_secs).await? {
        return Err(Failure::Other(
            "Timeout",
            format!(
                "blob {id} did not come whole from the members of {context_id} within \
                 {timeout_secs} s (get it again to wait more)"
            ),
        ));
    }
    match write_held_blob(&mut online.driver, id, out).await? {
        Some(written) => Ok(written),
        None => Err(match no_blob(&id) {
            Failure::Other(kind, why) => Failure::Other(
                kind,
                format!("{why}, and no member of {context_id} sent it"),
            ),
            other => other,
        }),
    }
}

/// Progress of a one-shot command on the network, on stderr as `run` prints it on stdout.
fn progress(lines: Vec<Value>) {
    for line in lines {
        eprintln!("{line}");
    }
}

/// `tabnode context join LINK --relay ...`: asks the members, and waits until one admitted
/// this node and the state came (or `timeout_secs` passed). Progress goes to stderr as JSON
/// lines, as `run` prints them.
pub async fn join(
    home: Home,
    link: &str,
    relays: Vec<String>,
    timeout_secs: u64,
) -> Result<Value, Failure> {
    let (mut online, lines) = Online::connect(home, relays)?;
    progress(lines);
    let invitation = invitation_of_link(link);
    let (id, events) = online
        .driver
        .run(async move |node| node.join(&invitation).await)
        .await;
    let id = id?;
    online.unsynced.insert(id);
    progress(online.lines(events));
    if !online
        .wait_for(|node| node.is_synced(&id), timeout_secs)
        .await?
    {
        let waiting_for = if online.driver.node().is_joining(&id) {
            "no member has admitted this node yet"
        } else {
            "admitted, but the state has not come from the members yet"
        };
        return Err(Failure::Node(NodeError::NotSynced(format!(
            "{id}: {waiting_for} after {timeout_secs} s (join again to wait more)"
        ))));
    }
    Ok(json!({"context_id": id.to_string(), "synced": true}))
}
