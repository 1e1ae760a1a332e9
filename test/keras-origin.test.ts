/**
 * Keras-origin model.json files (as tensorflowjs_converter writes them) with layers or options
 * tfjs 4.22 cannot run: GRU reset_after=true, Conv1D 'causal', ZeroPadding1D, Cropping1D,
 * Subtract, Keras-only ReLU/ELU/Softmax options. Each ONNX export is checked against float64
 * math written here in the test (independent of streamcell's own reference interpreter), and
 * the exporter's own parity check must pick the float64 reference and pass.
 */
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportModelFile } from '../src/export/api.js';
import { streamifyModel } from '../src/export/streamify/index.js';
import { rng } from '../src/export/parity.js';
import { checkOnnxFiles } from './helpers/onnx-checker.js';
import { maxAbs, runOnnx } from './helpers/ort.js';
import { seededValues, writeKerasModel } from './helpers/tfjs-save.js';
import { writeFile } from 'node:fs/promises';

let root: string;
const written: string[] = [];
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'streamcell-keras-'));
});

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

function randn(n: number, seed: number): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => Math.sqrt(-2 * Math.log(r() + 1e-12)) * Math.cos(2 * Math.PI * r()));
}

/** Keras GRU, reset_after=True: kernel [in,3u], recurrent [u,3u], bias [2,3u]; gates z, r, h. */
function gruResetAfter(
  x: Float32Array,
  B: number,
  T: number,
  I: number,
  u: number,
  k: Float32Array,
  rk: Float32Array,
  bias: Float32Array,
  reverse = false,
): Float64Array[] {
  const outs: Float64Array[] = []; // per batch: [T, u] in processing order
  for (let b = 0; b < B; b++) {
    let h = new Float64Array(u);
    const seq = new Float64Array(T * u);
    for (let s = 0; s < T; s++) {
      const t = reverse ? T - 1 - s : s;
      const xz = new Float64Array(3 * u);
      const hz = new Float64Array(3 * u);
      for (let j = 0; j < 3 * u; j++) {
        let a = bias[j]!;
        for (let i = 0; i < I; i++) a += x[(b * T + t) * I + i]! * k[i * 3 * u + j]!;
        xz[j] = a;
        let c = bias[3 * u + j]!;
        for (let i = 0; i < u; i++) c += h[i]! * rk[i * 3 * u + j]!;
        hz[j] = c;
      }
      const hn = new Float64Array(u);
      for (let j = 0; j < u; j++) {
        const z = sigmoid(xz[j]! + hz[j]!);
        const r = sigmoid(xz[u + j]! + hz[u + j]!);
        const hh = Math.tanh(xz[2 * u + j]! + r * hz[2 * u + j]!);
        hn[j] = z * h[j]! + (1 - z) * hh;
      }
      h = hn;
      seq.set(h, s * u);
    }
    outs.push(seq);
  }
  return outs;
}

const input = (name: string, shape: (number | null)[]) => ({
  class_name: 'InputLayer',
  config: { batch_input_shape: shape, dtype: 'float32', sparse: false, ragged: false, name },
});
const topo = (layers: object[]) => ({ class_name: 'Sequential', config: { name: 'sequential', layers }, keras_version: '2.15.0', backend: 'tensorflow' });

async function exportAndCheck(name: string, modelJson: string) {
  const out = join(root, `${name}.onnx`);
  const r = await exportModelFile(modelJson, { tolerance: 1e-5, batchSizes: [1, 7], timeLengths: [5, 12], write: (b) => writeFile(out, b) });
  written.push(out);
  expect(r.parity!.reference).toMatch(/float64 reference/);
  expect(r.parity!.maxAbsError, JSON.stringify(r.parity!.cases)).toBeLessThanOrEqual(1e-5);
  return { model: new Uint8Array(await readFile(out)), result: r };
}

