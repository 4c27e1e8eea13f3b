// A TEST DOUBLE of an injected NEAR wallet (NEP-408 global, Sender-style `window.near`), for the
// end-to-end tests; no real wallet runs here. It holds an Ed25519 key made in the page
// (WebCrypto) and
// - signs NEP-413 messages exactly as the NEP specifies (sha256 of the tagged borsh payload);
// - signs and sends transactions (`signAndSendTransaction`, wallet-selector's shape): it builds
//   a real NEAR transaction in borsh (signer, its key, the access key's next nonce, receiver, a
//   recent block hash, FunctionCall actions), signs sha256 of it, and sends the signed
//   transaction to the RPC (`broadcast_tx_commit`, base64), returning NEAR's outcome. The RPC
//   is `window.walletDoubleRpc`, else the page's `?nearRpc=`.
// Needs `window.tabnodeBase58` (tests/e2e/base58.mjs, `base58InitScript`), injected before it.
// Test controls: `walletDoubleKey` (a private JWK, to act as another page's account),
// `walletDoubleAccount`, `walletDoubleRejects`, `walletDoubleHold` (transactions wait for
// `near.releaseForTests()`, as if the user had not yet approved them).
(() => {
  const b58 = window.tabnodeBase58;
  if (!b58) throw new Error('the wallet double needs tests/e2e/base58.mjs (base58InitScript) injected first');
  const u32 = (n) => {
    const bytes = new Uint8Array(4);
    new DataView(bytes.buffer).setUint32(0, n, true);
    return bytes;
  };
  const uint = (n, size) => {
    const bytes = new Uint8Array(size);
    let v = BigInt(n);
    for (let i = 0; i < size; i++) {
      bytes[i] = Number(v & 0xffn);
      v >>= 8n;
    }
    return bytes;
  };
  const string = (s) => {
    const bytes = new TextEncoder().encode(s);
    return [u32(bytes.length), bytes];
  };
  const concat = (parts) => {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  };
  const base64 = (bytes) => btoa(String.fromCharCode(...bytes));
  // One key per page, or the key another page exported (`walletDoubleKey`, a private JWK), so
  // two pages can stand for two devices of one account.
  const shared = window.walletDoubleKey;
  const keys = shared
    ? Promise.all([
        crypto.subtle.importKey('jwk', shared, { name: 'Ed25519' }, true, ['sign']),
        crypto.subtle.importKey('jwk', { kty: shared.kty, crv: shared.crv, x: shared.x }, { name: 'Ed25519' }, true, ['verify']),
      ]).then(([privateKey, publicKey]) => ({ privateKey, publicKey }))
    : crypto.subtle.generateKey({ name: 'Ed25519' }, true, ['sign', 'verify']);
  const rawPublicKey = async () => new Uint8Array(await crypto.subtle.exportKey('raw', (await keys).publicKey));
  const account = () => window.walletDoubleAccount || 'alice.test.near';

  /** A JSON-RPC call to the RPC; NEAR's error object becomes an Error with its cause and data. */
  const rpc = async (method, params) => {
    const url = window.walletDoubleRpc || new URLSearchParams(location.search).get('nearRpc');
    if (!url) throw new Error('the wallet double has no NEAR RPC (set window.walletDoubleRpc or ?nearRpc=)');
    const answer = await (await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 'wallet-double', method, params }),
    })).json();
    if (answer.error) {
      const { error } = answer;
      const data = typeof error.data === 'string' ? error.data : JSON.stringify(error.data ?? error.cause?.info);
      throw Object.assign(new Error(`${error.cause?.name ?? error.name}: ${data}`), { rpcError: error });
    }
    return answer.result;
  };

  /** Borsh of one action; only FunctionCall (enum index 2) is needed here. */
  const action = ({ type, params }) => {
    if (type !== 'FunctionCall') throw new Error(`the wallet double sends FunctionCall actions only, not ${type}`);
    const args = params.args instanceof Uint8Array ? params.args : new TextEncoder().encode(JSON.stringify(params.args ?? {}));
    return concat([new Uint8Array([2]), ...string(params.methodName), u32(args.length), args, uint(params.gas, 8), uint(params.deposit ?? 0, 16)]);
  };

  const held = [];
  let asked = 0;
  window.near = {
    isSender: true,
    isTestDouble: true,
    /** The double's private key as a JWK, for another page to sign as the same account. */
    async exportKeyForTests() {
      return crypto.subtle.exportKey('jwk', (await keys).privateKey);
    },
    /** The double's public key as NEAR writes it (`ed25519:` and base58). */
    async publicKeyForTests() {
      return `ed25519:${b58.encode(await rawPublicKey())}`;
    },
    /** How many times a page asked the wallet to sign and send a transaction. */
    askedForTests() {
      return asked;
    },
    /** How many transactions wait for `releaseForTests` (see `walletDoubleHold`). */
    heldForTests() {
      return held.length;
    },
    /** Lets the oldest held transaction go on; resolves once it was sent (or failed). */
    async releaseForTests() {
      const next = held.shift();
      if (!next) throw new Error('no transaction is held');
      next.resume();
      await next.done.catch(() => {});
    },
    async signMessage({ message, nonce, recipient }) {
      const { privateKey } = await keys;
      if (window.walletDoubleRejects) throw new Error('User rejected the request');
      const payload = concat([u32(2 ** 31 + 413), ...string(message), new Uint8Array(nonce), ...string(recipient), new Uint8Array([0])]);
      const hash = new Uint8Array(await crypto.subtle.digest('SHA-256', payload));
      const signature = new Uint8Array(await crypto.subtle.sign({ name: 'Ed25519' }, privateKey, hash));
      return {
        accountId: account(),
        publicKey: `ed25519:${b58.encode(await rawPublicKey())}`,
        signature: base64(signature),
      };
    },
    signAndSendTransaction({ receiverId, actions }) {
      asked += 1;
      if (window.walletDoubleRejects) return Promise.reject(new Error('User rejected the transaction'));
      const send = async () => {
        const raw = await rawPublicKey();
        const publicKey = `ed25519:${b58.encode(raw)}`;
        // As a wallet does once the user approved: the key's next nonce and a recent block.
        const key = await rpc('query', { request_type: 'view_access_key', finality: 'final', account_id: account(), public_key: publicKey });
        const block = await rpc('block', { finality: 'final' });
        const transaction = concat([
          ...string(account()),
          new Uint8Array([0]), raw, // PublicKey: ed25519 tag, 32 bytes
          uint(key.nonce + 1, 8),
          ...string(receiverId),
          b58.decode(block.header.hash),
          u32(actions.length),
          ...actions.map(action),
        ]);
        const hash = new Uint8Array(await crypto.subtle.digest('SHA-256', transaction));
        const signature = new Uint8Array(await crypto.subtle.sign({ name: 'Ed25519' }, (await keys).privateKey, hash));
        const signed = concat([transaction, new Uint8Array([0]), signature]);
        return rpc('broadcast_tx_commit', [base64(signed)]);
      };
      if (!window.walletDoubleHold) return send();
      let resume;
      const approved = new Promise((resolve) => (resume = resolve));
      const done = approved.then(send);
      held.push({ resume, done });
      return done;
    },
  };
})();
