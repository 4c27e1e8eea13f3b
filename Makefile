# The two commands: `make run` and `make test`. Both install what is missing first.
.PHONY: run test setup apps pkg www relay native-test wasm-test types-test e2e-test examples-test bench-size bench bench-store bench-catchup bench-relay bench-peering bench-catchup-browser bench-scale bench-tabs bench-blob clean

CARGO ?= cargo
WASM_TARGET := wasm32-unknown-unknown

run: setup apps www relay
	node scripts/serve.mjs

test: setup apps www relay native-test wasm-test types-test e2e-test examples-test

setup:
	bash scripts/setup.sh

# Guest apps are built from source with calimero-sdk; no .wasm is committed.
apps:
	bash tests/apps/build.sh

# The node as the npm package `tabnode-web` in pkg/: crates/web built with the `wasm-release`
# profile, wasm-bindgen (--target web), wasm-opt, package.json and README (docs/api.md).
pkg:
	node scripts/build-pkg.mjs

www: pkg
	npx webpack --config webpack.config.js

# The relay is a Cargo workspace of its own (crates/relay: libp2p 0.57 with WebRTC-direct); its
# binary goes to the same target directory as the rest (CARGO_TARGET_DIR if set, else ./target).
TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)
RELAY_CARGO := --manifest-path crates/relay/Cargo.toml --target-dir $(TARGET_DIR)

relay:
	$(CARGO) build --release $(RELAY_CARGO)

native-test:
	$(CARGO) test --release $(RELAY_CARGO)
	$(CARGO) test --release --workspace

wasm-test:
	bash scripts/wasm-test.sh -p tabnode-store -p tabnode-runtime -p tabnode-net -p tabnode-web

# The JS API's TypeScript declarations, as an embedding app uses them.
types-test:
	npx tsc -p tests/types

# tests/e2e/cli-node.test.mjs runs the CLI beside a page.
e2e-test:
	$(CARGO) build --release -p tabnode-cli
	node --test --test-concurrency=1 tests/e2e/

# The package as apps outside this repo get it: `npm pack pkg/`, installed by a Vite app and a page
# of plain ES modules (examples/), each run in headless Chromium; and a test suite of three nodes
# and a relay written with the package's kit `tabnode-web/testing` (examples/test-suite).
examples-test: setup apps pkg relay
	bash scripts/examples.sh
	node --test --test-concurrency=1 tests/examples/ examples/test-suite/

clean:
	rm -rf pkg www/dist tests/apps/dist examples/.pack examples/*/node_modules examples/*/dist

# Runtime benchmark: native and in headless Chromium in one run (figures, not a test).
bench: setup apps
	$(CARGO) build --release -p tabnode-bench
	$(CARGO) build --release --target $(WASM_TARGET) -p tabnode-bench --lib
	wasm-bindgen --target web --out-dir bench/pkg $(TARGET_DIR)/$(WASM_TARGET)/release/tabnode_bench.wasm
	node bench/run.mjs $(or $(CALLS),500)

# The package's size per artifact (raw, gzip, brotli) and the time from navigation to a ready node
# in headless Chromium beside a blank page's, in one run (figures, not a test).
bench-size: setup pkg
	node bench/size.mjs $(or $(RUNS),5)

# Persistence benchmark (issue 4): node set/s against raw IndexedDB writes of the same shape, and
# bytes stored per entry; then the cold start of a context with ROWS rows of state (lazy start
# against a full read); in headless Chromium (figures, not a test).
bench-store: setup apps www relay
	node bench/store.mjs $(or $(CALLS),300)
	node bench/cold-start.mjs $(or $(ROWS),100000)

# Catch-up benchmark (issue 7), natively: a late joiner over DELTAS deltas (figures, not a test).
bench-catchup: setup apps
	$(CARGO) build --release -p tabnode-bench --bin tabnode-catchup
	$(TARGET_DIR)/release/tabnode-catchup tests/apps/dist/kv_store.wasm $(or $(DELTAS),10000)

# Relay load test (issue 8), on loopback: PEERS native peers against one relay with a per-IP
# connection limit LIMIT and RESERVATIONS reservations, publishing for SECS seconds; prints what got
# through, latency, and the relay's peak RSS and CPU time (figures; exits 1 if a limit leaks).
bench-relay: relay
	$(CARGO) build --release -p tabnode-relay-tests --bin relay-load
	$(TARGET_DIR)/release/relay-load --peers $(or $(PEERS),200) --limit $(or $(LIMIT),150) --reservations $(or $(RESERVATIONS),100) --seconds $(or $(SECS),20)

# Peering benchmark (issue 8): page-to-page latency and deltas/s over a direct WebRTC link and
# over the relay (reached over WebSocket and over WebRTC-direct), and the link's set-up time, in
# headless Chromium (figures, not a test).
bench-peering: setup apps www relay
	node bench/peering.mjs $(or $(CALLS),100) $(or $(BURST),200)

# Catch-up in the browser (issue 7): a late joiner over DELTAS deltas through the relay, with the
# bytes it received, in headless Chromium (figures, not a test).
bench-catchup-browser: setup apps www relay
	node bench/catchup-browser.mjs $(or $(DELTAS),2000)

# Guest speed at scale (issue 15): durable set/s and get/s through a BrowserNode at SIZES keys on
# each guest engine, the same binary on a bare host of the browser's engine (the limit), and
# raw IndexedDB puts, in headless Chromium (figures, not a test).
bench-scale: setup apps www relay
	node bench/scale.mjs $(or $(SIZES),100,1000,10000) $(or $(WINDOW),20)

# Blobs between members (issue 18), natively: B fetches a blob of each of SIZES MiB from A through
# the relay with the CLI, beside B's own read of it once held (figures, not a test).
bench-blob: setup apps relay
	$(CARGO) build --release -p tabnode-cli
	node bench/blob.mjs $(or $(SIZES),1,16,64) $(or $(RUNS),1)

# Tabs of one app on one node (tabnode-web/tabs): ms per call in the host tab and through a
# follower, and the takeover time when the host tab closes, in headless Chromium (figures, not a test).
bench-tabs: setup apps pkg
	node bench/tabs.mjs $(or $(CALLS),100) $(or $(ROUNDS),3)
