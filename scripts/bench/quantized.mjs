#!/usr/bin/env node
/**
 * Quantized step models: per-step latency of float, int8 and fp16 for LSTM-64 and GRU-64 step
 * models (8 inputs, batch 1), measured in interleaved rounds in the same process so that load
 * from other processes hits every variant alike. Goals: int8 ≤ 1.0× float, fp16 ≤ 1.05× float.
 *
 *   node --expose-gc scripts/bench/quantized.mjs [--quick]
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { exportToOnnx, loadTfjsArtifacts, resolveBackend, streamifyModel } from '../../dist/index.js';
import { quantizeModel } from '../../dist/export/quantize/index.js';
import { loadTfjs } from '../../dist/export/tfjs-backend.js';
import { saveTfjsModel } from './save-model.mjs';

const INT8_GOAL = 1.0;
const FP16_GOAL = 1.05;
/**
 * Two sessions of the same graph differ by a few percent in the same run on a shared machine
 * (the `float_again` A/A ratio below shows how much): a ratio within this of the goal is OK.
 */
const NOISE = 0.03;

const save = saveTfjsModel;

const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];

/** p50 of `n` runs, ms. */
async function p50(fn, n) {
  const t = [];
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    await fn();
    t.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return median(t);
}

export async function run({ quick = false } = {}) {
  const { tf } = await loadTfjs();
  const { backend: ort, record } = await resolveBackend();
  const tmp = await mkdtemp(join(tmpdir(), 'streamcell-bench-quant-'));
  const json = {
    onnxruntime: `${record.name} ${record.version}`,
    cpu: cpus()[0]?.model,
    goals: { int8VsFloat: INT8_GOAL, fp16VsFloat: FP16_GOAL, noise: NOISE },
    models: {},
  };
  const lines = ['Quantized step models, per step (batch 1, 8 inputs; p50, interleaved rounds, same run):'];
  try {
    for (const kind of ['lstm', 'gru']) {
      const m = tf.sequential({
        layers: [tf.layers[kind]({ units: 64, inputShape: [null, 8], recurrentInitializer: 'glorotUniform' }), tf.layers.dense({ units: 1 })],
      });
      const p = await save(tf, m, join(tmp, `${kind}64`));
      m.dispose();
      const { model: seq } = await exportToOnnx(await loadTfjsArtifacts(p));
      const { model: step } = await streamifyModel(seq);
      const variants = {
        float: step,
        float_again: step,
        int8: (await quantizeModel(step, { mode: 'int8' })).model,
        int8_float_kernels: (await quantizeModel(step, { mode: 'int8', kernels: 'float' })).model,
        fp16: (await quantizeModel(step, { mode: 'fp16' })).model,
      };
      const sessions = {};
      const feeds = {};
      for (const [name, bytes] of Object.entries(variants)) {
        const s = await ort.createSession(bytes);
        sessions[name] = s;
        const f = {};
        for (const input of s.inputNames) {
          const state = input.startsWith('state_in.');
          f[input] = { type: 'float32', data: new Float32Array(state ? 64 : 8).fill(0.1), dims: state ? [1, 64] : [1, 1, 8] };
        }
        feeds[name] = f;
      }
      const names = Object.keys(variants);
      for (const name of names) for (let i = 0; i < 200; i++) await sessions[name].run(feeds[name]);
      const samples = Object.fromEntries(names.map((k) => [k, []]));
      const rounds = quick ? 8 : 30;
      for (let round = 0; round < rounds; round++) {
        // Rotate the order every round: no variant always runs right after another.
        const order = names.map((_, i) => names[(i + round) % names.length]);
        for (const name of order) {
          for (let i = 0; i < 10; i++) await sessions[name].run(feeds[name]);
          samples[name].push(await p50(() => sessions[name].run(feeds[name]), 100));
        }
      }
      for (const s of Object.values(sessions)) await s.release();
      const r = Object.fromEntries(names.map((k) => [k, { p50Us: +(median(samples[k]) * 1e3).toFixed(2), bytes: variants[k].byteLength }]));
      // Ratio per round (both numbers measured back to back), then the median of the ratios.
      const ratio = (k) => median(samples[k].map((v, i) => v / samples.float[i]));
      r.int8VsFloat = +ratio('int8').toFixed(3);
      r.int8FloatKernelsVsFloat = +ratio('int8_float_kernels').toFixed(3);
      r.floatAgainVsFloat = +ratio('float_again').toFixed(3);
      r.fp16VsFloat = +ratio('fp16').toFixed(3);
      // The goal is for the int8 model streamcell would serve: the faster of its two kernels.
      r.int8Ok = Math.min(r.int8VsFloat, r.int8FloatKernelsVsFloat) <= INT8_GOAL + NOISE;
      r.fp16Ok = r.fp16VsFloat <= FP16_GOAL;
      json.models[kind] = r;
      const ok = (b) => (b ? 'OK' : 'MISSED');
      lines.push(
        `  ${kind.toUpperCase()}-64: float ${r.float.p50Us} µs (${(r.float.bytes / 1024).toFixed(1)} KiB), ` +
          `int8 integer kernels ${r.int8.p50Us} µs (${(r.int8.bytes / 1024).toFixed(1)} KiB) ${r.int8VsFloat.toFixed(2)}×, ` +
          `int8 float kernels ${r.int8_float_kernels.p50Us} µs (${(r.int8_float_kernels.bytes / 1024).toFixed(1)} KiB) ${r.int8FloatKernelsVsFloat.toFixed(2)}× float [goal: faster int8 ≤ ${INT8_GOAL.toFixed(2)}× ±${NOISE * 100}%: ${ok(r.int8Ok)}], ` +
          `fp16 ${r.fp16.p50Us} µs (${(r.fp16.bytes / 1024).toFixed(1)} KiB) ${r.fp16VsFloat.toFixed(2)}× float [goal ≤ ${FP16_GOAL.toFixed(2)}×: ${ok(r.fp16Ok)}]; A/A float vs float ${r.floatAgainVsFloat.toFixed(2)}×`,
      );
    }
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  return { json, lines };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { json, lines } = await run({ quick: process.argv.includes('--quick') });
  console.log(lines.join('\n'));
  if (process.argv.includes('--json')) console.log(JSON.stringify(json, null, 2));
}
