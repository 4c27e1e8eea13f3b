// Proposals across three pages and a real relay (docs/proposals.md): a guest in page A proposes
// a context value through calimero-sdk, B approves from its guest and C through the page API;
// the third approval runs the action in every page. A second approval and an unknown id are
// refused with typed errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { base58Codec } from './base58.mjs';
import { eventually, openNode, useStack } from './browser.mjs';

const env = useStack();

const call = (page, ctx, method, args) =>
  page.evaluate(({ c, method, args }) => window.tabnode.execute(c, method, args), { c: ctx, method, args });

/** What the page's node says of the proposal, or null while it does not know it. */
const proposalIn = (page, ctx, id) =>
  page.evaluate(({ c, id }) => window.tabnode.proposal(c, id).catch(() => null), { c: ctx, id });

/** The error a page method rejects with, as `{name}`, or null. */
const refusal = (page, method, ...args) =>
  page.evaluate(
    ({ method, args }) => window.tabnode[method](...args).then(() => null, (e) => ({ name: e.name })),
    { method, args },
  );

test('a guest\'s proposal runs in every page at the third approval', async () => {
  const pages = [];
  for (const name of ['A', 'B', 'C']) pages.push(await openNode(env.browser, env.stack.url, { name }));
  const [a, b, c] = pages.map((p) => p.page);
  const install = (page) =>
    page.evaluate(async () => {
      const bytes = new Uint8Array(await (await fetch('apps/probe.wasm')).arrayBuffer());
      return window.tabnode.installApp(bytes);
    });
  const app = await install(a);
  for (const page of [b, c]) await install(page);
  const ctx = await a.evaluate((id) => window.tabnode.createContext(id, { title: 't' }), app);
  for (const page of [b, c]) {
    const invitation = await a.evaluate((x) => window.tabnode.invite(x), ctx);
    await page.evaluate((inv) => window.tabnode.join(inv), invitation);
  }
  await eventually('B and C to have the state', async () => {
    const titles = await Promise.all([b, c].map((p) => call(p, ctx, 'title', {}).then((r) => r.output, () => null)));
    return titles.every((t) => t === 't');
  });

  const proposed = await call(a, ctx, 'propose_value', { key: 'colour', value: 'blue' });
  const id = proposed.output;
  assert.equal(proposed.contextRequests[0].request, 'propose');
  assert.equal(proposed.contextRequests[0].proposal, id);
  await eventually('B and C to see the proposal', async () =>
    (await proposalIn(b, ctx, id))?.status === 'active' && (await proposalIn(c, ctx, id))?.status === 'active');

  // B approves from its guest (the proposal id as calimero-sdk's 32 bytes).
  const approved = await call(b, ctx, 'approve', { id: Array.from(base58Codec().decode(id)) });
  assert.equal(approved.contextRequests[0].request, 'approve');
  assert.equal(approved.contextRequests[0].error, null);
  await eventually('C to see two approvals', async () => (await proposalIn(c, ctx, id))?.approvers.length === 2);
  assert.equal(await c.evaluate((x) => window.tabnode.contextValue(x, 'colour'), ctx), null, 'two of three');

  await c.evaluate(({ c, id }) => window.tabnode.approveProposal(c, id), { c: ctx, id });
  await eventually('every page to have run the action', async () => {
    const values = await Promise.all([a, b, c].map((p) => p.evaluate((x) => window.tabnode.contextValue(x, 'colour'), ctx)));
    const states = await Promise.all([a, b, c].map((p) => proposalIn(p, ctx, id).then((x) => x?.status)));
    return { ok: values.every((v) => v === 'blue') && states.every((s) => s === 'executed'), values, states };
  });
  const proxy = await a.evaluate((x) => window.tabnode.proposals(x), ctx);
  assert.equal(proxy.numApprovals, 3);
  assert.equal(proxy.proposals.length, 1);

  assert.deepEqual(await refusal(a, 'approveProposal', ctx, id), { name: 'BadProposal' });
  const unknown = '11111111111111111111111111111111';
  assert.deepEqual(await refusal(a, 'proposal', ctx, unknown), { name: 'UnknownProposal' });
  assert.deepEqual(await refusal(a, 'proposal', ctx, 'not-base58!'), { name: 'BadId' });
  for (const p of pages) await p.context.close();
});
