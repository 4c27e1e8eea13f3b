//! `fuzzy_test`: merobox's timed load test, on tabnode nodes.
//!
//! For `duration_minutes` (or `--fuzzy-minutes`), it picks one of its `operations` at random by
//! `weight`, and a random node of its `nodes` (`{{random_node}}`, and `{{random_executor}}` that
//! node's `executor_key`), and runs the operation's steps (`call`, `assert`, `wait`) on a copy of
//! the workflow's variables: `{{random_int(A, B)}}`, `{{random_float(A, B)}}`,
//! `{{random_string(N)}}`, `{{random_choice([a, b])}}`, `{{uuid}}` and `{{timestamp}}` are
//! generated in each step's fields, and a call's resolved `args` are bound as `fuzzy_ARG` (so a
//! read can ask for the `{{fuzzy_key}}` just written, and check for its `{{fuzzy_value}}`).
//! Assertions do not stop the run: each statement counts as passed or failed, and the step
//! passes when the pass rate reaches `success_threshold` (at least one assertion having run). A
//! call that fails counts as a call error, as merobox logs one and goes on. Then it waits
//! `operation_delay_ms`; every `summary_interval_seconds` a progress line goes to stderr.
//!
//! The random choices come from one seed per run (`--fuzzy-seed`, else a random one; printed),
//! so a failing run's choices can be repeated. The step is read whole before anything runs: an
//! unknown field or a bad value is a `BadWorkflow` naming it.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rand::distr::weighted::WeightedIndex;
use rand::distr::Alphanumeric;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Map, Value};

use super::steps::{field, statements};
use super::values::{capture, resolve, Missing, Vars};
use super::{Runner, StepError};

/// The run's random source and what the command line says of fuzzy tests.
pub struct Fuzz {
    pub seed: u64,
    /// Every fuzzy_test's duration in minutes, instead of its `duration_minutes`.
    pub minutes: Option<f64>,
    rng: ChaCha8Rng,
}

impl Fuzz {
    /// From `--fuzzy-seed` (else a random seed) and `--fuzzy-minutes`.
    pub fn new(seed: Option<u64>, minutes: Option<f64>) -> Self {
        let seed = seed.unwrap_or_else(|| getrandom::u64().unwrap_or(0));
        Self {
            seed,
            minutes,
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }
}

/// The fields of a fuzzy_test step, its nodes and its operations, and of the steps an
/// operation may hold (merobox's models for them, less what this runner does not read).
const STEP_FIELDS: &[&str] = &[
    "name",
    "type",
    "description",
    "outputs",
    "duration_minutes",
    "summary_interval_seconds",
    "operation_delay_ms",
    "success_threshold",
    "context_id",
    "nodes",
    "operations",
];
const NODE_FIELDS: &[&str] = &["name", "executor_key"];
const OPERATION_FIELDS: &[&str] = &["name", "weight", "steps", "description"];
const COMMON_FIELDS: &[&str] = &["type", "name", "description", "outputs"];
const CALL_FIELDS: &[&str] = &[
    "node",
    "context_id",
    "method",
    "args",
    "executor_public_key",
    "expected_failure",
    "allow_failure",
];
const ASSERT_FIELDS: &[&str] = &["statements", "non_blocking"];
const WAIT_FIELDS: &[&str] = &["seconds", "message"];

/// What merobox's exported variables hold, captured by the step's `outputs:` too.
const EXPORTS: [&str; 6] = [
    "fuzzy_test_total_patterns",
    "fuzzy_test_total_assertions",
    "fuzzy_test_assertions_passed",
    "fuzzy_test_assertions_failed",
    "fuzzy_test_pass_rate",
    "fuzzy_test_had_exception",
];

/// One weighted operation.
struct Operation {
    name: String,
    weight: f64,
    steps: Vec<Value>,
}

/// A fuzzy_test step as read (its text fields still to be resolved when it runs).
struct Plan {
    minutes: f64,
    summary_every: Duration,
    delay: Duration,
    threshold: f64,
    /// Each node's name and executor key, as written.
    nodes: Vec<(Value, Option<Value>)>,
    operations: Vec<Operation>,
}

type Fields<'a> = &'a Map<String, Value>;

fn mapping<'a>(value: &'a Value, at: &str) -> Result<Fields<'a>, String> {
    value
        .as_object()
        .ok_or_else(|| format!("{at}: must be a mapping, got {value}"))
}

