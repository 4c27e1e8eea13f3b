//! A fuzzy_test step read and checked: its fields, nodes, operations and the steps those hold,
//! before anything runs (an unknown field or a bad value is an error naming it).

use std::time::Duration;

use serde_json::{Map, Value};

use super::generators::check_generators;

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

/// One weighted operation.
pub(super) struct Operation {
    pub name: String,
    pub weight: f64,
    pub steps: Vec<Value>,
}

/// A fuzzy_test step as read (its text fields still to be resolved when it runs).
pub(super) struct Plan {
    pub minutes: f64,
    pub summary_every: Duration,
    pub delay: Duration,
    pub threshold: f64,
    /// Each node's name and executor key, as written.
    pub nodes: Vec<(Value, Option<Value>)>,
    pub operations: Vec<Operation>,
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
    pub fn read(step: &Value, known: &[String]) -> Result<Self, String> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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

    /// The step with the field at `path` (its parent's path and its name) set to `value`.
    fn with(path: &str, value: Value) -> Value {
        let mut step = step();
        let (parent, name) = path.rsplit_once('/').unwrap();
        step.pointer_mut(parent).unwrap()[name] = value;
        step
    }

    #[test]
    fn unknown_fields_and_bad_values_are_named() {
        let steps = "/operations/0/steps";
        for (path, value, expected) in [
            (
                "/duration_minute",
                json!(1),
                "duration_minute: unknown field",
            ),
            (
                "/duration_minutes",
                json!(0),
                "duration_minutes: must be a positive number",
            ),
            (
                "/success_threshold",
                json!(101),
                "success_threshold: must be a percentage",
            ),
            (
                "/operation_delay_ms",
                json!("50"),
                "operation_delay_ms: must be a whole number",
            ),
            ("/nodes", json!([]), "nodes: must be a non-empty list"),
            (
                "/nodes/1/name",
                json!("n-9"),
                "nodes[1].name: no node \"n-9\"",
            ),
            (
                "/operations/0/weight",
                json!(-1),
                "operations[0].weight: must be a positive number",
            ),
            (
                &format!("{steps}/0/type"),
                json!("script"),
                "operations[0].steps[0].type: \"script\" is not a step",
            ),
            (
                &format!("{steps}/0/token"),
                json!("t"),
                "operations[0].steps[0].token: unknown field",
            ),
            (
                &format!("{steps}/0/args/key"),
                json!("{{random_int(9, 1)}}"),
                "random_int(9, 1): the first must not be above",
            ),
            (
                &format!("{steps}/2/seconds"),
                json!(-1),
                "operations[0].steps[2].seconds: must be 0 or more",
            ),
        ] {
            let error = plan(with(path, value)).err().unwrap_or_default();
            assert!(
                error.contains(expected),
                "{error:?} should say {expected:?}"
            );
        }
    }
}
