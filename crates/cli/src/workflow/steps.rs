//! Each merobox step type on tabnode nodes, and the response data its `outputs:` capture from
//! (the fields merod's admin API answers with: `applicationId`, `contextId`,
//! `memberPublicKey`, `publicKey`, `invitation`, `blob_id`, `size`; a call's JSON-RPC answer
//! `{"jsonrpc", "id", "result": {"output"}}`).
//!
//! A tabnode node has one key: its identity as a member of every context and the executor of
//! its calls. So `create_identity` gives that key, `executor_public_key`, `granter_id`,
//! `grantee_id` and `invitee_id` are not checked against it, and an invitation is a bearer
//! invitation for the key that joins with it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::values::{capture, resolve, Missing, Vars};
use super::{Runner, StepError};

/// How long a join may take to bring the context's state (merobox: the workflow's own
/// `wait_for_sync` usually follows).
const JOIN_WAIT: Duration = Duration::from_secs(60);

/// How often `wait_for_sync` asks the nodes where they are.
const SYNC_POLL: Duration = Duration::from_millis(100);

/// The step types this runner does not do, with why.
pub fn unsupported(step_type: &str) -> Option<&'static str> {
    Some(match step_type {
        "script" => "it runs a script on the host or in a node's Docker container",
        "parallel" => "steps in parallel are not supported yet",
        "get_proposal" | "list_proposals" | "get_proposal_approvers" => {
            "proposals are not read by this runner yet"
        }
        _ => return None,
    })
}

/// A field of the step, resolved.
pub(super) fn field(step: &Value, name: &str, vars: &Vars) -> Result<Option<Value>, StepError> {
    step.get(name)
        .map(|v| resolve(v, vars, Missing::Keep))
        .transpose()
}

/// A required text field of the step, resolved.
fn text(step: &Value, name: &str, vars: &Vars) -> Result<String, StepError> {
    match field(step, name, vars)? {
        Some(Value::String(s)) => Ok(s),
        Some(Value::Number(n)) => Ok(n.to_string()),
        Some(other) => Err(StepError::new(
            "BadStep",
            format!("{name}: expected text, got {other}"),
        )),
        None => Err(StepError::new(
            "BadStep",
            format!("the step has no {name}:"),
        )),
    }
}

fn str_field<'a>(value: &'a Value, name: &str) -> &'a str {
    value[name].as_str().unwrap_or_default()
}

/// The invitation's role, from merobox's `capability`.
fn role_of(capability: &str) -> Result<&'static str, StepError> {
    match capability {
        "member" => Ok("member"),
        "admin" => Ok("admin"),
        "reader" => Ok("reader"),
        other => Err(StepError::new(
            "Unsupported",
            format!("capability {other:?}: tabnode invites as member, admin or reader"),
        )),
    }
}

/// A file a step names: relative to the current directory, as merobox takes it.
fn file_path(path: &str) -> Result<PathBuf, StepError> {
    let path = Path::new(path);
    let full = std::env::current_dir()
        .map_err(|e| StepError::new("Io", e.to_string()))?
        .join(path);
    if !full.is_file() {
        return Err(StepError::new(
            "Io",
            format!("{}: no such file (paths are relative to the directory the runner is started in, as with merobox)", full.display()),
        ));
    }
    Ok(full)
}

