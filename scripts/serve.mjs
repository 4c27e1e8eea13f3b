// Starts the native relay and serves the console (www/dist) with its config and the demo apps.
// `node scripts/serve.mjs` is what `make run` runs; tests import `startStack` and call `stop()`.
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { securityHeaders } from './static-server.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** Where cargo put the relay: CARGO_TARGET_DIR if set (as `make relay` honours it), else ./target. */
const relayDefault = path.join(process.env.CARGO_TARGET_DIR ? path.resolve(process.env.CARGO_TARGET_DIR) : path.join(root, 'target'), 'release/tabnode-relay');
const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.wasm': 'application/wasm',
  '.json': 'application/json',
  '.css': 'text/css',
};

/**
 * Starts the relay binary on WebSocket (TCP `port`) and WebRTC-direct (UDP `webrtcPort`);
 * `address` resolves to the WebSocket multiaddr and `webrtcAddress` to the WebRTC-direct one
 * (with its /certhash/) once it listens, and `metrics` to its Prometheus URL (on a free port). With `keyFile`, the WebRTC certificate is kept beside
 * the key, so a restart on the same ports gives the same two addresses.
 */
export function startRelay({ host = '127.0.0.1', port = 0, webrtcPort = 0, binary = relayDefault, logLevel = 'warn', keyFile } = {}) {
  const args = [
    '--listen', `/ip4/${host}/tcp/${port}/ws`,
    '--listen', `/ip4/${host}/udp/${webrtcPort}/webrtc-direct`,
    '--metrics', `${host}:0`,
    ...(keyFile ? ['--key-file', keyFile, '--webrtc-cert', `${keyFile}.webrtc.pem`] : []),
  ];
  const child = spawn(binary, args, {
    stdio: ['ignore', 'pipe', 'inherit'],
    // webrtc-rs warns about every closed WebRTC-direct connection (candidates, SCTP, SRTP
    // already closed when a page goes away): only its errors are worth a line here.
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG || `${logLevel},webrtc=error,webrtc_ice=error,webrtc_sctp=error,dtls=error` },
  });
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const lines = createInterface({ input: child.stdout });
  const failed = new Promise((_, reject) => {
    child.once('error', (err) => reject(new Error(`cannot start the relay ${binary}: ${err.message}`)));
    exited.then(({ code, signal }) => reject(new Error(`the relay exited early (code ${code}, signal ${signal})`)));
    const t = setTimeout(() => reject(new Error('the relay did not report its addresses within 30 s')), 30_000);
    t.unref();
  });
  failed.catch(() => {});
  /** The first `KEY=value` line the relay prints whose value `pattern` matches. */
  const printed = (pattern, key = 'RELAY_MULTIADDR') => Promise.race([failed, new Promise((resolve) => {
    lines.on('line', (line) => {
      const [k, value] = line.trim().split(/=(.*)/s);
      if (k === key && pattern.test(value)) resolve(value);
    });
  })]);
  return {
    address: printed(/\/ws\//),
    webrtcAddress: printed(/\/webrtc-direct\//),
    metrics: printed(/^http/, 'RELAY_METRICS'),
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(t);
    },
  };
}

/**
 * Serves the console, `/config.json` (the relays and `devUrlSettings`: whether the pages may take
 * security settings from their URL, for development) and `/apps/*.wasm` (guest apps built from
 * source).
 */
