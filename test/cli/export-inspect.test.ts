/** The main job on the shipped default model, through the real CLI, text and --json. */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { checkOnnxFiles } from '../helpers/onnx-checker.js';
import { runCli } from '../helpers/cli.js';

const shipped = fileURLToPath(new URL('../../models/co2-lstm/model.json', import.meta.url));
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'streamcell-cli-'));
});

describe('streamcell export / inspect on the shipped model', () => {
  it('export prints a parity report and writes a valid ONNX file', () => {
    const out = join(dir, 'co2.onnx');
    const r = runCli(['export', shipped, '-o', out]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/wrote .*co2\.onnx/);
    expect(r.stdout).toMatch(/inputs: {2}lstm_input \[batch, time, 1\]/);
    expect(r.stdout).toMatch(/parity vs tfjs predict, cpu .* max abs error \d\.\d+e-\d+ over 4 cases .* OK/);
    expect(checkOnnxFiles([out]).results[out]).toBeNull();
  });

  it('export --json is one JSON document', () => {
    const out = join(dir, 'co2-13.onnx');
    const r = runCli(['export', shipped, '-o', out, '--opset', '13', '--json']);
    expect(r.status, r.stderr).toBe(0);
    const j = r.json as Record<string, any>;
    expect(j.ok).toBe(true);
    expect(j.opset).toBe(13);
    expect(j.parity.passed).toBe(true);
    expect(j.parity.maxAbsError).toBeLessThan(1e-5);
    expect(j.ops.LSTM).toBe(1);
  });

  it('a negative --tolerance is bad usage (exit 2)', () => {
    const r = runCli(['export', shipped, '-o', join(dir, 'neg.onnx'), '--tolerance', '-1']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--tolerance.*non-negative/);
  });

  it('inspect reads the ONNX file: ops, parameters, metadata with preprocessing', () => {
    const r = runCli(['inspect', join(dir, 'co2.onnx'), '--json']);
    expect(r.status, r.stderr).toBe(0);
    const j = r.json as Record<string, any>;
    expect(j.format).toBe('onnx');
    expect(j.irVersion).toBe(8);
    expect(j.opset).toEqual({ 'ai.onnx': 17 });
    expect(j.inputs).toEqual([{ name: 'lstm_input', dtype: 'float32', shape: ['batch', 'time', 1] }]);
    expect(j.outputs[0]).toMatchObject({ name: 'delta', shape: ['batch', 1] });
    expect(j.ops.LSTM).toBe(1);
    expect(j.metadata['streamcell.source_sha256']).toMatch(/^[0-9a-f]{64}$/);
    expect(JSON.parse(j.metadata['streamcell.preprocessing']).window).toBe(52);
    expect(j.metadata['streamcell.window']).toBe('52');
    const text = runCli(['inspect', join(dir, 'co2.onnx')]);
    expect(text.stdout).toMatch(/ops: .*LSTM×1/);
  });

  it('inspect reads a tfjs model.json: layers and parameter count', () => {
    const r = runCli(['inspect', shipped, '--json']);
    expect(r.status, r.stderr).toBe(0);
    const j = r.json as Record<string, any>;
    expect(j.format).toBe('tfjs-layers-model');
    expect(j.ops).toEqual({ LSTM: 1, Dense: 1 });
    expect(j.parameters).toBe(4 * 16 * (1 + 16 + 1) + 16 + 1);
  });

  it('inspect of a missing file exits 2 naming it', () => {
    const r = runCli(['inspect', join(dir, 'nope.onnx')]);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(join(dir, 'nope.onnx'));
  });
});
