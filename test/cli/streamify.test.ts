/** `streamcell streamify` and `export --streaming` through the real CLI. */
import { existsSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { runCli } from '../helpers/cli.js';
import { saveModel } from '../helpers/tfjs-save.js';

const shipped = fileURLToPath(new URL('../../models/co2-lstm/model.json', import.meta.url));
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'streamcell-cli-stream-'));
});

describe('streamcell streamify', () => {
  it('export --streaming writes the sequence and the step model', () => {
    const r = runCli(['export', shipped, '-o', join(dir, 'co2.onnx'), '--streaming', '--json']);
    expect(r.status, r.stderr).toBe(0);
    const j = r.json as Record<string, any>;
    expect(j.step.output).toBe(join(dir, 'co2.step.onnx'));
    expect(j.step.report.states.map((s: { input: string }) => s.input)).toEqual(['state_in.lstm.h', 'state_in.lstm.c']);
    expect(j.step.report.verification.passed).toBe(true);
    expect(existsSync(join(dir, 'co2.step.onnx'))).toBe(true);
  });

  it('streamify on a foreign batch-major LSTM (layout=1) reports states and passes its check', () => {
    const r = runCli(['streamify', '/usr/share/libonnx-testdata/data/node/test_lstm_batchwise/model.onnx', '-o', join(dir, 'lb.step.onnx')]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/state state_in\.\S+\.h → state_out\.\S+\.h \[batch, 7\]/);
    expect(r.stdout).toMatch(/max abs error 0\.00e\+0 .* OK/);
  });

  it('a bidirectional model is refused with exit 2 and the reason', async () => {
    const m = tf.sequential({ layers: [tf.layers.bidirectional({ layer: tf.layers.lstm({ units: 3 }) as tf.RNN, inputShape: [null, 2] })] });
    const p = await saveModel(m, join(dir, 'bi'));
    expect(runCli(['export', p, '-o', join(dir, 'bi.onnx'), '--no-verify']).status).toBe(0);
    const r = runCli(['streamify', join(dir, 'bi.onnx'), '-o', join(dir, 'bi.step.onnx')]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/direction 'bidirectional': it needs the future of the sequence and cannot stream\. Serve the sequence model in window mode/);
    expect(existsSync(join(dir, 'bi.step.onnx'))).toBe(false);
  });

  it('a model that looks at the whole window is refused with exit 2 after the step-by-step check', async () => {
    // LSTM over the sequence, then the mean over time: step t would need the whole window.
    const m = tf.sequential({ layers: [tf.layers.lstm({ units: 4, returnSequences: true, inputShape: [null, 2] }), tf.layers.globalAveragePooling1d()] });
    const p = await saveModel(m, join(dir, 'gap'));
    expect(runCli(['export', p, '-o', join(dir, 'gap.onnx'), '--no-verify']).status).toBe(0);
    const r = runCli(['streamify', join(dir, 'gap.onnx'), '-o', join(dir, 'gap.step.onnx')]);
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr).toMatch(
      /differs from the sequence model \(output '\S+', max abs error \S+ > 0\.0001 over 8 comparisons in 8 steps\): some layer looks at the whole window/,
    );
    expect(r.stderr).toContain(join(dir, 'gap.onnx'));
    expect(existsSync(join(dir, 'gap.step.onnx'))).toBe(false);
  });

  it('a last-step model is compared at every step, also with a fixed window length', async () => {
    const m = tf.sequential({ layers: [tf.layers.lstm({ units: 4, inputShape: [12, 2] }), tf.layers.dense({ units: 1 })] });
    const p = await saveModel(m, join(dir, 'fixed'));
    expect(runCli(['export', p, '-o', join(dir, 'fixed.onnx'), '--no-verify']).status).toBe(0);
    const r = runCli(['streamify', join(dir, 'fixed.onnx'), '-o', join(dir, 'fixed.step.onnx'), '--json']);
    expect(r.status, r.stderr).toBe(0);
    const v = (r.json as { verification: { steps: number; comparisons: number; note?: string } }).verification;
    expect(v.steps).toBe(12);
    expect(v.comparisons).toBe(12);
    expect(v.note).toBeUndefined();
  });

  it('a step model given again is refused', () => {
    const step = runCli(['streamify', join(dir, 'co2.step.onnx'), '-o', join(dir, 'again.onnx')]);
    expect(step.status).toBe(2);
    expect(step.stderr).toMatch(/already a step model/);
  });

  it('a file that is not ONNX is refused with exit 2 naming it', () => {
    const r = runCli(['streamify', shipped, '-o', join(dir, 'y.onnx')]);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(shipped);
    expect(r.stderr).toMatch(/not an ONNX model/);
    expect(existsSync(join(dir, 'y.onnx'))).toBe(false);
  });
});
