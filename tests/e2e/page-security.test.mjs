// What the served pages protect against (issue 19, findings 7 and 13): the server sends a
// Content-Security-Policy, frame-ancestors 'none' and nosniff, and the console still runs under
// them while an injected script or eval does not; a link cannot set the node's security settings
// (`?db=`, `?relay=`, `?nearRpc=`…) unless the server is a development one, and then the page
// says so; and a `#join=` link joins nothing until the person accepts, being told what joining
// shows the members.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { eventually, installKvStore, openNode, useStack } from './browser.mjs';

// A deployment's server: its config.json does not let the URL set security settings.
const env = useStack({ devUrlSettings: false });

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

test("the URL's query does not set the node's security settings on a deployed site", async () => {
  const url = new URL(env.stack.url);
  url.search = '?db=from-a-link&relay=/ip4/203.0.113.7/tcp/9/ws&nearRpc=http://203.0.113.7/&nearContract=evil.near&snapshot=0';
  const { page, context } = await openNode(env.browser, url.href, { name: 'url' });
  try {
    const status = await page.textContent('#status');
    assert.match(status, /store "tabnode"/);
    assert.doesNotMatch(status, /from-a-link|203\.0\.113\.7|development/);
    assert.ok(status.includes(env.stack.relayAddr), status);
  } finally {
    await context.close();
  }
});

test('a #join= link on the board asks first, and joins nothing when declined', async () => {
  const a = await openNode(env.browser, env.stack.url, { name: 'A' });
  try {
    const appId = await installKvStore(a.page);
    const ctx = await a.page.evaluate((id) => window.tabnode.createContext(id, {}), appId);
    const invitation = await a.page.evaluate((c) => window.tabnode.invite(c), ctx);
    const link = new URL(`board.html#join=${encodeURIComponent(invitation)}`, env.stack.url).href;
    const b = await openNode(env.browser, link, { name: 'B' });
    try {
      await b.page.waitForSelector('#join-offer:not([hidden])');
      assert.match(await b.page.textContent('#join-offer'), /shows its members this device's key/);
      assert.deepEqual(await b.page.evaluate(() => window.tabnode.contexts()), []);
      await b.page.click('#decline-join');
      await b.page.waitForSelector('#start:not([hidden])');
      assert.deepEqual(await b.page.evaluate(() => window.tabnode.contexts()), []);
      assert.equal(await b.page.evaluate(() => location.hash), '');
    } finally {
      await b.context.close();
    }
  } finally {
    await a.context.close();
  }
});
