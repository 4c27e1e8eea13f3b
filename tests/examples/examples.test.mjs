// The npm package as apps outside this repository get it: examples/vite-app (built by Vite) and
// examples/plain-esm (no bundler) have installed the tarball of `npm pack pkg/`
// (scripts/examples.sh). Each is served on 127.0.0.1 with kv-store beside it and opened in
// headless Chromium; its node must start with an in-page store, run kv-store, and answer a `get`
// with what a `set` wrote.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { launchChromium, waitForNode } from '../e2e/browser.mjs';
import { serveStatic } from '../../scripts/static-server.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const EXAMPLES = path.join(ROOT, 'examples');
const KV_STORE = path.join(ROOT, 'tests/apps/dist/kv_store.wasm');

let browser;
before(async () => {
  for (const app of ['vite-app', 'plain-esm']) {
    if (!existsSync(path.join(EXAMPLES, app, 'node_modules/tabnode-web/package.json'))) {
      throw new Error(`examples/${app} has not installed the package: run scripts/examples.sh (make examples-test does)`);
    }
  }
  browser = await launchChromium();
});
after(async () => {
  await browser?.close();
});

/** Serves `dir` with kv-store at /kv_store.wasm, runs `check(page)` on its page, stops the server. */
async function inPage(dir, check) {
  const server = await serveStatic(dir, { files: { '/kv_store.wasm': KV_STORE } });
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    const errors = [];
    page.on('pageerror', (err) => errors.push(err.message));
    page.on('requestfailed', (req) => errors.push(`request failed: ${req.url()}`));
    page.on('response', (res) => res.status() >= 400 && errors.push(`${res.status()} ${res.url()}`));
    await page.goto(server.url);
    await waitForNode(page).catch((err) => assert.fail(`${err.message}; page errors: ${errors.join('; ') || 'none'}`));
    await check(page);
  } finally {
    await context.close();
    await server.stop();
  }
}

/** What the page's own flow printed, then a set/get of a fresh value driven from the test. */
async function nodeRuns(page) {
  await page.waitForFunction(() => /read back|Error/.test(document.getElementById('status').textContent), null, { timeout: 60_000 });
  assert.match(await page.textContent('#status'), /read back: hello from a tab$/);
  const value = `v-${Date.now()}`;
  const got = await page.evaluate(async (value) => {
    const node = window.tabnode;
    const bytes = new Uint8Array(await (await fetch('./kv_store.wasm')).arrayBuffer());
    const ctx = await node.createContext(await node.installApp(bytes), {});
    await node.execute(ctx, 'set', { key: 'k', value });
    return (await node.execute(ctx, 'get', { key: 'k' })).output;
  }, value);
  assert.equal(got, value);
}

test('a Vite app (vite build) that installed the packed tarball runs a node', async () => {
  const app = path.join(EXAMPLES, 'vite-app');
  execFileSync(path.join(app, 'node_modules/.bin/vite'), ['build', '--logLevel', 'warn'], { cwd: app, stdio: 'inherit' });
  await inPage(path.join(app, 'dist'), nodeRuns);
});

test('a page of plain ES modules (no bundler) that installed the packed tarball runs a node', async () => {
  await inPage(path.join(EXAMPLES, 'plain-esm'), nodeRuns);
});
