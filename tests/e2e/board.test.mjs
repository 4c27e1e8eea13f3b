// The demo shared list (www/board.html) by clicks and typing: A starts a list and shares its
// link, B opens the link on a phone-sized screen in an isolated browser context and accepts the
// offer to join, both add, edit,
// check and remove items and see each other's changes; with the relay down both keep editing
// offline, and the two lists converge when it is back. Screenshots go to test-output/board/.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { eventually, openNode, useStack, waitForNode } from './browser.mjs';

// The relay restarts under the same peer id: it keeps its key in a file.
const env = useStack(async () => ({
  relayKeyFile: path.join(await mkdtemp(path.join(tmpdir(), 'tabnode-board-')), 'relay.key'),
}));
const OUT = fileURLToPath(new URL('../../test-output/board/', import.meta.url));

/** The list as the page shows it: `[{text, done}]` in order. */
const items = (page) =>
  page.$$eval('#items li', (lis) => lis.map((li) => ({ text: li.querySelector('input.text').value, done: li.classList.contains('done') })));
const texts = async (page) => (await items(page)).map((i) => i.text);
/** The row of the item showing `text` (waits for it). */
const row = async (page, text) =>
  (await page.waitForFunction((t) => [...document.querySelectorAll('#items li')].find((li) => li.querySelector('input.text').value === t), text)).asElement();

async function add(page, text) {
  await page.fill('#new-item', text);
  await page.press('#new-item', 'Enter');
  await page.waitForFunction((t) => [...document.querySelectorAll('#items input.text')].some((i) => i.value === t), text);
}

/** Types `to` into the item showing `from`, then Enter. */
async function edit(page, from, to) {
  const input = await (await row(page, from)).$('input.text');
  await input.fill(to);
  await input.press('Enter');
}

const sameList = (what, pages, expected) =>
  eventually(what, async () => {
    const all = await Promise.all(pages.map(items));
    return { ok: all.every((list) => JSON.stringify(list) === JSON.stringify(expected)), all };
  }, { ms: 90_000 });

