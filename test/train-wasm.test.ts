/**
 * Training on the WebAssembly backend (@tensorflow/tfjs-backend-wasm), the fast path when
 * tfjs-node is not installed: every layer `--arch` can build trains on it, the backend is
 * named in the report, the loss decreases, the same seed gives the same weights, its forward
 * pass agrees with the cpu backend, and export parity still runs on the cpu backend afterwards.
 */
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { exportModelFile } from '../src/export/api.js';
import { loadTfjs } from '../src/export/tfjs-backend.js';
import { trainModel, type TrainOptions, type TrainProgress } from '../src/train/train.js';
import { runCli } from './helpers/cli.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const CO2 = join(root, 'models', 'co2-weekly-mauna-loa.csv');
const IMU = join(root, 'models', 'imu-activity', 'data.csv');

let tmp: string;
let small: string;
let imuSmall: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'streamcell-train-wasm-'));
  small = join(tmp, 'co2-small.csv');
  await writeFile(small, (await readFile(CO2, 'utf8')).split('\n').slice(0, 401).join('\n') + '\n');
  imuSmall = join(tmp, 'imu-small.csv');
  await writeFile(imuSmall, (await readFile(IMU, 'utf8')).split('\n').slice(0, 2001).join('\n') + '\n');
});

/** Per-batch losses from the progress events (each carries the epoch's running mean). */
function batchLosses(events: TrainProgress[], epoch: number): number[] {
  const means = events.filter((e) => e.epoch === epoch && !e.epochEnd).map((e) => e.loss);
  return means.map((m, i) => (i === 0 ? m : (i + 1) * m - i * means[i - 1]!));
}

const tiny = (backend: TrainOptions['backend'], extra: Partial<TrainOptions> = {}): TrainOptions => ({
  data: small,
  target: 'co2',
  window: 12,
  arch: 'conv1d:4:3,lstm:8,gru:6,rnn:4,dense:4',
  epochs: 1,
  batchSize: 16,
  seed: 5,
  backend,
  ...extra,
});

describe('training on the wasm backend', () => {
  it('trains every layer kind (diff Conv1D, conv1d, LSTM, GRU, SimpleRNN, dense, dropout, Adam); names the backend; the loss decreases', async () => {
    const events: TrainProgress[] = [];
    const { report } = await trainModel(tiny('wasm', { dropout: 0.1, onProgress: (p) => events.push(p) }));
    expect(report.backend).toMatch(/^wasm \(@tensorflow\/tfjs-backend-wasm, (no )?SIMD, \d+ threads?\)$/);
    expect(report.training.epochs).toBe(1);
    expect(report.windowsPerSecond).toBeGreaterThan(0);
    expect(report.windowsPerSecond).toBeCloseTo(report.data.windows.train / report.meanEpochSeconds, 6);
    const losses = batchLosses(events, 1);
    expect(losses.length).toBe(Math.ceil(report.data.windows.train / 16));
    expect(losses.every(Number.isFinite)).toBe(true);
    // Adam at lr 0.005 over ~17 batches: the last three batches sit well below the first.
    const tail = losses.slice(-3).reduce((a, b) => a + b, 0) / 3;
    expect(tail).toBeLessThan(losses[0]! * 0.8);
    expect(Number.isFinite(report.test.rmse)).toBe(true);
  }, 60_000);

  it('same seed → identical weights on wasm', async () => {
    const a = await trainModel(tiny('wasm', { dropout: 0.1 }));
    const b = await trainModel(tiny('wasm', { dropout: 0.1 }));
    expect(Buffer.from(a.weights).equals(Buffer.from(b.weights))).toBe(true);
  }, 60_000);

  it("the first batch's loss (a forward pass of the untrained model) agrees with the cpu backend", async () => {
    const first = async (backend: TrainOptions['backend']) => {
      const events: TrainProgress[] = [];
      const { report } = await trainModel(tiny(backend, { onProgress: (p) => events.push(p) }));
      return { loss: batchLosses(events, 1)[0]!, backend: report.backend };
    };
    const w = await first('wasm');
    const c = await first('cpu');
    expect(w.backend).toMatch(/^wasm/);
    expect(c.backend).toMatch(/^cpu/);
    // Same seed → same initial weights and the same shuffled batch; only float32 summation
    // order differs (XNNPACK vs the JS loops): relative rounding ~1e-7 per op, accumulated over
    // 12 steps of four stacked layers stays far below 1e-4.
    expect(Math.abs(w.loss - c.loss) / c.loss).toBeLessThan(1e-4);
  }, 60_000);

  it('export parity after training on wasm still runs tfjs on the cpu backend', async () => {
    const out = join(tmp, 'imu');
    const { report } = await trainModel({
      data: imuSmall,
      label: 'activity',
      inputs: ['ax', 'ay', 'az'],
      window: 16,
      arch: 'lstm:8',
      epochs: 1,
      backend: 'wasm',
      outDir: out,
    });
    expect(report.backend).toMatch(/^wasm/);
    const r = await exportModelFile(join(out, 'model.json'));
    expect(r.parity!.passed).toBe(true);
    expect(r.parity!.reference).toMatch(/^tfjs predict, (cpu|tensorflow) /);
    expect((await loadTfjs()).tf.getBackend()).not.toBe('wasm');
  }, 60_000);
});

