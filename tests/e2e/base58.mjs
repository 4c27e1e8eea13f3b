// Base58 (Bitcoin's alphabet, as NEAR and Calimero write keys and ids), shared by the test
// doubles: the NEAR RPC double imports it, and pages get it for the wallet double through
// `base58InitScript`, so there is one copy.

/** Returns `{encode, decode}`. Self-contained, so its source can be injected into a page. */
export function base58Codec() {
  const ALPHABET = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';
  const encode = (bytes) => {
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
  const decode = (text) => {
    let n = 0n;
    for (const c of text) {
      const digit = ALPHABET.indexOf(c);
      if (digit < 0) throw new Error(`not base58: ${JSON.stringify(text)}`);
      n = n * 58n + BigInt(digit);
    }
    const bytes = [];
    while (n > 0n) {
      bytes.unshift(Number(n % 256n));
      n /= 256n;
    }
    for (const c of text) {
      if (c !== '1') break;
      bytes.unshift(0);
    }
    return Uint8Array.from(bytes);
  };
  return { encode, decode };
}

export const { encode: base58, decode: unbase58 } = base58Codec();

/** For `browserContext.addInitScript`, before the wallet double: defines `window.tabnodeBase58`. */
export const base58InitScript = { content: `window.tabnodeBase58 = (${base58Codec.toString()})();` };
