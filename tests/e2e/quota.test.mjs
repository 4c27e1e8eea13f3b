// A full disk quota: when the browser refuses a write, the call fails with a clear error,
// nothing of it is stored, and the node keeps answering reads.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkpoint, useStack, waitForNode } from './browser.mjs';

const env = useStack();

test('a write over the quota fails with QuotaExceeded and changes nothing', async () => {
  const context = await env.browser.newContext();
  const page = await context.newPage();
  // Chromium's DevTools protocol gives this origin a 3 MB quota before the page stores anything.
  const cdp = await context.newCDPSession(page);
  const origin = new URL(env.stack.url).origin;
  await cdp.send('Storage.overrideQuotaForOrigin', { origin, quotaSize: 3 * 1024 * 1024 });
  await page.goto(env.stack.url);
  await waitForNode(page);
  // The probe app stores blobs: a big write with no event to hit a limit first.
  const appId = await page.evaluate(async () =>
    window.tabnode.installApp(new Uint8Array(await (await fetch('apps/probe.wasm')).arrayBuffer())),
  );
  const ctx = await page.evaluate((id) => window.tabnode.createContext(id, { title: 'quota' }), appId);
  const call = (method, args) => page.evaluate(({ c, method, args }) => window.tabnode.execute(c, method, args), { c: ctx, method, args });
  await call('push_line', { line: 'fits' });
  const before = await checkpoint(page, ctx);


  const failure = await page.evaluate(async (c) => {
    try {
      // Random text: Chromium compresses what it stores, so repeated bytes would hardly count.
      const piece = () => btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(48 * 1024))));
      await window.tabnode.execute(c, 'store_blob', { data: Array.from({ length: 64 }, piece).join('') });
      return null;
    } catch (e) {
      return { name: e.name, message: e.message };
    }
  }, ctx);
  assert.equal(failure?.name, 'QuotaExceeded', JSON.stringify(failure));
  assert.match(failure.message, /quota/);
  assert.deepEqual(await checkpoint(page, ctx), before, 'nothing of the failed call was stored');
  assert.deepEqual((await call('lines', {})).output, ['fits'], 'reads keep working');
  await page.reload();
  await page.waitForFunction(() => window.tabnode || window.tabnodeError);
  assert.deepEqual((await call('lines', {})).output, ['fits'], 'and nothing appears after a reload');
  await context.close();
});
