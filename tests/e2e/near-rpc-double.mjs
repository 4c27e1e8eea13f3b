// A NEAR JSON-RPC TEST DOUBLE for the end-to-end tests (no NEAR node runs here). It keeps the
// state of one Calimero context-config contract and a few access keys, and answers, in NEAR's
// formats and with CORS for the page:
// - `query` / `view_access_key` (from `keys`: account → set of "ed25519:…" keys; each key's
//   nonce advances with the transactions it signs);
// - `query` / `call_function` on the contract's views `members`, `application`, `has_member`,
//   `fetch_nonce`, `privileges`, `members_revision`, `application_revision` (from `contexts`:
//   context id → `{members: [base58 keys], wasm}` as a test sets it, or the full record
//   `mutate` keeps: `{members, application, nonces, privileges, …}`);
// - `block` (the wallet needs a recent block hash);
// - `broadcast_tx_commit`: decodes the borsh SignedTransaction, checks it as NEAR would (the
//   ed25519 signature of sha256 of the transaction by its public key, that key being an access
//   key of the signer, a nonce above the key's, a known block hash, at most 300 TGas in all),
//   then runs its FunctionCall actions on the contract in order, all or nothing, and answers a
//   FinalExecutionOutcome (`status: {SuccessValue}` or `{Failure: {ActionError}}` carrying the
//   contract's panic message). `mutate` plays the contract's checks
//   (`contracts/near/context-config/src/mutate.rs`): the `Signed<Request>` signature by its
//   `signerId`, the signer's nonce when it has one, the context key alone adding its context,
//   `ManageMembers` / `ManageApplication` for member and application changes.
// `state.transactions`, when an array, gets `{hash, status}` per transaction run.
import { createHash, createPublicKey, verify } from 'node:crypto';
import { createServer } from 'node:http';
import { base58, unbase58 } from './base58.mjs';

const sha256 = (bytes) => createHash('sha256').update(bytes).digest();
/** NEAR's cap on a transaction's prepaid gas (`max_total_prepaid_gas`). */
const MAX_TRANSACTION_GAS = 300_000_000_000_000n;
/** The access key nonce a key starts with. */
const FIRST_NONCE = 7;

/** Calimero's application record for a wasm: its blob id is sha256 over each 1 MiB chunk's sha256. */
function application(wasm) {
  const chunks = [];
  for (let at = 0; at < wasm.length; at += 1 << 20) chunks.push(sha256(wasm.subarray(at, at + (1 << 20))));
  const blob = base58(sha256(Buffer.concat(chunks)));
  return { id: blob, blob, size: wasm.length, source: 'test', metadata: '' };
}

/** A context as the contract keeps it, filling in what a test that set `{members, wasm}` left out. */
function record(context) {
  context.application ??= application(context.wasm);
  context.nonces ??= new Map();
  context.privileges ??= { ManageMembers: new Set(), ManageApplication: new Set() };
  context.membersRevision ??= 0;
  context.applicationRevision ??= 0;
  return context;
}

const ed25519Verify = (message, signature, publicKey) => {
  const key = createPublicKey({ key: Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), publicKey]), format: 'der', type: 'spki' });
  return verify(null, message, key, signature);
};

/** A contract panic, as `mutate` or a view raises it. */
class Panic extends Error {}
const panic = (message) => {
  throw new Panic(message);
};
const panicText = (message) => `Smart contract panicked: ${message}`;

function view(contexts, method, args) {
  if (method === 'fetch_nonce') {
    const context = contexts.get(args.context_id);
    return context ? record(context).nonces.get(args.member_id) ?? null : null;
  }
  const context = contexts.get(args.context_id);
  if (!context) panic('context does not exist');
  const c = record(context);
  switch (method) {
    case 'members':
      return c.members.slice(args.offset, args.offset + args.length);
    case 'application':
      return c.application;
    case 'has_member':
      return c.members.includes(args.identity);
    case 'members_revision':
      return c.membersRevision;
    case 'application_revision':
      return c.applicationRevision;
    case 'privileges': {
      const out = {};
      const who = args.identities.length ? args.identities : [...new Set([...c.privileges.ManageApplication, ...c.privileges.ManageMembers])];
      for (const id of who) {
        out[id] = ['ManageApplication', 'ManageMembers'].filter((cap) => c.privileges[cap].has(id));
      }
      return out;
    }
    default:
      throw new Error('MethodResolveError(MethodNotFound)');
  }
}

