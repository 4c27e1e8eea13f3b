// A tabnode node in a headless Chromium page that speaks `tabnode run`'s line protocol, so
// `tabnode workflow run --nodes browser|mixed` drives it as it drives a native node:
//
//   node scripts/page-node.mjs --relay MULTIADDR [--relay …] [--name NAME]
//   node scripts/page-node.mjs --check        # {"ok":true,…} or {"error":{kind,message}}, exit 1
//
// stdin: one command a line, a JSON array of the words one would give `tabnode` (the ones the
// workflow runner sends, listed in COMMANDS). stdout: `{"type":"started","publicKey","peerId",
// "contexts"}` first, then per command `{"type":"result","line":N,"value"}` or `{"type":"error",
// "line":N,"error":{kind,message}}` with the native node's value shapes and the page's error kinds
// (a BrowserNode error's `name`), the node's events as its subscribers get them, `synced` once a
// joined context's state is here, and `stopped` at the end. It stops (closing Chromium and the
// package server) at the end of stdin, on SIGINT or SIGTERM, and when anything under it fails.
//
// Needs the built package (`make pkg`: pkg/testing is the kit that opens the page), playwright-core
// (`npm ci`) and Chromium at $CHROMIUM or /usr/bin/chromium. Pages do not meter fuel (`--fuel`
// is the native node's) and keep their IndexedDB only while they run.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createInterface } from 'node:readline';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const KIT = path.join(root, 'pkg/testing/index.js');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'];
/** How long the commands sent before the end of stdin may still take. */
const STOP_AFTER_MS = 2_000;
/** How often a joined context is asked whether its state is here. */
const SYNC_POLL_MS = 100;
/** `--expires`'s units, as the CLI's `context invite` takes them. */
const UNIT_MS = { s: 1e3, m: 60e3, h: 3600e3, d: 86400e3 };

const print = (line) => process.stdout.write(`${JSON.stringify(line)}\n`);

/** A failure with a kind, reported as `{"error": {kind, message}}`. */
class Failure extends Error {
  constructor(kind, message) {
    super(message);
    this.kind = kind;
  }
}

/** JSON text given as it is in an answer line (a call's answer with integers beyond 2^53). */
class RawJson {
  constructor(text) {
    this.text = text;
  }
}

/** What the page node needs, or the first thing missing as a typed failure. */
function check() {
  if (!existsSync(KIT)) throw new Failure('PackageNotBuilt', `no ${KIT}: build the package with \`make pkg\``);
  try {
    createRequire(KIT).resolve('playwright-core');
  } catch {
    throw new Failure('PlaywrightNotFound', 'playwright-core is not installed beside the package: run `npm ci` in the repository');
  }
  if (!existsSync(CHROMIUM) || !statSync(CHROMIUM).isFile()) {
    throw new Failure('ChromiumNotFound', `no Chromium at ${CHROMIUM}: install it, or name it with CHROMIUM=PATH`);
  }
  return { ok: true, kit: KIT, chromium: CHROMIUM };
}

/**
 * The script's own arguments: `--relay` (repeatable), `--name`, `--guest-requests` (what the
 * page's `guestConsent` answers a guest's request to add or remove a member or delete a
 * context: `refuse`, the default, or `allow`, as `tabnode --guest-requests`), `--check`.
 */
function parseArgs(argv) {
  const relays = [];
  let name = 'page';
  let checkOnly = false;
  let guestRequests = 'refuse';
  const usage = 'page-node.mjs --relay MULTIADDR [--name NAME] [--guest-requests refuse|allow] | --check';
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--relay' && i + 1 < argv.length) relays.push(argv[++i]);
    else if (arg === '--name' && i + 1 < argv.length) name = argv[++i];
    else if (arg === '--guest-requests' && ['refuse', 'allow'].includes(argv[i + 1])) guestRequests = argv[++i];
    else if (arg === '--check') checkOnly = true;
    else throw new Failure('Usage', `unknown argument ${JSON.stringify(arg)}: ${usage}`);
  }
  if (!checkOnly && relays.length === 0) throw new Failure('Usage', 'page-node.mjs needs --relay MULTIADDR');
  return { relays, name, checkOnly, guestRequests };
}