fn only(fields: Fields, allowed: &[&[&str]], at: &str) -> Result<(), String> {
    match fields
        .keys()
        .find(|k| !allowed.iter().any(|set| set.contains(&k.as_str())))
    {
        Some(unknown) => Err(format!(
            "{at}{unknown}: unknown field (the fields read here: {})",
            allowed.concat().join(", ")
        )),
        None => Ok(()),
    }
}

/// A number field within `range`, or `default` when absent.
fn number(
    fields: Fields,
    name: &str,
    default: Option<f64>,
    valid: impl Fn(f64) -> bool,
    what: &str,
) -> Result<f64, String> {
    match (fields.get(name), default) {
        (None, Some(default)) => Ok(default),
        (None, None) => Err(format!("{name}: required ({what})")),
        (Some(value), _) => value
            .as_f64()
            .filter(|n| n.is_finite() && valid(*n))
            .ok_or_else(|| format!("{name}: must be {what}, got {value}")),
    }
}

fn text_field<'a>(fields: Fields<'a>, name: &str, at: &str) -> Result<&'a Value, String> {
    match fields.get(name) {
        Some(value @ Value::String(_)) => Ok(value),
        Some(other) => Err(format!("{at}{name}: must be text, got {other}")),
        None => Err(format!("{at}{name}: required")),
    }
}

/// A node name as written: known to the workflow unless it is a placeholder.
fn node_name(value: &Value, known: &[String], at: &str) -> Result<(), String> {
    let name = value.as_str().unwrap_or_default();
    if name.contains("{{") || known.iter().any(|k| k == name) {
        return Ok(());
    }
    Err(format!(
        "{at}: no node {name:?} in this workflow (its nodes: {})",
        known.join(", ")
    ))
}

impl Plan {
    /// Reads a fuzzy_test step; `known` are the workflow's node names.
    fn read(step: &Value, known: &[String]) -> Result<Self, String> {
        let fields = mapping(step, "the step")?;
        only(fields, &[STEP_FIELDS], "")?;
        let minutes = number(
            fields,
            "duration_minutes",
            None,
            |n| n > 0.0,
            "a positive number",
        )?;
        let whole = |n: f64| n.fract() == 0.0;
        let summary = number(
            fields,
            "summary_interval_seconds",
            Some(60.0),
            |n| n > 0.0 && whole(n),
            "a positive whole number",
        )?;
        let delay = number(
            fields,
            "operation_delay_ms",
            Some(100.0),
            |n| n >= 0.0 && whole(n),
            "a whole number, 0 or more",
        )?;
        let threshold = number(
            fields,
            "success_threshold",
            Some(95.0),
            |n| (0.0..=100.0).contains(&n),
            "a percentage from 0 to 100",
        )?;
        text_field(fields, "context_id", "")?;
        if let Some(outputs) = fields.get("outputs") {
            mapping(outputs, "outputs")?;
        }
        let nodes = match fields.get("nodes") {
            Some(Value::Array(nodes)) if !nodes.is_empty() => nodes,
            _ => return Err("nodes: must be a non-empty list of {name, executor_key}".into()),
        };
        let nodes = nodes
            .iter()
            .enumerate()
            .map(|(i, node)| {
                let at = format!("nodes[{i}]");
                let node = mapping(node, &at)?;
                only(node, &[NODE_FIELDS], &format!("{at}."))?;
                let name = text_field(node, "name", &format!("{at}."))?;
                node_name(name, known, &format!("{at}.name"))?;
                let key = match node.get("executor_key") {
                    None => None,
                    Some(_) => Some(text_field(node, "executor_key", &format!("{at}."))?.clone()),
                };
                Ok((name.clone(), key))
            })
            .collect::<Result<_, String>>()?;
        let operations = match fields.get("operations") {
            Some(Value::Array(operations)) if !operations.is_empty() => operations,
            _ => return Err("operations: must be a non-empty list".into()),
        };
        let operations = operations
            .iter()
            .enumerate()
            .map(|(i, operation)| Operation::read(operation, known, &format!("operations[{i}]")))
            .collect::<Result<_, String>>()?;
        Ok(Self {
            minutes,
            summary_every: Duration::from_secs_f64(summary),
            delay: Duration::from_millis(delay as u64),
            threshold,
            nodes,
            operations,
        })
    }
}