function exactKeys(value, keys) {
  if (!value || typeof value !== 'object' || Array.isArray(value)) panic('failed to parse input');
  const have = Object.keys(value).sort().join(',');
  if (have !== [...keys].sort().join(',')) panic(`failed to parse input: fields ${have}, expected ${keys.join(',')}`);
}

const id32 = (text) => {
  let bytes;
  try {
    bytes = unbase58(text);
  } catch {
    panic('failed to parse input: an id is not base58');
  }
  if (bytes.length !== 32) panic('failed to parse input: an id is not 32 bytes');
  return text;
};

/** The contract's `mutate` on `contexts` (changed in place); returns its logs or throws a Panic. */
function mutate(contexts, argBytes) {
  let signed;
  try {
    signed = JSON.parse(Buffer.from(argBytes).toString());
  } catch {
    panic('failed to parse input');
  }
  exactKeys(signed, ['payload', 'signature']);
  const payload = unbase58(signed.payload);
  const signature = unbase58(signed.signature);
  let request;
  try {
    request = JSON.parse(Buffer.from(payload).toString());
  } catch {
    panic('failed to parse input');
  }
  exactKeys(request, ['signerId', 'nonce', 'scope', 'params']);
  const signer = id32(request.signerId);
  if (signature.length !== 64 || !ed25519Verify(payload, signature, unbase58(signer))) {
    panic('failed to parse input: invalid signature');
  }
  if (request.scope !== 'Context') panic('failed to parse input: the double plays only Context requests');
  const { params } = request;
  exactKeys(params, ['contextId', 'scope', 'params']);
  const contextId = id32(params.contextId);
  const kind = params.params;
  const existing = contexts.get(contextId);
  // check_and_increment_nonce: only for a known context and a signer that has a nonce.
  if (existing && record(existing).nonces.has(signer)) {
    if (existing.nonces.get(signer) !== request.nonce) panic('invalid nonce');
    existing.nonces.set(signer, request.nonce + 1);
  }
  const known = () => existing ?? panic('context does not exist');
  const may = (capability, refusal) => {
    if (!record(known()).privileges[capability].has(signer)) panic(refusal);
    return existing;
  };
  switch (params.scope) {
    case 'Add': {
      exactKeys(kind, ['author_id', 'application']);
      if (signer !== contextId) panic('context addition must be signed by the context itself');
      const author = id32(kind.author_id);
      exactKeys(kind.application, ['id', 'blob', 'size', 'source', 'metadata']);
      if (existing) panic('context already exists');
      contexts.set(contextId, {
        members: [author],
        application: kind.application,
        nonces: new Map([[author, 0]]),
        privileges: { ManageMembers: new Set([author]), ManageApplication: new Set([author]) },
        membersRevision: 0,
        applicationRevision: 0,
      });
      return [`Context \`${contextId}\` added`];
    }
    case 'AddMembers':
    case 'RemoveMembers': {
      exactKeys(kind, ['members']);
      const c = may('ManageMembers', 'unable to update member list');
      const logs = [];
      for (const m of kind.members.map(id32)) {
        if (params.scope === 'AddMembers') {
          if (!c.nonces.has(m)) c.nonces.set(m, 0);
          if (!c.members.includes(m)) c.members.push(m);
          logs.push(`Added \`${m}\` as a member of \`${contextId}\``);
        } else {
          const at = c.members.indexOf(m);
          if (at >= 0) {
            // An IterableSet's removal: the last member takes the removed one's place.
            c.members[at] = c.members.at(-1);
            c.members.pop();
          }
          c.nonces.delete(m);
          c.privileges.ManageMembers.delete(m);
          c.privileges.ManageApplication.delete(m);
          logs.push(`Removed \`${m}\` from being a member of \`${contextId}\``);
        }
      }
      c.membersRevision += 1;
      return logs;
    }
    case 'UpdateApplication': {
      exactKeys(kind, ['application']);
      const c = may('ManageApplication', 'unable to update application');
      exactKeys(kind.application, ['id', 'blob', 'size', 'source', 'metadata']);
      const old = c.application.id;
      c.application = kind.application;
      c.applicationRevision += 1;
      return [`Updated application for context \`${contextId}\` from \`${old}\` to \`${kind.application.id}\``];
    }
    default:
      return panic(`failed to parse input: unknown variant \`${params.scope}\``);
  }
}

