/**
 * Models from other tools through `export`: Keras 3 files converted by tensorflowjs 4.22
 * (test/fixtures/keras3), compared with Keras' own predictions, tfjs and the float64 reference;
 * a char-RNN whose float32 rounding is amplified (test/fixtures/charrnn/make.mjs), checked on
 * its real one-hot inputs (--sample-data) and through the float64 adjudication.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportModelFile } from '../src/export/api.js';
import { exportToOnnx } from '../src/export/exporter.js';
import { checkParity } from '../src/export/parity.js';
import { loadTfjsArtifacts } from '../src/export/tfjs-format/load.js';
import { decodeModel, encodeModel } from '../src/onnx/proto.js';
import { runCli } from './helpers/cli.js';
import { checkOnnxFiles } from './helpers/onnx-checker.js';
import { runOnnx } from './helpers/ort.js';

const K3 = new URL('./fixtures/keras3/', import.meta.url).pathname;
const CHARRNN = new URL('./fixtures/charrnn/make.mjs', import.meta.url).pathname;
const keras = JSON.parse(readFileSync(join(K3, 'keras_predictions.json'), 'utf8')) as { x: number[][][]; y: Record<string, number[][]> };
let tmp: string;
let charrnn: string;
const written: string[] = [];

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'streamcell-foreign-export-'));
  charrnn = join(tmp, 'charrnn');
  execFileSync(process.execPath, [CHARRNN, charrnn]);
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
};

describe('Keras 3 models converted by tensorflowjs 4.22', () => {
  it.each([
    ['seq_input_h5', 'seq_input'],
    ['seq_input_reloaded_fromkeras_h5', 'seq_input'],
    ['func_single_h5', 'func_single'],
    ['func_single_reloaded_fromkeras_h5', 'func_single'],
  ])('%s exports, passes parity against tfjs, and equals Keras’ own prediction', async (dir, ref) => {
    const out = join(tmp, `${dir}.onnx`);
    const r = await exportModelFile(join(K3, dir), { write: (b) => writeFile(out, b) });
    written.push(out);
    expect(r.summary.keras3?.kerasVersion).toBe('3.15.1');
    expect(r.parity!.passed).toBe(true);
    expect(r.parity!.reference).toMatch(/^tfjs predict/);
    expect(r.parity!.maxAbsError).toBeLessThanOrEqual(1e-5);
    const x = Float32Array.from(keras.x.flat(2));
    const y = await runOnnx(r.result.model, { [r.summary.inputs[0]!.name]: { data: x, dims: [1, 10, 8] } });
    expect(maxDiff(y[r.summary.outputs[0]!.name]!.data as Float32Array, keras.y[ref]!.flat())).toBeLessThanOrEqual(1e-5);
  });

  it('a BiLSTM + LayerNormalization + LSTM Keras 3 model checks against the float64 reference', async () => {
    const r = await exportModelFile(join(K3, 'seq_input_reloaded_fromkeras_h5'), { reference: 'float64' });
    expect(r.parity!.reference).toMatch(/float64/);
    expect(r.parity!.passed).toBe(true);
    expect(r.parity!.maxAbsError).toBeLessThanOrEqual(1e-5);
  });

  it('GRU reset_after (tfjs cannot build it) and a two-input model', async () => {
    const gru = await exportModelFile(join(K3, 'seq_lazy_reloaded_fromkeras_h5'));
    expect(gru.parity!.reference).toMatch(/float64 reference .*reset_after/);
    expect(gru.parity!.passed).toBe(true);
    const multi = await exportModelFile(join(K3, 'func_multi_h5'));
    expect(multi.parity!.passed).toBe(true);
    expect(multi.summary.inputs.map((i) => i.name)).toEqual(['a', 'b']);
  });

  it('when tfjs cannot load a file, parity runs against the float64 reference and says so (exit 0, not 3)', async () => {
    const dir = join(tmp, 'stft');
    await cp(join(K3, 'func_single_h5'), dir, { recursive: true });
    const mj = JSON.parse(await readFile(join(dir, 'model.json'), 'utf8'));
    // Keras 3.7+ has initializers tfjs 4.22 does not know; inference never uses them.
    const lstm = mj.modelTopology.model_config.config.layers.find((l: { class_name: string }) => l.class_name === 'LSTM');
    lstm.config.kernel_initializer = {
      module: 'keras.initializers',
      class_name: 'STFT',
      config: { side: 'real', window: 'hann', scaling: 'density', periodic: false },
      registered_name: null,
    };
    await writeFile(join(dir, 'model.json'), JSON.stringify(mj));
    const r = runCli(['export', dir, '-o', join(tmp, 'stft.onnx'), '--json']);
    expect(r.status, r.stderr).toBe(0);
    const j = r.json as { parity: { reference: string; passed: boolean } };
    expect(j.parity.reference).toMatch(/float64 reference \(tfjs cannot load this model: .*STFT/);
    expect(j.parity.passed).toBe(true);
  });
});

describe('parity without false alarms', () => {
  it('char-RNN on random inputs: over the tolerance against tfjs, passed by the float64 adjudication, and says so', () => {
    const r = runCli(['export', charrnn, '-o', join(tmp, 'charrnn.onnx')]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/random normal inputs: max abs error \S+ over 2 cases/);
    expect(r.stdout).toMatch(/judged against the float64 reference: ONNX is off by \S+, tfjs by \S+; float32 rounding .* passed/);
    const j = runCli(['export', charrnn, '-o', join(tmp, 'charrnn.onnx'), '--json']).json as {
      parity: { maxAbsError: number; adjudicated: number; tolerance: number };
    };
    expect(j.parity.maxAbsError).toBeGreaterThan(j.parity.tolerance);
    expect(j.parity.adjudicated).toBeGreaterThanOrEqual(1);
    written.push(join(tmp, 'charrnn.onnx'));
  });

  it('char-RNN with --sample-data: its one-hot inputs from a .npy (and a .json)', async () => {
    const npy = runCli(['export', charrnn, '-o', join(tmp, 'charrnn2.onnx'), '--sample-data', join(charrnn, 'onehot.npy'), '--json']);
    expect(npy.status, npy.stderr).toBe(0);
    expect((npy.json as { parity: { inputs: string; cases: unknown[] } }).parity.inputs).toMatch(/^24 samples from .*onehot\.npy$/);
    // Four one-hot sequences as nested JSON arrays.
    const seqs = Array.from({ length: 4 }, (_, n) =>
      Array.from({ length: 40 }, (_, t) => Array.from({ length: 57 }, (_, v) => (v === (n * 7 + t * 3) % 57 ? 1 : 0))),
    );
    await writeFile(join(tmp, 'onehot.json'), JSON.stringify(seqs));
    const json = runCli(['export', charrnn, '-o', join(tmp, 'charrnn3.onnx'), '--sample-data', join(tmp, 'onehot.json'), '--json']);
    expect(json.status, json.stderr).toBe(0);
    expect((json.json as { parity: { inputs: string } }).parity.inputs).toMatch(/^4 samples/);
  });

  it('a real export error is not explained away: a weight changed by 1e-3 fails even after adjudication', async () => {
    const art = await loadTfjsArtifacts(charrnn);
    const result = await exportToOnnx(art);
    const m = decodeModel(result.model);
    const t = m.graph!.initializer!.find((x) => (x.dims ?? []).length === 2 && Number(x.dims![0]) === 128 && Number(x.dims![1]) === 57)!;
    const w = new Float32Array(Uint8Array.from(t.rawData!).buffer);
    for (let u = 0; u < 128; u++) w[u * 57 + 1]! += 1e-3;
    t.rawData = new Uint8Array(w.buffer);
    const report = await checkParity(art, { ...result, model: encodeModel(m) });
    expect(report.passed).toBe(false);
    expect(report.cases.some((c) => c.adjudication && !c.adjudication.passed)).toBe(true);
  });

  it('a sensor CSV as sample data: windows of the model, normalised with its preprocessing.json', () => {
    const model = new URL('../models/co2-lstm/model.json', import.meta.url).pathname;
    const csv = new URL('../models/co2-weekly-mauna-loa.csv', import.meta.url).pathname;
    const r = runCli(['export', model, '-o', join(tmp, 'co2.onnx'), '--sample-data', csv, '--json']);
    expect(r.status, r.stderr).toBe(0);
    const p = (r.json as { parity: { inputs: string; passed: boolean; maxAbsError: number } }).parity;
    expect(p.inputs).toMatch(/^64 samples from .*co2-weekly-mauna-loa\.csv$/);
    expect(p.maxAbsError).toBeLessThanOrEqual(1e-5);
  });

  it('bad sample data is exit 2 naming the file and what was expected', async () => {
    await writeFile(join(tmp, 'wrong.json'), JSON.stringify([[1, 2, 3]]));
    const shape = runCli(['export', charrnn, '-o', join(tmp, 'x.onnx'), '--sample-data', join(tmp, 'wrong.json')]);
    expect(shape.status).toBe(2);
    expect(shape.stderr).toContain('wrong.json');
    expect(shape.stderr).toMatch(/sample data has shape \[1,3\]; the model's input 'lstm_1_input' is \[\?,40,57\]/);
    // A .npy whose header claims more data than the file holds: refused before allocating.
    const npy = readFileSync(join(charrnn, 'onehot.npy'));
    await writeFile(join(tmp, 'short.npy'), npy.subarray(0, 5000));
    const short = runCli(['export', charrnn, '-o', join(tmp, 'x.onnx'), '--sample-data', join(tmp, 'short.npy')]);
    expect(short.status).toBe(2);
    expect(short.stderr).toMatch(/short\.npy.*needs 218880 bytes of data, the file has \d+/s);
    const kind = runCli(['export', charrnn, '-o', join(tmp, 'x.onnx'), '--sample-data', join(tmp, 'wrong.txt')]);
    expect(kind.status).toBe(2);
  });

  it('every exported file passes onnx.checker (full_check)', () => {
    const { results } = checkOnnxFiles(written);
    for (const [p, err] of Object.entries(results)) expect(err, p).toBeNull();
  });
});
