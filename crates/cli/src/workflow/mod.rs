//! `tabnode workflow run FILE.yml`: a merobox workflow (Calimero's end-to-end test format) on
//! tabnode nodes, with no Docker.
//!
//! The runner starts a relay on 127.0.0.1 and one node process per node the workflow names
//! (`nodes: {count: N, prefix: P}` gives P-1 … P-N): a `tabnode run` on a home of its own, or
//! with `--nodes browser` (every node) or `--nodes mixed` (every second one) a BrowserNode in a
//! headless Chromium page driven through the same line protocol ([`nodes::PageDriver`]); then runs
//! the steps in order with merobox's placeholders and captures ([`values`]). Each step prints a
//! JSON line on stdout and a line of text on stderr; the first that fails ends the run (exit 1,
//! naming the step and why), unless `--keep-going`. A step type it cannot do fails as
//! `unsupported step: TYPE`. Every process it started is stopped when it ends, also on failure.
//!
//! Processes, not nodes in this process: each node is the CLI node as users run it, its
//! network and store its own, and a node that crashes takes only itself down.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

use crate::failure::Failure;

mod checks;
mod fuzzy;
mod nodes;
mod steps;
mod values;

use nodes::{Node, PageDriver, Place, Relay};
use values::{resolve, Missing, Vars};

/// Set when the runner gets SIGINT, SIGTERM or SIGHUP: every wait checks it at least this often
/// ([`INTERRUPT_CHECK`]), the step under way fails as `Interrupted`, and the run ends as on any
/// failure, stopping what it started (the relay would outlive a runner killed outright).
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

const INTERRUPT_CHECK: Duration = Duration::from_millis(100);

fn interrupted() -> Result<(), StepError> {
    if INTERRUPTED.load(Ordering::Relaxed) {
        return Err(StepError::new(
            "Interrupted",
            "the runner was told to stop (a signal)".into(),
        ));
    }
    Ok(())
}

/// Sleeps `duration`, waking early (with an error) when the runner is told to stop.
fn sleep(duration: Duration) -> Result<(), StepError> {
    let until = Instant::now() + duration;
    loop {
        interrupted()?;
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(());
        }
        std::thread::sleep(left.min(INTERRUPT_CHECK));
    }
}

/// Watches for SIGINT, SIGTERM and SIGHUP on a thread of its own, for the whole run.
fn watch_signals() {
    #[cfg(unix)]
    std::thread::spawn(|| {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        runtime.block_on(async {
            let (Ok(mut int), Ok(mut term), Ok(mut hup)) = (
                signal(SignalKind::interrupt()),
                signal(SignalKind::terminate()),
                signal(SignalKind::hangup()),
            ) else {
                return;
            };
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
                _ = hup.recv() => {}
            }
            INTERRUPTED.store(true, Ordering::Relaxed);
        });
    });
}

/// How a step failed: a kind (the node's error kind, or the runner's) and why.
#[derive(Debug)]
pub struct StepError {
    pub kind: String,
    pub message: String,
}

impl StepError {
    fn new(kind: &'static str, message: String) -> Self {
        Self {
            kind: kind.to_owned(),
            message,
        }
    }

    fn new_owned(kind: String, message: String) -> Self {
        Self { kind, message }
    }
}

/// Which nodes run in pages.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum NodeKinds {
    /// Every node a `tabnode run` process
    Native,
    /// Every node a page in headless Chromium
    Browser,
    /// Native and page nodes in turn, the first native
    Mixed,
}

impl NodeKinds {
    /// Whether the workflow's `index`th node (from 0) runs in a page.
    fn in_page(self, index: usize) -> bool {
        match self {
            Self::Native => false,
            Self::Browser => true,
            Self::Mixed => index % 2 == 1,
        }
    }
}

