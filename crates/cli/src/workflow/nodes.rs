//! The processes a workflow runs on: a relay on 127.0.0.1 and one node process per node the
//! workflow names, driven through its stdin (one command a line, as a JSON array of words) and
//! read from its stdout (one JSON line per answer or event). A native node is a `tabnode run`
//! on a home of its own; a page node is `node scripts/page-node.mjs`, a BrowserNode in a
//! headless Chromium page that speaks the same lines ([`PageDriver`]).
//!
//! Every process is a child killed when its handle drops, so a failing step, a panic or an
//! early return stops them all.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::StepError;
use crate::home::GuestRequests;

/// How long a node may take to start and to answer one command.
const ANSWER_WAIT: Duration = Duration::from_secs(60);

/// How long a node that was told to stop (its stdin closed) may take before it is killed.
const STOP_WAIT: Duration = Duration::from_secs(5);

/// Why no line came.
enum Waited {
    TimedOut,
    Ended,
    Interrupted(StepError),
}

/// A child process, killed (if still running) when dropped; its stdout as lines.
struct Process {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    /// Whether it stops at the end of its stdin (a node) and is given the time to; else (the
    /// relay, which keeps nothing) it is killed at once.
    stops_at_eof: bool,
}

impl Process {
    fn spawn(
        mut command: Command,
        what: &str,
        stderr: Stdio,
        stops_at_eof: bool,
    ) -> Result<Self, StepError> {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .map_err(|e| StepError::new("Spawn", format!("start {what}: {e}")))?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(Self {
            stdin: child.stdin.take(),
            child,
            lines,
            stops_at_eof,
        })
    }

    /// The next line within `wait`; an error when the process ended, the time passed or the
    /// runner was told to stop.
    fn next_line(&self, wait: Duration) -> Result<String, Waited> {
        let deadline = Instant::now() + wait;
        loop {
            super::interrupted().map_err(Waited::Interrupted)?;
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left.min(super::INTERRUPT_CHECK)) {
                Ok(line) => return Ok(line),
                Err(RecvTimeoutError::Disconnected) => return Err(Waited::Ended),
                Err(RecvTimeoutError::Timeout) if left.is_zero() => return Err(Waited::TimedOut),
                Err(RecvTimeoutError::Timeout) => {}
            }
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        // A node stops cleanly at the end of its stdin (its store is closed in order).
        self.stdin.take();
        let deadline = Instant::now() + STOP_WAIT;
        while self.stops_at_eof && Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// This `tabnode` binary: the native nodes run it, and the relay is looked for beside it.
fn this_binary() -> Result<PathBuf, StepError> {
    std::env::current_exe().map_err(|e| StepError::new("Io", format!("this binary's path: {e}")))
}

/// The relay the nodes meet through, listening on 127.0.0.1 (a port the OS picks).
pub struct Relay {
    _process: Process,
    pub address: String,
}

/// The relay binary: `--relay-bin`, else TABNODE_RELAY, else `tabnode-relay` beside this
/// binary (where `make relay` puts it).
pub fn relay_binary(given: Option<PathBuf>) -> Result<PathBuf, StepError> {
    let path = match given.or_else(|| std::env::var_os("TABNODE_RELAY").map(PathBuf::from)) {
        Some(path) => path,
        None => this_binary()?.with_file_name("tabnode-relay"),
    };
    if !path.is_file() {
        return Err(StepError::new(
            "RelayNotFound",
            format!(
                "no relay binary at {}: build it with `make relay`, or name it with --relay-bin or TABNODE_RELAY",
                path.display()
            ),
        ));
    }
    Ok(path)
}

impl Relay {
    pub fn start(binary: &Path) -> Result<Self, StepError> {
        let mut command = Command::new(binary);
        command.args(["--listen", "/ip4/127.0.0.1/tcp/0/ws"]);
        // The relay logs every connection on stderr: not the workflow's business.
        let process = Process::spawn(command, "the relay", Stdio::null(), false)?;
        let deadline = Instant::now() + ANSWER_WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match process.next_line(left) {
                Ok(line) => {
                    if let Some(address) = line.strip_prefix("RELAY_MULTIADDR=") {
                        let address = address.trim().to_owned();
                        return Ok(Self {
                            _process: process,
                            address,
                        });
                    }
                }
                Err(Waited::Interrupted(e)) => return Err(e),
                Err(_) => {
                    return Err(StepError::new(
                        "RelayFailed",
                        "the relay printed no RELAY_MULTIADDR line".into(),
                    ))
                }
            }
        }
    }
}

/// What runs page nodes: the page-node script (`scripts/page-node.mjs`) on Node.js.
pub struct PageDriver {
    script: PathBuf,
}

/// The Node.js a page node runs on: `node` on PATH.
const NODE_JS: &str = "node";

/// The script: `--page-node`, else TABNODE_PAGE_NODE, else the repository's own
/// `scripts/page-node.mjs` (where this binary was built from).
fn page_node_script(given: Option<PathBuf>) -> Result<PathBuf, StepError> {
    let path = given
        .or_else(|| std::env::var_os("TABNODE_PAGE_NODE").map(PathBuf::from))
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/page-node.mjs")
        });
    if !path.is_file() {
        return Err(StepError::new(
            "PageNodeNotFound",
            format!(
                "no page-node script at {}: name tabnode's scripts/page-node.mjs with --page-node or TABNODE_PAGE_NODE",
                path.display()
            ),
        ));
    }
    Ok(path)
}

