#!/usr/bin/env bash
# Runs wasm-bindgen-test suites in headless Chromium: `scripts/wasm-test.sh -p tabnode-store ...`.
# Release mode: wasmi interpreting guest apps needs optimised code, as in the shipped node.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
export CHROMEDRIVER="${CHROMEDRIVER:-/usr/bin/chromedriver}"
export WASM_BINDGEN_TEST_WEBDRIVER_JSON="$root/webdriver.json"
export WASM_BINDGEN_TEST_TIMEOUT="${WASM_BINDGEN_TEST_TIMEOUT:-120}"
exec cargo test --release --target wasm32-unknown-unknown "$@"
