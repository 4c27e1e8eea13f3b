// A page with the node and nothing else (no console), served from pkg/ on the console's origin
// (Playwright routes /__bench/ there, so it opens the same IndexedDB databases). Used by the
// benchmarks that measure the node itself: cold-start.mjs and scale.mjs.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** The page: `?db=`, `?relay=`, `?engine=` and `?durability=` as the console takes them. */
export const BARE = `<!doctype html>
<meta charset="utf-8">
<title>tabnode cold start</title>
<script type="module">
  // Starts the node as www/index.js does (same store name and relays), without the console.
  try {
    const bg = await import('./pkg/tabnode_web.js');
    await bg.default();
    const params = new URLSearchParams(location.search);
    const config = await fetch('/config.json').then((r) => (r.ok ? r.json() : {})).catch(() => ({}));
    const options = {
      dbName: params.get('db') || config.dbName || 'tabnode',
      relays: params.getAll('relay').length ? params.getAll('relay').filter(Boolean) : config.relays || [],
      engine: params.get('engine') || undefined,
      durability: params.get('durability') || undefined,
    };
    window.__coldStart = { wasmReady: performance.now() };
    window.tabnode = await bg.BrowserNode.create(options);
  } catch (err) {
    window.tabnodeError = err;
  }
</script>`;

const TYPES = { '.js': 'text/javascript; charset=utf-8', '.wasm': 'application/wasm', '.html': 'text/html; charset=utf-8' };

/**
 * Serves /__bench/cold.html and /__bench/pkg/* (from `pkgDir`, default pkg/) on the console's
 * origin, in a browser context or one page (`at`: either has `route`).
 */
export async function routeBare(at, url, pkgDir = path.join(ROOT, 'pkg')) {
  await at.route(`${url}__bench/**`, async (route) => {
    const { pathname } = new URL(route.request().url());
    if (pathname === '/__bench/cold.html') return route.fulfill({ status: 200, contentType: TYPES['.html'], body: BARE });
    const rel = path.normalize(pathname.slice('/__bench/'.length));
    if (!rel.startsWith('pkg/')) return route.fulfill({ status: 404, body: 'not found' });
    try {
      const body = await readFile(path.join(pkgDir, path.relative('pkg', rel)));
      return route.fulfill({ status: 200, contentType: TYPES[path.extname(rel)] || 'application/octet-stream', body });
    } catch {
      return route.fulfill({ status: 404, body: `not found: ${pathname}` });
    }
  });
}

