// Writing a context's anchor (`writeAnchor`) to a Calimero context-config contract, through
// TEST DOUBLES of the two things that cannot run here: the user's injected NEAR wallet
// (tests/e2e/wallet-double.js: builds, signs and sends real borsh transactions) and a NEAR
// JSON-RPC node keeping the contract's state (tests/e2e/near-rpc-double.mjs: checks each
// transaction and plays `mutate` with the contract's signature, nonce and privilege checks).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, sign } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { addWalletDouble, eventually, failure, installKvStore, openNode, useStack, waitForNode } from './browser.mjs';
import { base58 } from './base58.mjs';
import { nearRpcDouble } from './near-rpc-double.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const CONTRACT = 'config.test.near';
const env = useStack();

const configured = (rpcUrl) =>
  `${env.stack.url}?nearRpc=${encodeURIComponent(rpcUrl)}&nearContract=${CONTRACT}&anchorRefreshMs=300`;

/** A page whose browser context has the wallet test double. */
async function openWithWallet(url, name) {
  const context = await env.browser.newContext();
  await addWalletDouble(context);
  const page = await context.newPage();
  page.on('pageerror', (err) => console.log(`[${name} pageerror] ${err.message}`));
  await page.goto(url);
  await waitForNode(page);
  return { context, page };
}

/** `writeAnchor` in the page: `{written}` or `{error: {name, message}}`. */
const writeAnchor = (page, ctx) =>
  page.evaluate(async (c) => {
    try {
      return { written: await window.tabnode.writeAnchor(c) };
    } catch (e) {
      return { error: { name: e.name, message: e.message } };
    }
  }, ctx);

/** Calimero's blob id of a wasm under 1 MiB: sha256 of its sha256. */
const blobId = (wasm) => base58(createHash('sha256').update(createHash('sha256').update(wasm).digest()).digest());

/** A `mutate` argument signed with a Node ed25519 key, as someone outside the context would. */
function signedRequest(privateKey, signerId, ctx, scope, params) {
  const payload = Buffer.from(JSON.stringify({ signerId, nonce: 0, scope: 'Context', params: { contextId: ctx, scope, params } }));
  return { payload: base58(payload), signature: base58(sign(null, payload, privateKey)) };
}

const rawKey = (publicKey) => publicKey.export({ format: 'der', type: 'spki' }).subarray(-32);

