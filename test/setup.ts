/** Vitest setupFiles entry: runs in every test file. */
import { afterAll } from 'vitest';
import { killOwnChildren } from './helpers/children.js';

// Whatever happened in the file (a failed assertion, a timeout): no socat, broker, sshd or
// daemon it started outlives it.
afterAll(async () => {
  await killOwnChildren();
});
