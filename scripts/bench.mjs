#!/usr/bin/env node
/**
 * `npm run bench`: streamcell's benchmarks. Prints a table and writes JSON
 * (default bench-results/bench.json). Compare ratios measured in the same run: these
 * machines are shared and noisy.
 *
 *   node --expose-gc scripts/bench.mjs [--out FILE] [--quick]
 */
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { cpus, tmpdir, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { exportToOnnx, loadTfjsArtifacts, resolveBackend, streamifyModel, VERSION } from '../dist/index.js';
import { loadTfjs } from '../dist/export/tfjs-backend.js';
import { benchModel, benchTable } from '../dist/cli/bench-model.js';
import { run as runFloor } from './bench/floor.mjs';
import { run as runRollout } from './bench/rollout.mjs';
import { run as runQuantized } from './bench/quantized.mjs';
import { run as runOffline } from './bench/offline-run.mjs';
import { run as runStartup } from './bench/startup.mjs';
import { run as runTraining } from './bench/training.mjs';
import { run as runDaemonLatency } from './bench/daemon-latency.mjs';
import { goalRows, goalsText } from './bench/summary.mjs';
import { saveTfjsModel } from './bench/save-model.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const arg = (name, dflt) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : dflt;
};
const quick = process.argv.includes('--quick');
const outFile = arg('--out', join(root, 'bench-results', 'bench.json'));

const { tf, backend: tfjsBackend } = await loadTfjs();
const { backend: ort, record } = await resolveBackend();
const tmp = await mkdtemp(join(tmpdir(), 'streamcell-bench-'));

function stats(samplesMs) {
  const s = [...samplesMs].sort((a, b) => a - b);
  const q = (p) => s[Math.min(s.length - 1, Math.floor(p * s.length))];
  return { n: s.length, p50: q(0.5), p99: q(0.99), mean: s.reduce((a, b) => a + b, 0) / s.length };
}

async function timeAsync(fn, n, warmup) {
  for (let i = 0; i < warmup; i++) await fn();
  const out = [];
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    await fn();
    out.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return stats(out);
}

const save = (model, dir) => saveTfjsModel(tf, model, dir);

const results = {
  version: VERSION,
  date: new Date().toISOString(),
  machine: { cpus: cpus().length, cpu: cpus()[0]?.model, memGiB: +(totalmem() / 2 ** 30).toFixed(1), node: process.version },
  tfjs: tfjsBackend,
  onnxruntime: `${record.name} ${record.version}`,
  benchmarks: {},
};

// 1. Export time of a ~1M-parameter stacked LSTM (load model.json + shards, convert, encode).
{
  const m = tf.sequential({
    layers: [
      tf.layers.lstm({ units: 256, returnSequences: true, inputShape: [null, 32], recurrentInitializer: 'glorotUniform' }),
      tf.layers.lstm({ units: 256, returnSequences: true, recurrentInitializer: 'glorotUniform' }),
      tf.layers.lstm({ units: 128, recurrentInitializer: 'glorotUniform' }),
      tf.layers.dense({ units: 8 }),
    ],
  });
  const params = m.countParams();
  const p = await save(m, join(tmp, 'big'));
  const runs = [];
  let size = 0;
  for (let i = 0; i < (quick ? 2 : 5); i++) {
    const t0 = performance.now();
    const art = await loadTfjsArtifacts(p);
    const r = await exportToOnnx(art);
    runs.push(performance.now() - t0);
    size = r.model.byteLength;
  }
  const s = stats(runs);
  results.benchmarks.export_1m_lstm = { params, onnxBytes: size, ms: s, goalMs: 3000, meetsGoal: s.p50 < 3000 };
  m.dispose();
}

// 2. onnxruntime vs tfjs predict on one 64-step window of a 2-layer LSTM-64.
{
  const T = 64;
  const F = 8;
  const m = tf.sequential({
    layers: [tf.layers.lstm({ units: 64, returnSequences: true, inputShape: [T, F] }), tf.layers.lstm({ units: 64 }), tf.layers.dense({ units: 1 })],
  });
  const p = await save(m, join(tmp, 'lstm64'));
  const { model } = await exportToOnnx(await loadTfjsArtifacts(p));
  const session = await ort.createSession(model);
  const x = new Float32Array(T * F).map(() => Math.random() * 2 - 1);
  const feeds = { [session.inputNames[0]]: { type: 'float32', data: x, dims: [1, T, F] } };
  const ortStats = await timeAsync(() => session.run(feeds), quick ? 100 : 500, 50);
  const xt = tf.tensor3d(x, [1, T, F]);
  const tfStats = await timeAsync(
    async () => {
      const y = m.predict(xt);
      await y.data();
      y.dispose();
    },
    quick ? 10 : 40,
    3,
  );
  await session.release();
  results.benchmarks.window64_lstm64x2 = {
    onnxruntime: ortStats,
    tfjs: tfStats,
    speedupP50: tfStats.p50 / ortStats.p50,
    goalSpeedup: 50,
    meetsGoal: tfStats.p50 / ortStats.p50 >= 50,
  };
  m.dispose();
}