test('a creator writes the anchor through the wallet test double to the contract on the NEAR RPC test double; a removal follows; stale and forged requests are refused', async () => {
  const wasm = await readFile(path.join(root, 'tests/apps/dist/kv_store.wasm'));
  const state = { keys: new Map(), contexts: new Map(), contractId: CONTRACT, transactions: [] };
  const rpc = await nearRpcDouble(state);
  const pages = [];
  try {
    const a = await openWithWallet(configured(rpc.url), 'A');
    pages.push(a);
    const b = await openNode(env.browser, configured(rpc.url), { name: 'B' });
    pages.push(b);
    // The wallet's key is a full-access key of its account on the chain.
    state.keys.set('alice.test.near', new Set([await a.page.evaluate(() => window.near.publicKeyForTests())]));

    const appId = await installKvStore(a.page);
    await installKvStore(b.page);
    const ctx = await a.page.evaluate((id) => window.tabnode.createContext(id, {}), appId);
    await b.page.evaluate(async ({ c, inv }) => window.tabnode.join(inv), { c: ctx, inv: await a.page.evaluate((x) => window.tabnode.invite(x), ctx) });
    const keyOf = (p) => p.page.evaluate(() => window.tabnode.publicKey);
    const [keyA, keyB] = [await keyOf(a), await keyOf(b)];
    await eventually('A to know B as a member', async () => {
      const list = await a.page.evaluate((c) => window.tabnode.members(c), ctx);
      return { ok: list.length === 2, list };
    });

    // The first write: the contract does not know the context. One transaction: Add (the
    // context key names A, with the app), then A's AddMembers of B at A's first nonce.
    const first = await writeAnchor(a.page, ctx);
    assert.equal(first.error, undefined, JSON.stringify(first.error));
    const { written } = first;
    assert.deepEqual(written.requests.map((r) => [r.kind, r.signer, r.nonce]), [['Add', ctx, 0], ['AddMembers', keyA, 0]]);
    assert.deepEqual(written.requests[1].members, [keyB]);
    assert.match(written.transactionHash, /^[1-9A-HJ-NP-Za-km-z]{43,44}$/);
    assert.deepEqual([...written.anchor.members].sort(), [keyA, keyB].sort());
    assert.equal(written.anchor.appMatches, true);
    assert.equal(state.transactions.length, 1);
    assert.deepEqual(state.transactions[0], { hash: written.transactionHash, status: { SuccessValue: '' } });
    const onChain = state.contexts.get(ctx);
    assert.deepEqual([...onChain.members].sort(), [keyA, keyB].sort());
    assert.equal(onChain.application.blob, blobId(wasm));
    assert.equal(onChain.application.size, wasm.length);
    assert.deepEqual(onChain.nonces, new Map([[keyA, 1], [keyB, 0]]));
    assert.deepEqual([...onChain.privileges.ManageMembers], [keyA]);

    // Both pages hold the anchor now (A from the write, B from its refresh loop): B's write
    // counts at A only because the anchor lists B.
    await a.page.evaluate((c) => {
      window.mismatches = [];
      window.tabnode.subscribe(c, (e) => e.type === 'anchorMismatch' && window.mismatches.push(e));
    }, ctx);
    await eventually('B\'s write to reach A', async () => {
      await failure(b.page, ctx, 'set', { key: 'k', value: 'from B' });
      const got = await a.page.evaluate(async (c) => (await window.tabnode.execute(c, 'get', { key: 'k' })).output, ctx);
      return { ok: got === 'from B', got };
    });
    assert.deepEqual(await a.page.evaluate(() => window.mismatches), []);
    // Nothing left to write: nothing is sent.
    const again = await writeAnchor(a.page, ctx);
    assert.deepEqual(again.written?.requests, [], JSON.stringify(again));
    assert.equal(again.written.transactionHash, null);
    assert.equal(state.transactions.length, 1);

    // A removes B from the log. Until the contract is told, B is still on its anchor (B may read).
    await a.page.evaluate(({ c, m }) => window.tabnode.removeMember(c, m), { c: ctx, m: keyB });
    assert.equal(await failure(b.page, ctx, 'get', { key: 'k' }), null);

    // Two writes planned from the same state (the wallet holds both, as if the user had not yet
    // approved either): the first removes B; the second is stale, and the contract refuses it.
    await a.page.evaluate((c) => {
      window.walletDoubleHold = true;
      window.writes = [1, 2].map(() =>
        window.tabnode.writeAnchor(c).then((written) => ({ written }), (e) => ({ error: { name: e.name, message: e.message } })));
    }, ctx);
    await eventually('both writes to wait at the wallet', async () => ({ ok: (await a.page.evaluate(() => window.near.heldForTests())) === 2 }));
    await a.page.evaluate(() => window.near.releaseForTests());
    await a.page.evaluate(() => window.near.releaseForTests());
    // Both planned the same request; whichever reached the wallet first is sent first and counts.
    const results = await a.page.evaluate(() => Promise.all(window.writes));
    const removal = results.find((r) => !r.error) || results[0];
    const stale = results.find((r) => r !== removal);
    assert.equal(removal.error, undefined, JSON.stringify(removal.error));
    assert.deepEqual(removal.written.requests.map((r) => [r.kind, r.signer, r.nonce, r.members]), [['RemoveMembers', keyA, 1, [keyB]]]);
    assert.deepEqual(removal.written.anchor.members, [keyA]);
    assert.equal(stale.error?.name, 'AnchorWriteFailed', JSON.stringify(stale));
    assert.match(stale.error.message, /invalid nonce/);
    assert.match(stale.error.message, /RemoveMembers \(signed by \w+, nonce 1\)/);
    assert.deepEqual(state.contexts.get(ctx).members, [keyA]);
    assert.deepEqual(state.contexts.get(ctx).nonces, new Map([[keyA, 2]]));
    assert.equal(state.transactions.length, 3);
    assert.deepEqual(state.transactions[2].status.Failure.ActionError, {
      index: 0,
      kind: { FunctionCallError: { ExecutionError: 'Smart contract panicked: invalid nonce' } },
    });

    // B's page reads the anchor without B: it runs no call of the context any more.
    const refused = await eventually('B to follow the anchor', async () => {
      const f = await failure(b.page, ctx, 'get', { key: 'k' });
      return { ok: f?.name === 'Unauthorized' && /on its anchor/.test(f.message), f };
    });
    assert.match(refused.f.message, /not a member/);

    // Requests nobody in the context signed, sent by the wallet as they are: the contract refuses.
    await a.page.evaluate(() => (window.walletDoubleHold = false));
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const stranger = base58(rawKey(publicKey));
    const send = (args) =>
      a.page.evaluate(
        (tx) => window.near.signAndSendTransaction(tx),
        { receiverId: CONTRACT, actions: [{ type: 'FunctionCall', params: { methodName: 'mutate', args, gas: '100000000000000', deposit: '0' } }] },
      );
    const panicOf = (outcome) => outcome.status.Failure?.ActionError?.kind?.FunctionCallError?.ExecutionError;
    const byStranger = await send(signedRequest(privateKey, stranger, ctx, 'AddMembers', { members: [stranger] }));
    assert.equal(panicOf(byStranger), 'Smart contract panicked: unable to update member list');
    const forged = await send(signedRequest(privateKey, keyA, ctx, 'AddMembers', { members: [stranger] }));
    assert.equal(panicOf(forged), 'Smart contract panicked: failed to parse input: invalid signature');
    // The same stranger adding a context of its own key (signed as the contract requires) passes.
    const ownContext = await send(signedRequest(privateKey, stranger, stranger, 'Add', { author_id: stranger, application: onChain.application }));
    assert.deepEqual(ownContext.status, { SuccessValue: '' });
    assert.deepEqual(state.contexts.get(ctx).members, [keyA]);
  } finally {
    for (const p of pages) await p.context.close();
    await rpc.close();
  }
});

