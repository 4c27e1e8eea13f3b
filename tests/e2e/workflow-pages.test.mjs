// The project's workflows (tests/workflows/) on page nodes: `tabnode workflow run --nodes browser`
// (every node a BrowserNode in headless Chromium, through scripts/page-node.mjs) and `--nodes
// mixed` (native and page nodes in turn, in one context through the relay) give what they give
// on native nodes (crates/cli/tests/workflow.rs): the same steps pass, the failing ones fail at the
// same step with the same kind, and nothing the runner started outlives it. Needs the CLI and the
// relay (`cargo build --release -p tabnode-cli`, `make relay`), the package (`make pkg`) and Chromium.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createInterface } from 'node:readline';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { eventually } from './browser.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const targetDir = process.env.CARGO_TARGET_DIR ? path.resolve(process.env.CARGO_TARGET_DIR) : path.join(root, 'target');
const tabnode = path.join(targetDir, 'release/tabnode');

/** The process's children (Linux: /proc lists them). */
const childrenOf = (pid) => {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
};

/** Every process under `pid`, now. */
const descendants = (pid) => childrenOf(pid).flatMap((child) => [child, ...descendants(child)]);

const alive = (pid) => existsSync(`/proc/${pid}`) && !/^\S+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));

/**
 * Runs `tabnode workflow run FILE ...args` from the repository's root; its exit code, stdout's
 * JSON lines, stderr, and every process seen under it while it ran (polled every 50 ms).
 */
