import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // onnxruntime-node and tfjs are heavy native/JS modules; forks isolate them cleanly.
    pool: 'forks',
  },
});
