//! Placeholders and captures as merobox has them.
//!
//! A step's fields may hold `{{name}}` placeholders, resolved from the workflow's variables when
//! the step runs: a field that is one placeholder and nothing else takes the variable's value
//! with its type (an object stays an object); a placeholder inside other text is replaced by
//! the value's text. A step's `outputs:` binds variables from its response: `name: field` or
//! `name: a.b.0.c` (a dotted path; a string on the way that holds JSON is read as JSON, and so
//! is a captured string), or `name: {field, path, json, target}`. `{{install.NODE}}`,
//! `{{context.NODE}}` and `{{identity.NODE}}` read the variables those steps set per node.

use std::collections::BTreeMap;

use serde_json::Value;

use super::StepError;

/// The workflow's variables.
pub type Vars = BTreeMap<String, Value>;

/// What became of a placeholder that names no variable.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    /// Left as written (merobox's default for a step's fields), with a warning.
    Keep,
    /// A failure (merobox's assertions: comparing against a placeholder's own text tests nothing).
    Fail,
}

/// The variable a placeholder names, by name or through the per-node aliases.
fn lookup<'a>(vars: &'a Vars, placeholder: &str) -> Option<&'a Value> {
    if let Some(value) = vars.get(placeholder) {
        return Some(value);
    }
    let (kind, node) = placeholder.split_once('.')?;
    let key = match kind {
        "install" => format!("app_id_{node}"),
        "context" => format!("context_id_{node}"),
        "identity" => format!("public_key_{node}"),
        _ => return None,
    };
    vars.get(&key)
}

fn unresolved(text: &str, placeholder: &str, missing: Missing) -> Result<(), StepError> {
    match missing {
        Missing::Fail => Err(StepError::new(
            "UnresolvedPlaceholder",
            format!("{text:?}: no variable {placeholder:?} is set"),
        )),
        Missing::Keep => {
            eprintln!("warning: {{{{{placeholder}}}}} names no variable; left as written");
            Ok(())
        }
    }
}

/// A string field resolved. A quoted literal ('x' or "x", no placeholder) loses its quotes, as
/// merobox reads an assertion's operands.
pub fn resolve_text(text: &str, vars: &Vars, missing: Missing) -> Result<Value, StepError> {
    let quoted = text.len() >= 2
        && ((text.starts_with('\'') && text.ends_with('\''))
            || (text.starts_with('"') && text.ends_with('"')));
    if quoted && !text.contains("{{") {
        return Ok(Value::String(text[1..text.len() - 1].to_owned()));
    }
    if !(text.contains("{{") && text.contains("}}")) {
        return Ok(Value::String(text.to_owned()));
    }
    if text.starts_with("{{") && text.ends_with("}}") && text.matches("{{").count() == 1 {
        let placeholder = text[2..text.len() - 2].trim();
        return match lookup(vars, placeholder) {
            Some(value) => Ok(value.clone()),
            None => unresolved(text, placeholder, missing).map(|()| Value::String(text.into())),
        };
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let Some(len) = rest[start..].find("}}") else {
            break;
        };
        out.push_str(&rest[..start]);
        let placeholder = rest[start + 2..start + len].trim();
        match lookup(vars, placeholder) {
            Some(value) => out.push_str(&text_of(value)),
            None => {
                unresolved(text, placeholder, missing)?;
                out.push_str(&rest[start..start + len + 2]);
            }
        }
        rest = &rest[start + len + 2..];
    }
    out.push_str(rest);
    Ok(Value::String(out))
}

/// A field of any shape resolved: every string in it, at any depth.
pub fn resolve(value: &Value, vars: &Vars, missing: Missing) -> Result<Value, StepError> {
    Ok(match value {
        Value::String(text) => resolve_text(text, vars, missing)?,
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| resolve(v, vars, missing))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(k, v)| Ok((k.clone(), resolve(v, vars, missing)?)))
                .collect::<Result<_, StepError>>()?,
        ),
        other => other.clone(),
    })
}

/// A value as text, as merobox puts it into a string: a string as itself, `None`, `True`,
/// `False`, a number as written; an object or array as JSON (merobox would print Python's repr).
pub fn text_of(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        other => other.to_string(),
    }
}

/// A string that holds JSON, read as JSON; anything else as it is.
pub fn parse_json_text(value: &Value) -> Value {
    match value {
        Value::String(s) if !s.trim().is_empty() => {
            serde_json::from_str(s.trim()).unwrap_or_else(|_| value.clone())
        }
        other => other.clone(),
    }
}