impl Operation {
    fn read(value: &Value, known: &[String], at: &str) -> Result<Self, String> {
        let fields = mapping(value, at)?;
        only(fields, &[OPERATION_FIELDS], &format!("{at}."))?;
        let name = text_field(fields, "name", &format!("{at}."))?;
        let weight = number(fields, "weight", None, |n| n > 0.0, "a positive number")
            .map_err(|e| format!("{at}.{e}"))?;
        let steps = match fields.get("steps") {
            Some(Value::Array(steps)) if !steps.is_empty() => steps,
            _ => return Err(format!("{at}.steps: must be a non-empty list")),
        };
        for (j, step) in steps.iter().enumerate() {
            read_inner_step(step, known, &format!("{at}.steps[{j}]"))?;
        }
        Ok(Self {
            name: name.as_str().unwrap_or_default().to_owned(),
            weight,
            steps: steps.clone(),
        })
    }
}

/// Checks a step of an operation: a `call`, `assert` or `wait` with the fields those read, and
/// generators whose arguments read.
fn read_inner_step(step: &Value, known: &[String], at: &str) -> Result<(), String> {
    let fields = mapping(step, at)?;
    let dot = format!("{at}.");
    let step_type = text_field(fields, "type", &dot)?
        .as_str()
        .unwrap_or_default();
    let flag = |name: &str| match fields.get(name) {
        None | Some(Value::Bool(_)) => Ok(()),
        Some(other) => Err(format!("{dot}{name}: must be true or false, got {other}")),
    };
    match step_type {
        "call" => {
            only(fields, &[COMMON_FIELDS, CALL_FIELDS], &dot)?;
            node_name(
                text_field(fields, "node", &dot)?,
                known,
                &format!("{dot}node"),
            )?;
            text_field(fields, "context_id", &dot)?;
            text_field(fields, "method", &dot)?;
            if let Some(args) = fields.get("args") {
                mapping(args, &format!("{dot}args"))?;
            }
            flag("expected_failure")?;
            flag("allow_failure")?;
        }
        "assert" => {
            only(fields, &[COMMON_FIELDS, ASSERT_FIELDS], &dot)?;
            let statements = match fields.get("statements") {
                Some(Value::Array(s)) if !s.is_empty() => s,
                _ => return Err(format!("{dot}statements: must be a non-empty list")),
            };
            for (k, statement) in statements.iter().enumerate() {
                let readable = match statement {
                    Value::String(_) => true,
                    Value::Object(s) => {
                        s.get("statement").is_some_and(Value::is_string)
                            && s.keys().all(|k| k == "statement" || k == "message")
                    }
                    _ => false,
                };
                if !readable {
                    return Err(format!(
                        "{dot}statements[{k}]: must be text or {{statement, message}}, got {statement}"
                    ));
                }
            }
            flag("non_blocking")?;
        }
        "wait" => {
            only(fields, &[COMMON_FIELDS, WAIT_FIELDS], &dot)?;
            number(fields, "seconds", None, |n| n >= 0.0, "0 or more seconds")
                .map_err(|e| format!("{dot}{e}"))?;
        }
        other => {
            return Err(format!(
                "{dot}type: {other:?} is not a step fuzzy_test runs (call, assert, wait)"
            ))
        }
    }
    if let Some(outputs) = fields.get("outputs") {
        mapping(outputs, &format!("{dot}outputs"))?;
    }
    check_generators(step).map_err(|e| format!("{at}: {e}"))
}

