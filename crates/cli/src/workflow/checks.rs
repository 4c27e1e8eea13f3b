//! `assert` and `json_assert` statements, read as merobox reads them.
//!
//! `assert`: `is_set(A)`, `is_empty(A)`, `contains(A, B)`, `not_contains(A, B)`,
//! `regex(A, PATTERN)`, `equal(A, B)` / `not_equal(A, B)` (and `equals` forms), and
//! `A OP B` with OP one of `== != >= <= > <` (numbers when both read as numbers, else text).
//! `json_assert`: `json_equal(A, B)`, `json_not_equal(A, B)`, `json_subset(A, B)` (and the
//! same without `json_`), each side a placeholder or JSON text. A placeholder that names no
//! variable fails the statement.

use serde_json::Value;

use super::values::{parse_json_text, resolve_text, text_of, Missing, Vars};
use super::StepError;

/// A statement's outcome: whether it held, and what it compared (for the message).
#[derive(Debug)]
pub struct Verdict {
    pub passed: bool,
    pub detail: String,
}

fn operand(text: &str, vars: &Vars) -> Result<Value, StepError> {
    resolve_text(text.trim(), vars, Missing::Fail)
}

/// `name(body)` when the statement is a call of `name`.
fn call<'a>(statement: &'a str, name: &str) -> Option<&'a str> {
    let lower = statement.to_ascii_lowercase();
    (lower.starts_with(&format!("{name}(")) && statement.ends_with(')'))
        .then(|| &statement[name.len() + 1..statement.len() - 1])
}

/// Splits `A, B` at the first comma outside JSON brackets and strings.
fn two_operands(body: &str) -> Option<(&str, &str)> {
    let (mut depth, mut in_string, mut escaped) = (0i32, false, false);
    for (at, c) in body.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' => escaped = true,
            '"' => in_string = !in_string,
            _ if in_string => {}
            '{' | '[' => depth += 1,
            '}' | ']' => depth -= 1,
            ',' if depth == 0 => return Some((body[..at].trim(), body[at + 1..].trim())),
            _ => {}
        }
    }
    None
}

fn is_set(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        _ => true,
    }
}

/// A number as Python's `float()` reads one: numbers, booleans and numeric text.
fn as_number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::Bool(b) => Some(f64::from(u8::from(*b))),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Equality as Python's `==` has it for JSON values: 1 == 1.0.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

/// Whether `right` is contained in `left`: every key of an object with a contained value,
/// every item of a list present.
fn subset(left: &Value, right: &Value) -> bool {
    match (left, right) {
        (Value::Object(l), Value::Object(r)) => r
            .iter()
            .all(|(k, v)| l.get(k).is_some_and(|lv| subset(lv, v))),
        (Value::Array(l), Value::Array(r)) => r.iter().all(|item| l.iter().any(|x| same(x, item))),
        _ => same(left, right),
    }
}

fn detail(left: &Value, right: &Value) -> String {
    format!("left={left}, right={right}")
}

/// One `assert` statement.
pub fn assert_statement(statement: &str, vars: &Vars) -> Result<Verdict, StepError> {
    let s = statement.trim();
    for (name, negate) in [("contains", false), ("not_contains", true)] {
        if let Some(body) = call(s, name) {
            let (a, b) = two_operands(body).ok_or_else(|| bad(statement))?;
            let (a, b) = (operand(a, vars)?, operand(b, vars)?);
            let found = text_of(&a).contains(&text_of(&b));
            return Ok(Verdict {
                passed: found != negate,
                detail: detail(&a, &b),
            });
        }
    }
    if let Some(body) = call(s, "regex") {
        let (a, pattern) = two_operands(body).ok_or_else(|| bad(statement))?;
        let (a, pattern) = (operand(a, vars)?, operand(pattern, vars)?);
        let regex = regex_lite::Regex::new(&text_of(&pattern)).map_err(|e| {
            StepError::new(
                "BadStep",
                format!("{statement}: not a regular expression: {e}"),
            )
        })?;
        return Ok(Verdict {
            passed: regex.is_match(&text_of(&a)),
            detail: detail(&a, &pattern),
        });
    }
    for (name, want_set) in [("is_set", true), ("is_empty", false)] {
        if let Some(body) = call(s, name) {
            let a = operand(body, vars)?;
            let empty_text = matches!(a.as_str(), Some("''" | "\"\"" | "[]" | "{}"));
            let set = is_set(&a) && !(name == "is_empty" && empty_text);
            return Ok(Verdict {
                passed: set == want_set,
                detail: format!("value={a}"),
            });
        }
    }
    for (name, negate) in [
        ("equal", false),
        ("equals", false),
        ("not_equal", true),
        ("not_equals", true),
    ] {
        if let Some(body) = call(s, name) {
            let (a, b) = body.split_once(',').ok_or_else(|| bad(statement))?;
            let (a, b) = (operand(a, vars)?, operand(b, vars)?);
            return Ok(Verdict {
                passed: same(&a, &b) != negate,
                detail: detail(&a, &b),
            });
        }
    }
    let op = ["==", "!=", ">=", "<=", ">", "<"]
        .iter()
        .filter_map(|op| s.find(&format!(" {op} ")).map(|at| (at, *op)))
        .min()
        .ok_or_else(|| bad(statement))?;
    let (left, right) = (&s[..op.0], &s[op.0 + op.1.len() + 2..]);
    let (a, b) = (operand(left, vars)?, operand(right, vars)?);
    let ordering = match (as_number(&a), as_number(&b)) {
        (Some(x), Some(y)) => x.partial_cmp(&y),
        _ => Some(text_of(&a).cmp(&text_of(&b))),
    };
    use std::cmp::Ordering::*;
    let passed = match (op.1, ordering) {
        (_, None) => false,
        ("==", Some(o)) => o == Equal,
        ("!=", Some(o)) => o != Equal,
        (">=", Some(o)) => o != Less,
        ("<=", Some(o)) => o != Greater,
        (">", Some(o)) => o == Greater,
        (_, Some(o)) => o == Less,
    };
    Ok(Verdict {
        passed,
        detail: detail(&a, &b),
    })
}

