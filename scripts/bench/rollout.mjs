#!/usr/bin/env node
/**
 * Autoregressive rollout (`npm run bench`): what `pool.forecastMany(ids, K)` costs per stream
 * against K ordinary batched steps (`pushMany` of the same S streams, K times) on the same
 * pool, and against `pool.forecast` of one stream at a time. Interleaved rounds; each ratio
 * is the median of the per-round ratios.
 *
 * A rollout runs K − 1 steps (its first value is the stream's last prediction) plus the state
 * copy and the feedback (preprocessing) in JavaScript, so the expected ratio is (K − 1) / K
 * plus that overhead, which `forecastMany(ids, 1)` (no step at all) measures alone. A model without forecasting preprocessing (the bench's LSTM-64: 8
 * inputs, 1 output) is rolled out with a synthetic one passed as `opts.preprocessing`: target
 * channel 0 as a delta output, the other channels held at their last value.
 *
 *   node --expose-gc scripts/bench/rollout.mjs [--quick] --model step.onnx
 */
import { readFile } from 'node:fs/promises';
import { pathToFileURL } from 'node:url';
import { readPreprocessing } from '../../dist/model-format/preprocessing.js';
import { StreamPool } from '../../dist/runtime/pool.js';
import { readModelInfo } from '../../dist/runtime/step-model.js';

const median = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];

/** ms of `fn` run `reps` times. */
async function timed(fn, reps) {
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) await fn();
  return performance.now() - t0;
}

export async function run({ quick = false, model } = {}) {
  const bytes = model ?? (await readFile(process.argv[process.argv.indexOf('--model') + 1]));
  const info = readModelInfo(bytes);
  const pool = await StreamPool.create(bytes, { backend: 'onnxruntime-node' });
  const C = pool.sampleSize;
  const outName = info.predictionOutputs[0].name;
  const channels = Array.from({ length: C }, (_, i) => `c${i}`);
  const own = readPreprocessing(info.metadata, 'bench model');
  const pre = own ?? {
    task: 'forecast',
    channels,
    window: 1,
    target: 'c0',
    output: { kind: 'delta', mean: 0, std: 0.1 },
    normalization: Object.fromEntries(channels.map((c) => [c, { mean: 0, std: 1 }])),
  };
  // Distinct samples per step (an LSTM kernel runs faster on constant inputs).
  const sample = (S, j) => Float32Array.from({ length: S * C }, (_, v) => Math.sin(0.3 * v + 0.7 * j));
  const first = await pool.pushMany(['probe'], sample(1, 0));
  const outSize = first.sizes[outName];
  const hold = outSize === 1 ? pre.channels.filter((c) => c !== (pre.target ?? pre.channels[0])) : [];
  const opts = { hold, preprocessing: pre };

  const rounds = quick ? 3 : 7;
  const rows = [];
  for (const S of [1, 64, 256]) {
    const ids = Array.from({ length: S }, (_, i) => `s${S}-${i}`);
    for (const K of [16, 64]) {
      const xs = Array.from({ length: K }, (_, j) => sample(S, j));
      // Each timing covers at least ~8k stream-steps so it is well above the timer's noise.
      const reps = Math.max(1, Math.ceil((quick ? 2048 : 8192) / (S * K)));
      const rollout = async (k = K) => {
        const r = await pool.forecastMany(ids, k, opts);
        if (r.errors.size > 0) throw r.errors.values().next().value;
      };
      const steps = async () => {
        for (let j = 0; j < K; j++) await pool.pushMany(ids, xs[j]);
      };
      const oneByOne = async () => {
        for (const id of ids) await pool.forecast(id, K, opts);
      };
      await steps();
      const m = { rollout: [], steps: [], oneByOne: [], copy: [], ratio: [], gain: [] };
      // Round 0 warms up (JIT, the batch buffers at this size) and is not kept.
      for (let r = 0; r <= rounds; r++) {
        // Alternate which goes first, so a drift in the machine's speed does not favour one.
        const b0 = r % 2 ? await timed(steps, reps) : 0;
        const a = await timed(rollout, reps);
        const b = r % 2 ? b0 : await timed(steps, reps);
        const c = S > 1 ? await timed(oneByOne, reps) : a;
        // K = 1 runs no step (its value is the last prediction): the copy and the feedback alone.
        const d = await timed(() => rollout(1), reps * K);
        if (r === 0) continue;
        const perStream = (ms) => (ms * 1000) / (reps * S);
        m.rollout.push(perStream(a));
        m.steps.push(perStream(b));
        m.oneByOne.push(perStream(c));
        m.copy.push(perStream(d) / K);
        m.ratio.push(a / b);
        m.gain.push(c / a);
      }
      rows.push({
        streams: S,
        k: K,
        reps,
        rolloutUsPerStream: median(m.rollout),
        stepsUsPerStream: median(m.steps),
        oneByOneUsPerStream: median(m.oneByOne),
        copyUsPerStream: median(m.copy),
        ratio: median(m.ratio),
        expectedRatio: (K - 1) / K,
        batchingGain: median(m.gain),
      });
    }
  }
  await pool.close();

  const worst = Math.max(...rows.filter((r) => r.streams >= 64).map((r) => r.ratio));
  const json = {
    model: { inputs: C, outSize, preprocessing: own ? 'model metadata' : 'synthetic (delta target c0, rest held)' },
    rows,
    goals: { maxRatio: 1.1, streamsMin: 64, worstRatio: worst, met: worst <= 1.1 },
  };
  const us = (v) => `${v.toFixed(v < 10 ? 2 : 1)} µs`;
  const lines = [
    `Rollout (forecastMany, ${C} inputs, ${outSize} output${outSize === 1 ? ', the other channels held' : ''}; µs per stream, medians of ${rounds} interleaved rounds):`,
    '  streams  K   forecastMany  K×pushMany  ratio (K−1)/K  copy (K=1)  forecast ×S one at a time',
    ...rows.map(
      (r) =>
        `  ${String(r.streams).padStart(7)}  ${String(r.k).padEnd(2)}  ${us(r.rolloutUsPerStream).padStart(12)}  ${us(r.stepsUsPerStream).padStart(10)}  ${r.ratio.toFixed(2).padStart(5)}  ${r.expectedRatio.toFixed(2).padStart(7)}  ${us(r.copyUsPerStream).padStart(10)}  ${r.streams > 1 ? `${us(r.oneByOneUsPerStream)} (${r.batchingGain.toFixed(1)}× forecastMany)` : '–'}`,
    ),
    `  worst ratio at 64+ streams ${worst.toFixed(2)}× (goal ≤ 1.1×: ${worst <= 1.1 ? 'OK' : 'MISSED'})`,
  ];
  return { json, lines };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { lines } = await run({ quick: process.argv.includes('--quick') });
  console.log(lines.join('\n'));
}
