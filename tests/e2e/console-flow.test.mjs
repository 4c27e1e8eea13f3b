// Two people and the console, by clicks and typing only: A creates a context, invites B with a
// link, B (a second, isolated browser context) opens it and joins, B edits, A sees it, A makes B a
// reader (B's write is refused and alerted), A removes B, B sees the alert, A sees B gone.
// window.tabnode is read only for assertions. Each step saves a screenshot under
// test-output/console-flow/.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { openNode, useStack, waitForNode } from './browser.mjs';

const env = useStack();
const OUT = fileURLToPath(new URL('../../test-output/console-flow/', import.meta.url));

const textOf = (page, selector) => page.textContent(selector);
const waitText = (page, selector, pattern, timeout = 60_000) =>
  page.waitForFunction(
    ({ selector, source }) => new RegExp(source).test(document.querySelector(selector)?.textContent ?? ''),
    { selector, source: pattern.source },
    { timeout },
  );

test('create, invite by link, join in a second context, edit, see it, change a role, remove, see the alert', async () => {
  await mkdir(OUT, { recursive: true });
  const shot = async (page, name) => {
    await page.evaluate(() => window.scrollTo(0, 0)); // the sticky header then sits on top
    await page.screenshot({ path: `${OUT}${name}.png`, fullPage: true });
    console.log(`screenshot ${OUT}${name}.png`);
  };

  // A: install the demo app and create a context.
  const a = await openNode(env.browser, env.stack.url, { name: 'A' });
  await a.context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: new URL(env.stack.url).origin });
  await a.page.click('#install-demo');
  await a.page.waitForFunction(() => document.getElementById('app-id').textContent !== '–');
  await a.page.click('#create-context');
  await waitText(a.page, '#root', /^\w{20,}/);
  assert.match(await textOf(a.page, '#members'), /admin \(this node\)/);
  await shot(a.page, '01-created');

  // A: invite as a member; the link carries the invitation in its fragment, with a QR code.
  await a.page.selectOption('#invite-role', 'member');
  await a.page.click('#invite');
  await a.page.waitForSelector('#invite-share:not([hidden])');
  await a.page.click('#copy-invite');
  await waitText(a.page, '#copy-result', /^copied$/);
  const link = await a.page.evaluate(() => navigator.clipboard.readText());
  assert.equal(link, await a.page.getAttribute('#invite-link', 'href'));
  assert.match(link, /^http:\/\/127\.0\.0\.1:\d+\/#join=tabnode-invite/);
  const qr = await a.page.$eval('#invite-qr', (c) => ({ w: c.width, h: c.height }));
  assert.ok(qr.w > 100 && qr.w === qr.h, `a square QR code: ${JSON.stringify(qr)}`);
  await shot(a.page, '02-invite-link');

  // B: a second isolated browser context opens the link; the console offers to join.
  const bContext = await env.browser.newContext();
  const b = await bContext.newPage();
  b.on('pageerror', (err) => console.log(`[B pageerror] ${err.message}`));
  await b.goto(link);
  await waitForNode(b);
  assert.equal(await b.evaluate(() => location.hash), '', 'the fragment is cleared');
  await b.waitForSelector('#join-offer:not([hidden])');
  await shot(b, '03-b-offered-to-join');
  await b.click('#accept-invite');
  // B never installed the app: its node fetches it from A, checks it against the app id, installs it.
  await waitText(b, '#join-result', /joined context /);
  await waitText(b, '#join-progress', /fetched app \S+ from the members \(\d+ KiB\), checked against its id and installed/);
  await b.waitForSelector('#join-offer', { state: 'hidden' });
  await waitText(b, '#heads', /^\w{8}…/);
  await shot(b, '04-b-joined');

  // B edits.
  await b.fill('#method', 'set');
  await b.fill('#args', '{"key":"from-b","value":"hello from B"}');
  await b.click('#call');
  await waitText(b, '#call-out', /rootHash/);
  await shot(b, '05-b-edited');

  // A sees the change in its events, reads it with a call, and sees B among the members.
  await waitText(a.page, '#events', /hello from B/);
  await a.page.fill('#method', 'get');
  await a.page.fill('#args', '{"key":"from-b"}');
  await a.page.click('#call');
  await waitText(a.page, '#call-out', /"output": "hello from B"/);
  const keyB = await textOf(b, '#public-key');
  const rowB = `#members tr[data-key="${keyB}"]`;
  await a.page.waitForSelector(rowB, { timeout: 60_000 });
  assert.match(await textOf(a.page, rowB), /member/);
  await shot(a.page, '06-a-sees-the-change');

  // A makes B a reader: B's next write is refused and alerted as unauthorized.
  await a.page.selectOption(`${rowB} select.member-role`, 'reader');
  await waitText(a.page, '#alerts', /is now reader/);
  await b.fill('#args', '{"key":"from-b","value":"as a reader"}');
  const deadline = Date.now() + 60_000;
  while (!/Unauthorized/.test(await textOf(b, '#call-out'))) {
    assert.ok(Date.now() < deadline, `B's write was not refused: ${await textOf(b, '#call-out')}`);
    await b.click('#call');
    await b.waitForTimeout(300);
  }
  await waitText(b, '#alerts', /unauthorized call of set/);
  await shot(b, '07-b-reader-refused');

  // A removes B (revokes B's device key in the context): two presses.
  await a.page.selectOption(`${rowB} select.member-role`, 'member');
  await waitText(a.page, '#alerts', /is now member/);
  await a.page.click(`${rowB} .member-remove`);
  await waitText(a.page, `${rowB} .member-remove`, /confirm removal/);
  await a.page.click(`${rowB} .member-remove`);
  await waitText(a.page, '#alerts', /removed .* its device key is revoked/);
  await shot(a.page, '08-a-removed-b');

  // B sees the alert without opening anything: in the header and in the alert list.
  await waitText(b, '#alerts', /you were removed from context/);
  assert.match(await textOf(b, '#alert-latest'), /you were removed from context/);
  assert.ok(Number(await textOf(b, '#alert-count')) >= 2);
  await shot(b, '09-b-sees-the-alert');

  // A sees B gone from the member list; the node agrees.
  await a.page.waitForSelector(rowB, { state: 'detached' });
  const members = await a.page.evaluate(async () => window.tabnode.members(document.getElementById('context-select').value));
  assert.deepEqual(members.map((m) => m.key), [await textOf(a.page, '#public-key')]);
  await shot(a.page, '10-a-b-gone');

  await bContext.close();
  await a.context.close();
});