test('two people share a list by link, edit it together, also offline, and converge', async () => {
  await mkdir(OUT, { recursive: true });
  const shot = async (page, name) => {
    await page.screenshot({ path: `${OUT}${name}.png`, fullPage: true });
    console.log(`screenshot ${OUT}${name}.png`);
  };

  // The relay is the only path here (`?direct=off`: no WebRTC between the pages), so stopping it
  // takes both pages offline; direct links have their own test (peering.test.mjs).
  const a = await openNode(env.browser, new URL('board.html?direct=off', env.stack.url).href, { name: 'A' });
  await a.page.waitForSelector('#start:not([hidden])');
  await a.page.click('#create');
  await a.page.waitForSelector('#board:not([hidden])');
  await add(a.page, 'milk');
  await a.page.fill('#new-item', 'bread');
  await a.page.click('#add');
  await a.page.waitForFunction(() => document.querySelectorAll('#items li').length === 2);
  assert.deepEqual(await texts(a.page), ['milk', 'bread']);

  await a.page.click('#share');
  await a.page.waitForFunction(() => document.getElementById('share-link').value.includes('#join='));
  const link = await a.page.inputValue('#share-link');
  assert.match(link, /\/board\.html#join=tabnode-invite/);
  await shot(a.page, '01-a-shares');

  // B opens the link on a phone-sized screen: it joins and the list arrives.
  const bContext = await env.browser.newContext({ viewport: { width: 390, height: 844 } });
  const b = { context: bContext, page: await bContext.newPage() };
  b.page.on('pageerror', (err) => console.log(`[B pageerror] ${err.message}`));
  await b.page.goto(link.replace('board.html#', 'board.html?direct=off#'));
  await waitForNode(b.page);
  // The link alone joins nothing: the page asks first, saying what joining shows the members.
  await b.page.waitForSelector('#join-offer:not([hidden])');
  assert.match(await b.page.textContent('#join-offer'), /this device's key/);
  assert.equal(await b.page.evaluate(async () => (await window.tabnode.contexts()).length), 0);
  await b.page.click('#accept-join');
  await b.page.waitForFunction(() => document.querySelectorAll('#items li').length === 2, null, { timeout: 60_000 });
  assert.match(await b.page.textContent('#message'), /joined a shared list|list is here/);
  assert.equal(await b.page.evaluate(() => location.hash), '');
  const overflow = await b.page.evaluate(() => document.scrollingElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `the list is ${overflow} px wider than a phone`);
  await shot(b.page, '02-b-joined-on-a-phone');

  // B edits an item and checks another; A sees both. A removes one; B sees it go.
  await edit(b.page, 'bread', 'rye bread');
  await (await (await row(b.page, 'milk')).$('input[type=checkbox]')).click();
  await sameList('A to see B\'s edits', [a.page, b.page], [{ text: 'milk', done: true }, { text: 'rye bread', done: false }]);
  await shot(a.page, '03-a-sees-b-edits');
  await (await (await row(a.page, 'milk')).$('button.remove')).click();
  await sameList('B to see the removal', [a.page, b.page], [{ text: 'rye bread', done: false }]);
  await shot(b.page, '04-b-sees-the-removal');

  // Offline: the relay goes away; both keep editing, each sees its own changes at once.
  await env.stack.stopRelay();
  for (const p of [a.page, b.page]) await p.waitForFunction(() => /offline/.test(document.getElementById('net').textContent), null, { timeout: 30_000 });
  await add(a.page, 'eggs');
  await add(b.page, 'apples');
  await edit(b.page, 'rye bread', 'rye bread (sliced)');
  assert.deepEqual(await texts(a.page), ['rye bread', 'eggs']);
  assert.deepEqual(await texts(b.page), ['rye bread (sliced)', 'apples']);
  assert.match(await a.page.textContent('#net'), /offline/, 'still offline after the edits');
  await shot(a.page, '05-a-offline');
  await shot(b.page, '06-b-offline');

  // Back online: the lists converge, every edit on both.
  await env.stack.startRelay();
  await sameList('the lists to converge', [a.page, b.page], [
    { text: 'rye bread (sliced)', done: false }, { text: 'eggs', done: false }, { text: 'apples', done: false },
  ]);
  for (const p of [a.page, b.page]) await p.waitForFunction(() => /online/.test(document.getElementById('net').textContent));
  await shot(a.page, '07-a-converged');
  await shot(b.page, '08-b-converged');
  await b.context.close();
  await a.context.close();
});

test('every tab of the board is one node: a second tab shows and edits the same list, and carries on when the first closes', async () => {
  const url = new URL('board.html?direct=off', env.stack.url).href;
  const first = await openNode(env.browser, url, { name: 'tab 1' });
  await first.page.waitForSelector('#start:not([hidden])');
  await first.page.click('#create');
  await first.page.waitForSelector('#board:not([hidden])');
  await add(first.page, 'milk');

  // A second tab of the same browser profile: the same store, so the same node (no StoreLocked).
  const second = await first.context.newPage();
  second.on('pageerror', (err) => console.log(`[tab 2 pageerror] ${err.message}`));
  await second.goto(url);
  await waitForNode(second);
  assert.deepEqual(await second.evaluate(() => [window.tabnode.isHost, window.tabnode.publicKey]),
    [false, await first.page.evaluate(() => window.tabnode.publicKey)]);
  await second.waitForSelector('#board:not([hidden])');
  await sameList('the second tab to show the list', [second], [{ text: 'milk', done: false }]);
  await add(second, 'tea');
  await sameList('both tabs to show both items', [first.page, second], [{ text: 'milk', done: false }, { text: 'tea', done: false }]);

  // The hosting tab closes: the second takes the node over and goes on editing.
  // (A write made while no tab hosts waits up to 10 s for the next host, then fails `NoHost`;
  // opening the node takes longer than that on a loaded 2-core machine, so this waits first.)
  await first.page.close();
  await eventually('the second tab to host the node', () => second.evaluate(() => window.tabnode.isHost));
  await add(second, 'jam');
  assert.deepEqual(await texts(second), ['milk', 'tea', 'jam']);
  await first.context.close();
});
