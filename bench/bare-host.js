// The limit the node's guest engine is measured against: the same kv-store binary on the
// browser's own WebAssembly engine with a minimal calimero-sys 0.10 host written here in JS
// (a Map as storage; no metering, no signing, no persistence). Loaded into a blank page by
// bench/scale.mjs; not part of the node.
//
// Only the imports kv-store's calls use are real; any other one throws.
window.bareHost = async function bareHost(wasm) {
  const module = await WebAssembly.compile(wasm);
  const storage = new Map();
  const textDecoder = new TextDecoder();
  let clock = 1_700_000_000_000_000_000n;

  function call(method, args) {
    const registers = new Map();
    const input = new TextEncoder().encode(JSON.stringify(args));
    let memory;
    let returned = null;
    const view = () => new DataView(memory.buffer);
    const bytes = (ptr, len) => new Uint8Array(memory.buffer, Number(ptr), Number(len)).slice();
    const buffer = (at) => {
      const v = view();
      return [v.getBigUint64(Number(at), true), v.getBigUint64(Number(at) + 8, true)];
    };
    const read = (at) => {
      const [ptr, len] = buffer(at);
      return bytes(ptr, len);
    };
    const fill = (at, data) => {
      const [ptr, len] = buffer(at);
      if (Number(len) !== data.length) throw new Error('buffer length');
      new Uint8Array(memory.buffer, Number(ptr), data.length).set(data);
    };
    // A storage key as a string of its exact bytes (one char per byte).
    const keyOf = (at) => Array.from(read(at), (b) => String.fromCharCode(b)).join('');
    const env = {
      panic: () => { throw new Error('guest panic'); },
      panic_utf8: (msg) => { throw new Error(`guest panic: ${textDecoder.decode(read(msg))}`); },
      register_len: (reg) => BigInt(registers.has(reg) ? registers.get(reg).length : -1),
      read_register: (reg, at) => {
        const data = registers.get(reg);
        const [, len] = buffer(at);
        if (!data || Number(len) !== data.length) return 0;
        fill(at, data);
        return 1;
      },
      context_id: (reg) => { registers.set(reg, new Uint8Array(32).fill(7)); },
      executor_id: (reg) => { registers.set(reg, new Uint8Array(32).fill(1)); },
      input: (reg) => { registers.set(reg, input); },
      value_return: (at) => {
        const tag = view().getBigUint64(Number(at), true);
        returned = { ok: tag === 0n, bytes: read(BigInt(at) + 8n) };
      },
      log_utf8: (at) => { read(at); },
      emit: (at) => { read(at); read(BigInt(at) + 16n); },
      commit: (root, artifact) => { read(root); read(artifact); },
      storage_read: (k, reg) => {
        const value = storage.get(keyOf(k));
        if (value === undefined) return 0;
        registers.set(reg, value);
        return 1;
      },
      storage_write: (k, v, reg) => {
        const name = keyOf(k);
        const old = storage.get(name);
        storage.set(name, read(v));
        if (old === undefined) return 0;
        registers.set(reg, old);
        return 1;
      },
      storage_remove: (k, reg) => {
        const name = keyOf(k);
        const old = storage.get(name);
        storage.delete(name);
        if (old === undefined) return 0;
        registers.set(reg, old);
        return 1;
      },
      time_now: (at) => {
        clock += 1_000n;
        const out = new Uint8Array(8);
        new DataView(out.buffer).setBigUint64(0, clock, true);
        fill(at, out);
      },
      random_bytes: (at) => {
        const [, len] = buffer(at);
        fill(at, crypto.getRandomValues(new Uint8Array(Number(len))));
      },
    };
    const imports = new Proxy(env, {
      get: (target, name) => target[name] ?? (() => { throw new Error(`bare host: no ${String(name)}`); }),
    });
    const instance = new WebAssembly.Instance(module, { env: imports });
    memory = instance.exports.memory;
    // A module as the node rewrites it (docs/engines.md) meters itself: give it fuel.
    if (instance.exports.__tabnode_fuel) instance.exports.__tabnode_fuel.value = 10_000_000_000n;
    instance.exports.__calimero_register_merge?.();
    instance.exports[method]();
    if (returned && !returned.ok) throw new Error(`app error: ${textDecoder.decode(returned.bytes)}`);
    return returned ? JSON.parse(textDecoder.decode(returned.bytes) || 'null') : null;
  }
  call('init', {});
  return { call, rows: () => storage.size };
};
