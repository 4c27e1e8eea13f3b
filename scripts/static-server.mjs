// A static file server on 127.0.0.1 for the example apps' test and `make bench-size`: serves a
// folder, plus single files at fixed paths (a guest app beside a built page).
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
 * Serves `dir` (and `files`: URL path → file) on `host`:`port` (0: a free one). Resolves to
 * `{url, stop}`; `stop()` closes open connections too, so a test's `after` never waits on them.
 */
export function serveStatic(dir, { files = {}, host = '127.0.0.1', port = 0 } = {}) {
  const root = path.resolve(dir);
  const server = createServer(async (req, res) => {
    const { pathname } = new URL(req.url, 'http://localhost');
    const file = files[pathname] ?? path.join(root, path.normalize(decodeURIComponent(pathname === '/' ? '/index.html' : pathname)));
    if (!files[pathname] && !file.startsWith(root + path.sep)) {
      res.writeHead(403);
      return res.end();
    }
    try {
      const body = await readFile(file);
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