/// One `json_assert` statement.
pub fn json_statement(statement: &str, vars: &Vars) -> Result<Verdict, StepError> {
    let s = statement.trim();
    for (name, mode) in [
        ("json_not_equal", "not_equal"),
        ("not_equal", "not_equal"),
        ("json_equal", "equal"),
        ("equal", "equal"),
        ("json_subset", "subset"),
        ("subset", "subset"),
    ] {
        let Some(body) = call(s, name) else {
            continue;
        };
        let (a, b) = two_operands(body).ok_or_else(|| bad(statement))?;
        let a = parse_json_text(&operand(a, vars)?);
        let b = parse_json_text(&operand(b, vars)?);
        let passed = match mode {
            "equal" => same(&a, &b),
            "not_equal" => !same(&a, &b),
            _ => subset(&a, &b),
        };
        return Ok(Verdict {
            passed,
            detail: detail(&a, &b),
        });
    }
    Err(bad(statement))
}

fn bad(statement: &str) -> StepError {
    StepError::new(
        "BadStep",
        format!("{statement:?} is not a statement this step reads"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vars() -> Vars {
        let mut vars = Vars::new();
        vars.insert("count".into(), json!(2));
        vars.insert("text".into(), json!("hello world"));
        vars.insert("result".into(), json!({"output": {"a": 1, "b": [1, 2]}}));
        vars.insert("empty".into(), json!(""));
        vars
    }

    fn holds(statement: &str) -> bool {
        assert_statement(statement, &vars()).unwrap().passed
    }

    fn json_holds(statement: &str) -> bool {
        json_statement(statement, &vars()).unwrap().passed
    }

    #[test]
    fn assert_statements_read_as_merobox_reads_them() {
        assert!(holds("is_set({{count}})"));
        assert!(!holds("is_set({{empty}})"));
        assert!(holds("is_empty({{empty}})"));
        assert!(holds("{{count}} == 2"));
        assert!(holds("{{count}} == 2.0"));
        assert!(holds("{{count}} >= 1"));
        assert!(!holds("{{count}} > 2"));
        assert!(holds("{{text}} == 'hello world'"));
        assert!(holds("contains({{text}}, 'world')"));
        assert!(holds("not_contains({{text}}, 'bye')"));
        assert!(holds("regex({{text}}, '^hel+o')"));
        // As in merobox, a bare literal is text: the number 2 is not the text "2".
        assert!(!holds("equal({{count}}, 2)"));
        assert!(holds("equal({{text}}, hello world)"));
        assert!(holds("not_equal({{text}}, 'x')"));
        let err = assert_statement("is_set({{missing}})", &vars()).unwrap_err();
        assert_eq!(err.kind, "UnresolvedPlaceholder");
        assert_eq!(
            assert_statement("gibberish", &vars()).unwrap_err().kind,
            "BadStep"
        );
    }

    #[test]
    fn json_statements_compare_values_not_text() {
        assert!(json_holds(
            r#"json_equal({{result}}, {"output": {"b": [1, 2.0], "a": 1}})"#
        ));
        assert!(!json_holds(
            r#"json_equal({{result}}, {"output": {"a": 1}})"#
        ));
        assert!(json_holds(
            r#"json_subset({{result}}, {"output": {"a": 1}})"#
        ));
        assert!(json_holds(
            r#"json_not_equal({{result}}, {"output": null})"#
        ));
        assert!(json_holds(
            r#"json_equal({"a": 1, "b": 2}, {"b": 2, "a": 1})"#
        ));
    }
}