/** Reads a borsh SignedTransaction with FunctionCall actions; throws on anything else. */
function decodeSignedTransaction(bytes) {
  let at = 0;
  const take = (n) => {
    if (at + n > bytes.length) throw new Error('the transaction ends early');
    const out = bytes.subarray(at, at + n);
    at += n;
    return out;
  };
  const u32 = () => take(4).readUInt32LE(0);
  const uint = (size) => [...take(size)].reverse().reduce((n, b) => n * 256n + BigInt(b), 0n);
  const string = () => take(u32()).toString();
  const publicKey = () => {
    if (take(1)[0] !== 0) throw new Error('only ed25519 keys');
    return take(32);
  };
  const signerId = string();
  const key = publicKey();
  const nonce = uint(8);
  const receiverId = string();
  const blockHash = take(32);
  const actions = [];
  for (let n = u32(); n > 0; n--) {
    const tag = take(1)[0];
    if (tag !== 2) throw new Error(`action ${tag} is not a FunctionCall, which is all this double runs`);
    actions.push({ methodName: string(), args: take(u32()), gas: uint(8), deposit: uint(16) });
  }
  const transaction = bytes.subarray(0, at);
  if (take(1)[0] !== 0) throw new Error('only ed25519 signatures');
  const signature = take(64);
  if (at !== bytes.length) throw new Error('bytes after the signature');
  return { transaction, signerId, key, nonce, receiverId, blockHash, actions, signature };
}

const invalidTx = (reason) => ({
  error: {
    name: 'HANDLER_ERROR',
    cause: { name: 'INVALID_TRANSACTION', info: { TxExecutionError: { InvalidTxError: reason } } },
    code: -32000,
    message: 'Server error',
    data: { TxExecutionError: { InvalidTxError: reason } },
  },
});

function broadcast(state, params, chain) {
  let tx;
  try {
    tx = decodeSignedTransaction(Buffer.from(params[0], 'base64'));
  } catch (e) {
    return { error: { name: 'REQUEST_VALIDATION_ERROR', cause: { name: 'PARSE_ERROR', info: { error_message: e.message } }, code: -32700, message: 'Parse error', data: e.message } };
  }
  const hash = sha256(tx.transaction);
  const publicKey = `ed25519:${base58(tx.key)}`;
  if (!ed25519Verify(hash, tx.signature, tx.key)) return invalidTx('InvalidSignature');
  if (!state.keys.get(tx.signerId)?.has(publicKey)) {
    return invalidTx({ InvalidAccessKeyError: { AccessKeyNotFound: { account_id: tx.signerId, public_key: publicKey } } });
  }
  const keyNonce = chain.nonces.get(`${tx.signerId} ${publicKey}`) ?? FIRST_NONCE;
  if (tx.nonce <= BigInt(keyNonce)) return invalidTx({ InvalidNonce: { tx_nonce: Number(tx.nonce), ak_nonce: keyNonce } });
  if (!chain.blocks.includes(base58(tx.blockHash))) return invalidTx('Expired');
  const gas = tx.actions.reduce((sum, a) => sum + a.gas, 0n);
  if (gas > MAX_TRANSACTION_GAS) {
    return invalidTx({ ActionsValidation: { TotalPrepaidGasExceeded: { total_prepaid_gas: Number(gas), limit: Number(MAX_TRANSACTION_GAS) } } });
  }
  chain.nonces.set(`${tx.signerId} ${publicKey}`, Number(tx.nonce));

  // One receipt: the actions in order on a copy of the contract's state, kept only if all pass.
  const contractId = state.contractId ?? 'config.test.near';
  const contexts = structuredClone(state.contexts);
  const logs = [];
  let status = { SuccessValue: '' };
  for (const [index, action] of tx.actions.entries()) {
    const failure = (kind) => ({ Failure: { ActionError: { index, kind } } });
    if (tx.receiverId !== contractId) {
      status = failure({ FunctionCallError: { CompilationError: { CodeDoesNotExist: { account_id: tx.receiverId } } } });
      break;
    }
    if (action.methodName !== 'mutate') {
      status = failure({ FunctionCallError: { MethodResolveError: 'MethodNotFound' } });
      break;
    }
    try {
      logs.push(...mutate(contexts, action.args));
    } catch (e) {
      // Input the contract cannot read fails its parsing (near-sdk's `expect`) as a panic.
      const message = e instanceof Panic ? e.message : `failed to parse input: ${e.message}`;
      status = failure({ FunctionCallError: { ExecutionError: panicText(message) } });
      logs.length = 0;
      break;
    }
  }
  if (status.SuccessValue !== undefined) {
    state.contexts.clear();
    for (const [id, context] of contexts) state.contexts.set(id, context);
  }
  const txHash = base58(hash);
  const receiptId = base58(sha256(Buffer.concat([hash, Buffer.from('receipt')])));
  chain.height += 1;
  chain.blocks.push(base58(sha256(Buffer.from(`block ${chain.height}`))));
  const blockHash = chain.blocks.at(-1);
  if (Array.isArray(state.transactions)) state.transactions.push({ hash: txHash, status });
  return {
    result: {
      status,
      transaction: {
        signer_id: tx.signerId,
        public_key: publicKey,
        nonce: Number(tx.nonce),
        receiver_id: tx.receiverId,
        actions: tx.actions.map((a) => ({
          FunctionCall: { method_name: a.methodName, args: Buffer.from(a.args).toString('base64'), gas: Number(a.gas), deposit: a.deposit.toString() },
        })),
        signature: `ed25519:${base58(tx.signature)}`,
        hash: txHash,
      },
      transaction_outcome: {
        id: txHash,
        block_hash: blockHash,
        proof: [],
        outcome: { logs: [], receipt_ids: [receiptId], gas_burnt: 2428000000000, tokens_burnt: '242800000000000000000', executor_id: tx.signerId, status: { SuccessReceiptId: receiptId } },
      },
      receipts_outcome: [
        {
          id: receiptId,
          block_hash: blockHash,
          proof: [],
          outcome: { logs, receipt_ids: [], gas_burnt: 5000000000000, tokens_burnt: '500000000000000000000', executor_id: tx.receiverId, status },
        },
      ],
    },
  };
}