/** A command's words as positionals and `--flag value` options (each flag given once). */
function parseWords(words, flags) {
  const positional = [];
  const options = {};
  for (let i = 0; i < words.length; i++) {
    const word = words[i];
    if (!word.startsWith('--')) {
      positional.push(word);
      continue;
    }
    const flag = word.slice(2);
    if (!flags.includes(flag) || i + 1 >= words.length) {
      throw new Failure('Usage', `${words.join(' ')}: ${word} is not an option here (options: ${flags.map((f) => `--${f} VALUE`).join(', ') || 'none'})`);
    }
    options[flag] = words[++i];
  }
  return { positional, options };
}

/** A duration as `context invite --expires` takes it (90s, 30m, 2h, 7d; a bare number is seconds), in ms. */
function durationMs(text) {
  const match = /^(\d+)([smhd]?)$/.exec(text.trim());
  if (!match || Number(match[1]) === 0) throw new Failure('Usage', `--expires ${text}: not a duration such as 90s, 30m, 2h or 7d`);
  return Number(match[1]) * UNIT_MS[match[2] || 's'];
}

/** A file a command reads, or an `Io` failure naming it (as the CLI's). */
function readBytes(file) {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new Failure('Io', `${file}: ${err.message}`);
  }
}

/** JSON text a command takes, or the CLI's `BadArgs`. */
function parseJson(what, text) {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new Failure('BadArgs', `${what} is not JSON: ${err.message}`);
  }
}


/** The page node: one page, its BrowserNode, and the commands mapped onto it. */
class PageNode {
  constructor(node) {
    this.node = node;
    /** Contexts joined whose state is not here yet: `synced` is said once it is. */
    this.unsynced = new Set();
  }

  /** `BrowserNode.<method>(...args)` in the page: its value, or its error with the page's kind. */
  async call(method, ...args) {
    const answer = await this.node.page.evaluate(async ({ method, args }) => {
      try {
        const decoded = args.map((a) => (a && a.__base64 !== undefined ? Uint8Array.from(atob(a.__base64), (c) => c.charCodeAt(0)) : a));
        return { value: await window.tabnode[method](...decoded) };
      } catch (err) {
        return { error: { kind: err?.name || 'Error', message: String(err?.message ?? err) } };
      }
    }, { method, args });
    if (answer.error) throw new Failure(answer.error.kind, answer.error.message);
    return answer.value;
  }

  /**
   * `execute` with its arguments and answer as JSON text, parsed and written in the page: an
   * integer beyond 2^53 (a u64 or i64 such as a timestamp in ns) goes in and comes out exact
   * (a BigInt in the page; Node 20 has no JSON.rawJSON to write one).
   */
  async execute(ctx, method, argsText) {
    const answer = await this.node.page.evaluate(async ({ ctx, method, argsText }) => {
      const exact = (key, value, context) =>
        typeof value === 'number' && !Number.isSafeInteger(value) && /^-?\d+$/.test(context?.source ?? '') ? BigInt(context.source) : value;
      const digits = (key, value) => (typeof value === 'bigint' ? JSON.rawJSON(value.toString()) : value);
      try {
        const args = argsText === null ? null : JSON.parse(argsText, exact);
        const r = await window.tabnode.execute(ctx, method, args);
        return { json: JSON.stringify({ output: r.output ?? null, events: r.events, logs: r.logs, root_hash: r.rootHash, delta_id: r.deltaId }, digits) };
      } catch (err) {
        return { error: { kind: err?.name || 'Error', message: String(err?.message ?? err) } };
      }
    }, { ctx, method, argsText });
    if (answer.error) throw new Failure(answer.error.kind, answer.error.message);
    return new RawJson(answer.json);
  }

  /** A property of the page's BrowserNode (`publicKey`, `peerId`). */
  prop(name) {
    return this.node.page.evaluate((n) => window.tabnode[n], name);
  }

  /** Bytes as they cross into the page: base64 (a list of numbers is ten times slower). */
  static bytes(buffer) {
    return { __base64: buffer.toString('base64') };
  }

  /** Runs one command's words; its value as the native node gives it. */
  async run(words) {
    const key = words.slice(0, 2).join(' ');
    const handler = COMMANDS[key] ?? COMMANDS[words[0]];
    if (!handler) {
      throw new Failure('Usage', `${JSON.stringify(words)}: a page node does ${Object.keys(COMMANDS).join(', ')}`);
    }
    const rest = words.slice(COMMANDS[key] ? 2 : 1);
    const { positional, options } = parseWords(rest, handler.flags ?? []);
    if (positional.length < (handler.args ?? 0)) {
      throw new Failure('Usage', `${words.join(' ')}: needs ${handler.usage}`);
    }
    return handler.run(this, positional, options);
  }

