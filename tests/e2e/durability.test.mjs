// What an acknowledged write survives under each `NodeOptions.durability` (docs/storage.md,
// *Durability*): the console in a persistent profile (IndexedDB on disk, as in a user's
// browser) writes, is reloaded, then writes in a burst until the whole browser is killed
// (SIGKILL: no shutdown, no flush) and started again on the same profile. Every write whose call
// resolved is there, under `relaxed` as under `strict`: both hand the write to the OS before the
// call resolves, and only an OS crash or a power loss (which a test cannot cause here) tells
// them apart.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { CHROMIUM_ARGS, entries, installKvStore, useStack, waitForNode } from './browser.mjs';

const env = useStack();
const running = new Set();
const profiles = [];

after(async () => {
  for (const child of running) process.kill(-child.pid, 'SIGKILL');
  for (const profile of profiles) await rm(profile, { recursive: true, force: true });
});

/**
 * Starts Chromium on `profile` as its own process group (so the test can kill it, renderers and
 * all, the way a crash would) and connects to it over DevTools.
 */
async function startBrowser(profile) {
  const child = spawn(
    process.env.CHROMIUM || '/usr/bin/chromium',
    [...CHROMIUM_ARGS, '--headless', '--disable-dev-shm-usage', `--user-data-dir=${profile}`, '--remote-debugging-port=0', 'about:blank'],
    { detached: true, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  running.add(child);
  child.once('exit', () => running.delete(child));
  const endpoint = await new Promise((resolve, reject) => {
    let text = '';
    child.stderr.on('data', (chunk) => {
      text += chunk;
      const found = text.match(/DevTools listening on (ws:\/\/\S+)/);
      if (found) resolve(found[1]);
    });
    child.once('exit', (code) => reject(new Error(`chromium exited (${code}) before listening: ${text}`)));
  });
  const browser = await chromium.connectOverCDP(endpoint);
  return {
    context: browser.contexts()[0],
    kill: async () => {
      const exited = once(child, 'exit');
      process.kill(-child.pid, 'SIGKILL');
      await exited;
    },
  };
}

async function openConsole(context, durability) {
  const page = await context.newPage();
  await page.goto(`${env.stack.url}?durability=${durability}`);
  await waitForNode(page);
  return page;
}

for (const durability of ['relaxed', 'strict']) {
  test(`${durability}: an acknowledged write survives a reload and the browser being killed`, async () => {
    const profile = await mkdtemp(path.join(os.tmpdir(), `tabnode-durability-${durability}-`));
    profiles.push(profile);
    let browser = await startBrowser(profile);
    let page = await openConsole(browser.context, durability);
    assert.equal(await page.evaluate(() => window.tabnode.durability), durability);
    const ctx = await page.evaluate((id) => window.tabnode.createContext(id, {}), await installKvStore(page));
    await page.evaluate((c) => window.tabnode.execute(c, 'set', { key: 'before-reload', value: 'kept' }), ctx);

    await page.reload();
    await waitForNode(page);
    assert.equal((await entries(page, ctx))['before-reload'], 'kept', 'read back after a reload');

    // A burst of writes, the browser killed once 20 have been acknowledged.
    const acked = [];
    await page.exposeFunction('acknowledged', (key) => acked.push(key));
    await page.evaluate((c) => {
      (async () => {
        for (let i = 0; i < 500; i++) {
          await window.tabnode.execute(c, 'set', { key: `burst-${i}`, value: `value ${i}` });
          await window.acknowledged(`burst-${i}`);
        }
      })();
    }, ctx);
    const deadline = Date.now() + 60_000;
    while (acked.length < 20) {
      assert.ok(Date.now() < deadline, `only ${acked.length} writes acknowledged`);
      await new Promise((r) => setTimeout(r, 10));
    }
    await browser.kill();
    const killedAfter = acked.length;

    browser = await startBrowser(profile);
    page = await openConsole(browser.context, durability);
    const stored = await entries(page, ctx);
    assert.equal(stored['before-reload'], 'kept');
    for (const key of acked) assert.ok(key in stored, `acknowledged ${key} is there after the kill`);
    console.log(`${durability}: ${killedAfter} acknowledged when killed, ${Object.keys(stored).length - 1} stored`);
    await browser.kill();
  });
}

test('an unknown durability fails create with BadOptions', async () => {
  const context = await env.browser.newContext();
  const page = await context.newPage();
  await page.goto(`${env.stack.url}?durability=fast`);
  await page.waitForFunction(() => window.tabnode || window.tabnodeError, null, { timeout: 60_000 });
  assert.equal(await page.evaluate(() => window.tabnodeError?.name), 'BadOptions');
  await context.close();
});
