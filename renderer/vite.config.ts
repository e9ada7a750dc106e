import { fileURLToPath } from 'node:url';
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

// The studio's renderer: the same build runs in Electron (file/custom protocol, hence base './') and in
// browser mode (served by the local server).
export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: './',
  plugins: [react()],
  build: {
    outDir: fileURLToPath(new URL('../dist/renderer', import.meta.url)),
    emptyOutDir: true,
    // no inline scripts or styles: the page's CSP allows only same-origin files
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    sourcemap: true,
    // a desktop app loads its bundle from disk or localhost; fabric.js alone is ~300 kB
    chunkSizeWarningLimit: 1024,
  },
});