describe("wasm's Conv2DBackpropFilter (registered by streamcell: tfjs-backend-wasm 4.22 lacks it)", () => {
  it.each([
    ['NHWC', 'valid', 1],
    ['NHWC', 'same', 2],
  ] as const)('filter gradient equals the cpu backend (%s, %s, stride %d)', async (format, pad, stride) => {
    const { tf } = await loadTfjs('wasm');
    const xShape: [number, number, number, number] = [3, 5, 9, 4];
    const xv = Float32Array.from({ length: 3 * 5 * 9 * 4 }, (_, i) => Math.sin(i * 0.37));
    const fv = Float32Array.from({ length: 2 * 3 * 4 * 6 }, (_, i) => Math.cos(i * 0.11));
    const grad = async (backend: 'wasm' | 'cpu') => {
      await loadTfjs(backend);
      const x = tf.tensor4d(xv, xShape);
      const f = tf.tensor4d(fv, [2, 3, 4, 6]);
      const g = tf.grad((w) =>
        tf
          .conv2d(x, w as typeof f, stride, pad, format)
          .square()
          .sum(),
      )(f);
      const out = await g.data();
      tf.dispose([x, f, g]);
      return out;
    };
    const w = await grad('wasm');
    const c = await grad('cpu');
    expect(w.length).toBe(c.length);
    // Same loops on the same float32 inputs; dy comes from each backend's own conv2d (float32
    // rounding, relative ~1e-6 on sums of ≤ 3·5·9 = 135 products of terms ≤ 36 in size).
    const scale = Math.max(...Array.from(c, Math.abs));
    w.forEach((v, i) => expect(Math.abs(v - c[i]!)).toBeLessThan(1e-5 * scale));
  });
});

describe('`streamcell train` reports the backend and windows/s', () => {
  const args = (out: string) => ['train', '--data', small, '--target', 'co2', '--window', '12', '--arch', 'lstm:4', '--epochs', '1', '-o', out];

  it('auto without tfjs-node → wasm, named with the reason, windows/s in text and JSON', async () => {
    const out = join(tmp, 'cli-auto');
    const r = runCli([...args(out), '--json'], { env: { STREAMCELL_TFJS_NODE: '0' } });
    expect(r.status).toBe(0);
    const j = r.json as { backend: string; fallbackReason: string; windowsPerSecond: number; data: { windows: { train: number } } };
    expect(j.backend).toMatch(/^wasm/);
    expect(j.fallbackReason).toBe('STREAMCELL_TFJS_NODE=0');
    expect(j.windowsPerSecond).toBeGreaterThan(0);
    const saved = JSON.parse(await readFile(join(out, 'training-report.json'), 'utf8'));
    expect(saved.windowsPerSecond).toBe(j.windowsPerSecond);
    const text = runCli(args(join(tmp, 'cli-text')), { env: { STREAMCELL_TFJS_NODE: '0' } });
    expect(text.status).toBe(0);
    expect(text.stdout).toMatch(/1 epoch, best 1, batch \d+, \d+\.\d\d s\/epoch \(\d+ windows\/s\)/);
    expect(text.stdout).toMatch(/tfjs backend: wasm \(@tensorflow\/tfjs-backend-wasm.*\) \(STREAMCELL_TFJS_NODE=0\)/);
  }, 60_000);

  it('STREAMCELL_TFJS_WASM=0 falls back to the cpu backend and says why; --tfjs-backend cpu asks for it', () => {
    const r = runCli([...args(join(tmp, 'cli-nowasm')), '--json'], { env: { STREAMCELL_TFJS_NODE: '0', STREAMCELL_TFJS_WASM: '0' } });
    expect(r.status).toBe(0);
    expect(r.json).toMatchObject({ backend: 'cpu (@tensorflow/tfjs)', fallbackReason: 'STREAMCELL_TFJS_NODE=0; STREAMCELL_TFJS_WASM=0' });
    const c = runCli([...args(join(tmp, 'cli-cpu')), '--tfjs-backend', 'cpu', '--json'], { env: { STREAMCELL_TFJS_NODE: '0' } });
    expect(c.status).toBe(0);
    expect((c.json as { backend: string }).backend).toBe('cpu (@tensorflow/tfjs)');
  }, 60_000);

  it('--tfjs-backend wasm when wasm cannot start is an InputError (exit 2)', () => {
    const r = runCli([...args(join(tmp, 'cli-nowasm2')), '--tfjs-backend', 'wasm'], { env: { STREAMCELL_TFJS_NODE: '0', STREAMCELL_TFJS_WASM: '0' } });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/wasm backend of tfjs cannot start: STREAMCELL_TFJS_WASM=0/);
  }, 60_000);
});