/// The kinds of what can keep page nodes from starting, as the run's own error kind.
fn page_driver_kind(kind: &str) -> &'static str {
    match kind {
        "NodeJsNotFound" => "NodeJsNotFound",
        "PageNodeNotFound" => "PageNodeNotFound",
        "PackageNotBuilt" => "PackageNotBuilt",
        "PlaywrightNotFound" => "PlaywrightNotFound",
        "ChromiumNotFound" => "ChromiumNotFound",
        _ => "PageNodeFailed",
    }
}

/// What `workflow run` was asked.
pub struct Options {
    pub file: PathBuf,
    /// Where the nodes' homes go (kept); by default a temporary directory removed at the end.
    pub homes: Option<PathBuf>,
    pub relay_bin: Option<PathBuf>,
    pub keep_going: bool,
    pub fuel: Option<u64>,
    /// What its nodes answer guests' requests beyond their calls (allow: as merod does).
    pub guest_requests: crate::home::GuestRequests,
    pub nodes: NodeKinds,
    /// The page-node script (default: TABNODE_PAGE_NODE, else the repository's).
    pub page_node: Option<PathBuf>,
    /// Every fuzzy_test's duration in minutes, instead of its `duration_minutes`.
    pub fuzzy_minutes: Option<f64>,
    /// The seed of fuzzy_test's random choices (default: a random one, printed).
    pub fuzzy_seed: Option<u64>,
}

/// The nodes and the relay of one run; dropped, they stop.
pub struct Runner {
    nodes: BTreeMap<String, Node>,
    /// Dropped after the nodes (fields drop in order).
    relay: Relay,
    /// Lines of detail under the current step, printed with it.
    notes: Vec<String>,
    /// Fields of the current step's JSON line beyond the common ones (fuzzy_test's counts).
    step_fields: Map<String, Value>,
    fuzz: fuzzy::Fuzz,
}

impl Runner {
    fn node(&mut self, name: &str) -> Result<&mut Node, StepError> {
        let known = self.nodes.keys().cloned().collect::<Vec<_>>().join(", ");
        self.nodes.get_mut(name).ok_or_else(|| {
            StepError::new(
                "UnknownNode",
                format!("no node {name:?} in this workflow (its nodes: {known})"),
            )
        })
    }

    fn note(&mut self, line: &str) {
        self.notes.push(line.to_owned());
    }
}

/// The node names of `nodes:`.
fn node_names(workflow: &Value) -> Result<Vec<String>, StepError> {
    let nodes = &workflow["nodes"];
    let count = nodes["count"].as_u64();
    let prefix = nodes["prefix"].as_str();
    match (count, prefix) {
        (Some(count), Some(prefix)) if count > 0 => {
            Ok((1..=count).map(|i| format!("{prefix}-{i}")).collect())
        }
        _ => Err(StepError::new(
            "Unsupported",
            format!("nodes: {nodes}: this runner takes nodes: {{count: N, prefix: NAME}}"),
        )),
    }
}

/// How many of the workflow's own steps passed and failed.
#[derive(Default)]
struct Tally {
    passed: usize,
    failed: usize,
}

/// Says how a step went: a line of text on stderr (and its notes), a JSON line on stdout,
/// which it returns.
fn report(
    index: &str,
    step: &Value,
    started: Instant,
    outcome: &Result<(), StepError>,
    notes: Vec<String>,
    fields: Map<String, Value>,
) -> Value {
    let name = step["name"].as_str().unwrap_or("(unnamed)");
    let step_type = step["type"].as_str().unwrap_or("(no type)");
    let ms = started.elapsed().as_millis() as u64;
    let mut line =
        json!({"type": "step", "step": index, "name": name, "stepType": step_type, "ms": ms});
    line.as_object_mut().expect("an object").extend(fields);
    match outcome {
        Ok(()) => {
            eprintln!("✓ {index} {name} ({step_type}, {ms} ms)");
            line["passed"] = json!(true);
        }
        Err(e) => {
            eprintln!("✗ {index} {name} ({step_type}): {}: {}", e.kind, e.message);
            line["passed"] = json!(false);
            line["error"] = json!({"kind": e.kind, "message": e.message});
        }
    }
    for note in notes {
        eprintln!("    {note}");
    }
    println!("{line}");
    line
}