function answer(request, state, chain) {
  const { method, params } = request;
  const at = { block_height: chain.height, block_hash: chain.blocks.at(-1) };
  const error = (cause, info, data) => ({
    error: { name: 'HANDLER_ERROR', cause: { name: cause, info }, code: -32000, message: 'Server error', data },
  });
  if (method === 'block') {
    return { result: { author: 'double.near', header: { height: chain.height, hash: chain.blocks.at(-1), prev_hash: chain.blocks.at(-2) ?? chain.blocks[0] }, chunks: [] } };
  }
  if (method === 'broadcast_tx_commit') return broadcast(state, params, chain);
  if (method !== 'query') return error('UNKNOWN_REQUEST', {}, `${method} is not served by this double`);
  if (params.request_type === 'view_access_key') {
    if (state.keys.get(params.account_id)?.has(params.public_key)) {
      const nonce = chain.nonces.get(`${params.account_id} ${params.public_key}`) ?? FIRST_NONCE;
      return { result: { nonce, permission: 'FullAccess', ...at } };
    }
    return error('UNKNOWN_ACCESS_KEY', { public_key: params.public_key, ...at }, `Access key for public key ${params.public_key} does not exist while viewing`);
  }
  if (params.request_type === 'call_function') {
    const args = JSON.parse(Buffer.from(params.args_base64, 'base64').toString());
    try {
      const value = view(state.contexts, params.method_name, args);
      return { result: { result: [...Buffer.from(JSON.stringify(value))], logs: [], ...at } };
    } catch (e) {
      const vm = e instanceof Panic ? `FunctionCallError(ExecutionError("${panicText(e.message)}"))` : e.message;
      return { result: { error: `wasm execution failed with error: ${vm}`, logs: [], ...at } };
    }
  }
  return error('UNKNOWN_REQUEST', {}, 'not served by this double');
}

/**
 * Starts the double on 127.0.0.1. `state` is `{keys, contexts, contractId?, transactions?}`
 * (`contractId` defaults to `config.test.near`); a test may change it while the double runs.
 */
export async function nearRpcDouble(state) {
  const chain = { height: 100, blocks: [base58(sha256(Buffer.from('block 100')))], nonces: new Map() };
  const server = createServer((req, res) => {
    res.setHeader('access-control-allow-origin', '*');
    res.setHeader('access-control-allow-headers', 'content-type');
    res.setHeader('access-control-allow-methods', 'POST');
    if (req.method === 'OPTIONS') return res.end();
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      res.setHeader('content-type', 'application/json');
      let request = {};
      let reply;
      try {
        request = JSON.parse(body);
        reply = answer(request, state, chain);
      } catch (e) {
        // A request this double cannot read is refused as NEAR refuses one, not by crashing.
        reply = { error: { name: 'REQUEST_VALIDATION_ERROR', cause: { name: 'PARSE_ERROR', info: { error_message: e.message } }, code: -32700, message: 'Parse error', data: e.message } };
      }
      res.end(JSON.stringify({ jsonrpc: '2.0', id: request.id ?? null, ...reply }));
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}/`,
    close: () =>
      new Promise((r) => {
        server.closeAllConnections?.();
        server.close(r);
      }),
  };
}
