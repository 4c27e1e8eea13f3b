//! How a command fails: a node error with its kind, or another kind with its message; and the
//! parsing of arguments that fails that way.

use serde_json::{json, Value};
use tabnode_node::NodeError;

/// A failure to report as `{"error": {"kind", "message"}}`.
pub enum Failure {
    Node(NodeError),
    Other(&'static str, String),
}

impl From<NodeError> for Failure {
    fn from(e: NodeError) -> Self {
        Self::Node(e)
    }
}

impl Failure {
    pub fn to_json(&self) -> Value {
        let (kind, message) = match self {
            Failure::Node(e) => (e.kind(), e.to_string()),
            Failure::Other(kind, m) => (*kind, m.clone()),
        };
        json!({"error": {"kind": kind, "message": message}})
    }
}

pub fn parse_json(what: &str, text: &str) -> Result<Value, Failure> {
    serde_json::from_str(text)
        .map_err(|e| Failure::Other("BadArgs", format!("{what} is not JSON: {e}")))
}

pub fn parse_id<T: std::str::FromStr<Err = tabnode_types::IdParseError>>(
    text: &str,
) -> Result<T, Failure> {
    text.parse()
        .map_err(|e: tabnode_types::IdParseError| Failure::Node(NodeError::BadId(e.to_string())))
}

/// A file read or written for a command; its failure names the path.
pub fn io_error(path: &std::path::Path, e: std::io::Error) -> Failure {
    Failure::Other("Io", format!("{}: {e}", path.display()))
}

/// Prints `{"error": {kind, message}}` on stdout and exits with `code`.
pub fn fail(code: i32, kind: &str, message: &str) -> ! {
    println!("{}", json!({"error": {"kind": kind, "message": message}}));
    std::process::exit(code);
}
