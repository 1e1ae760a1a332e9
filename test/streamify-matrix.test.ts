/**
 * Acceptance 1 of streaming: for every streamable model of the exporter's matrix, feeding the
 * sequence one step at a time through the step model from the initial state matches the
 * sequence model's outputs at every step (≤ 1e-5), in onnxruntime-node and in the WASM backend.
 * Models that cannot stream (they need the future or the whole window) must be refused with a
 * reason, and only those.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isCheckFailedError, isUnsupportedError } from '../src/errors.js';
import { exportToOnnx } from '../src/export/exporter.js';
import { checkStepModel, streamifyModel } from '../src/export/streamify/index.js';
import { loadTfjsArtifacts } from '../src/export/tfjs-format/load.js';
import { cases } from './helpers/matrix-cases.js';
import { setSeededWeights } from './helpers/models.js';
import { checkOnnxFiles } from './helpers/onnx-checker.js';
import { saveModel, seededValues, writeKerasModel } from './helpers/tfjs-save.js';

/** Why each refused model cannot stream (matched against the case name). */
const NOT_STREAMABLE: [RegExp, RegExp][] = [
  [
    /^dense |dense on 3-D|^activation layers|^reLU plain|^prelu$|^batchNormalization after dense|^layerNormalization no scale|shared layer called twice/,
    /no input with a time axis|nothing to carry/,
  ],
  [/goBackwards/, /reverse|backwards|reverses an axis/],
  [/^bidirectional/, /bidirectional|reverse|backwards/],
  [/^conv1d (valid|same)|conv1d \+ lstm|shared input, three branches|^conv pooling/, /pads|SAME_UPPER|stride/],
  [/^maxPooling1d|^averagePooling1d|^globalAveragePooling1d|^globalMaxPooling1d|^flatten/, /pads|stride|whole window|differs/],
  [/^reshape|^prelu 3-D|^batchNormalization 3-D/, /time axis|nothing to carry/],
  // The decoder runs over an axis RepeatVector makes inside the model: caught by the numerical check.
  [/^repeatVector/, /differs from the sequence model .* RepeatVector/],
];

const results: { name: string; status: string; err?: number }[] = [];
const written: string[] = [];
let root: string;

describe('step model == sequence model at every step (exporter matrix)', () => {
  it.each(cases.map((c, i) => [c.name, c, i] as const))('%s', async (_n, c, i) => {
    root ??= await mkdtemp(join(tmpdir(), 'streamcell-stream-'));
    const model = setSeededWeights(c.build(), i + 1);
    const dir = join(root, `case-${i}`);
    const { model: seq } = await exportToOnnx(await loadTfjsArtifacts(await saveModel(model, dir)), { opset: c.opset });
    model.dispose();
    const refusal = NOT_STREAMABLE.find(([name]) => name.test(c.name));
    let step: Uint8Array;
    let report;
    try {
      ({ model: step, report } = await streamifyModel(seq, { tolerance: 1e-5, steps: 7 }));
    } catch (e) {
      // A refusal is bad input (exit 2), not a failed check: the model cannot stream.
      expect(isUnsupportedError(e), String(e)).toBe(true);
      expect(isCheckFailedError(e)).toBe(false);
      results.push({ name: c.name, status: `refused: ${(e as Error).message.split('\n')[0]!.slice(0, 120)}` });
      expect(refusal, `'${c.name}' was refused but is expected to stream: ${(e as Error).message}`).toBeDefined();
      expect((e as Error).message).toMatch(refusal![1]);
      return;
    }
    expect(refusal, `'${c.name}' streamified but is listed as not streamable`).toBeUndefined();
    expect(report.verification!.maxAbsError, JSON.stringify(report.verification)).toBeLessThanOrEqual(1e-5);
    const wasm = await checkStepModel(seq, step, report, { tolerance: 1e-5, steps: 7, backend: 'onnxruntime-web' });
    expect(wasm.maxAbsError, JSON.stringify(wasm)).toBeLessThanOrEqual(1e-5);
    const p = join(dir, 'model.step.onnx');
    await writeFile(p, step);
    written.push(p);
    results.push({
      name: c.name,
      status: `streams (${report.states.map((s) => s.name).join(', ')})`,
      err: Math.max(report.verification!.maxAbsError, wasm.maxAbsError),
    });
  });

  it('every step model passes the ONNX checker', () => {
    expect(written.length).toBeGreaterThan(40);
    const { results: r } = checkOnnxFiles(written);
    expect(Object.entries(r).filter(([, e]) => e !== null)).toEqual([]);
  });
});

