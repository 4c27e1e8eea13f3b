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
use std::time::{Duration, Instant};

use rand::distr::weighted::WeightedIndex;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Map, Value};

use super::steps::{field, statements};
use super::values::{capture, resolve, text_of, Missing, Vars};
use super::{Runner, StepError};

mod generators;
mod plan;

use generators::{generate, generator_pattern};
pub use plan::check_steps;
use plan::{Operation, Plan};

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

/// What merobox's exported variables hold, captured by the step's `outputs:` too.
const EXPORTS: [&str; 6] = [
    "fuzzy_test_total_patterns",
    "fuzzy_test_total_assertions",
    "fuzzy_test_assertions_passed",
    "fuzzy_test_assertions_failed",
    "fuzzy_test_pass_rate",
    "fuzzy_test_had_exception",
];

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
        let context_id = text_of(&field(step, "context_id", vars)?.unwrap_or_default());
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