  /** Says `synced` for each joined context whose state has come. */
  async pollSynced() {
    for (const id of [...this.unsynced]) {
      if (await this.call('isSynced', id)) {
        this.unsynced.delete(id);
        print({ type: 'synced', contextId: id });
      }
    }
  }
}

/** The commands the workflow runner sends (and a few reads), as `tabnode` words. */
const COMMANDS = {
  identity: {
    run: async (p) => ({ public_key: await p.prop('publicKey'), peer_id: await p.prop('peerId') }),
  },
  'app install': {
    args: 1,
    usage: 'FILE',
    run: async (p, [file]) => {
      const bytes = readBytes(file);
      const appId = await p.call('installApp', PageNode.bytes(bytes));
      const bundle = await p.call('bundleInfo', PageNode.bytes(bytes));
      if (!bundle) return { app_id: appId };
      return { app_id: appId, package: bundle.package, app_version: bundle.appVersion, abi: bundle.abi, signer_id: bundle.signerId };
    },
  },
  'context create': {
    args: 1,
    usage: 'APP_ID [--args JSON]',
    flags: ['args'],
    run: async (p, [appId], { args }) => ({ context_id: await p.call('createContext', appId, args === undefined ? null : parseJson('--args', args)) }),
  },
  'context list': {
    run: async (p) => ({ contexts: await p.call('contexts') }),
  },
  'context invite': {
    args: 1,
    usage: 'CONTEXT_ID [--role ROLE] [--uses N] [--expires DURATION]',
    flags: ['role', 'uses', 'expires'],
    run: async (p, [ctx], { role = 'member', uses = '1', expires = '7d' }) => {
      const expiresInMs = durationMs(expires);
      const expiresAt = Date.now() + expiresInMs;
      const invitation = await p.call('inviteAs', ctx, { role, uses: Number(uses), expiresInMs });
      return { invitation, context_id: ctx, role, expires_at_ms: expiresAt, uses: Number(uses), link: null };
    },
  },
  'context join': {
    args: 1,
    usage: 'INVITATION',
    run: async (p, [link]) => {
      const invitation = link.includes('#join=') ? decodeURIComponent(link.split('#join=')[1].split(/[& ]/)[0]) : link.trim();
      // Resolves once a member admitted this node; the state follows (`synced`).
      const id = await p.call('join', invitation);
      if (!(await p.call('isSynced', id))) p.unsynced.add(id);
      else print({ type: 'synced', contextId: id });
      return { context_id: id, joining: false };
    },
  },
  'context members': {
    args: 1,
    usage: 'CONTEXT_ID',
    run: async (p, [ctx]) => ({ members: await p.call('members', ctx) }),
  },
  'context position': {
    args: 1,
    usage: 'CONTEXT_ID',
    run: async (p, [ctx]) => {
      const position = await p.call('position', ctx);
      return { context_id: ctx, heads: [...position.heads].sort(), root_hash: position.rootHash, synced: await p.call('isSynced', ctx) };
    },
  },
  call: {
    args: 2,
    usage: 'CONTEXT_ID METHOD [ARGS_JSON]',
    run: async (p, [ctx, method, args]) => {
      if (args !== undefined) parseJson('ARGS_JSON', args);
      return p.execute(ctx, method, args ?? null);
    },
  },
  replay: {
    args: 1,
    usage: 'CONTEXT_ID',
    run: async (p, [ctx]) => {
      const report = await p.call('replay', ctx);
      return { root_hash: report.rootHash, matches: report.matches, deltas: report.deltas };
    },
  },
  'blob put': {
    args: 1,
    usage: 'FILE [--context CONTEXT_ID]',
    flags: ['context'],
    run: async (p, [file], { context }) => {
      const bytes = readBytes(file);
      const blobId = await p.call('putBlob', PageNode.bytes(bytes), context);
      return { blob_id: blobId, size: bytes.length, context_id: context ?? null };
    },
  },
};

