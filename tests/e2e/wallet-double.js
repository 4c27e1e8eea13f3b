// A TEST DOUBLE of an injected NEAR wallet (NEP-408 global, Sender-style `window.near`), for the
// sign-in tests: it signs NEP-413 messages with an Ed25519 key made in the page (WebCrypto),
// exactly as the NEP specifies (sha256 of the tagged borsh payload). No real wallet runs here.
(() => {
  const ALPHABET = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';
  const base58 = (bytes) => {
    let n = 0n;
    for (const b of bytes) n = n * 256n + BigInt(b);
    let out = '';
    while (n > 0n) {
      out = ALPHABET[Number(n % 58n)] + out;
      n /= 58n;
    }
    for (const b of bytes) {
      if (b !== 0) break;
      out = `1${out}`;
    }
    return out;
  };
  const u32 = (n) => {
    const bytes = new Uint8Array(4);
    new DataView(bytes.buffer).setUint32(0, n, true);
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
  // One key per page, or the key another page exported (`walletDoubleKey`, a private JWK), so
  // two pages can stand for two devices of one account.
  const shared = window.walletDoubleKey;
  const keys = shared
    ? Promise.all([
        crypto.subtle.importKey('jwk', shared, { name: 'Ed25519' }, true, ['sign']),
        crypto.subtle.importKey('jwk', { kty: shared.kty, crv: shared.crv, x: shared.x }, { name: 'Ed25519' }, true, ['verify']),
      ]).then(([privateKey, publicKey]) => ({ privateKey, publicKey }))
    : crypto.subtle.generateKey({ name: 'Ed25519' }, true, ['sign', 'verify']);
  window.near = {
    isSender: true,
    isTestDouble: true,
    /** The double's private key as a JWK, for another page to sign as the same account. */
    async exportKeyForTests() {
      return crypto.subtle.exportKey('jwk', (await keys).privateKey);
    },
    /** The double's public key as NEAR writes it (`ed25519:` and base58). */
    async publicKeyForTests() {
      return `ed25519:${base58(new Uint8Array(await crypto.subtle.exportKey('raw', (await keys).publicKey)))}`;
    },
    async signMessage({ message, nonce, recipient }) {
      const { privateKey, publicKey } = await keys;
      if (window.walletDoubleRejects) throw new Error('User rejected the request');
      const payload = concat([u32(2 ** 31 + 413), ...string(message), new Uint8Array(nonce), ...string(recipient), new Uint8Array([0])]);
      const hash = new Uint8Array(await crypto.subtle.digest('SHA-256', payload));
      const signature = new Uint8Array(await crypto.subtle.sign({ name: 'Ed25519' }, privateKey, hash));
      const raw = new Uint8Array(await crypto.subtle.exportKey('raw', publicKey));
      return {
        accountId: window.walletDoubleAccount || 'alice.test.near',
        publicKey: `ed25519:${base58(raw)}`,
        signature: btoa(String.fromCharCode(...signature)),
      };
    },
  };
})();
