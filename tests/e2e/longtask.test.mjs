// The node's long work does not freeze the page: a burst of 1,000 `set` calls made at once from
// the console (which is watching the context, so it refreshes its views as events arrive)
// leaves no long task over 200 ms. Long tasks are recorded with the Long Tasks API
// (PerformanceObserver, type 'longtask', buffered) and printed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openNode, useStack } from './browser.mjs';

const env = useStack();
const CALLS = 1000;
const LIMIT_MS = 200;

test(`a burst of ${CALLS} calls leaves no long task over ${LIMIT_MS} ms`, async () => {
  const { page, context } = await openNode(env.browser, env.stack.url, { name: 'longtask' });
  await page.click('#install-demo');
  await page.waitForFunction(() => document.getElementById('app-id').textContent !== '–');
  await page.click('#create-context');
  await page.waitForFunction(() => document.getElementById('root').textContent.length > 10);

  const report = await page.evaluate(async (calls) => {
    const tasks = [];
    const observer = new PerformanceObserver((list) => tasks.push(...list.getEntries()));
    observer.observe({ type: 'longtask', buffered: true });
    const ctx = document.getElementById('context-select').value;
    const start = performance.now();
    const results = await Promise.allSettled(
      Array.from({ length: calls }, (_, i) => window.tabnode.execute(ctx, 'set', { key: `burst-${i}`, value: `value ${i}` })),
    );
    const end = performance.now();
    // Let the console finish the refreshes the burst asked for, and the observer report.
    await new Promise((r) => setTimeout(r, 1500));
    observer.disconnect();
    const failed = results.filter((r) => r.status === 'rejected').map((r) => `${r.reason.name}: ${r.reason.message}`);
    const entries = (await window.tabnode.execute(ctx, 'entries', {})).output;
    const inBurst = tasks.filter((t) => t.startTime + t.duration >= start);
    return {
      burstMs: end - start,
      failed: failed.slice(0, 3),
      failedCount: failed.length,
      stored: Object.keys(entries).length,
      before: tasks.filter((t) => t.startTime + t.duration < start).map((t) => Math.round(t.duration)),
      during: inBurst.map((t) => Math.round(t.duration)),
      supported: PerformanceObserver.supportedEntryTypes.includes('longtask'),
    };
  }, CALLS);

  const longest = report.during.length ? Math.max(...report.during) : 0;
  console.log(`long tasks during a burst of ${CALLS} set calls (${(report.burstMs / 1000).toFixed(1)} s, ${(CALLS / (report.burstMs / 1000)).toFixed(1)} calls/s): `
    + `${report.during.length} long tasks (over 50 ms), longest ${longest} ms; `
    + `durations ${JSON.stringify([...report.during].sort((x, y) => y - x).slice(0, 20))}`);
  console.log(`long tasks before the burst (page start, app install, context creation): ${JSON.stringify(report.before)}`);
  assert.ok(report.supported, 'this Chromium reports long tasks');
  assert.equal(report.failedCount, 0, `failed calls: ${report.failed.join('; ')}`);
  assert.equal(report.stored, CALLS);
  assert.ok(longest <= LIMIT_MS, `the longest task during the burst took ${longest} ms (limit ${LIMIT_MS} ms)`);
  await context.close();
});
