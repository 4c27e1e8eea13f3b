//! Shared by the node's integration tests.

/// A guest app from `tests/apps/dist` (built by `bash tests/apps/build.sh`).
pub fn guest(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/../../tests/apps/dist/{name}.wasm",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!("{path}: {e}; build the guest apps with `bash tests/apps/build.sh`")
    })
}
