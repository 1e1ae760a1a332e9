/**
 * Quantization acceptance: size and task metric on the CO2 forecaster and the IMU activity
 * classifier, every quantized model in onnxruntime-node and WASM, the ONNX checker on
 * standard-domain models, step models streaming like their quantized sequence models, the
 * accuracy gate, and a model with nothing to quantize.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadDataset } from '../src/data/evaluate.js';
import { exportToOnnx } from '../src/export/exporter.js';
import { compareModels, modelPreprocessing, quantizeModel, type QuantMode } from '../src/export/quantize/index.js';
import { streamifyModel } from '../src/export/streamify/index.js';
import { loadTfjsArtifacts } from '../src/export/tfjs-format/load.js';
import { decodeModel } from '../src/onnx/proto.js';
import { runCli } from './helpers/cli.js';
import { checkOnnxFiles } from './helpers/onnx-checker.js';
import { maxAbs } from './helpers/ort.js';
import { resolveBackend } from '../src/runtime/backend-impl.js';
import { saveModel } from './helpers/tfjs-save.js';

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
const MODELS = {
  co2: { json: here('../models/co2-lstm64/model.json'), csv: here('../models/co2-weekly-mauna-loa.csv') },
  imu: { json: here('../models/imu-activity/model.json'), csv: here('../models/imu-activity/data.csv') },
};
const MODES: QuantMode[] = ['int8', 'int8-static', 'fp16'];
const summary: string[] = [];
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'streamcell-quant-'));
});

async function outputsOn(model: Uint8Array, backend: 'onnxruntime-node' | 'onnxruntime-web', x: Float32Array, dims: number[]) {
  const { backend: b } = await resolveBackend([backend]);
  const s = await b.createSession(model);
  const name = s.inputNames[0]!;
  const r = await s.run({ [name]: { type: 'float32', data: x, dims } });
  await s.release();
  return r[s.outputNames[0]!]!.data as Float32Array;
}

describe.each(Object.entries(MODELS))('%s model', (key, files) => {
  let float: Uint8Array;
  let floatStep: Uint8Array;
  beforeAll(async () => {
    float = (await exportToOnnx(await loadTfjsArtifacts(files.json))).model;
    floatStep = (await streamifyModel(float)).model;
  });

  it.each(MODES)('%s: size, task metric, both backends, checker', async (mode) => {
    const pre = modelPreprocessing(float)!;
    const data = await loadDataset(files.csv, pre);
    const { model, report } = await quantizeModel(float, { mode, calibration: { pre, data, method: 'minmax' } });
    const c = await compareModels(float, model, { pre, data });
    const m = c.metrics!;
    summary.push(
      `${key} ${mode}: ${(report.ratio * 100).toFixed(1)}% of ${float.byteLength} B; ${m.a.primary.name} ${m.a.primary.value.toFixed(4)} → ${m.b.primary.value.toFixed(4)} (drop ${(m.drop * 100).toFixed(3)}%); latency ${c.latencyUs.a.toFixed(0)} → ${c.latencyUs.b.toFixed(0)} µs`,
    );
    if (mode !== 'fp16') expect(report.ratio, `${key} ${mode} size`).toBeLessThanOrEqual(mode === 'int8' ? 0.3 : 0.34);
    else expect(report.ratio).toBeLessThanOrEqual(0.55);
    expect(m.drop, `${key} ${mode} metric drop`).toBeLessThanOrEqual(0.01);

    // Runs in the WASM backend too, with the same outputs.
    const pre2 = pre;
    const x = Float32Array.from({ length: 4 * pre2.window * pre2.channels.length }, (_, i) => Math.sin(i / 7));
    const dims = [4, pre2.window, pre2.channels.length];
    const native = await outputsOn(model, 'onnxruntime-node', x, dims);
    let wasm: Float32Array | undefined;
    try {
      wasm = await outputsOn(model, 'onnxruntime-web', x, dims);
    } catch (e) {
      summary.push(`${key} ${mode}: WASM backend cannot run it: ${(e as Error).message.split('\n')[0]}`);
    }
    // Dynamic int8 scales depend on the kernel's rounding of the activations: allow one int8 step.
    if (wasm) expect(maxAbs(native, wasm)).toBeLessThanOrEqual(mode === 'int8' ? 2e-2 : 1e-5);
    else expect(mode, 'only the com.microsoft LSTM kernel may be missing from the WASM build').toBe('int8');

    const file = join(dir, `${key}.${mode}.onnx`);
    await writeFile(file, model);
    const standard = (decodeModel(model).graph!.node ?? []).every((n) => !n.domain || n.domain === 'ai.onnx');
    if (standard) expect(checkOnnxFiles([file]).results[file]).toBeNull();
    else expect(mode).toBe('int8'); // DynamicQuantizeLSTM is onnxruntime's com.microsoft op
  });

  it.each(['int8-static', 'fp16'] as const)('%s step model streams equal to the quantized sequence model (≤ 1e-4)', async (mode) => {
    const pre = modelPreprocessing(float)!;
    const data = await loadDataset(files.csv, pre);
    const cal = { pre, data, method: 'minmax' as const };
    const qSeq = (await quantizeModel(float, { mode, calibration: cal })).model;
    // The step model made from the quantized sequence model…
    const a = await streamifyModel(qSeq, { tolerance: 1e-4, steps: 12 });
    expect(a.report.verification!.maxAbsError).toBeLessThanOrEqual(1e-4);
    summary.push(`${key} ${mode}: step vs quantized sequence ${a.report.verification!.maxAbsError.toExponential(2)}`);
    // A float step model quantized directly (calibrated by streaming the CSV) is its own model,
    // with its own ranges: it must keep the task metric, streamed over the whole series.
    const qStep = (await quantizeModel(floatStep, { mode, calibration: cal })).model;
    const c = await compareModels(floatStep, qStep, { pre, data });
    summary.push(`${key} ${mode}: quantized step model, streamed: ${c.metrics!.a.primary.value.toFixed(4)} → ${c.metrics!.b.primary.value.toFixed(4)}`);
    expect(c.metrics!.drop).toBeLessThanOrEqual(0.01);
  });

  it('int8 (dynamic) step model: the difference to the quantized sequence model is reported', async () => {
    // Dynamic int8 picks each call's activation scale from that call's inputs: a step quantizes
    // x_t with the range of x_t alone, the window with the range of all steps. The inputs then
    // differ by up to half a uint8 step of the wider range (1/510 of it), which the LSTM's gates
    // carry into outputs of order 1: a few 1e-3 per step, compounding over the recurrence
    // (measured ≤ 1e-2, identical on every CPU since the integer kernels agree).
    const TOL = 2e-2;
    const qSeq = (await quantizeModel(float, { mode: 'int8' })).model;
    const r = await streamifyModel(qSeq, { tolerance: TOL, steps: 12 });
    summary.push(`${key} int8: step vs quantized sequence ${r.report.verification!.maxAbsError.toExponential(2)} (dynamic activation scales are per call)`);
    expect(r.report.verification!.maxAbsError).toBeLessThanOrEqual(TOL);
  });
});

describe('accuracy gate and refusals (CLI)', () => {
  it('a damaged calibration (ranges clipped to 5% coverage) makes quantize exit 1 and write nothing', async () => {
    const onnx = join(dir, 'imu.onnx');
    await writeFile(onnx, (await exportToOnnx(await loadTfjsArtifacts(MODELS.imu.json))).model);
    const out = join(dir, 'imu.bad.onnx');
    // The same data with sane settings passes the gate…
    const ok = runCli([
      'quantize',
      onnx,
      '-o',
      join(dir, 'imu.ok.onnx'),
      '--mode',
      'int8-static',
      '--calibration',
      MODELS.imu.csv,
      '--eval',
      MODELS.imu.csv,
      '--max-drop',
      '0.01',
    ]);
    expect(ok.status, ok.stderr).toBe(0);
    // …while a percentile of 5 keeps only the central 5% of each activation's values.
    const r = runCli([
      'quantize',
      onnx,
      '-o',
      out,
      '--mode',
      'int8-static',
      '--calibration',
      MODELS.imu.csv,
      '--method',
      'percentile',
      '--percentile',
      '5',
      '--eval',
      MODELS.imu.csv,
      '--max-drop',
      '0.01',
    ]);
    expect(r.status, r.stdout + r.stderr).toBe(1);
    expect(r.stderr).toMatch(/accuracy gate failed: accuracy .* relative drop > --max-drop 1\.00%; nothing was written/);
    expect(r.stdout).toMatch(/accuracy\s+0\.\d+\s+0\.\d+/); // the table still shows what was measured
    expect(existsSync(out)).toBe(false);
  });

  it('a model with no quantizable op is reported with exit 2, not failed silently', async () => {
    const m = tf.sequential({
      layers: [tf.layers.activation({ activation: 'tanh', inputShape: [null, 3] }), tf.layers.layerNormalization({ center: false, scale: false })],
    });
    const p = await saveModel(m, join(dir, 'noq'));
    const onnx = join(dir, 'noq.onnx');
    expect(runCli(['export', p, '-o', onnx, '--no-verify']).status).toBe(0);
    const out = join(dir, 'noq.int8.onnx');
    const r = runCli(['quantize', onnx, '-o', out, '--mode', 'int8']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/nothing to quantize in mode int8: no MatMul\/Conv\/LSTM\/GRU\/RNN\/Gather with constant weights/);
    expect(r.stderr).toContain(onnx);
    expect(existsSync(out)).toBe(false);
  });

  it('int8-static without calibration data is bad usage', () => {
    const r = runCli(['quantize', join(dir, 'imu.onnx'), '-o', join(dir, 'x.onnx'), '--mode', 'int8-static']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--calibration/);
  });

  it('verify compares a tfjs model with its quantized ONNX on the task metric', async () => {
    const float = (await exportToOnnx(await loadTfjsArtifacts(MODELS.imu.json))).model;
    const q = join(dir, 'imu.fp16.onnx');
    await writeFile(q, (await quantizeModel(float, { mode: 'fp16' })).model);
    const r = runCli(['verify', MODELS.imu.json, q, '--data', MODELS.imu.csv, '--json']);
    expect(r.status, r.stderr).toBe(0);
    const j = r.json as Record<string, any>;
    expect(j.metrics.a.accuracy).toBeGreaterThan(0.9);
    expect(Math.abs(j.metrics.drop)).toBeLessThanOrEqual(0.01);
    expect(j.outputError.max).toBeLessThan(1e-2);
  });
});

afterAll(() => {
  if (process.env.STREAMCELL_QUANT_REPORT) process.stdout.write(summary.join('\n') + '\n');
});
