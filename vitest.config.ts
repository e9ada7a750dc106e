import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: [
      'common/**/*.test.ts',
      'native-models/**/*.test.ts',
      'electron/**/*.test.ts',
      'renderer/src/**/*.test.ts',
      'test/**/*.test.ts',
    ],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // the JSON report is what .ci/run reads for its "N passed, N failed" line
    reporters: ['default', 'json'],
    outputFile: { json: '.tmp/test-results.json' },
  },
});
