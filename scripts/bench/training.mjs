#!/usr/bin/env node
/**
 * Training speed: the fixed CO2 task of `trainBenchmark` (LSTM-32, window 52, 1,546 training
 * windows, seed 42, no early stopping) on tfjs' cpu backend at batch 32 (the old default and the
 * issue's baseline) against the fast path `streamcell train` now takes by default (tfjs-node when
 * it loads, else the WebAssembly backend) at the default batch size, plus the wasm backend at
 * batch 32 to split the gain into backend and batch size. All in one process, the variants
 * interleaved run by run (rounds × variants, every other round reversed), so the ratios share
 * this machine's load.
 *
 *   node --expose-gc scripts/bench/training.mjs [--quick]
 */
import { pathToFileURL } from 'node:url';
import { DEFAULT_BATCH_SIZE, trainBenchmark } from '../../dist/train/train.js';

const GOAL = 5;

export async function run({ quick = false } = {}) {
  const rounds = quick ? 1 : 2;
  const variants = [
    { key: 'cpu_b32', backend: 'cpu', batchSize: 32 },
    { key: 'fast', backend: 'auto', batchSize: DEFAULT_BATCH_SIZE },
    { key: 'wasm_b32', backend: 'wasm', batchSize: 32 },
  ];
  const acc = Object.fromEntries(variants.map((v) => [v.key, { windows: 0, seconds: 0, epochSeconds: [], runs: [] }]));
  // Each round trains every variant for 2 epochs from scratch (the first epoch includes the
  // backend's warm-up, as a user's run does); windows/s = windows trained / epoch seconds.
  for (let r = 0; r < rounds; r++) {
    // Odd rounds run the variants in reverse order, so a drift in this machine's load hits all alike.
    for (const v of r % 2 ? [...variants].reverse() : variants) {
      globalThis.gc?.();
      let b;
      try {
        b = await trainBenchmark({ epochs: 2, backend: v.backend, batchSize: v.batchSize });
      } catch (e) {
        acc[v.key].error = e.message;
        continue;
      }
      const a = acc[v.key];
      a.backend = b.backend;
      a.task = b.task;
      a.windows += b.trainWindows * b.epochs;
      a.seconds += b.epochSeconds.reduce((x, y) => x + y, 0);
      a.epochSeconds.push(...b.epochSeconds);
      a.runs.push({ testRmse: b.testRmse, lastValueRmse: b.lastValueRmse });
    }
  }
  const wps = (k) => (acc[k].seconds > 0 ? acc[k].windows / acc[k].seconds : NaN);
  const json = {
    task: 'forecast co2, LSTM-32, window 52, seed 42, 2 epochs per run, no early stopping',
    rounds,
    goalRatio: GOAL,
    variants: Object.fromEntries(
      variants.map((v) => [
        v.key,
        {
          backend: acc[v.key].backend,
          requested: v.backend,
          batchSize: v.batchSize,
          windowsPerSecond: wps(v.key),
          epochSeconds: acc[v.key].epochSeconds,
          testRmse: acc[v.key].runs[0]?.testRmse,
          ...(acc[v.key].error ? { error: acc[v.key].error } : {}),
        },
      ]),
    ),
    ratioFastVsCpu: wps('fast') / wps('cpu_b32'),
    ratioWasmB32VsCpu: wps('wasm_b32') / wps('cpu_b32'),
    ratioBatchOnFast: wps('fast') / wps('wasm_b32'),
  };
  json.meetsGoal = json.ratioFastVsCpu >= GOAL;
  const row = (k, label) =>
    `  ${label.padEnd(44)} ${acc[k].error ? `failed: ${acc[k].error}` : `${wps(k).toFixed(0).padStart(5)} windows/s  (${acc[k].epochSeconds.map((s) => s.toFixed(1)).join(', ')} s/epoch; test RMSE ${json.variants[k].testRmse?.toFixed(3)} ppm)`}`;
  const lines = [
    `training, CO2 LSTM-32 (1,546 windows of 52), ${rounds} round${rounds > 1 ? 's' : ''} × 2 epochs per variant, interleaved:`,
    row('cpu_b32', 'cpu backend, batch 32 (baseline)'),
    row('wasm_b32', `${acc.wasm_b32.backend ?? 'wasm'}, batch 32`.replace(/ \(@tensorflow\/tfjs-backend-wasm, /, ' (')),
    row('fast', `${acc.fast.backend ?? 'auto'}, batch ${DEFAULT_BATCH_SIZE} (default)`.replace(/ \(@tensorflow\/tfjs-backend-wasm, /, ' (')),
    `  backend alone ${json.ratioWasmB32VsCpu.toFixed(2)}×, batch ${DEFAULT_BATCH_SIZE} on top ${json.ratioBatchOnFast.toFixed(2)}×; default vs cpu/32: ${json.ratioFastVsCpu.toFixed(2)}× (goal ≥ ${GOAL}×: ${json.meetsGoal ? 'OK' : 'MISSED'})`,
  ];
  return { json, lines };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { lines } = await run({ quick: process.argv.includes('--quick') });
  console.log(lines.join('\n'));
}