afterAll(() => {
  if (process.env.STREAMCELL_STREAM_REPORT)
    for (const r of results) process.stdout.write(`${r.name}: ${r.status}${r.err !== undefined ? ` max err ${r.err.toExponential(2)}` : ''}\n`);
});

describe('causal convolution front-ends stream through ring buffers', () => {
  it('Keras-origin causal Conv1D (dilation 2) → causal Conv1D → LSTM: buf states, equal at every step (node and WASM)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'streamcell-causal-'));
    const I = 3;
    const conv = (name: string, k: number, d: number, f: number) => ({
      class_name: 'Conv1D',
      config: {
        name,
        filters: f,
        kernel_size: [k],
        strides: [1],
        padding: 'causal',
        data_format: 'channels_last',
        dilation_rate: [d],
        groups: 1,
        activation: 'relu',
        use_bias: true,
      },
    });
    const p = await writeKerasModel(
      dir,
      {
        class_name: 'Sequential',
        config: {
          name: 'tcn',
          layers: [
            { class_name: 'InputLayer', config: { batch_input_shape: [null, null, I], dtype: 'float32', name: 'sensor' } },
            conv('conv_a', 3, 2, 4),
            conv('conv_b', 2, 1, 4),
            {
              class_name: 'LSTM',
              config: { name: 'lstm', units: 5, activation: 'tanh', recurrent_activation: 'sigmoid', use_bias: true, return_sequences: true },
            },
          ],
        },
        keras_version: '2.15.0',
        backend: 'tensorflow',
      },
      [
        { name: 'conv_a/kernel', shape: [3, I, 4], data: seededValues(36, 1) },
        { name: 'conv_a/bias', shape: [4], data: seededValues(4, 2) },
        { name: 'conv_b/kernel', shape: [2, 4, 4], data: seededValues(32, 3) },
        { name: 'conv_b/bias', shape: [4], data: seededValues(4, 4) },
        { name: 'lstm/lstm_cell/kernel', shape: [4, 20], data: seededValues(80, 5) },
        { name: 'lstm/lstm_cell/recurrent_kernel', shape: [5, 20], data: seededValues(100, 6, 0.4) },
        { name: 'lstm/lstm_cell/bias', shape: [20], data: seededValues(20, 7) },
      ],
    );
    const { model: seq } = await exportToOnnx(await loadTfjsArtifacts(p));
    const { model: step, report } = await streamifyModel(seq, { tolerance: 1e-5, steps: 9 });
    expect(report.states.map((s) => `${s.name} [${s.shape}]`)).toEqual(['conv_a.buf [3,4]', 'conv_b.buf [4,1]', 'lstm.h [5]', 'lstm.c [5]']);
    expect(report.verification!.maxAbsError).toBeLessThanOrEqual(1e-5);
    const wasm = await checkStepModel(seq, step, report, { tolerance: 1e-5, steps: 9, backend: 'onnxruntime-web' });
    expect(wasm.maxAbsError).toBeLessThanOrEqual(1e-5);
    await writeFile(join(dir, 'tcn.step.onnx'), step);
    expect(checkOnnxFiles([join(dir, 'tcn.step.onnx')]).results[join(dir, 'tcn.step.onnx')]).toBeNull();
  });
});