impl Runner {
    /// Runs one step (not `repeat`, which the caller unrolls); binds its outputs.
    pub fn step(
        &mut self,
        step: &Value,
        step_type: &str,
        vars: &mut Vars,
    ) -> Result<(), StepError> {
        let node_name = step.get("node").and_then(Value::as_str).unwrap_or_default();
        let data = match step_type {
            "install_application" => {
                if step.get("url").is_some() && step.get("path").is_none() {
                    return Err(StepError::new(
                        "Unsupported",
                        "install_application from a url: give a path".into(),
                    ));
                }
                let path = file_path(&text(step, "path", vars)?)?;
                let node = self.node(node_name)?;
                let answer = node.command(&["app", "install", &path.to_string_lossy()])?;
                let app_id = str_field(&answer, "app_id").to_owned();
                vars.insert(format!("app_id_{node_name}"), json!(app_id));
                json!({"applicationId": app_id, "id": app_id})
            }
            "create_context" => {
                let app = text(step, "application_id", vars)?;
                let data = self.create_context(node_name, &app, step, vars)?;
                vars.insert(format!("context_id_{node_name}"), data["contextId"].clone());
                data
            }
            "create_identity" => {
                let key = self.node(node_name)?.public_key.clone();
                vars.entry(format!("public_key_{node_name}"))
                    .or_insert_with(|| json!(key));
                json!({"publicKey": key})
            }
            "invite_identity" | "invite_open" => {
                let context_id = text(step, "context_id", vars)?;
                let capability = field(step, "capability", vars)?;
                let role = role_of(
                    capability
                        .as_ref()
                        .and_then(Value::as_str)
                        .unwrap_or("member"),
                )?;
                // An open invitation: any number of keys may join with it.
                let uses = if step_type == "invite_open" {
                    "1000000"
                } else {
                    "1"
                };
                let answer = self.node(node_name)?.command(&[
                    "context",
                    "invite",
                    &context_id,
                    "--role",
                    role,
                    "--uses",
                    uses,
                ])?;
                json!({"invitation": answer["invitation"]})
            }
            "join_context" | "join_open" => {
                let invitation = text(step, "invitation", vars)?;
                self.join(node_name, &invitation)?
            }
            "create_mesh" => self.create_mesh(step, vars)?,
            "call" => return self.call(step, vars),
            "wait" => {
                let seconds = step.get("seconds").and_then(Value::as_f64).unwrap_or(5.0);
                return super::sleep(Duration::from_secs_f64(seconds.max(0.0)));
            }
            "wait_for_sync" => return self.wait_for_sync(step, vars),
            "assert" | "json_assert" => return self.check(step, step_type, vars),
            "fuzzy_test" => return self.fuzzy_test(step, vars),
            "upload_blob" => {
                let path = file_path(&text(step, "file_path", vars)?)?;
                let context = field(step, "context_id", vars)?;
                let mut words = vec![
                    "blob".to_owned(),
                    "put".into(),
                    path.to_string_lossy().into(),
                ];
                if let Some(Value::String(context)) = context {
                    words.extend(["--context".into(), context]);
                }
                let words: Vec<&str> = words.iter().map(String::as_str).collect();
                let answer = self.node(node_name)?.command(&words)?;
                vars.insert(format!("blob_id_{node_name}"), answer["blob_id"].clone());
                json!({"blob_id": answer["blob_id"], "size": answer["size"]})
            }
            other => {
                let why = unsupported(other)
                    .unwrap_or("merobox has no such step, or this runner does not know it");
                return Err(StepError::new_owned(
                    "UnsupportedStep".into(),
                    format!("unsupported step: {other} ({why})"),
                ));
            }
        };
        if let Some(outputs) = step.get("outputs") {
            let node = step
                .get("context_node")
                .and_then(Value::as_str)
                .unwrap_or(node_name);
            capture(outputs, &data, node, vars)?;
        }
        Ok(())
    }

    fn create_context(
        &mut self,
        node_name: &str,
        app: &str,
        step: &Value,
        vars: &Vars,
    ) -> Result<Value, StepError> {
        let mut words = vec!["context".to_owned(), "create".into(), app.into()];
        if let Some(params) = field(step, "params", vars)? {
            let params = match params {
                Value::String(s) => s,
                other => other.to_string(),
            };
            words.extend(["--args".into(), params]);
        }
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        let node = self.node(node_name)?;
        let answer = node.command(&words)?;
        Ok(json!({
            "contextId": answer["context_id"],
            "id": answer["context_id"],
            "memberPublicKey": node.public_key,
        }))
    }

    /// Joins with an invitation and waits for the context's state.
    fn join(&mut self, node_name: &str, invitation: &str) -> Result<Value, StepError> {
        let node = self.node(node_name)?;
        let answer = node.command(&["context", "join", invitation])?;
        let context_id = str_field(&answer, "context_id").to_owned();
        node.await_synced(&context_id, JOIN_WAIT)?;
        Ok(json!({"contextId": context_id, "memberPublicKey": node.public_key}))
    }

