// Sign-in with a NEAR wallet, against A TEST DOUBLE of an injected NEP-408 wallet
// (tests/e2e/wallet-double.js): no wallet extension can run in headless Chromium here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { addWalletDouble, eventually, useStack, waitForNode } from './browser.mjs';
import { nearRpcDouble } from './near-rpc-double.mjs';

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
  await addWalletDouble(context);
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
  await addWalletDouble(one);
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
  await addWalletDouble(two);
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
  await addWalletDouble(context);
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

test('key rotation in one step (wallet test double): the new key takes the old one\'s place in every context, members accept it, it survives a reload', async () => {
  const one = await env.browser.newContext();
  await addWalletDouble(one);
  const two = await env.browser.newContext();
  const [a, b] = [await one.newPage(), await two.newPage()];
  for (const p of [a, b]) {
    await p.goto(env.stack.url);
    await waitForNode(p);
  }
  const install = (p) => p.evaluate(async () => window.tabnode.installApp(new Uint8Array(await (await fetch('apps/kv_store.wasm')).arrayBuffer())));
  const appId = await install(a);
  await install(b);
  const ctx = await a.evaluate((id) => window.tabnode.createContext(id, {}), appId);
  await b.evaluate((inv) => window.tabnode.join(inv), await a.evaluate((c) => window.tabnode.invite(c), ctx));
  const set = (p, key, value) => p.evaluate(({ c, key, value }) => window.tabnode.execute(c, 'set', { key, value }), { c: ctx, key, value });
  const entries = (p) => p.evaluate(async (c) => (await window.tabnode.execute(c, 'entries', {})).output, ctx);
  const members = (p) => p.evaluate((c) => window.tabnode.members(c), ctx);

  const rotateBefore = await a.evaluate(() => window.tabnode.rotateKey().then(() => null, (e) => e.name));
  assert.equal(rotateBefore, 'NotSignedIn');
  assert.equal((await attempt(a)).error, undefined);
  await set(a, 'k1', 'old key');
  // (B's calls fail with NotSynced until the state arrives.)
  await eventually('B to have A\'s write', async () => (await entries(b).catch(() => ({}))).k1 === 'old key');
  const oldKey = await a.evaluate(() => window.tabnode.publicKey);

  // As a person would: the console's button (the wallet double signs both statements).
  await a.click('#rotate-key');
  await a.waitForFunction((old) => document.getElementById('public-key').textContent !== old, oldKey);
  const newKey = await a.evaluate(() => window.tabnode.publicKey);
  assert.equal(await a.textContent('#public-key'), newKey);
  const identity = await a.evaluate(() => window.tabnode.identity());
  assert.notEqual(newKey, oldKey);
  assert.equal(identity.clientKey, newKey);
  assert.equal(identity.accountId, 'alice.test.near');
  await set(a, 'k2', 'new key');
  await eventually('B to see the new key as admin in the old one\'s place, and its write', async () => {
    const [m, e] = [await members(b), await entries(b)];
    const ok = m.some((x) => x.key === newKey && x.role === 'admin') && !m.some((x) => x.key === oldKey) && e.k2 === 'new key';
    return { ok, m, e };
  });
  await set(b, 'k3', 'B is still a member');
  await eventually('A to have B\'s write', async () => (await entries(a)).k3 === 'B is still a member');
  const audit = await a.evaluate((c) => window.tabnode.verifyAudit(c), ctx);
  assert.ok(audit.ok, `A's audit trail verifies across both keys: ${JSON.stringify(audit)}`);

  await a.reload();
  await waitForNode(a);
  assert.equal(await a.evaluate(() => window.tabnode.publicKey), newKey, 'the new key is kept');
  assert.equal((await a.evaluate(() => window.tabnode.identity())).clientKey, newKey);
  await set(a, 'k4', 'after the reload');
  await eventually('B to have it', async () => (await entries(b)).k4 === 'after the reload');
  await one.close();
  await two.close();
});
