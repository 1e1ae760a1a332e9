/**
 * The logistic baseline for classifiers (src/train/logistic.ts): a separable task is learnt,
 * classes that differ only in spread (invisible to a linear model on raw samples) are told apart
 * by the summary features, the same data gives the same weights, and on the shipped IMU
 * recording it beats the majority class within the time budget.
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { classifyScore } from '../src/data/metrics.js';
import { rng } from '../src/data/random.js';
import { classifyWindows, loadTrainingData, normalise, splitBounds, stats, type Windows } from '../src/train/data.js';
import { fitLogistic } from '../src/train/logistic.js';

const IMU = join(fileURLToPath(new URL('..', import.meta.url)), 'models', 'imu-activity', 'data.csv');

/** n windows of W × C samples; class i % classes; each sample drawn by `sample(class, random)`. */
function synthetic(n: number, W: number, C: number, classes: number, seed: number, sample: (k: number, r: () => number) => number): Windows {
  const r = rng(seed);
  const x = new Float32Array(n * W * C);
  const y = new Float32Array(n * classes);
  for (let i = 0; i < n; i++) {
    const k = i % classes;
    y[i * classes + k] = 1;
    for (let j = 0; j < W * C; j++) x[i * W * C + j] = sample(k, r);
  }
  return { x, y, n, window: W, channels: C, outputs: classes, positions: Int32Array.from({ length: n }, (_, i) => i) };
}

const truthOf = (w: Windows) => Int32Array.from({ length: w.n }, (_, i) => Array.from(w.y.subarray(i * w.outputs, (i + 1) * w.outputs)).indexOf(1));
const accuracy = (w: Windows, p: Int32Array) => classifyScore(p, truthOf(w), w.outputs).accuracy;
const gauss = (r: () => number) => Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());

describe('fitLogistic', () => {
  it('learns a separable task (class = level of the window) to 100%', () => {
    const level = (k: number, r: () => number) => (k - 1) * 2 + 0.3 * gauss(r);
    const m = fitLogistic(synthetic(300, 16, 2, 3, 1, level), synthetic(90, 16, 2, 3, 2, level));
    const test = synthetic(300, 16, 2, 3, 3, level);
    expect(accuracy(test, m.predict(test))).toBe(1);
    expect(m.parameters).toBe(3 * (5 * 2 + 1));
  });

  it('tells apart zero-mean classes that differ only in spread, where the majority class gets a third', () => {
    // Symmetric noise of spread 0.2, 1 or 3: no linear function of the raw samples separates these.
    const spread = (k: number, r: () => number) => [0.2, 1, 3][k]! * gauss(r);
    const m = fitLogistic(synthetic(300, 32, 1, 3, 4, spread), synthetic(90, 32, 1, 3, 5, spread));
    const test = synthetic(300, 32, 1, 3, 6, spread);
    const acc = accuracy(test, m.predict(test));
    console.log(`spread task: logistic accuracy ${acc.toFixed(3)}, majority 0.333, λ ${m.lambda}`);
    expect(acc).toBeGreaterThan(0.95);
  });

  it('is deterministic: the same windows give the same weights and λ', () => {
    const noisy = (k: number, r: () => number) => k * 0.5 + gauss(r);
    const tr = synthetic(200, 8, 3, 2, 7, noisy);
    const va = synthetic(60, 8, 3, 2, 8, noisy);
    const a = fitLogistic(tr, va);
    const b = fitLogistic(tr, va);
    expect(Array.from(b.weights)).toEqual(Array.from(a.weights));
    expect(b.lambda).toBe(a.lambda);
    expect(a.weights.some((v) => v !== 0)).toBe(true);
  });

  it('beats the majority class on the shipped IMU recording, fitted in well under 5 s', async () => {
    const classes = ['still', 'walk', 'run'];
    const data = await loadTrainingData(IMU, { task: 'classify', channels: ['ax', 'ay', 'az'], label: 'activity' });
    const rows = data.series[0]!.length;
    const { trainEnd, valEnd } = splitBounds(rows, [0.7, 0.15]);
    const z = data.series.map((v) => normalise(v, stats(v, 0, trainEnd)));
    const labels = Int32Array.from(data.labels!, (l) => classes.indexOf(l));
    const win = (from: number, to: number) => classifyWindows(z, labels, 3, 32, from, to, 16);
    const [train, val, test] = [win(0, trainEnd), win(trainEnd, valEnd), win(valEnd, rows)];
    const t0 = performance.now();
    const m = fitLogistic(train, val);
    const seconds = (performance.now() - t0) / 1000;
    const counts = [0, 0, 0];
    for (const t of truthOf(train)) counts[t]!++;
    const majority = truthOf(test).filter((t) => t === counts.indexOf(Math.max(...counts))).length / test.n;
    const acc = accuracy(test, m.predict(test));
    const us = m.latencyUs(test);
    console.log(
      `IMU: logistic test accuracy ${acc.toFixed(4)} (majority ${majority.toFixed(4)}), λ ${m.lambda}, ${m.parameters} parameters, fit ${seconds.toFixed(2)} s, ${us.toFixed(1)} µs per window`,
    );
    expect(acc).toBeGreaterThan(majority + 0.3);
    expect(seconds).toBeLessThan(5);
    expect(us).toBeGreaterThan(0);
  });
});
