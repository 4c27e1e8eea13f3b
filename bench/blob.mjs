// Blobs between members (issue 18), natively: two CLI nodes in one context through a real relay
// on loopback. A puts a blob of SIZE MiB announced to the context and runs; B fetches it with
// `blob get --context --relay` (one process: going online, asking, every part, writing the file).
// The baseline, in the same run: B's `blob get` of the same blob once it holds it (the same
// process start and file write, no network), and A's `blob put` (reading, hashing, storing).
// Figures, not a test. `make bench-blob` runs it; `node bench/blob.mjs [SIZES_MIB (1,16,64)] [RUNS (1)]`.
// Parts leave A at its pace (`PartPacing`: a 32 MiB burst, then 48 MiB a minute), under the
// relay's default budget of 64 MiB a minute a peer, so sizes past the burst show the pace.
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startRelay } from '../scripts/serve.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const target = process.env.CARGO_TARGET_DIR ? path.resolve(process.env.CARGO_TARGET_DIR) : path.join(root, 'target');
const tabnode = path.join(target, 'release/tabnode');
const sizes = (process.argv[2] || '1,16,64').split(',').map(Number);
const runs = Number(process.argv[3] || 1);
if (sizes.some((s) => !(s > 0 && s <= 64)) || !(runs >= 1)) throw new Error('usage: node bench/blob.mjs [SIZES_MIB (each 1..64)] [RUNS >= 1]');

/** `tabnode --home HOME ...args`: its JSON answer, and how long the process took (ms). */
async function cli(home, ...args) {
  const start = performance.now();
  const { stdout } = await promisify(execFile)(tabnode, ['--home', home, ...args], { maxBuffer: 1 << 20 });
  return { value: JSON.parse(stdout), ms: performance.now() - start };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const dir = mkdtempSync(path.join(tmpdir(), 'tabnode-bench-blob-'));
const relay = startRelay();
let a;
try {
  const address = await relay.address;
  const [homeA, homeB] = [path.join(dir, 'a'), path.join(dir, 'b')];
  const app = (await cli(homeA, 'app', 'install', path.join(root, 'tests/apps/dist/kv_store.wasm'))).value.app_id;
  const ctx = (await cli(homeA, 'context', 'create', app)).value.context_id;
  const invitation = (await cli(homeA, 'context', 'invite', ctx)).value.invitation;
  // A's blobs go in before it runs (its home is locked while it does).
  const blobs = [];
  for (const mib of sizes) {
    for (let run = 0; run < runs; run++) {
      const file = path.join(dir, `blob-${mib}-${run}`);
      writeFileSync(file, randomBytes(mib << 20));
      const put = await cli(homeA, 'blob', 'put', file, '--context', ctx);
      blobs.push({ mib, file, id: put.value.blob_id, putMs: put.ms });
    }
  }
  a = spawn(tabnode, ['--home', homeA, 'run', '--relay', address, '--no-stdin'], { stdio: 'ignore' });
  await cli(homeB, 'context', 'join', invitation, '--relay', address, '--timeout', '90');

  console.log(`# ${runs} run(s) per size, median; the relay and both nodes on this machine (loopback)`);
  console.log('| blob | B fetches from A (`blob get --context --relay`) | MiB/s | B writes it, held (baseline) | A\'s `blob put` | fetch / held |');
  console.log('|---|---|---|---|---|---|');
  for (const mib of sizes) {
    const mine = blobs.filter((b) => b.mib === mib);
    const fetch = [];
    const held = [];
    for (const blob of mine) {
      const out = `${blob.file}.got`;
      fetch.push((await cli(homeB, 'blob', 'get', blob.id, '--out', out, '--context', ctx, '--relay', address, '--timeout', '300')).ms);
      if (!readFileSync(out).equals(readFileSync(blob.file))) throw new Error(`blob ${blob.id} came back different`);
      held.push((await cli(homeB, 'blob', 'get', blob.id, '--out', out)).ms);
    }
    const [f, h, p] = [median(fetch), median(held), median(mine.map((b) => b.putMs))];
    console.log(`| ${mib} MiB | ${(f / 1000).toFixed(2)} s | ${(mib / (f / 1000)).toFixed(1)} | ${(h / 1000).toFixed(2)} s | ${(p / 1000).toFixed(2)} s | ${(f / h).toFixed(1)}x |`);
  }
} finally {
  a?.kill('SIGTERM');
  await relay.stop();
  rmSync(dir, { recursive: true, force: true });
}