impl Runner {
    /// Runs `steps` in order; `prefix` numbers them (`3`, `5#1.2` in a repeat's iteration).
    /// Stops at the first failure unless `keep_going`; the first failure, said.
    fn run_steps(
        &mut self,
        steps: &[Value],
        prefix: &str,
        vars: &mut Vars,
        keep_going: bool,
        tally: &mut Tally,
    ) -> Option<StepError> {
        let mut first_failure = None;
        for (i, step) in steps.iter().enumerate() {
            let index = format!("{prefix}{}", i + 1);
            let step_type = step["type"].as_str().unwrap_or_default().to_owned();
            let started = Instant::now();
            let outcome = if let Err(stop) = interrupted() {
                Err(stop)
            } else if step_type == "repeat" {
                self.repeat(step, &index, vars, keep_going, tally)
            } else {
                self.step(step, &step_type, vars)
            };
            let notes = std::mem::take(&mut self.notes);
            let fields = std::mem::take(&mut self.step_fields);
            let line = report(&index, step, started, &outcome, notes, fields);
            let top = prefix.is_empty();
            match outcome {
                Ok(()) if top => tally.passed += 1,
                Ok(()) => {}
                Err(error) => {
                    if top {
                        tally.failed += 1;
                    }
                    // A repeat's error already names the step inside it that failed.
                    let said = if step_type == "repeat" {
                        error
                    } else {
                        let name = line["name"].as_str().unwrap_or_default();
                        let message = format!(
                            "step {index} {name:?} ({step_type}): {}: {}",
                            error.kind, error.message
                        );
                        StepError::new_owned(error.kind, message)
                    };
                    first_failure.get_or_insert(said);
                    if !keep_going || interrupted().is_err() {
                        break;
                    }
                }
            }
        }
        first_failure
    }

    /// `repeat`: its steps `count` times, each iteration on a copy of the variables with
    /// `iteration` (1-based) and `iteration_index` (0-based), and the names in `outputs:` bound
    /// from those.
    fn repeat(
        &mut self,
        step: &Value,
        index: &str,
        vars: &mut Vars,
        keep_going: bool,
        tally: &mut Tally,
    ) -> Result<(), StepError> {
        let count = resolve(&step["count"], vars, Missing::Keep)?;
        let count = values::parse_json_text(&count)
            .as_u64()
            .ok_or_else(|| StepError::new("BadStep", format!("count: {count} is not a number")))?;
        let steps = step["steps"]
            .as_array()
            .ok_or_else(|| StepError::new("BadStep", "repeat needs steps: [...]".into()))?;
        vars.insert("total_iterations".into(), json!(count));
        vars.insert("step_count".into(), json!(steps.len()));
        for iteration in 1..=count {
            let mut inner = vars.clone();
            inner.insert("iteration".into(), json!(iteration));
            inner.insert("iteration_index".into(), json!(iteration - 1));
            inner.insert("iteration_zero_based".into(), json!(iteration - 1));
            inner.insert("iteration_one_based".into(), json!(iteration));
            if let Some(outputs) = step["outputs"].as_object() {
                for (name, source) in outputs {
                    if let Some(value) = source.as_str().and_then(|s| inner.get(s)).cloned() {
                        inner.insert(name.clone(), value);
                    }
                }
            }
            let prefix = format!("{index}#{iteration}.");
            if let Some(failure) = self.run_steps(steps, &prefix, &mut inner, keep_going, tally) {
                return Err(failure);
            }
        }
        Ok(())
    }
}

