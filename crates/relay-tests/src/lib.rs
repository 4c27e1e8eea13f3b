//! The relay's service tests and load test. The relay is a Cargo workspace of its own
//! (`crates/relay`, libp2p 0.57 with WebRTC-direct), so its tests, which drive it with tabnode
//! peers on libp2p 0.56, live here and run the binary `make relay` builds.

use std::path::PathBuf;

/// The value of the sample `name` (no labels, or its labels written out) in a Prometheus text
/// exposition, as the relay's `/metrics` serves it; 0 if it is not there.
pub fn metric(body: &str, name: &str) -> f64 {
    body.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

/// The `tabnode-relay` binary: `TABNODE_RELAY` if set, else the one `make relay` builds into the
/// top-level `target/release`.
pub fn relay_binary() -> PathBuf {
    let path = std::env::var_os("TABNODE_RELAY").map_or_else(
        || {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../target/release/tabnode-relay"
            ))
        },
        PathBuf::from,
    );
    assert!(
        path.is_file(),
        "no relay binary at {}: build it with `make relay`",
        path.display()
    );
    path
}