/// The value at a dotted path (`result.output`, `items.0.id`), reading JSON held in strings on
/// the way.
pub fn at_path(value: &Value, path: &str) -> Option<Value> {
    let mut current = value.clone();
    for segment in path.split('.') {
        current = parse_json_text(&current);
        current = match &current {
            Value::Array(items) => items.get(segment.parse::<usize>().ok()?)?.clone(),
            Value::Object(fields) => fields.get(segment)?.clone(),
            _ => return None,
        };
    }
    Some(parse_json_text(&current))
}

/// Binds the variables a step's `outputs:` names from its response `data`.
pub fn capture(
    outputs: &Value,
    data: &Value,
    node: &str,
    vars: &mut Vars,
) -> Result<(), StepError> {
    let Some(outputs) = outputs.as_object() else {
        return Err(StepError::new(
            "BadStep",
            "outputs: must be a mapping of variable: field".into(),
        ));
    };
    for (name, source) in outputs {
        let (target, value, source) = match source {
            Value::String(path) => (name.clone(), at_path(data, path), path.clone()),
            Value::Object(spec) if spec.get("field").is_some_and(Value::is_string) => {
                let field = spec["field"].as_str().unwrap_or_default();
                let target = spec
                    .get("target")
                    .and_then(Value::as_str)
                    .unwrap_or(name)
                    .replace("{node_name}", node);
                let mut value = data.get(field).cloned();
                if spec.get("json") == Some(&Value::Bool(true)) {
                    value = value.map(|v| parse_json_text(&v));
                }
                if let Some(path) = spec.get("path").and_then(Value::as_str) {
                    value = value.and_then(|v| at_path(&v, path));
                }
                (target, value, field.to_owned())
            }
            other => {
                return Err(StepError::new(
                    "BadStep",
                    format!("outputs.{name}: {other} is neither a field name nor {{field: ...}}"),
                ))
            }
        };
        let Some(value) = value else {
            let keys = data
                .as_object()
                .map(|o| o.keys().cloned().collect::<Vec<_>>().join(", "))
                .unwrap_or_else(|| format!("the response is {data}"));
            return Err(StepError::new(
                "OutputCaptureError",
                format!("outputs.{name} captures {source:?}, which the response does not have (it has: {keys})"),
            ));
        };
        vars.insert(target, value);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vars() -> Vars {
        let mut vars = Vars::new();
        vars.insert("ctx".into(), json!("C1"));
        vars.insert("n".into(), json!(3));
        vars.insert("result".into(), json!({"output": "v"}));
        vars.insert("app_id_node-1".into(), json!("A1"));
        vars
    }

    #[test]
    fn a_whole_placeholder_keeps_its_type_and_an_embedded_one_becomes_text() {
        let vars = vars();
        let keep = Missing::Keep;
        assert_eq!(
            resolve_text("{{result}}", &vars, keep).unwrap(),
            json!({"output": "v"})
        );
        assert_eq!(resolve_text("{{ n }}", &vars, keep).unwrap(), json!(3));
        assert_eq!(
            resolve_text("k_{{n}}_{{ctx}}", &vars, keep).unwrap(),
            json!("k_3_C1")
        );
        assert_eq!(
            resolve_text("{{install.node-1}}", &vars, keep).unwrap(),
            json!("A1")
        );
        assert_eq!(
            resolve_text("'quoted'", &vars, keep).unwrap(),
            json!("quoted")
        );
        assert_eq!(
            resolve(&json!({"a": ["{{ctx}}", 1]}), &vars, keep).unwrap(),
            json!({"a": ["C1", 1]})
        );
        // An unknown one stays as written, or fails where it must.
        assert_eq!(
            resolve_text("x{{nope}}", &vars, keep).unwrap(),
            json!("x{{nope}}")
        );
        let err = resolve_text("{{nope}}", &vars, Missing::Fail).unwrap_err();
        assert_eq!(err.kind, "UnresolvedPlaceholder");
    }

    #[test]
    fn captures_follow_paths_read_json_in_strings_and_name_what_is_missing() {
        let data =
            json!({"result": {"output": "7", "list": "[1,{\"id\":\"x\"}]"}, "contextId": "C"});
        let mut vars = Vars::new();
        let outputs = json!({
            "whole": "result",
            "out": "result.output",
            "id": "result.list.1.id",
            "ctx": {"field": "contextId", "target": "ctx_{node_name}"},
        });
        capture(&outputs, &data, "n1", &mut vars).unwrap();
        assert_eq!(vars["out"], json!(7));
        assert_eq!(vars["id"], json!("x"));
        assert_eq!(vars["ctx_n1"], json!("C"));
        assert_eq!(vars["whole"]["output"], json!("7"));
        let err = capture(&json!({"x": "nope"}), &data, "n1", &mut vars).unwrap_err();
        assert_eq!(err.kind, "OutputCaptureError");
        assert!(err.message.contains("contextId"), "{}", err.message);
    }
}
