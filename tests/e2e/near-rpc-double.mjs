// A NEAR JSON-RPC TEST DOUBLE for the end-to-end tests (no NEAR node runs here): it answers
// `query` with `view_access_key` (from `keys`: account → set of "ed25519:…" keys) and with
// `call_function` on a Calimero context-config contract's `members` and `application` views
// (from `contexts`: context id → {members: [base58 keys], wasm: Uint8Array}), in NEAR's formats,
// with CORS for the page.
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';

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
const sha256 = (bytes) => createHash('sha256').update(bytes).digest();
const BLOCK = { block_height: 100, block_hash: '4reLvkAWfqk5fsqio1KLudk46cqRz9erQdaHkWZKMJDZ' };

/** Calimero's application record for a wasm: its blob id is sha256 over each 1 MiB chunk's sha256. */
function application(wasm) {
  const chunks = [];
  for (let at = 0; at < wasm.length; at += 1 << 20) chunks.push(sha256(wasm.subarray(at, at + (1 << 20))));
  const blob = base58(sha256(Buffer.concat(chunks)));
  return { id: blob, blob, size: wasm.length, source: 'test', metadata: '' };
}

function answer(request, { keys, contexts }) {
  const { params } = request;
  const error = (cause, info, data) => ({
    error: { name: 'HANDLER_ERROR', cause: { name: cause, info }, code: -32000, message: 'Server error', data },
  });
  if (params.request_type === 'view_access_key') {
    if (keys.get(params.account_id)?.has(params.public_key)) {
      return { result: { nonce: 7, permission: 'FullAccess', ...BLOCK } };
    }
    return error('UNKNOWN_ACCESS_KEY', { public_key: params.public_key, ...BLOCK }, `Access key for public key ${params.public_key} does not exist while viewing`);
  }
  if (params.request_type === 'call_function') {
    const args = JSON.parse(Buffer.from(params.args_base64, 'base64').toString());
    const context = contexts.get(args.context_id);
    if (!context) {
      return { result: { error: 'wasm execution failed with error: FunctionCallError(ExecutionError("Smart contract panicked: context does not exist"))', logs: [], ...BLOCK } };
    }
    let value;
    if (params.method_name === 'members') value = context.members.slice(args.offset, args.offset + args.length);
    else if (params.method_name === 'application') value = application(context.wasm);
    else return { result: { error: `wasm execution failed with error: MethodResolveError(MethodNotFound)`, logs: [], ...BLOCK } };
    return { result: { result: [...Buffer.from(JSON.stringify(value))], logs: [], ...BLOCK } };
  }
  return error('UNKNOWN_REQUEST', {}, 'not served by this double');
}

/** Starts the double on 127.0.0.1; `state` ({keys, contexts}) may be changed while it runs. */
export async function nearRpcDouble(state) {
  const server = createServer((req, res) => {
    res.setHeader('access-control-allow-origin', '*');
    res.setHeader('access-control-allow-headers', 'content-type');
    res.setHeader('access-control-allow-methods', 'POST');
    if (req.method === 'OPTIONS') return res.end();
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      const request = JSON.parse(body);
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ jsonrpc: '2.0', id: request.id, ...answer(request, state) }));
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${server.address().port}/`, close: () => new Promise((r) => server.close(r)) };
}
