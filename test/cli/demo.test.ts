/** The README's main job: `streamcell demo` runs on the shipped bundle and ends by itself. */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CLI } from '../helpers/cli.js';
import { freePort } from '../helpers/daemon.js';

describe('streamcell demo', () => {
  it('streams the simulated sensor through a pty into the shipped bundle, prints predictions and the dashboard URL, ends by itself', async () => {
    const port = await freePort();
    const r = spawnSync(process.execPath, [CLI, 'demo', '--seconds', '4', '--port', String(port)], { encoding: 'utf8', timeout: 60000 });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain(`dashboard: http://127.0.0.1:${port}`);
    expect(r.stdout).toMatch(/pseudo-terminal .* \(socat\) → serial source/);
    expect(r.stdout).toMatch(/→ (still|walk|run)\s+\d+%/);
    const n = Number(/(\d+) predictions\./.exec(r.stdout)?.[1]);
    expect(n).toBeGreaterThan(100);
    // It says which backend ran, and leaves no pseudo-terminal folder behind.
    expect(r.stdout).toMatch(/backend: onnxruntime-(node|web) /);
    const pty = /pseudo-terminal (\S+)\/ttyIMU/.exec(r.stdout)![1]!;
    expect(existsSync(pty), pty).toBe(false);
  });
});
