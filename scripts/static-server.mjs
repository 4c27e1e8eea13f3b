// A static file server on 127.0.0.1 for the example apps' test and `make bench-size`: serves a
// folder, plus single files at fixed paths (a guest app beside a built page).
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import path from 'node:path';

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.wasm': 'application/wasm',
  '.json': 'application/json',
  '.css': 'text/css',
};

/**
 * Headers for every response: only the site's own scripts run, and may compile WebAssembly (a
 * script injected through some other hole cannot load code from elsewhere or run inline); no
 * other site may frame the pages (clickjacking a wallet prompt or an invitation); and no response
 * is sniffed into a type it was not served as. An HTML page's own inline scripts (an import map)
 * are allowed by their hash, and nothing else inline.
 */
export function securityHeaders(body, file) {
  const inline = file?.endsWith('.html')
    ? [...String(body).matchAll(/<script(?![^>]*\bsrc=)[^>]*>([\s\S]*?)<\/script>/gi)]
        .map((m) => ` 'sha256-${createHash('sha256').update(m[1]).digest('base64')}'`)
        .join('')
    : '';
  return {
    'content-security-policy': `script-src 'self' 'wasm-unsafe-eval'${inline}; object-src 'none'; base-uri 'none'; frame-ancestors 'none'`,
    'x-frame-options': 'DENY',
    'x-content-type-options': 'nosniff',
  };
}

/**
 * Serves `dir` (and `files`: URL path → file) on `host`:`port` (0: a free one). Resolves to
 * `{url, stop}`; `stop()` closes open connections too, so a test's `after` never waits on them.
 */
export function serveStatic(dir, { files = {}, host = '127.0.0.1', port = 0 } = {}) {
  const root = path.resolve(dir);
  const server = createServer(async (req, res) => {
    const { pathname } = new URL(req.url, 'http://localhost');
    const file = files[pathname] ?? path.join(root, path.normalize(decodeURIComponent(pathname === '/' ? '/index.html' : pathname)));
    for (const [name, value] of Object.entries(securityHeaders())) res.setHeader(name, value);
    if (!files[pathname] && !file.startsWith(root + path.sep)) {
      res.writeHead(403);
      return res.end();
    }
    try {
      const body = await readFile(file);
      for (const [name, value] of Object.entries(securityHeaders(body, file))) res.setHeader(name, value);
      res.writeHead(200, { 'content-type': TYPES[path.extname(file)] || 'application/octet-stream', 'cache-control': 'no-store' });
      res.end(body);
    } catch {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end(`not found: ${pathname}\n`);
    }
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () =>
      resolve({
        url: `http://${host}:${server.address().port}/`,
        stop: () => {
          server.closeAllConnections();
          return new Promise((done) => server.close(done));
        },
      }),
    );
  });
}