/// Every fuzzy_test among `steps` (and in their `repeat`s), read as [`Plan::read`] reads it,
/// before anything runs: the first that does not read, said with where it is.
pub fn check_steps(steps: &[Value], known: &[String], prefix: &str) -> Result<(), String> {
    for (i, step) in steps.iter().enumerate() {
        let index = format!("{prefix}{}", i + 1);
        match step["type"].as_str() {
            Some("fuzzy_test") => {
                Plan::read(step, known).map_err(|e| {
                    let name = step["name"].as_str().unwrap_or("(unnamed)");
                    format!("step {index} {name:?} (fuzzy_test): {e}")
                })?;
            }
            Some("repeat") => {
                if let Some(inner) = step["steps"].as_array() {
                    check_steps(inner, known, &format!("{index}."))?;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// A value generated afresh wherever `{{NAME(ARGS)}}` or `{{NAME}}` names one.
enum Generator {
    Int(i64, i64),
    Float(f64, f64),
    Text(usize),
    Choice(Vec<String>),
    Timestamp,
    Uuid,
}

fn generator_pattern() -> regex_lite::Regex {
    regex_lite::Regex::new(r"\{\{(\w+)(?:\(([^)]*)\))?\}\}").expect("a valid pattern")
}

impl Generator {
    /// `None` when `name` is not a generator (a variable, resolved as any other).
    fn parse(name: &str, args: &str) -> Option<Result<Self, String>> {
        let pair = |what: &str| -> Result<(String, String), String> {
            match args.split(',').map(str::trim).collect::<Vec<_>>()[..] {
                [a, b] => Ok((a.to_owned(), b.to_owned())),
                _ => Err(format!("{name}({args}): takes two {what}")),
            }
        };
        let bad = |e: &dyn std::fmt::Display| format!("{name}({args}): {e}");
        Some(match name {
            "random_int" => pair("integers").and_then(|(a, b)| {
                let (a, b): (i64, i64) = (
                    a.parse().map_err(|e| bad(&e))?,
                    b.parse().map_err(|e| bad(&e))?,
                );
                match a <= b {
                    true => Ok(Self::Int(a, b)),
                    false => Err(bad(&"the first must not be above the second")),
                }
            }),
            "random_float" => pair("numbers").and_then(|(a, b)| {
                let (a, b): (f64, f64) = (
                    a.parse().map_err(|e| bad(&e))?,
                    b.parse().map_err(|e| bad(&e))?,
                );
                match a.is_finite() && b.is_finite() {
                    true => Ok(Self::Float(a, b)),
                    false => Err(bad(&"takes finite numbers")),
                }
            }),
            "random_string" => args.trim().parse().map(Self::Text).map_err(|e| bad(&e)),
            "random_choice" => {
                let choices: Vec<String> = args
                    .trim()
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .split(',')
                    .map(|c| c.trim().trim_matches(['\'', '"']).to_owned())
                    .collect();
                match choices.iter().any(|c| !c.is_empty()) {
                    true => Ok(Self::Choice(choices)),
                    false => Err(bad(&"takes a list, [a, b, c]")),
                }
            }
            "timestamp" => Ok(Self::Timestamp),
            "uuid" => Ok(Self::Uuid),
            _ => return None,
        })
    }

    fn value(&self, rng: &mut ChaCha8Rng) -> String {
        match self {
            Self::Int(a, b) => rng.random_range(*a..=*b).to_string(),
            Self::Float(a, b) => (a + (b - a) * rng.random::<f64>()).to_string(),
            Self::Text(n) => (0..*n)
                .map(|_| char::from(rng.sample(Alphanumeric)))
                .collect(),
            Self::Choice(choices) => choices[rng.random_range(0..choices.len())].clone(),
            Self::Timestamp => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0)
                .to_string(),
            Self::Uuid => uuid::Builder::from_random_bytes(rng.random())
                .into_uuid()
                .to_string(),
        }
    }
}

/// Every generator in the strings of `value` reads.
fn check_generators(value: &Value) -> Result<(), String> {
    match value {
        Value::String(text) => generator_pattern().captures_iter(text).try_for_each(|c| {
            match Generator::parse(&c[1], c.get(2).map_or("", |m| m.as_str())) {
                Some(Err(e)) => Err(e),
                _ => Ok(()),
            }
        }),
        Value::Array(items) => items.iter().try_for_each(check_generators),
        Value::Object(fields) => fields.values().try_for_each(check_generators),
        _ => Ok(()),
    }
}

/// `value` with a fresh value for every generator in its strings.
fn generate(value: &Value, pattern: &regex_lite::Regex, rng: &mut ChaCha8Rng) -> Value {
    match value {
        Value::String(text) => Value::String(
            pattern
                .replace_all(text, |c: &regex_lite::Captures| {
                    match Generator::parse(&c[1], c.get(2).map_or("", |m| m.as_str())) {
                        Some(Ok(generator)) => generator.value(rng),
                        _ => c[0].to_owned(),
                    }
                })
                .into_owned(),
        ),
        Value::Array(items) => {
            Value::Array(items.iter().map(|v| generate(v, pattern, rng)).collect())
        }
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(k, v)| (k.clone(), generate(v, pattern, rng)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// How one operation went.
#[derive(Default)]
struct OperationTally {
    runs: u64,
    passed: u64,
    failed: u64,
    /// Steps (calls) that failed: counted, not assertions (merobox logs them and goes on).
    step_errors: u64,
    /// Each failed assertion's description, how often.
    failures: BTreeMap<String, u64>,
}

impl OperationTally {
    fn rate(&self) -> f64 {
        pass_rate(self.passed, self.failed)
    }
}

/// A pass rate in percent; 100 when nothing was asserted.
fn pass_rate(passed: u64, failed: u64) -> f64 {
    match passed + failed {
        0 => 100.0,
        total => passed as f64 * 100.0 / total as f64,
    }
}

/// How the whole test went.
struct Tally {
    operations: Vec<OperationTally>,
    /// The last few failures (assertions and steps), for the report.
    recent: VecDeque<String>,
}

const RECENT_FAILURES: usize = 5;

/// How much of a failure's line the report keeps (an answer may be a whole store).
const FAILURE_LINE_CHARS: usize = 240;

impl Tally {
    fn remember(&mut self, line: String) {
        if self.recent.len() == RECENT_FAILURES {
            self.recent.pop_front();
        }
        let mut line: String = line.chars().take(FAILURE_LINE_CHARS).collect();
        if line.len() >= FAILURE_LINE_CHARS {
            line.push('…');
        }
        self.recent.push_back(line);
    }

    fn sum(&self, of: impl Fn(&OperationTally) -> u64) -> u64 {
        self.operations.iter().map(of).sum()
    }

    fn runs(&self) -> u64 {
        self.sum(|o| o.runs)
    }

    fn passed(&self) -> u64 {
        self.sum(|o| o.passed)
    }

    fn failed(&self) -> u64 {
        self.sum(|o| o.failed)
    }

    fn rate(&self) -> f64 {
        pass_rate(self.passed(), self.failed())
    }

    /// One line: operations run, assertions passed and failed, pass rate.
    fn line(&self) -> String {
        format!(
            "{} operation(s), assertions {} passed, {} failed ({:.1}%), {} call error(s)",
            self.runs(),
            self.passed(),
            self.failed(),
            self.rate(),
            self.sum(|o| o.step_errors)
        )
    }
}

/// `1m 5s`, `42s`, as merobox writes a duration.
fn minutes_and_seconds(duration: Duration) -> String {
    let seconds = duration.as_secs();
    match seconds / 60 {
        0 => format!("{seconds}s"),
        minutes => format!("{minutes}m {}s", seconds % 60),
    }
}

impl Runner {
    /// Runs a fuzzy_test step (see the module's doc).
    pub(super) fn fuzzy_test(&mut self, step: &Value, vars: &mut Vars) -> Result<(), StepError> {
        let known: Vec<String> = self.nodes.keys().cloned().collect();
        let plan = Plan::read(step, &known).map_err(|e| StepError::new("BadStep", e))?;
        let context_id = field(step, "context_id", vars)?.unwrap_or_default();
        let mut nodes = Vec::new();
        for (name, key) in &plan.nodes {
            let key = key
                .as_ref()
                .map(|k| resolve(k, vars, Missing::Keep))
                .transpose()?;
            nodes.push((resolve(name, vars, Missing::Keep)?, key));
        }
        let minutes = self.fuzz.minutes.unwrap_or(plan.minutes);
        let duration = Duration::from_secs_f64(minutes * 60.0);
        let seed = self.fuzz.seed;
        let names: Vec<String> = plan.operations.iter().map(|o| o.name.clone()).collect();
        eprintln!(
            "  fuzzy_test on {context_id}: {} operation(s) ({}) on {} node(s) for {minutes} min{}, seed {seed} (--fuzzy-seed {seed} makes the same choices)",
            names.len(),
            names.join(", "),
            nodes.len(),
            match self.fuzz.minutes {
                Some(_) => format!(" (--fuzzy-minutes; the workflow says {})", plan.minutes),
                None => String::new(),
            },
        );
        let weights = WeightedIndex::new(plan.operations.iter().map(|o| o.weight))
            .map_err(|e| StepError::new("BadStep", format!("operations' weights: {e}")))?;
        let pattern = generator_pattern();
        let mut tally = Tally {
            operations: plan.operations.iter().map(|_| Default::default()).collect(),
            recent: VecDeque::new(),
        };
        let started = Instant::now();
        let mut last_summary = started;
        let mut stopped = None;
        while started.elapsed() < duration {
            if let Err(stop) = super::interrupted() {
                stopped = Some(stop);
                break;
            }
            let chosen = self.fuzz.rng.sample(&weights);
            let node = &nodes[self.fuzz.rng.random_range(0..nodes.len())];
            let mut local = vars.clone();
            local.insert("_pattern_name".into(), json!(plan.operations[chosen].name));
            local.insert("_iteration".into(), json!(tally.runs() + 1));
            local.insert("random_node".into(), node.0.clone());
            if let Some(key) = &node.1 {
                local.insert("random_executor".into(), key.clone());
            }
            let operation = &plan.operations[chosen];
            let outcome = self.operation(operation, &pattern, &mut local, &mut tally, chosen);
            tally.operations[chosen].runs += 1;
            if let Err(stop) = outcome {
                stopped = Some(stop);
                break;
            }
            if last_summary.elapsed() >= plan.summary_every {
                last_summary = Instant::now();
                eprintln!(
                    "  … fuzzy_test {} / {}: {}; {}",
                    minutes_and_seconds(started.elapsed()),
                    minutes_and_seconds(duration),
                    tally.line(),
                    names
                        .iter()
                        .zip(&tally.operations)
                        .map(|(name, o)| format!("{name} {}", o.runs))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            if let Err(stop) = super::sleep(plan.delay) {
                stopped = Some(stop);
                break;
            }
        }
        self.fuzzy_report(&plan, &tally, started.elapsed(), minutes, vars, step)?;
        let (passed, failed) = (tally.passed(), tally.failed());
        let counts = format!(
            "{}, over {}",
            tally.line(),
            minutes_and_seconds(started.elapsed())
        );
        if let Some(stop) = stopped {
            return Err(StepError::new_owned(
                stop.kind,
                format!("{} ({counts})", stop.message),
            ));
        }
        if passed + failed == 0 {
            return Err(StepError::new(
                "NoAssertions",
                format!("no assertion ran, so nothing was checked ({counts})"),
            ));
        }
        if tally.rate() < plan.threshold {
            return Err(StepError::new(
                "BelowThreshold",
                format!(
                    "pass rate {:.1}% is below the success threshold {}% ({counts})",
                    tally.rate(),
                    plan.threshold
                ),
            ));
        }
        Ok(())
    }

    /// Runs one operation's steps on `vars` (a copy for this run of it); `Err` only when the
    /// runner is told to stop.
    fn operation(
        &mut self,
        operation: &Operation,
        pattern: &regex_lite::Regex,
        vars: &mut Vars,
        tally: &mut Tally,
        index: usize,
    ) -> Result<(), StepError> {
        for step in &operation.steps {
            let step = generate(step, pattern, &mut self.fuzz.rng);
            let step_type = step["type"].as_str().unwrap_or_default();
            let outcome = match step_type {
                "call" => {
                    if let Some(Value::Object(args)) = field(&step, "args", vars)? {
                        for (name, value) in args {
                            vars.insert(format!("_fuzzy_args_{name}"), value.clone());
                            vars.insert(format!("fuzzy_{name}"), value);
                        }
                    }
                    self.call(&step, vars)
                }
                "assert" => statements(&step, "assert", vars).map(|outcomes| {
                    for outcome in outcomes {
                        let counts = &mut tally.operations[index];
                        if outcome.passed {
                            counts.passed += 1;
                            continue;
                        }
                        counts.failed += 1;
                        let description: String = outcome.description.chars().take(80).collect();
                        *counts.failures.entry(description).or_default() += 1;
                        tally.remember(format!(
                            "{}: {} ({})",
                            operation.name, outcome.description, outcome.detail
                        ));
                    }
                }),
                _ => self.step(&step, step_type, vars),
            };
            // The steps' own notes ("holds: …") would be thousands; the report sums them up.
            self.notes.clear();
            match outcome {
                Err(error) if error.kind == "Interrupted" => return Err(error),
                Err(error) => {
                    tally.operations[index].step_errors += 1;
                    let method = step["method"].as_str().unwrap_or(step_type);
                    tally.remember(format!(
                        "{}: {method} failed: {}: {}",
                        operation.name, error.kind, error.message
                    ));
                }
                Ok(()) => {}
            }
        }
        Ok(())
    }

    /// The step's notes, its `fuzzy` field in the JSON line, and merobox's exported variables.
    fn fuzzy_report(
        &mut self,
        plan: &Plan,
        tally: &Tally,
        ran: Duration,
        minutes: f64,
        vars: &mut Vars,
        step: &Value,
    ) -> Result<(), StepError> {
        let seed = self.fuzz.seed;
        self.note(&format!(
            "ran {} of {minutes} min, seed {seed}; {}; success threshold {}%",
            minutes_and_seconds(ran),
            tally.line(),
            plan.threshold
        ));
        let mut by_operation = Map::new();
        for (operation, counts) in plan.operations.iter().zip(&tally.operations) {
            self.note(&format!(
                "  {}: {} run(s), assertions {} passed, {} failed ({:.1}%), {} call error(s)",
                operation.name,
                counts.runs,
                counts.passed,
                counts.failed,
                counts.rate(),
                counts.step_errors
            ));
            let mut common: Vec<(&String, &u64)> = counts.failures.iter().collect();
            common.sort_by(|a, b| b.1.cmp(a.1));
            for (description, times) in common.into_iter().take(3) {
                self.note(&format!("    failed {times} time(s): {description}"));
            }
            by_operation.insert(
                operation.name.clone(),
                json!({
                    "runs": counts.runs,
                    "passed": counts.passed,
                    "failed": counts.failed,
                    "callErrors": counts.step_errors,
                }),
            );
        }
        if !tally.recent.is_empty() {
            self.note("recent failures:");
            for line in &tally.recent {
                self.note(&format!("  {line}"));
            }
        }
        self.step_fields.insert(
            "fuzzy".into(),
            json!({
                "seed": seed.to_string(),
                "minutes": minutes,
                "ranMs": ran.as_millis() as u64,
                "operations": tally.runs(),
                "passed": tally.passed(),
                "failed": tally.failed(),
                "callErrors": tally.sum(|o| o.step_errors),
                "passRate": tally.rate(),
                "threshold": plan.threshold,
                "byOperation": by_operation,
            }),
        );
        let exported = [
            json!(tally.runs()),
            json!(tally.passed() + tally.failed()),
            json!(tally.passed()),
            json!(tally.failed()),
            json!(tally.rate()),
            json!(super::interrupted().is_err()),
        ];
        let data: Map<String, Value> = EXPORTS
            .iter()
            .map(|name| name.to_string())
            .zip(exported)
            .collect();
        let data = Value::Object(data);
        for name in EXPORTS {
            vars.insert(name.into(), data[name].clone());
        }
        if let Some(outputs) = step.get("outputs") {
            capture(outputs, &data, "", vars)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(step: Value) -> Result<Plan, String> {
        Plan::read(&step, &["n-1".into(), "n-2".into()])
    }

    fn step() -> Value {
        json!({
            "name": "load", "type": "fuzzy_test", "duration_minutes": 0.1,
            "context_id": "{{ctx}}",
            "nodes": [{"name": "n-1", "executor_key": "{{k}}"}, {"name": "n-2"}],
            "operations": [{"name": "w", "weight": 2, "steps": [
                {"type": "call", "node": "{{random_node}}", "context_id": "{{ctx}}",
                 "method": "set", "args": {"key": "k_{{random_int(1, 9)}}"}},
                {"type": "assert", "non_blocking": true, "statements": ["is_set({{fuzzy_key}})"]},
                {"type": "wait", "seconds": 1}
            ]}]
        })
    }

    #[test]
    fn a_fuzzy_test_reads_with_merobox_defaults() {
        let plan = plan(step()).unwrap();
        assert_eq!(plan.minutes, 0.1);
        assert_eq!(plan.summary_every, Duration::from_secs(60));
        assert_eq!(plan.delay, Duration::from_millis(100));
        assert_eq!(plan.threshold, 95.0);
        assert_eq!(plan.operations[0].weight, 2.0);
    }

    #[test]
    fn unknown_fields_and_bad_values_are_named() {
        let cases: Vec<(Box<dyn Fn(&mut Value)>, &str)> = vec![
            (
                Box::new(|s| s["duration_minute"] = json!(1)),
                "duration_minute: unknown field",
            ),
            (
                Box::new(|s| s["duration_minutes"] = json!(0)),
                "duration_minutes: must be a positive number",
            ),
            (
                Box::new(|s| s["success_threshold"] = json!(101)),
                "success_threshold: must be a percentage",
            ),
            (
                Box::new(|s| s["operation_delay_ms"] = json!("50")),
                "operation_delay_ms: must be a whole number",
            ),
            (
                Box::new(|s| s["nodes"] = json!([])),
                "nodes: must be a non-empty list",
            ),
            (
                Box::new(|s| s["nodes"][1]["name"] = json!("n-9")),
                "nodes[1].name: no node \"n-9\"",
            ),
            (
                Box::new(|s| s["operations"][0]["weight"] = json!(-1)),
                "operations[0].weight: must be a positive number",
            ),
            (
                Box::new(|s| s["operations"][0]["steps"][0]["type"] = json!("script")),
                "operations[0].steps[0].type: \"script\" is not a step",
            ),
            (
                Box::new(|s| s["operations"][0]["steps"][0]["token"] = json!("t")),
                "operations[0].steps[0].token: unknown field",
            ),
            (
                Box::new(|s| {
                    s["operations"][0]["steps"][0]["args"]["key"] = json!("{{random_int(9, 1)}}")
                }),
                "random_int(9, 1): the first must not be above",
            ),
            (
                Box::new(|s| s["operations"][0]["steps"][2]["seconds"] = json!(-1)),
                "operations[0].steps[2].seconds: must be 0 or more",
            ),
        ];
        for (change, expected) in cases {
            let mut step = step();
            change(&mut step);
            let error = plan(step).err().unwrap_or_default();
            assert!(
                error.contains(expected),
                "{error:?} should say {expected:?}"
            );
        }
    }

    #[test]
    fn one_seed_makes_the_same_values() {
        let pattern = generator_pattern();
        let value = json!({"a": "{{random_int(1, 1000000)}}-{{uuid}}-{{random_string(8)}}",
            "b": ["{{random_choice([x, y, z])}}", "{{random_float(0, 1)}}", "{{ctx}}"]});
        let make = |seed| generate(&value, &pattern, &mut ChaCha8Rng::seed_from_u64(seed));
        assert_eq!(make(7), make(7));
        assert_ne!(make(7), make(8));
        let made = make(7);
        assert_eq!(
            made["b"][2],
            json!("{{ctx}}"),
            "a variable is left to resolve"
        );
        let parts: Vec<&str> = made["a"].as_str().unwrap().splitn(2, '-').collect();
        assert!(parts[0]
            .parse::<u32>()
            .is_ok_and(|n| (1..=1_000_000).contains(&n)));
        assert!(["x", "y", "z"].contains(&made["b"][0].as_str().unwrap()));
    }
}