describe('Keras-origin models tfjs cannot run', () => {
  const I = 3;
  const u = 5;
  const k = seededValues(I * 3 * u, 11);
  const rk = seededValues(u * 3 * u, 12, 0.4);
  const bias = seededValues(2 * 3 * u, 13);

  it('GRU reset_after=true, recurrent_activation sigmoid, Keras weight names → linear_before_reset=1, equal to the GRU equations', async () => {
    const dir = join(root, 'gru');
    const p = await writeKerasModel(
      dir,
      topo([
        input('input_1', [null, null, I]),
        {
          class_name: 'GRU',
          config: {
            name: 'gru',
            trainable: true,
            dtype: 'float32',
            return_sequences: true,
            return_state: false,
            go_backwards: false,
            stateful: false,
            unroll: false,
            time_major: false,
            units: u,
            activation: 'tanh',
            recurrent_activation: 'sigmoid',
            use_bias: true,
            dropout: 0,
            recurrent_dropout: 0,
            reset_after: true,
          },
        },
      ]),
      [
        { name: 'gru/gru_cell/kernel', shape: [I, 3 * u], data: k },
        { name: 'gru/gru_cell/recurrent_kernel', shape: [u, 3 * u], data: rk },
        { name: 'gru/gru_cell/bias', shape: [2, 3 * u], data: bias },
      ],
    );
    const { model, result } = await exportAndCheck('gru', p);
    expect(result.summary.ops.GRU).toBe(1);
    for (const [B, T] of [
      [1, 5],
      [7, 12],
    ] as const) {
      const x = randn(B * T * I, B * 100 + T);
      const got = (await runOnnx(model, { input_1: { data: x, dims: [B, T, I] } })).gru!.data as Float32Array;
      const want = gruResetAfter(x, B, T, I, u, k, rk, bias);
      const flat = new Float64Array(B * T * u);
      want.forEach((s, b) => flat.set(s, b * T * u));
      expect(maxAbs(got, flat)).toBeLessThanOrEqual(1e-5);
    }
  });

  it('Bidirectional(GRU reset_after) concat, last output', async () => {
    const dir = join(root, 'bigru');
    const kb = seededValues(I * 3 * u, 21);
    const rkb = seededValues(u * 3 * u, 22, 0.4);
    const bb = seededValues(2 * 3 * u, 23);
    const gru = {
      class_name: 'GRU',
      config: {
        name: 'gru',
        units: u,
        activation: 'tanh',
        recurrent_activation: 'sigmoid',
        use_bias: true,
        reset_after: true,
        return_sequences: false,
        return_state: false,
        go_backwards: false,
        stateful: false,
      },
    };
    const p = await writeKerasModel(
      dir,
      topo([input('x', [null, null, I]), { class_name: 'Bidirectional', config: { name: 'bidirectional', layer: gru, merge_mode: 'concat' } }]),
      [
        { name: 'bidirectional/forward_gru/gru_cell/kernel', shape: [I, 3 * u], data: k },
        { name: 'bidirectional/forward_gru/gru_cell/recurrent_kernel', shape: [u, 3 * u], data: rk },
        { name: 'bidirectional/forward_gru/gru_cell/bias', shape: [2, 3 * u], data: bias },
        { name: 'bidirectional/backward_gru/gru_cell/kernel', shape: [I, 3 * u], data: kb },
        { name: 'bidirectional/backward_gru/gru_cell/recurrent_kernel', shape: [u, 3 * u], data: rkb },
        { name: 'bidirectional/backward_gru/gru_cell/bias', shape: [2, 3 * u], data: bb },
      ],
    );
    const { model } = await exportAndCheck('bigru', p);
    const B = 3;
    const T = 6;
    const x = randn(B * T * I, 77);
    const got = (await runOnnx(model, { x: { data: x, dims: [B, T, I] } })).bidirectional!.data as Float32Array;
    const f = gruResetAfter(x, B, T, I, u, k, rk, bias);
    const b = gruResetAfter(x, B, T, I, u, kb, rkb, bb, true);
    const want = new Float64Array(B * 2 * u);
    for (let i = 0; i < B; i++) {
      want.set(f[i]!.subarray((T - 1) * u), i * 2 * u);
      want.set(b[i]!.subarray((T - 1) * u), i * 2 * u + u);
    }
    expect(maxAbs(got, want)).toBeLessThanOrEqual(1e-5);
  });

  it("Conv1D padding='causal' with dilation: output t sees only inputs ≤ t", async () => {
    const dir = join(root, 'causal');
    const K = 3;
    const d = 2;
    const F = 4;
    const kern = seededValues(K * I * F, 31);
    const cb = seededValues(F, 32);
    const p = await writeKerasModel(
      dir,
      topo([
        input('sensor', [null, null, I]),
        {
          class_name: 'Conv1D',
          config: {
            name: 'conv1d',
            filters: F,
            kernel_size: [K],
            strides: [1],
            padding: 'causal',
            data_format: 'channels_last',
            dilation_rate: [d],
            groups: 1,
            activation: 'relu',
            use_bias: true,
          },
        },
      ]),
      [
        { name: 'conv1d/kernel', shape: [K, I, F], data: kern },
        { name: 'conv1d/bias', shape: [F], data: cb },
      ],
    );
    const { model } = await exportAndCheck('causal', p);
    const B = 2;
    const T = 9;
    const x = randn(B * T * I, 5);
    const got = (await runOnnx(model, { sensor: { data: x, dims: [B, T, I] } })).conv1d!.data as Float32Array;
    const want = new Float64Array(B * T * F);
    for (let b = 0; b < B; b++)
      for (let t = 0; t < T; t++)
        for (let f = 0; f < F; f++) {
          let a = cb[f]!;
          for (let j = 0; j < K; j++) {
            const src = t - (K - 1 - j) * d;
            if (src < 0) continue;
            for (let i = 0; i < I; i++) a += x[(b * T + src) * I + i]! * kern[(j * I + i) * F + f]!;
          }
          want[(b * T + t) * F + f] = Math.max(0, a);
        }
    expect(maxAbs(got, want)).toBeLessThanOrEqual(1e-5);
  });

  it('ZeroPadding1D, Cropping1D and Subtract in a functional model', async () => {
    const dir = join(root, 'padcrop');
    const node = (...names: string[]) => [names.map((n) => [n, 0, 0, {}])];
    const p = await writeKerasModel(
      dir,
      {
        class_name: 'Functional',
        config: {
          name: 'model',
          layers: [
            { ...input('a', [null, 6, I]), name: 'a', inbound_nodes: [] },
            { class_name: 'ZeroPadding1D', name: 'pad', config: { name: 'pad', padding: [2, 1] }, inbound_nodes: node('a') },
            { class_name: 'Cropping1D', name: 'crop', config: { name: 'crop', cropping: [1, 2] }, inbound_nodes: node('pad') },
            { class_name: 'Subtract', name: 'diff', config: { name: 'diff' }, inbound_nodes: node('crop', 'a') },
          ],
          input_layers: [['a', 0, 0]],
          output_layers: [
            ['diff', 0, 0],
            ['pad', 0, 0],
          ],
        },
        keras_version: '2.15.0',
        backend: 'tensorflow',
      },
      [],
    );
    const { model } = await exportAndCheck('padcrop', p);
    const B = 2;
    const T = 6;
    const x = randn(B * T * I, 9);
    const out = await runOnnx(model, { a: { data: x, dims: [B, T, I] } });
    const padded = new Float64Array(B * (T + 3) * I);
    for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) for (let i = 0; i < I; i++) padded[(b * (T + 3) + t + 2) * I + i] = x[(b * T + t) * I + i]!;
    expect(out.pad!.dims).toEqual([B, T + 3, I]);
    expect(maxAbs(out.pad!.data as Float32Array, padded)).toBe(0);
    // crop(pad(x))[t] = pad(x)[t + 1] = x[t − 1] (0 for t = 0); diff = that − x.
    const diff = new Float64Array(B * T * I);
    for (let b = 0; b < B; b++)
      for (let t = 0; t < T; t++)
        for (let i = 0; i < I; i++) {
          diff[(b * T + t) * I + i] = (t > 0 ? x[(b * T + t - 1) * I + i]! : 0) - x[(b * T + t) * I + i]!;
        }
    expect(maxAbs(out.diff!.data as Float32Array, diff)).toBeLessThanOrEqual(1e-6);
  });

  it('Keras-only activation options: ReLU(negative_slope, threshold, max_value), ELU(alpha), Softmax(axis=1)', async () => {
    const dir = join(root, 'acts');
    const p = await writeKerasModel(
      dir,
      topo([
        input('x', [null, 4, I]),
        { class_name: 'ReLU', config: { name: 'relu', max_value: 1.5, negative_slope: 0.1, threshold: 0.2 } },
        { class_name: 'ELU', config: { name: 'elu', alpha: 0.7 } },
        { class_name: 'Softmax', config: { name: 'softmax', axis: 1 } },
      ]),
      [],
    );
    const { model } = await exportAndCheck('acts', p);
    const B = 2;
    const T = 4;
    const x = randn(B * T * I, 3);
    const got = (await runOnnx(model, { x: { data: x, dims: [B, T, I] } })).softmax!.data as Float32Array;
    const e = Array.from(x, (v) => {
      const r = Math.min(v >= 0.2 ? v : 0.1 * (v - 0.2), 1.5);
      return r > 0 ? r : 0.7 * (Math.exp(r) - 1);
    });
    const want = new Float64Array(B * T * I);
    for (let b = 0; b < B; b++)
      for (let i = 0; i < I; i++) {
        let s = 0;
        for (let t = 0; t < T; t++) s += Math.exp(e[(b * T + t) * I + i]!);
        for (let t = 0; t < T; t++) want[(b * T + t) * I + i] = Math.exp(e[(b * T + t) * I + i]!) / s;
      }
    expect(maxAbs(got, want)).toBeLessThanOrEqual(1e-6);
  });

  it('BatchNormalization on axis 1 (tfjs gets it wrong) and ReLU with a negative threshold: checked by the float64 reference', async () => {
    const dir = join(root, 'bn1');
    const T = 4;
    const p = await writeKerasModel(
      dir,
      topo([
        input('x', [null, T, I]),
        { class_name: 'BatchNormalization', config: { name: 'bn', axis: 1, epsilon: 0.001, center: true, scale: true } },
        { class_name: 'ReLU', config: { name: 'relu', max_value: 2, negative_slope: 0.3, threshold: -0.5 } },
      ]),
      [
        { name: 'bn/gamma', shape: [T], data: [1.5, 0.5, 1, 2] },
        { name: 'bn/beta', shape: [T], data: [0.1, -0.2, 0, 0.3] },
        { name: 'bn/moving_mean', shape: [T], data: [0.5, -1, 0, 2] },
        { name: 'bn/moving_variance', shape: [T], data: [1, 4, 0.25, 9] },
      ],
    );
    const { model, result } = await exportAndCheck('bn1', p);
    expect(result.parity!.reference).toMatch(/BatchNormalization wrongly/);
    const B = 2;
    const x = randn(B * T * I, 8);
    const got = (await runOnnx(model, { x: { data: x, dims: [B, T, I] } })).relu!.data as Float32Array;
    const g = [1.5, 0.5, 1, 2],
      be = [0.1, -0.2, 0, 0.3],
      mu = [0.5, -1, 0, 2],
      va = [1, 4, 0.25, 9];
    const want = Array.from(x, (v, idx) => {
      const t = Math.floor(idx / I) % T;
      const n = ((v - mu[t]!) / Math.sqrt(va[t]! + 0.001)) * g[t]! + be[t]!;
      // keras.backend.relu: clip(n·[n > θ], 0, max) − α·relu(θ − n)
      return Math.min(Math.max(n > -0.5 ? n : 0, 0), 2) - 0.3 * Math.max(-0.5 - n, 0);
    });
    expect(maxAbs(got, want)).toBeLessThanOrEqual(1e-5);
  });

  it('ZeroPadding1D((k−1)·d, 0) + a valid dilated Conv1D is causal: it streams with a ring buffer', async () => {
    const dir = join(root, 'zpconv');
    const F = 4;
    const p = await writeKerasModel(
      dir,
      topo([
        input('x', [null, null, I]),
        { class_name: 'ZeroPadding1D', config: { name: 'pad', padding: [4, 0] } },
        {
          class_name: 'Conv1D',
          config: {
            name: 'conv',
            filters: F,
            kernel_size: [3],
            strides: [1],
            padding: 'valid',
            dilation_rate: [2],
            activation: 'relu',
            use_bias: true,
            data_format: 'channels_last',
            groups: 1,
          },
        },
        {
          class_name: 'LSTM',
          config: {
            name: 'lstm',
            units: u,
            activation: 'tanh',
            recurrent_activation: 'sigmoid',
            use_bias: true,
            return_sequences: true,
            return_state: false,
            go_backwards: false,
            stateful: false,
            time_major: false,
            unroll: false,
          },
        },
      ]),
      [
        { name: 'conv/kernel', shape: [3, I, F], data: seededValues(3 * I * F, 51) },
        { name: 'conv/bias', shape: [F], data: seededValues(F, 52) },
        { name: 'lstm/lstm_cell/kernel', shape: [F, 4 * u], data: seededValues(F * 4 * u, 53) },
        { name: 'lstm/lstm_cell/recurrent_kernel', shape: [u, 4 * u], data: seededValues(u * 4 * u, 54, 0.4) },
        { name: 'lstm/lstm_cell/bias', shape: [4 * u], data: seededValues(4 * u, 55) },
      ],
    );
    const { model } = await exportAndCheck('zpconv', p);
    const { model: step, report } = await streamifyModel(model, { tolerance: 1e-5, steps: 12 });
    expect(report.verification!.passed).toBe(true);
    expect(report.verification!.comparisons).toBe(12);
    expect(report.states.find((s) => s.name.endsWith('.buf'))!.shape).toEqual([I, 4]);
    expect(report.rewritten.some((r) => /explicit Pad folded in/.test(r.as))).toBe(true);
    const out = join(root, 'zpconv.step.onnx');
    await writeFile(out, step);
    written.push(out);
  });

  it('a Keras LSTM (lstm_cell weight names, sigmoid gates) that tfjs can run is checked against tfjs', async () => {
    const dir = join(root, 'klstm');
    const p = await writeKerasModel(
      dir,
      topo([
        input('x', [null, null, I]),
        {
          class_name: 'LSTM',
          config: {
            name: 'lstm',
            units: u,
            activation: 'tanh',
            recurrent_activation: 'sigmoid',
            use_bias: true,
            unit_forget_bias: true,
            return_sequences: true,
            return_state: false,
            go_backwards: false,
            stateful: false,
            time_major: false,
            unroll: false,
            implementation: 2,
          },
        },
        { class_name: 'Dense', config: { name: 'dense', units: 2, activation: 'linear', use_bias: true } },
      ]),
      [
        { name: 'lstm/lstm_cell/kernel', shape: [I, 4 * u], data: seededValues(I * 4 * u, 41) },
        { name: 'lstm/lstm_cell/recurrent_kernel', shape: [u, 4 * u], data: seededValues(u * 4 * u, 42, 0.4) },
        { name: 'lstm/lstm_cell/bias', shape: [4 * u], data: seededValues(4 * u, 43) },
        { name: 'dense/kernel', shape: [u, 2], data: seededValues(u * 2, 44) },
        { name: 'dense/bias', shape: [2], data: seededValues(2, 45) },
      ],
    );
    const out = join(root, 'klstm.onnx');
    const r = await exportModelFile(p, { tolerance: 1e-5, batchSizes: [1, 7], timeLengths: [5, 12], write: (b) => writeFile(out, b) });
    written.push(out);
    expect(r.parity!.reference).toMatch(/^tfjs predict/);
    expect(r.parity!.maxAbsError).toBeLessThanOrEqual(1e-5);
  });
});

afterAll(() => {
  if (written.length === 0) return;
  const { results } = checkOnnxFiles(written);
  const failures = Object.entries(results).filter(([, e]) => e !== null);
  if (failures.length) throw new Error(`ONNX checker rejected: ${JSON.stringify(failures)}`);
});