function startHttp({ host, port, relays, devUrlSettings }) {
  const server = createServer(async (req, res) => {
    const url = new URL(req.url, 'http://localhost');
    for (const [name, value] of Object.entries(securityHeaders())) res.setHeader(name, value);
    if (url.pathname === '/config.json') {
      res.writeHead(200, { 'content-type': TYPES['.json'], 'cache-control': 'no-store' });
      return res.end(JSON.stringify({ relays, devUrlSettings }));
    }
    const file = url.pathname.startsWith('/apps/')
      ? path.join(root, 'tests/apps/dist', path.basename(url.pathname))
      : path.join(root, 'www/dist', path.normalize(url.pathname === '/' ? '/index.html' : url.pathname));
    if (!file.startsWith(root)) {
      res.writeHead(403);
      return res.end();
    }
    try {
      const body = await readFile(file);
      for (const [name, value] of Object.entries(securityHeaders(body, file))) res.setHeader(name, value);
      res.writeHead(200, { 'content-type': TYPES[path.extname(file)] || 'application/octet-stream' });
      res.end(body);
    } catch {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end(`not found: ${url.pathname}\n`);
    }
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}

/**
 * Starts relay and console. Ports 0 pick free ones (tests); returns `{url, relayAddr,
 * relayWebrtcAddr, relayMetric, stopRelay, startRelay, stop}`. Pages get the WebSocket address from `/config.json`; a page opened
 * with `?relay=<relayWebrtcAddr>` reaches the relay over WebRTC-direct instead.
 */
export async function startStack({
  host = '127.0.0.1',
  port = 8080,
  relayPort = 9090,
  relayWebrtcPort = 0,
  relayBinary = relayDefault,
  relayLogLevel = 'info',
  relayKeyFile,
  // This is a development server: pages may take `?db=`, `?relay=`, `?nearRpc=`… from their URL.
  // A deployment serves its own config.json without it (see docs/security.md).
  devUrlSettings = true,
} = {}) {
  const launch = (port, webrtcPort) => startRelay({ host, port, webrtcPort, binary: relayBinary, logLevel: relayLogLevel, keyFile: relayKeyFile });
  let relay = launch(relayPort, relayWebrtcPort);
  let relayAddr;
  let relayWebrtcAddr;
  try {
    [relayAddr, relayWebrtcAddr] = await Promise.all([relay.address, relay.webrtcAddress]);
  } catch (err) {
    await relay.stop();
    throw err;
  }
  let server;
  try {
    server = await startHttp({ host, port, relays: [relayAddr], devUrlSettings });
  } catch (err) {
    await relay.stop();
    throw err;
  }
  const url = `http://${host}:${server.address().port}/`;
  return {
    url,
    relayAddr,
    relayWebrtcAddr,
    /** The relay's Prometheus sample `name`, summed over its label sets (0 if it has none). */
    async relayMetric(name) {
      const text = await (await fetch(await relay.metrics)).text();
      return text.split('\n')
        .filter((line) => line.split(/[{ ]/)[0] === name)
        .reduce((sum, line) => sum + Number(line.trim().split(/\s+/).pop()), 0);
    },
    /** Stops the relay: every page loses its connection until `startRelay`. */
    async stopRelay() {
      await relay.stop();
    },
    /** Starts the relay again at the same address: with `relayKeyFile` set, the same peer id
     * on the same port. Tests hold the relay down for as long as a step needs, not for a time. */
    async startRelay() {
      relay = launch(Number(/\/tcp\/(\d+)\//.exec(relayAddr)[1]), Number(/\/udp\/(\d+)\//.exec(relayWebrtcAddr)[1]));
      const again = await Promise.all([relay.address, relay.webrtcAddress]);
      if (again.join() !== [relayAddr, relayWebrtcAddr].join()) throw new Error(`the relay came back as ${again}, not ${[relayAddr, relayWebrtcAddr]}`);
    },
    async stop() {
      server.closeAllConnections?.();
      await new Promise((resolve) => server.close(resolve));
      await relay.stop();
    },
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const port = Number(process.env.PORT || 8080);
  const relayPort = Number(process.env.RELAY_PORT || 9090);
  const relayWebrtcPort = Number(process.env.RELAY_WEBRTC_PORT || 9091);
  // A kept key gives the relay the same peer id, and so the same multiaddr, on every start.
  await mkdir(path.join(root, '.tabnode'), { recursive: true });
  const stack = await startStack({ port, relayPort, relayWebrtcPort, relayKeyFile: path.join(root, '.tabnode/relay.key') });
  console.log(`tabnode console: ${stack.url}`);
  console.log(`relay:           ${stack.relayAddr}`);
  console.log(`relay (WebRTC-direct): ${stack.relayWebrtcAddr}`);
  console.log(`  a console on it:     ${stack.url}?relay=${encodeURIComponent(stack.relayWebrtcAddr)}`);
  console.log('Ctrl-C stops both.');
  const shutdown = async () => {
    await stack.stop();
    process.exit(0);
  };
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
}
