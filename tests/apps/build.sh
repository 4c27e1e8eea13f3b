#!/usr/bin/env bash
# Builds every guest app in this workspace for wasm32 and copies each to dist/<crate>.wasm.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"
# The repo's .cargo/config.toml sets a wasm-bindgen test runner and a getrandom cfg meant for the
# node; guest apps are plain calimero modules, so they build without the cfg (the runner is unused).
export CARGO_TARGET_DIR="$here/target"
RUSTFLAGS="" \
  cargo build --release --target wasm32-unknown-unknown --workspace
mkdir -p dist
for wasm in target/wasm32-unknown-unknown/release/*.wasm; do
  cp "$wasm" "dist/$(basename "$wasm")"
  echo "built tests/apps/dist/$(basename "$wasm") ($(stat -c %s "$wasm") bytes)"
done
