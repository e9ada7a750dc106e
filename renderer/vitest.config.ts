import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// The editor's unit tests run in Node: the modules under src/editor are pure and DOM-free.
export default defineConfig({
  // keep vitest's cache with the project's, not in a renderer/node_modules of its own
  cacheDir: fileURLToPath(new URL('../node_modules/.vite', import.meta.url)),
  test: {
    root: fileURLToPath(new URL('.', import.meta.url)),
    include: ['src/**/*.test.ts'],
    environment: 'node',
  },
});
