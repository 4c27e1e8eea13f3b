//! The `tabnode` binary run as a user runs it, on temporary homes.
#![allow(dead_code)] // each test file uses some of these

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

pub fn home(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tabnode-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

pub fn kv_store() -> String {
    guest_app("kv_store")
}

/// The path of a built guest app (tests/apps/dist/NAME.wasm).
pub fn guest_app(name: &str) -> String {
    let path = format!(
        "{}/../../tests/apps/dist/{name}.wasm",
        env!("CARGO_MANIFEST_DIR")
    );
    assert!(
        Path::new(&path).exists(),
        "{path} is missing; build it with `bash tests/apps/build.sh`"
    );
    path
}

/// Runs `tabnode --home HOME args...`; returns (exit code, parsed stdout).
pub fn tabnode(home: &Path, args: &[&str]) -> (i32, Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_tabnode"))
        .arg("--home")
        .arg(home)
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {stdout}"));
    (out.status.code().unwrap(), value)
}

pub fn ok(home: &Path, args: &[&str]) -> Value {
    let (code, value) = tabnode(home, args);
    assert_eq!(code, 0, "{args:?} failed: {value}");
    value
}

/// Runs `tabnode args...` with no `--home`; returns (exit code, stdout).
pub fn tabnode_raw(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tabnode"))
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    (out.status.code().unwrap(), stdout)
}
