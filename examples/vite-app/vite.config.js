import { defineConfig } from 'vite';

export default defineConfig({
  base: './',
  // `vite dev` pre-bundles dependencies into .vite/deps, away from the package's wasm file;
  // `vite build` needs nothing.
  optimizeDeps: { exclude: ['tabnode-web'] },
});