// 3. Streaming: LSTM-64 step model in the StreamPool vs bare onnxruntime; throughput per stream
//    count; memory; window mode; tfjs predict on the same window.
{
  const m = tf.sequential({
    layers: [tf.layers.lstm({ units: 64, inputShape: [null, 8], recurrentInitializer: 'glorotUniform' }), tf.layers.dense({ units: 1 })],
  });
  const p = await save(m, join(tmp, 'lstm64-stream'));
  const { model } = await exportToOnnx(await loadTfjsArtifacts(p));
  const r = await benchModel(model, { streams: [1, 16, 256, 1024], steps: quick ? 500 : 2000, window: 64, tfjs: p, memoryStreams: quick ? 2000 : 10000 });
  results.benchmarks.streaming_lstm64 = {
    ...r,
    goals: {
      poolOverheadMax: 1.05,
      poolOverheadOk: r.step.latency.ratioPaired <= 1.05,
      manyVsBareMin: 0.95,
      manyVsBareOk: r.step.throughput.filter((t) => t.streams >= 256).every((t) => t.manyVsBare >= 0.95),
    },
  };
  results.streamingTable = benchTable(r);
  // Where one step's time goes, and beyond one thread (scripts/bench/floor.mjs).
  const { model: step } = await streamifyModel(model);
  const floor = await runFloor({ quick, model: step });
  results.benchmarks.floor = floor.json;
  results.floorLines = floor.lines;
  // Autoregressive rollout vs K batched steps on the same step model (scripts/bench/rollout.mjs).
  const rollout = await runRollout({ quick, model: step });
  results.benchmarks.rollout = rollout.json;
  results.rolloutLines = rollout.lines;
  m.dispose();
}

// 4. Quantized step models: float vs int8 (both kernels) vs fp16 per step (scripts/bench/quantized.mjs).
const quantized = await runQuantized({ quick });
results.benchmarks.quantized_step = quantized.json;

// 5. Daemon end to end over a real pty: 1 kHz tail vs a bare serialport reader, stage breakdown,
//    64-stream backlog (scripts/bench/daemon-latency.mjs).
const daemon = await runDaemonLatency({ quick });
results.benchmarks.daemon_e2e = daemon.json;

// 5b. Offline `run`: the fast path (chunked step model) vs the streaming path (scripts/bench/offline-run.mjs).
const offline = await runOffline({ quick });
results.benchmarks.offline_run = offline.json;

// 5c. Start-up: --version, inspect, daemon start to first prediction (scripts/bench/startup.mjs).
const startup = await runStartup({ quick });
results.benchmarks.startup = startup.json;

// 6. Training speed: cpu vs the WebAssembly backend and the default batch, same run (scripts/bench/training.mjs).
const training = await runTraining({ quick });
results.benchmarks.training = training.json;

// --- report ---
const fmt = (ms) => (ms < 1 ? `${(ms * 1000).toFixed(1)} µs` : `${ms.toFixed(2)} ms`);
const rows = [
  ['benchmark', 'p50', 'p99', 'goal', 'result'],
  [
    'export ~1M-param stacked LSTM (load+convert)',
    fmt(results.benchmarks.export_1m_lstm.ms.p50),
    fmt(results.benchmarks.export_1m_lstm.ms.p99),
    '< 3 s',
    results.benchmarks.export_1m_lstm.meetsGoal ? 'OK' : 'MISSED',
  ],
  [
    '2×LSTM-64, 64-step window: onnxruntime',
    fmt(results.benchmarks.window64_lstm64x2.onnxruntime.p50),
    fmt(results.benchmarks.window64_lstm64x2.onnxruntime.p99),
    '',
    '',
  ],
  [
    `2×LSTM-64, 64-step window: tfjs ${tfjsBackend}`,
    fmt(results.benchmarks.window64_lstm64x2.tfjs.p50),
    fmt(results.benchmarks.window64_lstm64x2.tfjs.p99),
    '',
    '',
  ],
  [
    '  speed-up onnxruntime vs tfjs (p50)',
    `${results.benchmarks.window64_lstm64x2.speedupP50.toFixed(1)}×`,
    '',
    '≥ 50×',
    results.benchmarks.window64_lstm64x2.meetsGoal ? 'OK' : 'MISSED',
  ],
];
const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => String(r[c]).length)));
console.log(
  `streamcell ${VERSION} benchmarks — ${results.machine.cpus}× ${results.machine.cpu}, node ${process.version}, ${results.onnxruntime}, tfjs ${tfjsBackend}`,
);
for (const [i, r] of rows.entries()) {
  console.log(r.map((v, c) => String(v).padEnd(widths[c])).join('  '));
  if (i === 0) console.log(widths.map((w) => '-'.repeat(w)).join('  '));
}
console.log(`(${results.benchmarks.export_1m_lstm.params} parameters, ${(results.benchmarks.export_1m_lstm.onnxBytes / 2 ** 20).toFixed(2)} MiB ONNX)`);
console.log('');
console.log(quantized.lines.join('\n'));
console.log('');
console.log(daemon.lines.join('\n'));
console.log('');
console.log(offline.lines.join('\n'));
console.log('');
console.log(startup.lines.join('\n'));
console.log('');
console.log(training.lines.join('\n'));
console.log('\nStreaming, LSTM-64 (8 inputs) step model:');
console.log(results.streamingTable);
delete results.streamingTable;
console.log('');
console.log(results.floorLines.join('\n'));
delete results.floorLines;
console.log('');
console.log(results.rolloutLines.join('\n'));
delete results.rolloutLines;
results.goals = goalRows(results).map(([goal, measured, reference, result]) => ({ goal, measured, reference, result }));
console.log('\nGoals (same run; README: node scripts/bench/summary.mjs --readme):');
console.log(goalsText(results));
await mkdir(dirname(outFile), { recursive: true });
await writeFile(outFile, JSON.stringify(results, null, 2) + '\n');
console.log(`JSON: ${outFile}`);