function runWorkflow(file, args, { env = process.env, onStarted } = {}) {
  assert.ok(existsSync(tabnode), `no CLI at ${tabnode}: cargo build --release -p tabnode-cli`);
  const child = spawn(tabnode, ['workflow', 'run', file, ...args], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines = [];
  let stderr = '';
  const seen = new Set();
  const poll = setInterval(() => descendants(child.pid).forEach((pid) => seen.add(pid)), 50);
  createInterface({ input: child.stdout }).on('line', (line) => lines.push(JSON.parse(line)));
  child.stderr.on('data', (chunk) => {
    stderr += chunk;
    if (onStarted && /^workflow .*node\(s\)/m.test(stderr)) {
      onStarted(child);
      onStarted = null;
    }
  });
  return new Promise((resolve) => child.once('close', (code) => {
    clearInterval(poll);
    resolve({ code, lines, stderr, seen: [...seen], steps: lines.filter((l) => l.type === 'step'), last: lines.at(-1) });
  }));
}

/** Nothing the run started is left: no node, no page node, no Chromium, no relay. */
async function assertAllStopped(run) {
  await eventually('every process the run started to be gone', () => run.seen.every((pid) => !alive(pid)), { ms: 10_000 });
}

for (const mode of ['browser', 'mixed']) {
  test(`--nodes ${mode}: two nodes invite, join and see each other's writes`, async () => {
    const run = await runWorkflow('tests/workflows/kv-store-two-nodes.yml', ['--nodes', mode]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.steps.length, 13 + 4 * 3, run.stderr);
    assert.ok(run.steps.every((s) => s.passed), run.stderr);
    assert.deepEqual(run.last, { type: 'done', workflow: 'kv-store on two nodes', passed: 13, total: 13, failed: 0 });
    const kinds = mode === 'browser' ? 'page, page' : 'native, page';
    assert.match(run.stderr, new RegExp(`on 2 node\\(s\\) \\(${kinds}\\)`));
    assert.ok(run.seen.length >= 3, `a relay and two nodes at least: ${run.seen}`);
    await assertAllStopped(run);
  });

  test(`--nodes ${mode}: a mesh of three, a blob and an expected failure`, async () => {
    const run = await runWorkflow('tests/workflows/kv-store-mesh-and-blob.yml', ['--nodes', mode]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.last.passed, 10, run.stderr);
    await assertAllStopped(run);
  });

  test(`--nodes ${mode}: an integer beyond 2^53 in a call's answer comes exact`, async () => {
    const run = await runWorkflow('tests/workflows/probe-big-integers.yml', ['--nodes', mode]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.last.passed, 4, run.stderr);
    await assertAllStopped(run);
  });

  test(`--nodes ${mode}: a failing step ends the run at the same step with the same kind`, async () => {
    const run = await runWorkflow('tests/workflows/failing.yml', ['--nodes', mode]);
    assert.equal(run.code, 1, run.stderr);
    assert.equal(run.steps.length, 4, run.stderr);
    assert.equal(run.steps[3].error.kind, 'AssertionFailed');
    assert.equal(run.last.error.kind, 'StepFailed');
    assert.ok(run.last.error.message.startsWith('step 4 "Expect a value that is not there" (json_assert): AssertionFailed'), run.last.error.message);
    const summary = run.lines.at(-2);
    assert.deepEqual([summary.passed, summary.total], [3, 5]);
    await assertAllStopped(run);
  });

  test(`--nodes ${mode}: a fuzzy_test counts its assertions and passes by its threshold`, async () => {
    const run = await runWorkflow('tests/workflows/kv-store-fuzzy.yml', ['--nodes', mode, '--keep-going', '--fuzzy-minutes', '0.03']);
    assert.equal(run.code, 1, run.stderr);
    const [held, , missed] = run.steps.slice(2).map((s) => [s.passed, s.error?.kind, s.fuzzy]);
    assert.deepEqual(held.slice(0, 2), [true, undefined], run.stderr);
    const writes = held[2].byOperation.set_and_verify;
    const lists = held[2].byOperation.list_entries;
    assert.ok(writes.runs > 0 && lists.runs > 0, JSON.stringify(held[2]));
    assert.deepEqual([held[2].passed, held[2].failed], [2 * writes.runs + lists.runs, 0]);
    assert.deepEqual(missed.slice(0, 2), [false, 'BelowThreshold'], run.stderr);
    const impossible = missed[2].byOperation.expects_the_impossible;
    assert.ok(impossible.runs > 0 && impossible.failed === impossible.runs, JSON.stringify(missed[2]));
    assert.deepEqual([run.lines.at(-2).passed, run.steps.length], [4, 5]);
    await assertAllStopped(run);
  });

  test(`--nodes ${mode}: a step it cannot do fails as unsupported`, async () => {
    const run = await runWorkflow('tests/workflows/unsupported.yml', ['--nodes', mode]);
    assert.equal(run.code, 1, run.stderr);
    assert.ok(run.last.error.message.startsWith('step 2 "Run a script in the container" (script): UnsupportedStep: unsupported step: script'), run.last.error.message);
    await assertAllStopped(run);
  });
}

test('what page nodes need, missing, is a typed error before anything starts', async () => {
  const file = 'tests/workflows/kv-store-two-nodes.yml';
  const noChromium = await runWorkflow(file, ['--nodes', 'browser'], { env: { ...process.env, CHROMIUM: '/nonexistent/chromium' } });
  assert.equal(noChromium.code, 1);
  assert.equal(noChromium.last.error.kind, 'ChromiumNotFound', JSON.stringify(noChromium.last));
  const noScript = await runWorkflow(file, ['--nodes', 'mixed', '--page-node', '/nonexistent/page-node.mjs']);
  assert.equal(noScript.last.error.kind, 'PageNodeNotFound', JSON.stringify(noScript.last));
  const noNode = await runWorkflow(file, ['--nodes', 'browser'], { env: { ...process.env, PATH: '/nonexistent' } });
  assert.equal(noNode.last.error.kind, 'NodeJsNotFound', JSON.stringify(noNode.last));
  for (const run of [noChromium, noScript, noNode]) assert.ok(!/^workflow /m.test(run.stderr), run.stderr);
  // Native nodes need none of it.
  const native = await runWorkflow('tests/workflows/failing.yml', ['--nodes', 'native'], { env: { ...process.env, CHROMIUM: '/nonexistent/chromium' } });
  assert.equal(native.steps.length, 4, native.stderr);
});

test('SIGTERM stops a browser run and every page, Chromium and relay under it', async () => {
  const long = path.join(tmpdir(), `tabnode-long-${process.pid}.yml`);
  writeFileSync(long, 'nodes: {count: 2, prefix: n}\nsteps:\n  - {name: Long wait, type: wait, seconds: 600}\n');
  let pages = [];
  const run = await runWorkflow(long, ['--nodes', 'browser'], {
    onStarted: (child) => {
      pages = descendants(child.pid);
      child.kill('SIGTERM');
    },
  });
  rmSync(long, { force: true });
  assert.equal(run.code, 1, run.stderr);
  assert.ok(run.last.error.message.startsWith('step 1 "Long wait" (wait): Interrupted'), run.last.error.message);
  // The relay, two page nodes and their Chromium processes were running when it was told to stop.
  assert.ok(pages.length > 3, `processes under the runner: ${pages}`);
  await assertAllStopped(run);
});
