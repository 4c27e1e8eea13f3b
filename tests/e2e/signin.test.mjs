// Sign-in with a NEAR wallet, against A TEST DOUBLE of an injected NEP-408 wallet
// (tests/e2e/wallet-double.js): no wallet extension can run in headless Chromium here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { useStack, waitForNode } from './browser.mjs';

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
