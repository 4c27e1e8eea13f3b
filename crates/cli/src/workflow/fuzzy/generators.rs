//! The values a fuzzy_test generates afresh in its steps' fields: `{{random_int(A, B)}}`,
//! `{{random_float(A, B)}}`, `{{random_string(N)}}`, `{{random_choice([a, b])}}`, `{{uuid}}`,
//! `{{timestamp}}`; any other `{{name}}` is a variable, left to resolve.

use std::time::{SystemTime, UNIX_EPOCH};

use rand::distr::Alphanumeric;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::Value;

/// A value generated afresh wherever `{{NAME(ARGS)}}` or `{{NAME}}` names one.
enum Generator {
    Int(i64, i64),
    Float(f64, f64),
    Text(usize),
    Choice(Vec<String>),
    Timestamp,
    Uuid,
}

pub(super) fn generator_pattern() -> regex_lite::Regex {
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
pub(super) fn check_generators(value: &Value) -> Result<(), String> {
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
pub(super) fn generate(value: &Value, pattern: &regex_lite::Regex, rng: &mut ChaCha8Rng) -> Value {
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

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use serde_json::json;

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