/// Runs the workflow; `Ok` with a summary when every step passed.
pub fn run(options: Options) -> Result<Value, Failure> {
    let bad = |kind: &'static str, message: String| Failure::Other(kind, message);
    let text = std::fs::read_to_string(&options.file)
        .map_err(|e| crate::failure::io_error(&options.file, e))?;
    let workflow: Value = serde_yaml_ng::from_str(&text)
        .map_err(|e| bad("BadWorkflow", format!("{}: {e}", options.file.display())))?;
    let steps = workflow["steps"]
        .as_array()
        .ok_or_else(|| bad("BadWorkflow", "the workflow has no steps: [...]".into()))?;
    let names = node_names(&workflow).map_err(|e| bad("BadWorkflow", e.message))?;
    fuzzy::check_steps(steps, &names, "").map_err(|e| bad("BadWorkflow", e))?;
    let name = workflow["name"].as_str().unwrap_or("workflow").to_owned();

    let (homes, temporary) = match &options.homes {
        Some(dir) => (dir.clone(), false),
        None => (
            std::env::temp_dir().join(format!("tabnode-workflow-{}", std::process::id())),
            true,
        ),
    };
    let start = |e: StepError| Failure::Other("StartFailed", format!("{}: {}", e.kind, e.message));
    let relay_bin = nodes::relay_binary(options.relay_bin.clone())
        .map_err(|e| bad("RelayNotFound", e.message))?;
    let pages = (0..names.len()).any(|i| options.nodes.in_page(i));
    let page_driver = pages
        .then(|| PageDriver::find(options.page_node.clone()))
        .transpose()
        .map_err(|e| bad(page_driver_kind(&e.kind), e.message))?;
    watch_signals();
    let relay = Relay::start(&relay_bin).map_err(start)?;
    let mut runner = Runner {
        nodes: BTreeMap::new(),
        relay,
        notes: Vec::new(),
        step_fields: Map::new(),
        fuzz: fuzzy::Fuzz::new(options.fuzzy_seed, options.fuzzy_minutes),
    };
    // Every node's process first, then each waited for: pages start side by side.
    let mut outcome = Ok(());
    for (i, node) in names.iter().enumerate() {
        let home = homes.join(node);
        let place = match &page_driver {
            Some(driver) if options.nodes.in_page(i) => Place::Page(driver),
            _ => Place::Native {
                home: &home,
                fuel: options.fuel,
            },
        };
        match Node::spawn(node, place, &runner.relay.address, options.guest_requests) {
            Ok(spawned) => {
                runner.nodes.insert(node.clone(), spawned);
            }
            Err(e) => {
                outcome = Err(start(e));
                break;
            }
        }
    }
    if outcome.is_ok() {
        outcome = runner
            .nodes
            .values_mut()
            .try_for_each(Node::await_started)
            .map_err(start);
    }
    let mut tally = Tally::default();
    let mut first_failure = None;
    if outcome.is_ok() {
        // Said once every node runs: what follows is the steps.
        let kinds: Vec<&str> = (0..names.len())
            .map(|i| match options.nodes.in_page(i) {
                true => "page",
                false => "native",
            })
            .collect();
        eprintln!(
            "workflow {name}: {} step(s) on {} node(s) ({})",
            steps.len(),
            names.len(),
            kinds.join(", ")
        );
        let mut vars = Vars::new();
        first_failure = runner.run_steps(steps, "", &mut vars, options.keep_going, &mut tally);
    }
    drop(runner);
    if temporary {
        let _ = std::fs::remove_dir_all(&homes);
    }
    outcome?;
    let summary = json!({
        "type": "done",
        "workflow": name,
        "passed": tally.passed,
        "total": steps.len(),
        "failed": tally.failed,
    });
    eprintln!("{}/{} step(s) passed", tally.passed, steps.len());
    let Some(first) = first_failure else {
        return Ok(summary);
    };
    println!("{summary}");
    Err(Failure::Other("StepFailed", first.message))
}
