// Builds pkg/: the node as the npm package `tabnode-web` (`make pkg`). Steps: crates/web for
// wasm32 with the `wasm-release` profile, wasm-bindgen's `--target web` output, binaryen's
// wasm-opt (the pinned npm `binaryen`), then package.json, the README, and the `tabs` and `testing`
// entries from crates/web/npm/. Skips the bindgen and wasm-opt steps (minutes on a small machine)
// when neither the cargo output nor this script changed since the last build; `--force` runs them
// anyway.
// Why one `--target web` build: docs/api.md.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const PKG = path.join(ROOT, 'pkg');
const NPM = path.join(ROOT, 'crates/web/npm');
const PROFILE = 'wasm-release';
const TARGET = 'wasm32-unknown-unknown';
/** What rustc 1.85+ emits for wasm32 by default; wasm-opt keeps to it (and may use no more). */
const WASM_FEATURES = ['bulk-memory', 'nontrapping-float-to-int', 'sign-ext', 'mutable-globals', 'multivalue', 'reference-types'];
/**
 * wasm-opt strips names and producers but does not optimise by default: on this LTO'd `s` build
 * -Os/-Oz save 10-12% raw yet add 2.7% gzip and 5.5% brotli, and take minutes (binaryen as JS).
 * `WASM_OPT_LEVEL=-Oz make pkg` for the smaller raw file. Figures: docs/performance.md.
 */
const WASM_OPT_LEVEL = process.env.WASM_OPT_LEVEL || '-O0';
/**
 * Passes that shrink the wasm and its gzip (the optimising levels above shrink the raw file but
 * not the gzip): identical function bodies (monomorphised generics often are) become one, then
 * binaryen's local clean-ups (`-O1`'s kind, semantics-preserving). 4.5% raw and 23 KiB gzip,
 * in under a minute; the node's code runs as before, a little tidier. Figures:
 * docs/performance.md.
 */
const WASM_OPT_PASSES = ['--duplicate-function-elimination', '--remove-unused-brs', '--reorder-locals', '--optimize-instructions', '--merge-blocks', '--vacuum'];

function run(cmd, args, options = {}) {
  console.log(`[pkg] ${cmd} ${args.join(' ')}`);
  const result = spawnSync(cmd, args, { stdio: 'inherit', cwd: ROOT, ...options });
  if (result.error) throw result.error;
  if (result.status !== 0) process.exit(result.status ?? 1);
}

const sha256 = (file) => createHash('sha256').update(readFileSync(file)).digest('hex');

/** `version = "…"` of crates/web's [package]: the npm version follows the crate's. */
function crateVersion() {
  const toml = readFileSync(path.join(ROOT, 'crates/web/Cargo.toml'), 'utf8');
  const match = toml.match(/^\[package\][^[]*?^version\s*=\s*"([^"]+)"/m);
  if (!match) throw new Error('no version in crates/web/Cargo.toml');
  return match[1];
}

function manifest(version) {
  return {
    name: 'tabnode-web',
    version,
    description: 'A Calimero-compatible node that runs in a browser tab: BrowserNode, in WebAssembly',
    license: 'MIT OR Apache-2.0',
    type: 'module',
    main: './tabnode_web.js',
    types: './tabnode_web.d.ts',
    exports: {
      '.': { types: './tabnode_web.d.ts', default: './tabnode_web.js' },
      './tabnode_web_bg.wasm': './tabnode_web_bg.wasm',
      // Every tab of an app on one node: a host tab and its followers (docs/api.md).
      './tabs': { types: './tabs.d.ts', default: './tabs.js' },
      // Node-side, for test suites: pages with nodes in headless Chromium (playwright-core).
      './testing': { types: './testing/index.d.ts', default: './testing/index.js' },
      './package.json': './package.json',
    },
    files: ['tabnode_web.js', 'tabnode_web.d.ts', 'tabnode_web_bg.wasm', 'tabnode_web_bg.wasm.d.ts', 'snippets/', 'tabs.js', 'tabs.d.ts', 'testing/', 'README.md'],
    sideEffects: false,
    peerDependencies: { 'playwright-core': '>=1.40' },
    peerDependenciesMeta: { 'playwright-core': { optional: true } },
    engines: { node: '>=20' },
    keywords: ['calimero', 'crdt', 'wasm', 'libp2p', 'indexeddb', 'p2p'],
  };
}