impl PageDriver {
    /// Finds the script and checks, with its `--check`, that Node.js, the built package,
    /// playwright-core and Chromium are there: each missing one is its own error kind.
    pub fn find(given: Option<PathBuf>) -> Result<Self, StepError> {
        let script = page_node_script(given)?;
        let out = Command::new(NODE_JS)
            .arg(&script)
            .arg("--check")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => StepError::new(
                    "NodeJsNotFound",
                    "page nodes run on Node.js: no `node` on PATH".into(),
                ),
                _ => StepError::new("Spawn", format!("start node {}: {e}", script.display())),
            })?;
        let answer: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
            json!({"error": {"kind": "PageNodeFailed", "message": String::from_utf8_lossy(&out.stderr)}})
        });
        if !out.status.success() || answer["ok"] != json!(true) {
            return Err(StepError::new_owned(
                answer["error"]["kind"]
                    .as_str()
                    .unwrap_or("PageNodeFailed")
                    .to_owned(),
                answer["error"]["message"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            ));
        }
        Ok(Self { script })
    }
}

/// Where a node runs.
pub enum Place<'a> {
    /// A `tabnode run` on this home, with this fuel per call.
    Native { home: &'a Path, fuel: Option<u64> },
    /// A page in headless Chromium.
    Page(&'a PageDriver),
}

/// One workflow node: a `tabnode run` on its own home, or a page node.
pub struct Node {
    pub name: String,
    /// The node's key: its identity as a member and as the executor of its calls.
    pub public_key: String,
    process: Process,
    commands: usize,
    /// Contexts whose state has arrived here (`synced` lines seen).
    synced: BTreeSet<String>,
    /// The node's last lines, for a failure's message.
    recent: Vec<String>,
}

impl Node {
    /// Starts the node's process (`tabnode --home HOME run --relay RELAY`, or the page node on
    /// RELAY); [`Self::await_started`] waits until it runs.
    pub fn spawn(
        name: &str,
        place: Place,
        relay: &str,
        guest_requests: GuestRequests,
    ) -> Result<Self, StepError> {
        let command = match place {
            Place::Native { home, fuel } => {
                let mut command = Command::new(this_binary()?);
                command.arg("--home").arg(home);
                if let Some(fuel) = fuel {
                    command.args(["--fuel", &fuel.to_string()]);
                }
                command.args(["--guest-requests", guest_requests.as_arg()]);
                command.args(["run", "--relay", relay]);
                command
            }
            Place::Page(driver) => {
                let mut command = Command::new(NODE_JS);
                command
                    .arg(&driver.script)
                    .args(["--relay", relay, "--name", name])
                    .args(["--guest-requests", guest_requests.as_arg()]);
                command
            }
        };
        let process = Process::spawn(command, &format!("node {name}"), Stdio::inherit(), true)?;
        Ok(Self {
            name: name.to_owned(),
            public_key: String::new(),
            process,
            commands: 0,
            synced: BTreeSet::new(),
            recent: Vec::new(),
        })
    }

    /// Waits for the node's `started` line (its key); a page node that could not start says
    /// why as `{"error": {kind, message}}` instead.
    pub fn await_started(&mut self) -> Result<(), StepError> {
        let first = self.await_line("its start", ANSWER_WAIT, |v| {
            v["type"] == json!("started") || (v.get("error").is_some() && v.get("line").is_none())
        })?;
        if let Some(error) = first.get("error") {
            return Err(StepError::new_owned(
                error["kind"].as_str().unwrap_or("StartFailed").to_owned(),
                format!(
                    "node {}: {}",
                    self.name,
                    error["message"].as_str().unwrap_or_default()
                ),
            ));
        }
        self.public_key = first["publicKey"].as_str().unwrap_or_default().to_owned();
        Ok(())
    }

    /// Reads lines until one `pick` accepts, noting what the others say on the way.
    fn await_line(
        &mut self,
        what: &str,
        wait: Duration,
        mut pick: impl FnMut(&Value) -> bool,
    ) -> Result<Value, StepError> {
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match self.process.next_line(left) {
                Ok(line) => line,
                Err(Waited::Interrupted(e)) => return Err(e),
                Err(Waited::TimedOut) => {
                    return Err(StepError::new(
                        "Timeout",
                        format!(
                            "node {}: no {what} within {wait:?}{}",
                            self.name,
                            self.tail()
                        ),
                    ))
                }
                Err(Waited::Ended) => {
                    return Err(StepError::new(
                        "NodeStopped",
                        format!(
                            "node {} stopped while waiting for {what}{}",
                            self.name,
                            self.tail()
                        ),
                    ))
                }
            };
            let Ok(value) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            if value["type"] == json!("synced") {
                if let Some(id) = value["contextId"].as_str() {
                    self.synced.insert(id.to_owned());
                }
            }
            self.recent.push(line);
            if self.recent.len() > 20 {
                self.recent.remove(0);
            }
            if pick(&value) {
                return Ok(value);
            }
        }
    }

    /// The node's last lines, for a message.
    fn tail(&self) -> String {
        if self.recent.is_empty() {
            return String::new();
        }
        format!("; its last lines:\n{}", self.recent.join("\n"))
    }

    /// Runs a command on the node (the words one would give `tabnode`); its answer's value,
    /// or its error as kind and message.
    pub fn command(&mut self, words: &[&str]) -> Result<Value, StepError> {
        self.commands += 1;
        let number = self.commands;
        let line = serde_json::to_string(words).expect("words encode");
        let stdin = self
            .process
            .stdin
            .as_mut()
            .expect("a running node's stdin is open");
        writeln!(stdin, "{line}").map_err(|e| {
            StepError::new(
                "NodeStopped",
                format!("node {}: {e}{}", self.name, self.tail()),
            )
        })?;
        let answer = self.await_line("answer", ANSWER_WAIT, |v| v["line"] == json!(number))?;
        if answer["type"] == json!("result") {
            return Ok(answer["value"].clone());
        }
        Err(StepError::new_owned(
            answer["error"]["kind"]
                .as_str()
                .unwrap_or("Error")
                .to_owned(),
            answer["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        ))
    }

    /// Waits until the context's state has arrived here (after a join).
    pub fn await_synced(&mut self, context_id: &str, wait: Duration) -> Result<(), StepError> {
        if self.synced.contains(context_id) {
            return Ok(());
        }
        self.await_line(&format!("state of {context_id}"), wait, |v| {
            v["type"] == json!("synced") && v["contextId"] == json!(context_id)
        })
        .map(|_| ())
    }

    /// Hands the node what it printed since the last read (events), without waiting.
    pub fn drain(&mut self) {
        let _ = self.await_line("", Duration::ZERO, |_| false);
    }
}
