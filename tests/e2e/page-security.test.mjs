// What the served pages protect against (issue 19, finding 13): the server sends a
// Content-Security-Policy, frame-ancestors 'none' and nosniff, and the console still runs under
// them while an injected script or eval does not.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { eventually, installKvStore, openNode, useStack } from './browser.mjs';

const env = useStack();

test('every page and file is served with the CSP, frame-ancestors none and nosniff', async () => {
  for (const file of ['', 'index.html', 'board.html', 'config.json', 'apps/kv_store.wasm', 'missing']) {
    const response = await fetch(new URL(file, env.stack.url));
    const csp = response.headers.get('content-security-policy');
    assert.match(csp, /script-src 'self' 'wasm-unsafe-eval'[;]/, `${file}: ${csp}`);
    assert.match(csp, /frame-ancestors 'none'/, file);
    assert.equal(response.headers.get('x-content-type-options'), 'nosniff', file);
    assert.equal(response.headers.get('x-frame-options'), 'DENY', file);
  }
});

test('the console runs under the CSP, and an injected script, eval or a frame does not', async () => {
  const { page, context } = await openNode(env.browser, env.stack.url, { name: 'csp' });
  try {
    // The node runs guest wasm (compiled under 'wasm-unsafe-eval').
    const appId = await installKvStore(page);
    const ctx = await page.evaluate((id) => window.tabnode.createContext(id, {}), appId);
    await page.evaluate((c) => window.tabnode.execute(c, 'set', { key: 'k', value: 'v' }), ctx);
    const got = await page.evaluate((c) => window.tabnode.execute(c, 'get', { key: 'k' }), ctx);
    assert.equal(got.output, 'v');
    // (Code the test runs through the DevTools protocol is exempt; what the page runs is not.)
    const blocked = await page.evaluate(async () => {
      const violations = [];
      document.addEventListener('securitypolicyviolation', (e) => violations.push(e.violatedDirective));
      const script = document.createElement('script');
      script.textContent = 'window.injected = true';
      document.body.append(script);
      setTimeout('window.fromString = true', 0); // a string run as code: eval
      // Both refusals are reported as events; wait for them (at most 5 s).
      for (let waited = 0; violations.length < 2 && waited < 5000; waited += 20) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      return { injected: window.injected === true, fromString: window.fromString === true, violations: violations.length };
    });
    assert.deepEqual(blocked, { injected: false, fromString: false, violations: 2 });

    // Another page framing the console gets an error page, not the console.
    const framing = await context.newPage();
    await framing.setContent(`<iframe src="${env.stack.url}"></iframe>`);
    await eventually('the frame to be refused', async () => {
      const frame = framing.frames().find((f) => f !== framing.mainFrame());
      const url = frame?.url() ?? '';
      return { ok: url.startsWith('chrome-error:'), url };
    });
  } finally {
    await context.close();
  }
});
