/**
 * What a new user of foreign models gets wrong, through the real CLI: flags out of range, output
 * folders that do not exist, models that cannot be compared, sample data with NaN, a sequence
 * model with a free time length in the daemon. Each is exit 2 naming what to fix, never a crash.
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';

const TORCH = new URL('../fixtures/torch/', import.meta.url).pathname;
const K3 = new URL('../fixtures/keras3/', import.meta.url).pathname;
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'streamcell-foreign-cli-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('foreign models: bad flags and files are exit 2', () => {
  it.each([['0'], ['1'], ['-3'], ['1.5']])('streamify --steps %s', (steps) => {
    const r = runCli(['streamify', join(TORCH, 'gru1.onnx'), '-o', join(dir, 's.onnx'), '--steps', steps]);
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/--steps is .*one integer from 2 to 10000/s);
    expect(existsSync(join(dir, 's.onnx'))).toBe(false);
  });

  it('streamify --time-axis beyond the input rank', () => {
    const r = runCli(['streamify', join(TORCH, 'gru1.onnx'), '-o', join(dir, 's.onnx'), '--time-axis', '5']);
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/time axis 5 does not exist: input 'x' has rank 3/);
  });

  it.each([
    ['streamify', [join(TORCH, 'gru1.onnx')]],
    ['quantize', [join(TORCH, 'gru1.onnx'), '--mode', 'int8']],
    ['export', [join(K3, 'func_multi_h5'), '--no-verify']],
  ])('%s -o into a folder that does not exist', (cmd, args) => {
    const out = join(dir, 'missing', 'x.onnx');
    const r = runCli([cmd, ...args, '-o', out]);
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr).toContain(`cannot write '${out}': its folder does not exist`);
  });

  it('verify of a sequence model against its step model says they take different inputs', () => {
    const step = join(dir, 'gru1.step.onnx');
    expect(runCli(['streamify', join(TORCH, 'gru1.onnx'), '-o', step]).status).toBe(0);
    const r = runCli(['verify', join(TORCH, 'gru1.onnx'), step]);
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/the two models take different inputs — A: x: float32\[batch, time, 3\]; B: x: float32\[batch, 1, 3\]; state_in/);
  });

  it('verify of two models with different output widths is exit 2, not NaN', () => {
    const r = runCli(['verify', join(TORCH, 'gru1.onnx'), join(TORCH, 'lstm_head_seq.onnx')]);
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/output 'y' is \[8,2\] in A and \[8,16,2\] in B/);
  });

  it('verify takes a tfjs model folder, as export does', () => {
    const out = join(dir, 'multi.onnx');
    expect(runCli(['export', join(K3, 'func_multi_h5'), '-o', out]).status).toBe(0);
    const r = runCli(['verify', join(K3, 'func_multi_h5'), out, '--json']);
    expect(r.status, r.stderr).toBe(0);
    expect((r.json as { outputError: { max: number } }).outputError.max).toBe(0);
  });

  it('sample data with NaN in a .npy is refused (exit 2), not a parity failure', async () => {
    const header = "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 10, 8), }";
    const pad = ' '.repeat(64 - ((10 + header.length + 1) % 64)) + '\n';
    const pre = Buffer.from([0x93, ...Buffer.from('NUMPY'), 1, 0, 0, 0]);
    pre.writeUInt16LE(header.length + pad.length, 8);
    const x = new Float32Array(80).fill(0.5);
    x[17] = NaN;
    await writeFile(join(dir, 'nan.npy'), Buffer.concat([pre, Buffer.from(header + pad, 'latin1'), Buffer.from(x.buffer)]));
    const r = runCli(['export', join(K3, 'seq_input_h5'), '-o', join(dir, 'k.onnx'), '--sample-data', join(dir, 'nan.npy')]);
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/nan\.npy.*\.npy value 17 is NaN/s);
  });

  it('the daemon serves a PyTorch sequence model with a free time length given --window, and says so without it', async () => {
    const csv = join(dir, 'x.csv');
    await writeFile(
      csv,
      ['a,b,c', ...Array.from({ length: 40 }, (_, t) => [Math.sin(t / 3), Math.cos(t / 5), t / 40].map((v) => v.toFixed(4)).join(','))].join('\n') + '\n',
    );
    const model = join(TORCH, 'lstm_head_seq.onnx');
    const no = runCli(['stream', '--model', model, '--source', `file:${csv}`, '--sink', 'jsonl:-', '--duration', '5']);
    expect(no.status, no.stderr).toBe(2);
    expect(no.stderr).toMatch(/free time dimension and carries no window length: pass --window N/);
    const out = join(dir, 'pred.jsonl');
    const yes = runCli(['stream', '--model', model, '--source', `file:${csv}`, '--sink', `jsonl:${out}`, '--window', '8', '--duration', '10']);
    expect(yes.status, yes.stderr).toBe(0);
    const lines = readFileSync(out, 'utf8').trim().split('\n');
    expect(lines.length).toBe(40 - 8 + 1);
  });
});