test('writeAnchor says clearly why it cannot write: no configuration, no wallet, a refusal, no RPC', async () => {
  const state = { keys: new Map(), contexts: new Map(), contractId: CONTRACT, transactions: [] };
  const rpc = await nearRpcDouble(state);
  const gone = await nearRpcDouble({ keys: new Map(), contexts: new Map() });
  await gone.close(); // nothing listens at its URL any more
  const pages = [];
  const contextOn = async (p) => p.page.evaluate(async (id) => window.tabnode.createContext(id, {}), await installKvStore(p.page));
  try {
    const plain = await openNode(env.browser, env.stack.url, { name: 'plain' });
    pages.push(plain);
    const notConfigured = await writeAnchor(plain.page, await contextOn(plain));
    assert.equal(notConfigured.error?.name, 'AnchorNotConfigured', JSON.stringify(notConfigured));
    assert.match(notConfigured.error.message, /nearRpc and nearContract/);

    const noWallet = await openNode(env.browser, configured(rpc.url), { name: 'no wallet' });
    pages.push(noWallet);
    const missing = await writeAnchor(noWallet.page, await contextOn(noWallet));
    assert.equal(missing.error?.name, 'WalletNotFound', JSON.stringify(missing));

    const refusing = await openWithWallet(configured(rpc.url), 'refusing');
    pages.push(refusing);
    state.keys.set('alice.test.near', new Set([await refusing.page.evaluate(() => window.near.publicKeyForTests())]));
    await refusing.page.evaluate(() => (window.walletDoubleRejects = true));
    const rejected = await writeAnchor(refusing.page, await contextOn(refusing));
    assert.equal(rejected.error?.name, 'WalletRejected', JSON.stringify(rejected));
    assert.equal(state.contexts.size, 0, 'nothing reached the contract');
    assert.equal(state.transactions.length, 0);

    const offline = await openWithWallet(configured(gone.url), 'offline');
    pages.push(offline);
    const unavailable = await writeAnchor(offline.page, await contextOn(offline));
    assert.equal(unavailable.error?.name, 'RpcUnavailable', JSON.stringify(unavailable));
    assert.equal(await offline.page.evaluate(() => window.near.askedForTests()), 0, 'the wallet was not asked');
  } finally {
    for (const p of pages) await p.context.close();
    await rpc.close();
  }
});