    /// A context on `context_node`, and every other node in `nodes` invited and joined.
    fn create_mesh(&mut self, step: &Value, vars: &mut Vars) -> Result<Value, StepError> {
        let owner = text(step, "context_node", vars)?;
        let app = text(step, "application_id", vars)?;
        let role = role_of(
            step.get("capability")
                .and_then(Value::as_str)
                .unwrap_or("member"),
        )?;
        let data = self.create_context(&owner, &app, step, vars)?;
        let context_id = str_field(&data, "contextId").to_owned();
        vars.insert(format!("context_id_{owner}"), json!(context_id));
        let others: Vec<String> = step
            .get("nodes")
            .and_then(Value::as_array)
            .ok_or_else(|| StepError::new("BadStep", "create_mesh needs nodes: [...]".into()))?
            .iter()
            .filter_map(Value::as_str)
            .filter(|n| *n != owner)
            .map(str::to_owned)
            .collect();
        for name in &others {
            let key = self.node(name)?.public_key.clone();
            vars.entry(format!("public_key_{name}"))
                .or_insert(json!(key));
            if others.len() == 1 {
                vars.entry("public_key".into()).or_insert(json!(key));
            }
            let invite =
                self.node(&owner)?
                    .command(&["context", "invite", &context_id, "--role", role])?;
            self.join(name, str_field(&invite, "invitation"))?;
        }
        if step.get("outputs").is_none() {
            vars.entry("context_id".into()).or_insert(json!(context_id));
            vars.entry("member_public_key".into())
                .or_insert(data["memberPublicKey"].clone());
        }
        Ok(data)
    }

    /// `call`: the method on the node; `expected_failure` passes only if it fails,
    /// `allow_failure` either way. The error's fields are bound as merobox binds them.
    pub(super) fn call(&mut self, step: &Value, vars: &mut Vars) -> Result<(), StepError> {
        let node_name = text(step, "node", vars)?;
        let context_id = text(step, "context_id", vars)?;
        let method = text(step, "method", vars)?;
        let args = field(step, "args", vars)?.unwrap_or(json!({}));
        let args = args.to_string();
        let outcome = self
            .node(&node_name)?
            .command(&["call", &context_id, &method, &args]);
        let flag = |name: &str| step.get(name) == Some(&Value::Bool(true));
        let (expected_failure, allow_failure) = (flag("expected_failure"), flag("allow_failure"));
        let step_key = format!("execute_{node_name}_{method}");
        match outcome {
            Ok(answer) => {
                if expected_failure {
                    return Err(StepError::new(
                        "UnexpectedSuccess",
                        format!("{method} succeeded where the step expects it to fail"),
                    ));
                }
                let data = json!({
                    "jsonrpc": "2.0",
                    "id": 1,
                    "result": {"output": answer["output"]},
                });
                if allow_failure && step.get("outputs").is_none() {
                    for name in ["error_code", "error_type", "error_message", "error"] {
                        vars.insert(format!("{step_key}_{name}"), Value::Null);
                    }
                }
                if let Some(outputs) = step.get("outputs") {
                    capture(outputs, &data, &node_name, vars)?;
                }
                Ok(())
            }
            Err(error) if expected_failure || allow_failure => {
                let info = json!({
                    "success": false,
                    "error_code": Value::Null,
                    "error_type": error.kind,
                    "error_message": error.message,
                    "error": error.message,
                });
                match step.get("outputs").and_then(Value::as_object) {
                    Some(outputs) => {
                        for (name, source) in outputs {
                            if let Some(value) = source.as_str().and_then(|f| info.get(f)) {
                                vars.insert(name.clone(), value.clone());
                            }
                        }
                    }
                    None => {
                        for name in ["error_code", "error_type", "error_message", "error"] {
                            vars.insert(format!("{step_key}_{name}"), info[name].clone());
                        }
                    }
                }
                self.note(&format!(
                    "failed as allowed: {}: {}",
                    error.kind, error.message
                ));
                Ok(())
            }
            Err(error) => Err(error),
        }
    }

