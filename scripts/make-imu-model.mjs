#!/usr/bin/env node
/**
 * Rebuilds models/imu-activity/: a synthetic 3-axis accelerometer recording (still / walk /
 * run segments, seeded) and a small LSTM classifier trained on it with tfjs (cpu backend,
 * fixed seeds, no shuffling). Used as the multi-channel classification example and by the
 * quantization tests.
 *
 *   node scripts/make-imu-model.mjs [--epochs 10] [--units 64] [--layers 2]
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const arg = (name, dflt) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : dflt;
};
const EPOCHS = Number(arg('--epochs', 10));
const UNITS = Number(arg('--units', 64));
const LAYERS = Number(arg('--layers', 2));
const out = join(root, 'models', 'imu-activity');
const WINDOW = 32;
const HZ = 50;
const CLASSES = ['still', 'walk', 'run'];

let seed = 20261128;
const rand = () => (seed = (seed * 1664525 + 1013904223) >>> 0) / 4294967296;
const gauss = () => Math.sqrt(-2 * Math.log(rand() + 1e-12)) * Math.cos(2 * Math.PI * rand());

// Segments of 3–8 s; each class has its own cadence, amplitude and axis mix.
const rows = [];
const spec = { still: { f: 0, a: 0.02 }, walk: { f: 1.8, a: 0.35 }, run: { f: 2.8, a: 0.9 } };
let t = 0;
while (rows.length < 12000) {
  const label = CLASSES[Math.floor(rand() * CLASSES.length)];
  const { f, a } = spec[label];
  const len = Math.floor((3 + rand() * 5) * HZ);
  const phase = rand() * 2 * Math.PI;
  const fj = f * (0.85 + 0.3 * rand());
  for (let i = 0; i < len; i++, t++) {
    const w = 2 * Math.PI * fj * (i / HZ) + phase;
    const ax = a * Math.sin(w) + 0.05 * gauss();
    const ay = 0.6 * a * Math.sin(2 * w + 0.5) + 0.05 * gauss();
    const az = 1 + a * 0.8 * Math.abs(Math.sin(w)) + 0.05 * gauss();
    rows.push([(t / HZ).toFixed(2), ax.toFixed(4), ay.toFixed(4), az.toFixed(4), label]);
  }
}
await mkdir(out, { recursive: true });
await writeFile(join(out, 'data.csv'), 'time,ax,ay,az,activity\n' + rows.map((r) => r.join(',')).join('\n') + '\n');

const warn = console.warn;
console.warn = () => {};
const tf = await import('@tensorflow/tfjs');
await tf.setBackend('cpu');
tf.tensor([0]).dispose();
console.warn = warn;

const channels = ['ax', 'ay', 'az'];
const n = rows.length;
const trainEnd = Math.floor(n * 0.7);
const cols = channels.map((_, c) => rows.map((r) => Number(r[c + 1])));
const normalization = {};
channels.forEach((name, c) => {
  const v = cols[c].slice(0, trainEnd);
  const mean = v.reduce((a, b) => a + b, 0) / v.length;
  const std = Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / v.length) || 1;
  normalization[name] = { mean, std };
});
const norm = cols.map((v, c) => v.map((x) => (x - normalization[channels[c]].mean) / normalization[channels[c]].std));
function windows(from, to) {
  const xs = [];
  const ys = [];
  for (let e = from + WINDOW; e <= to; e += WINDOW / 2) {
    xs.push(Array.from({ length: WINDOW }, (_, k) => channels.map((_, c) => norm[c][e - WINDOW + k])));
    ys.push(CLASSES.indexOf(rows[e - 1][4]));
  }
  return { x: tf.tensor3d(xs), y: tf.oneHot(tf.tensor1d(ys, 'int32'), CLASSES.length), labels: ys };
}
const tr = windows(0, trainEnd);
const te = windows(trainEnd, n);
const model = tf.sequential({
  name: 'imu_activity',
  layers: [
    ...Array.from({ length: LAYERS }, (_, l) =>
      tf.layers.lstm({
        units: UNITS,
        returnSequences: l < LAYERS - 1,
        name: l === 0 ? 'lstm' : `lstm_${l + 1}`,
        ...(l === 0 ? { inputShape: [null, 3] } : {}),
        kernelInitializer: tf.initializers.glorotUniform({ seed: 1 + 10 * l }),
        recurrentInitializer: tf.initializers.glorotUniform({ seed: 2 + 10 * l }),
      }),
    ),
    tf.layers.dense({ units: CLASSES.length, activation: 'softmax', name: 'activity', kernelInitializer: tf.initializers.glorotUniform({ seed: 3 }) }),
  ],
});
model.compile({ optimizer: tf.train.adam(0.005), loss: 'categoricalCrossentropy', metrics: ['accuracy'] });
const t0 = Date.now();
await model.fit(tr.x, tr.y, { epochs: EPOCHS, batchSize: 32, shuffle: false, verbose: 0 });
const seconds = (Date.now() - t0) / 1000;
const pred = model.predict(te.x).argMax(-1).dataSync();
const acc = pred.reduce((a, p, i) => a + (p === te.labels[i] ? 1 : 0), 0) / te.labels.length;
const counts = CLASSES.map((_, c) => te.labels.filter((l) => l === c).length);
const majority = Math.max(...counts) / te.labels.length;

await model.save(
  tf.io.withSaveHandler(async (a) => {
    await writeFile(join(out, 'weights.bin'), new Uint8Array(a.weightData));
    await writeFile(
      join(out, 'model.json'),
      JSON.stringify(
        {
          format: 'layers-model',
          generatedBy: `TensorFlow.js tfjs-layers v${tf.version_layers}`,
          convertedBy: null,
          modelTopology: a.modelTopology,
          weightsManifest: [{ paths: ['weights.bin'], weights: a.weightSpecs }],
        },
        null,
        1,
      ),
    );
    return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
  }),
);
const preprocessing = {
  task: 'classify',
  channels,
  window: WINDOW,
  label: 'activity',
  classes: CLASSES,
  normalization,
  sample_rate: HZ,
  data: { file: 'models/imu-activity/data.csv', rows: n, split: [trainEnd, n] },
  metrics: { test_accuracy: acc, majority_class_accuracy: majority, epochs: EPOCHS, train_seconds: seconds, backend: tf.getBackend() },
};
await writeFile(join(out, 'preprocessing.json'), JSON.stringify(preprocessing, null, 2) + '\n');
console.log(`models/imu-activity: ${LAYERS}×LSTM-${UNITS}, ${n} rows, ${tr.labels.length} training windows, ${EPOCHS} epochs in ${seconds.toFixed(1)} s`);
console.log(`test accuracy ${acc.toFixed(3)} vs majority class ${majority.toFixed(3)}`);
