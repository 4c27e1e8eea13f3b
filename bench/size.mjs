// `make bench-size`: what the package `tabnode-web` (pkg/) weighs, per artifact (raw, gzip -9,
// brotli 11), and how long a page takes from navigation to a ready node (`init()` then
// `BrowserNode.create`) in headless Chromium, beside a blank module page in the same run, each
// load in a fresh browser context (cold cache, its own IndexedDB).
// `node bench/size.mjs [RUNS] [FOLDER]`: FOLDER (default pkg/) compares another build of the package.
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';
import { launchChromium } from '../tests/e2e/browser.mjs';
import { serveStatic } from '../scripts/static-server.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const runs = Number(process.argv[2] || 5);
const PKG = path.resolve(process.argv[3] || path.join(ROOT, 'pkg'));

/** Every file the package ships (its `files`), relative to pkg/. */
async function artifacts() {
  const { files } = JSON.parse(await readFile(path.join(PKG, 'package.json'), 'utf8'));
  const out = ['package.json'];
  for (const entry of files) {
    const full = path.join(PKG, entry);
    if ((await stat(full)).isDirectory()) {
      for (const f of await readdir(full, { recursive: true })) if ((await stat(path.join(full, f))).isFile()) out.push(path.join(entry, f));
    } else out.push(entry);
  }
  return out;
}

const kib = (n) => `${(n / 1024).toFixed(1)} KiB`;
const mib = (n) => `${(n / 1048576).toFixed(2)} MiB`;
const size = (n) => (n >= 1048576 ? mib(n) : kib(n));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function sizes() {
  const rows = [];
  for (const file of await artifacts()) {
    const body = await readFile(path.join(PKG, file));
    rows.push({
      file,
      raw: body.length,
      gzip: gzipSync(body, { level: 9 }).length,
      brotli: brotliCompressSync(body, { params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: body.length } }).length,
    });
  }
  const sum = (file, list) => list.reduce((t, r) => ({ ...t, raw: t.raw + r.raw, gzip: t.gzip + r.gzip, brotli: t.brotli + r.brotli }), { file, raw: 0, gzip: 0, brotli: 0 });
  // What a page fetches: the module, its snippets and the wasm (not the types, README or kit).
  const loaded = rows.filter((r) => /\.(js|wasm)$/.test(r.file) && !r.file.startsWith('testing/'));
  console.log('| artifact | raw | gzip (zlib 9) | brotli (11) |\n|---|---|---|---|');
  for (const r of [...rows, sum('**what a page loads** (.js, .wasm)', loaded), sum('the package, all files', rows)]) console.log(`| ${r.file} | ${r.raw} (${size(r.raw)}) | ${r.gzip} (${size(r.gzip)}) | ${r.brotli} (${size(r.brotli)}) |`);
}

const READY = `<!doctype html><meta charset="utf-8"><script type="module">
  import init, { BrowserNode } from './tabnode_web.js';
  await init();
  window.__wasmReady = performance.now();
  window.tabnode = await BrowserNode.create({ dbName: 'bench-size' });
  window.__ready = performance.now();
</script>`;
const BLANK = `<!doctype html><meta charset="utf-8"><script type="module">window.__ready = performance.now();</script>`;

/** Milliseconds from navigation start to `window.__ready` (and to the wasm, for the node). */
async function load(browser, url) {
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    await page.goto(url);
    await page.waitForFunction(() => window.__ready, null, { timeout: 120_000 });
    return await page.evaluate(() => ({ ready: window.__ready, wasm: window.__wasmReady ?? null }));
  } finally {
    await context.close();
  }
}

async function loadTimes() {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tabnode-bench-size-'));
  await writeFile(path.join(dir, 'ready.html'), READY);
  await writeFile(path.join(dir, 'blank.html'), BLANK);
  const server = await serveStatic(PKG, { files: { '/ready.html': path.join(dir, 'ready.html'), '/blank.html': path.join(dir, 'blank.html') } });
  const browser = await launchChromium();
  try {
    const blank = [];
    const node = [];
    await load(browser, `${server.url}blank.html`); // the browser's own first-start costs, not counted
    for (let i = 0; i < runs; i++) {
      blank.push((await load(browser, `${server.url}blank.html`)).ready);
      node.push(await load(browser, `${server.url}ready.html`));
    }
    const b = median(blank);
    const n = median(node.map((r) => r.ready));
    const w = median(node.map((r) => r.wasm));
    console.log(`\n# Chromium ${browser.version()}, ${os.cpus().length} cores, load ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}; ${runs} runs, medians, each load in a fresh context (cold cache), served from 127.0.0.1`);
    console.log('| page | navigation → ready, ms | ratio to blank |\n|---|---|---|');
    console.log(`| blank module page | ${b.toFixed(1)} | 1 |`);
    console.log(`| node: \`init()\` done (wasm fetched, compiled, instantiated) | ${w.toFixed(1)} | ${(w / b).toFixed(1)} |`);
    console.log(`| node: \`BrowserNode.create\` resolved (IndexedDB store open, no relay) | ${n.toFixed(1)} | ${(n / b).toFixed(1)} |`);
    console.log(`(all runs, ms: blank ${blank.map((x) => x.toFixed(0)).join(' ')}; node ${node.map((r) => r.ready.toFixed(0)).join(' ')})`);
  } finally {
    await browser.close();
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

await sizes();
await loadTimes();