    /// Waits until every named node has the context at the same heads and root hash.
    fn wait_for_sync(&mut self, step: &Value, vars: &Vars) -> Result<(), StepError> {
        let context_id = text(step, "context_id", vars)?;
        let timeout = step.get("timeout").and_then(Value::as_f64).unwrap_or(30.0);
        let names: Vec<String> = step
            .get("nodes")
            .and_then(Value::as_array)
            .ok_or_else(|| StepError::new("BadStep", "wait_for_sync needs nodes: [...]".into()))?
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect();
        if names.is_empty() {
            return Err(StepError::new(
                "BadStep",
                "wait_for_sync needs nodes: [...]".into(),
            ));
        }
        let deadline = Instant::now() + Duration::from_secs_f64(timeout);
        loop {
            let mut positions = Vec::new();
            for name in &names {
                let node = self.node(name)?;
                node.drain();
                let position = node
                    .command(&["context", "position", &context_id])
                    .map(|p| (p["heads"].clone(), p["root_hash"].clone()));
                positions.push((name, position));
            }
            let first = positions[0].1.as_ref().ok();
            let all_same = positions
                .iter()
                .all(|(_, p)| p.is_ok() && p.as_ref().ok() == first);
            if all_same {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let seen: Vec<String> = positions
                    .iter()
                    .map(|(name, p)| match p {
                        Ok((heads, root)) => format!("{name}: root {root}, heads {heads}"),
                        Err(e) => format!("{name}: {}: {}", e.kind, e.message),
                    })
                    .collect();
                return Err(StepError::new(
                    "NotSynced",
                    format!(
                        "{context_id} not the same on every node after {timeout} s: {}",
                        seen.join("; ")
                    ),
                ));
            }
            super::sleep(SYNC_POLL)?;
        }
    }

    /// `assert` / `json_assert`: every statement is tried; the step fails naming each that
    /// did not hold.
    fn check(&mut self, step: &Value, step_type: &str, vars: &Vars) -> Result<(), StepError> {
        let mut failed = Vec::new();
        for outcome in statements(step, step_type, vars)? {
            match outcome.passed {
                true => self.note(&format!("holds: {}", outcome.statement)),
                false => failed.push(format!("{} ({})", outcome.description, outcome.detail)),
            }
        }
        if failed.is_empty() || step.get("non_blocking") == Some(&Value::Bool(true)) {
            return Ok(());
        }
        Err(StepError::new_owned(
            "AssertionFailed".into(),
            format!("does not hold: {}", failed.join("; ")),
        ))
    }
}

/// One statement of an `assert` or `json_assert`, tried.
pub struct StatementOutcome {
    pub statement: String,
    /// The statement's `message`, else the statement itself.
    pub description: String,
    pub passed: bool,
    /// What it compared, or why it could not be read.
    pub detail: String,
}

/// Tries every statement of an `assert` / `json_assert` step; a statement that cannot be read
/// (a placeholder that names no variable, no such statement) did not hold.
pub fn statements(
    step: &Value,
    step_type: &str,
    vars: &Vars,
) -> Result<Vec<StatementOutcome>, StepError> {
    let statements = step
        .get("statements")
        .and_then(Value::as_array)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| StepError::new("BadStep", "statements: must be a non-empty list".into()))?;
    Ok(statements
        .iter()
        .map(|statement| {
            let (text, message) = match statement {
                Value::String(s) => (s.as_str(), None),
                other => (
                    other["statement"].as_str().unwrap_or_default(),
                    other["message"].as_str(),
                ),
            };
            let verdict = if step_type == "assert" {
                super::checks::assert_statement(text, vars)
            } else {
                super::checks::json_statement(text, vars)
            };
            let (passed, detail) = match verdict {
                Ok(v) => (v.passed, v.detail),
                Err(e) => (false, e.message),
            };
            StatementOutcome {
                statement: text.to_owned(),
                description: message.unwrap_or(text).to_owned(),
                passed,
                detail,
            }
        })
        .collect())
}