/** Starts Chromium, the package server and the page; everything stops through the returned `stop`. */
async function startPage(kit, relays, name, guestRequests) {
  const browser = await kit.launchChromium({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  let nodes;
  try {
    nodes = await kit.startNodes(browser, { nodes: 1, relays, allowGuestRequests: guestRequests === 'allow' });
  } catch (err) {
    await browser.close().catch(() => {});
    throw new Failure('StartFailed', `${name}: ${err.message}`);
  }
  const stop = async () => {
    await nodes.stop().catch(() => {});
    await browser.close().catch(() => {});
  };
  return { node: nodes.nodes[0], browser, stop };
}

async function main() {
  const { relays, name, checkOnly, guestRequests } = parseArgs(process.argv.slice(2));
  check();
  if (checkOnly) return print(check());
  const kit = await import(pathToFileURL(KIT).href);
  const { node, browser, stop } = await startPage(kit, relays, name, guestRequests);
  const page = new PageNode(node);

  let stopping = null;
  let syncTimer;
  const finish = (reason, failure) => {
    stopping ??= (async () => {
      clearInterval(syncTimer);
      if (failure) print({ type: 'error', error: { kind: failure.kind ?? 'PageFailed', message: failure.message } });
      print({ type: 'stopped', reason });
      await stop();
      process.exit(failure ? 1 : 0);
    })();
    return stopping;
  };
  process.on('SIGINT', () => finish('SIGINT'));
  process.on('SIGTERM', () => finish('SIGTERM'));
  browser.on('disconnected', () => finish('browser gone', new Failure('PageFailed', `${name}: Chromium went away`)));
  node.page.on('pageerror', (err) => process.stderr.write(`[${name} pageerror] ${err.message}\n`));
  node.page.on('crash', () => finish('page crashed', new Failure('PageFailed', `${name}: the page crashed`)));

  try {
    // The node's events, as `tabnode run` prints them.
    await node.page.exposeFunction('__pageNodeEvent', (event) => stopping || print(event));
    await node.page.evaluate(() => void window.tabnode.subscribe(null, (event) => window.__pageNodeEvent(event)));
    print({ type: 'started', publicKey: await page.prop('publicKey'), peerId: await page.prop('peerId'), contexts: await page.call('contexts') });
  } catch (err) {
    return finish('start failed', new Failure('StartFailed', `${name}: ${err.message}`));
  }

  syncTimer = setInterval(() => {
    if (page.unsynced.size && !stopping) page.pollSynced().catch(() => {});
  }, SYNC_POLL_MS);

  // Commands one at a time, in order; the line number counts every line, as `tabnode run`'s.
  let number = 0;
  let queue = Promise.resolve();
  const lines = createInterface({ input: process.stdin });
  lines.on('line', (line) => {
    const n = ++number;
    if (!line.trim()) return;
    queue = queue.then(async () => {
      if (stopping) return;
      const answer = await answerTo(page, line);
      if (stopping) return;
      if (answer.value instanceof RawJson) process.stdout.write(`{"type":"result","line":${n},"value":${answer.value.text}}\n`);
      else print({ ...answer, line: n });
    });
  });
  // The end of stdin stops the node once the commands before it are answered, as `tabnode run`,
  // but no later than STOP_AFTER_MS (a join may wait a minute for a member): the runner that closed
  // stdin kills what has not stopped 5 s later, and Chromium must go with this process.
  lines.on('close', () => Promise.race([queue, new Promise((r) => setTimeout(r, STOP_AFTER_MS))]).then(() => finish('stdin closed')));
}

/** A command line's answer: `{type: "result", value}` or `{type: "error", error}`. */
async function answerTo(page, line) {
  try {
    const words = JSON.parse(line);
    if (!Array.isArray(words) || !words.every((w) => typeof w === 'string')) throw new SyntaxError('not an array of strings');
    return { type: 'result', value: await page.run(words) };
  } catch (err) {
    if (err instanceof Failure) return { type: 'error', error: { kind: err.kind, message: err.message } };
    if (err instanceof SyntaxError) return { type: 'error', error: { kind: 'Usage', message: `a command is a JSON array of strings, e.g. ["identity"]: ${err.message}` } };
    return { type: 'error', error: { kind: 'PageFailed', message: err.message } };
  }
}

main().catch((err) => {
  print({ error: { kind: err.kind ?? 'StartFailed', message: err.message } });
  process.exit(1);
});
