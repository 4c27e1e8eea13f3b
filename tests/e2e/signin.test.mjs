// Sign-in with a NEAR wallet, against A TEST DOUBLE of an injected NEP-408 wallet
// (tests/e2e/wallet-double.js): no wallet extension can run in headless Chromium here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { eventually, useStack, waitForNode } from './browser.mjs';
import { nearRpcDouble } from './near-rpc-double.mjs';

const double = path.join(path.dirname(fileURLToPath(import.meta.url)), 'wallet-double.js');
const env = useStack();

const attempt = (page, options) =>
  page.evaluate(async (o) => {
    try {
      return { identity: await window.tabnode.signIn(o) };
    } catch (e) {
      return { error: { name: e.name, message: e.message } };
    }
  }, options);

test('without a wallet, signIn says so clearly', async () => {
  const context = await env.browser.newContext();
  const page = await context.newPage();
  await page.goto(env.stack.url);
  await waitForNode(page);
  const { error } = await attempt(page);
  assert.equal(error?.name, 'WalletNotFound');
  await page.click('#sign-in'); // the console's button shows the same as an alert
  await page.waitForFunction(() => document.getElementById('alerts').textContent.includes('WalletNotFound'));
  await context.close();
});

test('sign-in with the wallet test double grants this node key, survives a reload, and maps refusals', async () => {
  const context = await env.browser.newContext();
  await context.addInitScript({ path: double });
  const page = await context.newPage();
  await page.goto(env.stack.url);
  await waitForNode(page);
  assert.equal(await page.evaluate(() => window.tabnode.identity()), null, 'nobody signed in yet');

  const { identity, error } = await attempt(page);
  assert.equal(error, undefined, JSON.stringify(error));
  assert.equal(identity.accountId, 'alice.test.near');
  assert.equal(identity.clientKey, await page.evaluate(() => window.tabnode.publicKey));
  assert.match(identity.rootPublicKey, /^ed25519:/);
  assert.ok(identity.expiresAt > Date.now());

  await page.reload();
  await waitForNode(page);
  assert.deepEqual(await page.evaluate(() => window.tabnode.identity()), identity, 'the grant is kept and checked again');
  await page.waitForFunction(() => document.getElementById('account').textContent.startsWith('alice.test.near'));

  assert.equal((await attempt(page, { account: 'bob.near' })).error?.name, 'WrongAccount');
  await page.evaluate(() => (window.walletDoubleRejects = true));
  const refused = await attempt(page);
  assert.equal(refused.error?.name, 'WalletRejected');
  assert.match(refused.error.message, /rejected/);
  await context.close();
});

test('two devices of one account (wallet test double): one revokes the other, whose later writes every member refuses', async () => {
  // Device 1 signs in and creates a context.
  const one = await env.browser.newContext();
  await one.addInitScript({ path: double });
  const a = await one.newPage();
  await a.goto(env.stack.url);
  await waitForNode(a);
  assert.equal((await attempt(a)).error, undefined);
  const ctx = await a.evaluate(async () => {
    const bytes = new Uint8Array(await (await fetch('apps/kv_store.wasm')).arrayBuffer());
    return window.tabnode.createContext(await window.tabnode.installApp(bytes), {});
  });
  // Device 2: the same account (the double's key, shared), its own node key; joins, signs in.
  const jwk = await a.evaluate(() => window.near.exportKeyForTests());
  const two = await env.browser.newContext();
  await two.addInitScript((key) => (window.walletDoubleKey = key), jwk);
  await two.addInitScript({ path: double });
  const b = await two.newPage();
  await b.goto(env.stack.url);
  await waitForNode(b);
  const invitation = await a.evaluate((c) => window.tabnode.invite(c), ctx);
  await b.evaluate(async (inv) => {
    const bytes = new Uint8Array(await (await fetch('apps/kv_store.wasm')).arrayBuffer());
    await window.tabnode.installApp(bytes);
    await window.tabnode.join(inv);
  }, invitation);
  const signedB = await attempt(b);
  assert.equal(signedB.error, undefined, JSON.stringify(signedB.error));
  const keyB = await b.evaluate(() => window.tabnode.publicKey);
  const write = (page, key) =>
    page.evaluate(
      async ({ c, key }) => {
        try {
          await window.tabnode.execute(c, 'set', { key, value: 'from B' });
          return null;
        } catch (e) {
          return { name: e.name, message: e.message };
        }
      },
      { c: ctx, key },
    );
  // B has the state (it can write) and has shown its root to A.
  await eventually('B to write', async () => ({ ok: (await write(b, 'before')) === null }));
  await eventually('A to have B\'s write', async () => {
    const e = await a.evaluate(async (c) => (await window.tabnode.execute(c, 'entries', {})).output, ctx);
    return { ok: e.before === 'from B', e };
  });
  const revoked = await eventually('A to revoke B\'s key once B is bound', async () => {
    const r = await a.evaluate(async (k) => {
      try {
        return { contexts: await window.tabnode.revokeKey(k) };
      } catch (e) {
        return { error: { name: e.name, message: e.message } };
      }
    }, keyB);
    return { ok: !!r.contexts, r };
  });
  assert.deepEqual(revoked.r.contexts, [ctx]);
  const refused = await eventually('B to learn its key was revoked', async () => {
    const f = await write(b, 'after');
    return { ok: f?.name === 'Unauthorized', f };
  });
  assert.match(refused.f.message, /removed/);
  const members = await a.evaluate((c) => window.tabnode.members(c), ctx);
  assert.ok(!members.some((m) => m.key === keyB), JSON.stringify(members));
  const entriesA = await a.evaluate(async (c) => (await window.tabnode.execute(c, 'entries', {})).output, ctx);
  assert.deepEqual(entriesA, { before: 'from B' }, 'what B signed before stays');
  await one.close();
  await two.close();
});

test('with NEAR RPC configured (against a JSON-RPC test double), sign-in checks the wallet key is on the account', async () => {
  const keys = new Map();
  const rpc = await nearRpcDouble({ keys, contexts: new Map() });
  const context = await env.browser.newContext();
  await context.addInitScript({ path: double });
  const page = await context.newPage();
  try {
    await page.goto(`${env.stack.url}?nearRpc=${encodeURIComponent(rpc.url)}`);
    await waitForNode(page);
    // The account does not have the wallet's key: refused.
    const refused = await attempt(page);
    assert.equal(refused.error?.name, 'KeyNotOnAccount', JSON.stringify(refused));
    assert.equal(await page.evaluate(() => window.tabnode.identity()), null, 'nothing kept');
    // Once it has (as a full-access key), sign-in passes.
    keys.set('alice.test.near', new Set([await page.evaluate(() => window.near.publicKeyForTests())]));
    const { identity, error } = await attempt(page);
    assert.equal(error, undefined, JSON.stringify(error));
    assert.equal(identity.accountId, 'alice.test.near');
  } finally {
    await context.close();
    await rpc.close();
  }
});
