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

/// The variable a placeholder names: by name, through the per-node aliases, or (beyond
/// merobox, which leaves such a name unresolved) a dotted path into a variable,
/// `{{result.output}}`.
fn lookup(vars: &Vars, placeholder: &str) -> Option<Value> {
    if let Some(value) = vars.get(placeholder) {
        return Some(value.clone());
    }
    let (head, rest) = placeholder.split_once('.')?;
    let alias = match head {
        "install" => Some(format!("app_id_{rest}")),
        "context" => Some(format!("context_id_{rest}")),
        "identity" => Some(format!("public_key_{rest}")),
        _ => None,
    };
    if let Some(value) = alias.and_then(|key| vars.get(&key)) {
        return Some(value.clone());
    }
    at_path(vars.get(head)?, rest)
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
            Some(value) => Ok(value),
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
            Some(value) => out.push_str(&text_of(&value)),
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

/// A value as text, as merobox (Python's `str`) puts it into a string or compares it as
/// text: a string as itself, anything else as Python writes it (`None`, `True`,
/// `{'k': [1, 'v']}`), so that `contains({{files}}, '{{id}}')` finds `'file_0'` in a list.
pub fn text_of(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => python_repr(other),
    }
}

/// Python's `repr` of the value that `json.loads` would make of it.
fn python_repr(value: &Value) -> String {
    match value {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => python_str_repr(s),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(python_repr).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Object(fields) => {
            let fields: Vec<String> = fields
                .iter()
                .map(|(k, v)| format!("{}: {}", python_str_repr(k), python_repr(v)))
                .collect();
            format!("{{{}}}", fields.join(", "))
        }
    }
}

/// Python's `repr` of a string: single quotes, unless it holds one and no double quote.
fn python_str_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
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
    fn values_read_as_text_as_python_writes_them() {
        let value = json!([{"id": "file_0", "n": 1, "ok": true, "none": null}, "it's", "a\nb"]);
        assert_eq!(
            text_of(&value),
            r#"[{'id': 'file_0', 'n': 1, 'none': None, 'ok': True}, "it's", 'a\nb']"#
        );
        assert_eq!(text_of(&json!("plain")), "plain");
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
