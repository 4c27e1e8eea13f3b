// Runtime benchmark, native and in headless Chromium in one run: kv-store set/get calls per
// second, the browser/native ratio, and what fuel metering costs. `make bench` runs it.
import { execFileSync } from 'node:child_process';
import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { launchChromium } from '../tests/e2e/browser.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const calls = Number(process.argv[2] || 500);
const kvStore = path.join(root, 'tests/apps/dist/kv_store.wasm');

const native = JSON.parse(
  execFileSync(path.join(process.env.CARGO_TARGET_DIR ? path.resolve(process.env.CARGO_TARGET_DIR) : path.join(root, 'target'), 'release/tabnode-bench'), [kvStore, String(calls)], { encoding: 'utf8' }),
);

const TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.wasm': 'application/wasm' };
const server = createServer(async (req, res) => {
  const url = new URL(req.url, 'http://localhost');
  const file = url.pathname.startsWith('/apps/')
    ? path.join(root, 'tests/apps/dist', path.basename(url.pathname))
    : path.join(root, 'bench', path.normalize(url.pathname === '/' ? '/index.html' : url.pathname));
  try {
    const body = await readFile(file);
    res.writeHead(200, { 'content-type': TYPES[path.extname(file)] || 'application/octet-stream' });
    res.end(body);
  } catch {
    res.writeHead(404);
    res.end();
  }
});
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const browser = await launchChromium();
let inBrowser;
try {
  const page = await browser.newPage();
  await page.goto(`http://127.0.0.1:${server.address().port}/?calls=${calls}`);
  await page.waitForFunction(() => window.figures || window.benchError, null, { timeout: 600_000 });
  const error = await page.evaluate(() => window.benchError);
  if (error) throw new Error(`the browser benchmark failed: ${error}`);
  inBrowser = await page.evaluate(() => window.figures);
} finally {
  await browser.close();
  server.close();
}

const f = (n) => n.toFixed(0).padStart(8);
const r = (n) => n.toFixed(2).padStart(8);
console.log(`kv-store through tabnode-runtime, ${calls} distinct keys (calls/second)\n`);
console.log('| where            |   set/s  |   get/s  |');
console.log('|------------------|----------|----------|');
console.log(`| native           | ${f(native.set_per_sec)} | ${f(native.get_per_sec)} |`);
console.log(`| browser          | ${f(inBrowser.set_per_sec)} | ${f(inBrowser.get_per_sec)} |`);
console.log(`| browser / native | ${r(inBrowser.set_per_sec / native.set_per_sec)} | ${r(inBrowser.get_per_sec / native.get_per_sec)} |`);
console.log('\nfuel metering: calls/second with metering off / on (1.00 = free)\n');
console.log(`| native           | ${r(native.set_unmetered_per_sec / native.set_per_sec)} | ${r(native.get_unmetered_per_sec / native.get_per_sec)} |`);
console.log(`| browser          | ${r(inBrowser.set_unmetered_per_sec / inBrowser.set_per_sec)} | ${r(inBrowser.get_unmetered_per_sec / inBrowser.get_per_sec)} |`);
