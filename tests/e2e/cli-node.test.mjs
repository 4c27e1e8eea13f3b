// A page and a CLI node in one context through the real relay: the page creates it and
// invites; the CLI joins from the page's link (fetching the app from the page), then `run`s;
// a call on either reaches the other. Needs the CLI binary (`cargo build --release -p tabnode-cli`).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createInterface } from 'node:readline';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { entries, eventually, installKvStore, openNode, useStack } from './browser.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const targetDir = process.env.CARGO_TARGET_DIR ? path.resolve(process.env.CARGO_TARGET_DIR) : path.join(root, 'target');
const tabnode = path.join(targetDir, 'release/tabnode');

const env = useStack();
const home = mkdtempSync(path.join(tmpdir(), 'tabnode-cli-page-'));
const children = [];
after(() => {
  for (const child of children) child.kill('SIGKILL');
  rmSync(home, { recursive: true, force: true });
});

/** `tabnode run` as a child: its JSON lines, a way to wait for one, and commands on stdin. */
function runNode(relay) {
  const child = spawn(tabnode, ['--home', home, 'run', '--relay', relay], { stdio: ['pipe', 'pipe', 'inherit'] });
  children.push(child);
  const lines = [];
  createInterface({ input: child.stdout }).on('line', (line) => lines.push(JSON.parse(line)));
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const line = (what, pick) => eventually(what, async () => lines.find(pick));
  let sent = 0;
  const command = async (words) => {
    const number = ++sent;
    child.stdin.write(`${JSON.stringify(words)}\n`);
    const answer = await line(`the answer to ${words.join(' ')}`, (l) => l.line === number);
    assert.equal(answer.type, 'result', JSON.stringify(answer));
    return answer.value;
  };
  return { child, lines, line, command, exited };
}

test('a page and a CLI node share a context through the relay, each way', async () => {
  assert.ok(existsSync(tabnode), `no CLI at ${tabnode}: cargo build --release -p tabnode-cli`);
  const a = await openNode(env.browser, env.stack.url, { name: 'page' });
  const appId = await installKvStore(a.page);
  const ctx = await a.page.evaluate((id) => window.tabnode.createContext(id, {}), appId);
  await a.page.evaluate((c) => window.tabnode.execute(c, 'set', { key: 'k', value: 'from the page' }), ctx);
  const invitation = await a.page.evaluate((c) => window.tabnode.invite(c), ctx);
  const link = `${env.stack.url}#join=${encodeURIComponent(invitation)}`;

  // The CLI joins from the link: the page admits it and sends the app and the state.
  const joined = spawnSync(tabnode, ['--home', home, 'context', 'join', link, '--relay', env.stack.relayAddr, '--timeout', '60'], { encoding: 'utf8' });
  assert.equal(joined.status, 0, `${joined.stdout}\n${joined.stderr}`);
  assert.deepEqual(JSON.parse(joined.stdout), { context_id: ctx, synced: true });

  const cli = runNode(env.stack.relayAddr);
  await cli.line('started', (l) => l.type === 'started');
  assert.equal((await cli.command(['call', ctx, 'get', '{"key":"k"}'])).output, 'from the page');

  // The page's call reaches the CLI...
  const fromPage = await a.page.evaluate((c) => window.tabnode.execute(c, 'set', { key: 'p', value: '1' }), ctx);
  await cli.line("the page's delta", (l) => l.type === 'deltaApplied' && l.deltaId === fromPage.deltaId);
  assert.equal((await cli.command(['call', ctx, 'get', '{"key":"p"}'])).output, '1');
  // ...and the CLI's reaches the page.
  await cli.command(['call', ctx, 'set', '{"key":"c","value":"2"}']);
  await eventually("the page to see the CLI's write", async () => (await entries(a.page, ctx)).c === '2');

  cli.child.stdin.end();
  await cli.line('stopped', (l) => l.type === 'stopped');
  assert.deepEqual(await cli.exited, { code: 0, signal: null });
  await a.context.close();
});
