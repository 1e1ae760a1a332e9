import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // onnxruntime-node and tfjs are heavy native/JS modules; forks isolate them cleanly.
    pool: 'forks',
    // Once per run: preflight (missing system tools, one line each), `npm run build` (so no test
    // runs a stale dist/), and a teardown that kills the run's leftover child processes.
    globalSetup: ['test/global-setup.ts'],
    // In every file: an afterAll that kills the children the file started (test/helpers/children.ts).
    setupFiles: ['test/setup.ts'],
  },
});
