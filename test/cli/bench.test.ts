/** `streamcell bench` runs end to end on the shipped model and reports every figure. */
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';

const shipped = fileURLToPath(new URL('../../models/co2-lstm/model.json', import.meta.url));

describe('streamcell bench', () => {
  it('measures step mode, throughput, memory, window mode and tfjs on a sequence model', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'streamcell-bench-cli-'));
    const onnx = join(dir, 'co2.onnx');
    expect(runCli(['export', shipped, '-o', onnx, '--no-verify']).status).toBe(0);
    const out = join(dir, 'bench.json');
    const r = runCli(['bench', onnx, '--steps', '100', '--streams', '1,8', '--tfjs', shipped, '--out', out]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/pool overhead \(paired ratio\)\s+\d+\.\d+×/);
    expect(r.stdout).toMatch(/throughput at 8 streams\s+[\d,]+ steps\/s/);
    expect(r.stdout).toMatch(/window mode \(64 steps\)/);
    expect(r.stdout).toMatch(/tfjs predict \(64 steps\)/);
    const j = JSON.parse(await readFile(out, 'utf8'));
    expect(j.model).toMatchObject({ kind: 'sequence', streamified: true });
    expect(j.step.throughput.map((t: { streams: number }) => t.streams)).toEqual([1, 8]);
    expect(j.step.latency.pool.n).toBeGreaterThan(0);
    expect(j.windowMode.window).toBe(64);
  });

  it('rejects bad --streams with exit 2', () => {
    const r = runCli(['bench', shipped, '--streams', '1,x']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--streams/);
  });
});
