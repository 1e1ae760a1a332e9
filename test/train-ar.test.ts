/**
 * The AR(p) baseline: the ridge fit recovers a known AR(3) process; `train` reports it next to
 * the other baselines on the same test windows and saves it as a model that goes the whole
 * deployable path — export, streamify (a ring buffer of p − 1 samples), bundle — whose step
 * model streams equal to its sequence form and to the fit's own predictions, and which the
 * daemon's pipeline runs (`streamcell run BUNDLE`, streaming path).
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveBackend } from '../src/runtime/backend-impl.js';
import { StreamPool } from '../src/runtime/pool.js';
import { readModelInfo } from '../src/runtime/step-model.js';
import { arTargetCoefficients, fitAr } from '../src/train/ar.js';
import { changeStats, forecastWindows, normalise, stats } from '../src/train/data.js';
import { trainModel } from '../src/train/train.js';
import { runCli } from './helpers/cli.js';

const CO2 = join(fileURLToPath(new URL('..', import.meta.url)), 'models', 'co2-weekly-mauna-loa.csv');
let tmp: string;

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'streamcell-ar-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** Normal deviates from a seeded LCG (Box–Muller). */
function noise(n: number, seed: number): Float64Array {
  let s = seed >>> 0;
  const u = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) + 0.5) / 2 ** 32;
  return Float64Array.from({ length: n }, () => Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u()));
}

describe('fitAr', () => {
  it('recovers the coefficients of a synthetic AR(3) process within 0.02', () => {
    const a = [0.5, -0.3, 0.2];
    const n = 20_000;
    const e = noise(n, 7);
    const x = new Float64Array(n);
    for (let t = 3; t < n; t++) x[t] = 2 + a[0]! * x[t - 1]! + a[1]! * x[t - 2]! + a[2]! * x[t - 3]! + e[t]!;
    const trainEnd = 14_000;
    const norm = stats(x, 0, trainEnd);
    const out = changeStats(x, 1, trainEnd);
    const z = [normalise(x, norm)];
    const train = forecastWindows(z, x, out, 3, 1, 0, trainEnd);
    const val = forecastWindows(z, x, out, 3, 1, trainEnd, 17_000);
    const ar = fitAr(train, val);
    expect(ar.p).toBe(3);
    const { coef, intercept } = arTargetCoefficients(ar, norm, out);
    console.log(
      `AR(3) fit: coefficients ${coef.map((c) => c.toFixed(4)).join(', ')} (true 0.5, -0.3, 0.2), intercept ${intercept.toFixed(3)} (true 2), ridge ${ar.lambda}`,
    );
    coef.forEach((c, i) => expect(Math.abs(c - a[i]!)).toBeLessThan(0.02));
    // Mean 2 / (1 − Σa) = 3.33: the intercept is within the noise of that too.
    expect(Math.abs(intercept - 2)).toBeLessThan(0.1);
  });
});

describe('train reports AR(p) and the naive baselines, and ships AR(p) like any model', () => {
  it('same test windows; ar/ goes through export, streamify, bundle and the daemon pipeline', async () => {
    const small = join(tmp, 'co2.csv');
    await writeFile(small, (await readFile(CO2, 'utf8')).split('\n').slice(0, 801).join('\n') + '\n');
    const outDir = join(tmp, 'co2');
    const { report } = await trainModel({ data: small, target: 'co2', window: 16, arch: 'gru:4', epochs: 1, season: 52, outDir, seed: 2 });
    expect(report.baselines.map((b) => b.kind)).toEqual(['last-value', 'seasonal-naive', 'ar']);
    const ar = report.baselines[2]!;
    expect(ar).toMatchObject({ name: 'AR(16)', p: 16, parameters: 17 });
    expect(ar.test.n).toBe(report.test.n);
    expect(report.baselines[0]!.test.rmse).toBe(report.baseline.rmse);
    expect(ar.modelJson).toBe(join(outDir, 'ar', 'model.json'));
    const saved = JSON.parse(await readFile(join(outDir, 'training-report.json'), 'utf8'));
    expect(saved.baselines).toHaveLength(3);

    // Export (parity against the float64 reference), streamify (step vs sequence), bundle.
    const seq = join(tmp, 'ar.onnx');
    const step = join(tmp, 'ar.step.onnx');
    expect(runCli(['export', join(outDir, 'ar'), '-o', seq]).status).toBe(0);
    const s = runCli(['streamify', seq, '-o', step, '--json']);
    expect(s.status, s.stderr).toBe(0);
    const info = readModelInfo(new Uint8Array(await readFile(step)));
    expect(info.states.map((x) => `${x.name}[${x.shape.join(',')}]`)).toContain('ar_lags.buf[1,15]');
    // The step model, streamed over the CSV, equals the sequence model on the window ending at each row.
    const rows = (await readFile(small, 'utf8')).trim().split('\n');
    const col = rows[0]!.split(',').indexOf('co2');
    const pre = JSON.parse(await readFile(join(outDir, 'ar', 'preprocessing.json'), 'utf8'));
    // The daemon skips readings with a gap (its default policy): stream the same finite rows.
    const values = rows
      .slice(1)
      .map((r) => r.split(',')[col]!.trim())
      .filter((cell) => cell !== '' && cell !== 'NA')
      .map(Number);
    const { mean, std } = pre.normalization.co2;
    const zs = values.map((v) => (v - mean) / std);
    const T = 120;
    const deltas: number[] = [];
    const pool = await StreamPool.create(new Uint8Array(await readFile(step)), { backend: 'onnxruntime-node' });
    const { backend } = await resolveBackend(['onnxruntime-node']);
    const session = await backend.createSession(new Uint8Array(await readFile(seq)));
    try {
      let worst = 0;
      for (let t = 0; t < T; t++) {
        const p = await pool.push('s', [zs[t]!]);
        deltas.push(p.outputs.delta![0]!);
        const win = Float32Array.from(zs.slice(Math.max(0, t - 15), t + 1));
        const r = await session.run({ [info.sampleInputs[0]!.name]: { type: 'float32', data: win, dims: [1, win.length, 1] } });
        worst = Math.max(worst, Math.abs(p.outputs.delta![0]! - (r.delta!.data as Float32Array)[0]!));
      }
      console.log(`AR(16) step model vs its sequence form over ${T} rows: max abs diff ${worst.toExponential(2)}`);
      expect(worst).toBeLessThanOrEqual(1e-5);
    } finally {
      await pool.close();
      await session.release();
    }
    // The daemon's pipeline runs the bundle (streaming path, one step per reading): its forecasts are the step model's.
    const bundle = join(tmp, 'ar.bundle');
    expect(runCli(['bundle', '--model', join(outDir, 'ar'), '-o', bundle]).status).toBe(0);
    const out = join(tmp, 'ar.jsonl');
    // --float: the bundle's default step model may be its int8 one (chosen by speed here).
    const run = runCli(['run', bundle, '--input', small, '-o', out, '--no-fast', '--float']);
    expect(run.status, run.stderr).toBe(0);
    const recs = (await readFile(out, 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { forecast: number; input: number[] });
    expect(recs).toHaveLength(values.length);
    const o = pre.output as { mean: number; std: number };
    // float32 step outputs scaled by the change's std and added to values of ~330 ppm: 1e-4 ppm covers it.
    for (let t = 0; t < T; t++) expect(Math.abs(recs[t]!.forecast - (values[t]! + o.mean + o.std * deltas[t]!))).toBeLessThan(1e-4);
  }, 120_000);
});