/**
 * JS a page loads (wasm-bindgen's glue and snippets, `tabs.js`) without its whitespace and
 * comments, and with esbuild's syntax-level shortenings (`!0` for `true` and the like; esbuild is
 * a dev dependency): the glue is 18 KiB gzip as written, 11.4 once compacted; `tabs.js` 5.8, 3.9.
 * Names are not mangled, so stack traces still read (the docs are in the `.d.ts` and in
 * crates/web/npm/). Figures: docs/performance.md.
 */
async function compactJs(file) {
  const { transform } = await import('esbuild');
  const { code } = await transform(readFileSync(file, 'utf8'), { minifyWhitespace: true, minifySyntax: true, format: 'esm', target: 'esnext' });
  writeFileSync(file, code);
  console.log(`[pkg] ${path.relative(ROOT, file)} compacted (esbuild: whitespace, comments, syntax; names kept)`);
}

/** The `.js` files under `dir`, at any depth. */
const jsFilesUnder = (dir) => (existsSync(dir) ? readdirSync(dir, { recursive: true }).filter((f) => f.endsWith('.js')).map((f) => path.join(dir, f)) : []);

const force = process.argv.includes('--force');
const targetDir = process.env.CARGO_TARGET_DIR ? path.resolve(process.env.CARGO_TARGET_DIR) : path.join(ROOT, 'target');
run('cargo', ['build', '--profile', PROFILE, '--target', TARGET, '-p', 'tabnode-web']);
const built = path.join(targetDir, TARGET, PROFILE, 'tabnode_web.wasm');

const stampFile = path.join(PKG, '.build-stamp');
const stamp = `${sha256(built)} ${sha256(fileURLToPath(import.meta.url))} ${WASM_OPT_LEVEL}`;
if (force || !existsSync(stampFile) || readFileSync(stampFile, 'utf8') !== stamp) {
  rmSync(PKG, { recursive: true, force: true });
  run('wasm-bindgen', ['--target', 'web', '--out-dir', PKG, built]);
  const wasm = path.join(PKG, 'tabnode_web_bg.wasm');
  const wasmOpt = path.join(ROOT, 'node_modules/.bin/wasm-opt');
  run(wasmOpt, [WASM_OPT_LEVEL, ...WASM_FEATURES.map((f) => `--enable-${f}`), ...WASM_OPT_PASSES, '--strip-debug', '--strip-producers', wasm, '-o', wasm]);
  for (const file of [path.join(PKG, 'tabnode_web.js'), ...jsFilesUnder(path.join(PKG, 'snippets'))]) await compactJs(file);
  writeFileSync(stampFile, stamp);
} else {
  console.log('[pkg] pkg/ is up to date with the cargo build (bindgen and wasm-opt skipped)');
}

// The hand-written parts are copied every time: they are quick and may change alone.
mkdirSync(PKG, { recursive: true });
writeFileSync(path.join(PKG, 'package.json'), `${JSON.stringify(manifest(crateVersion()), null, 2)}\n`);
for (const file of ['README.md', 'tabs.js', 'tabs.d.ts']) cpSync(path.join(NPM, file), path.join(PKG, file));
await compactJs(path.join(PKG, 'tabs.js'));
rmSync(path.join(PKG, 'testing'), { recursive: true, force: true });
cpSync(path.join(NPM, 'testing'), path.join(PKG, 'testing'), { recursive: true });
console.log(`[pkg] ${path.relative(ROOT, PKG)}/: tabnode-web ${crateVersion()}`);
