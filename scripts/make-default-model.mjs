#!/usr/bin/env node
/**
 * Rebuilds the shipped default model, models/co2-lstm/: a small LSTM that forecasts next
 * week's CO2 at Mauna Loa from the previous 52 weeks (models/co2-weekly-mauna-loa.csv, public
 * domain, NOAA GML). Deterministic: fixed seeds, no shuffling, tfjs cpu backend.
 *
 *   node scripts/make-default-model.mjs [--epochs 15] [--units 16] [--out models/co2-lstm]
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const WINDOW = 52;
const SEED = 42;
const arg = (name, dflt) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : dflt;
};
const EPOCHS = Number(arg('--epochs', 15));
const UNITS = Number(arg('--units', 16));
const out = join(root, arg('--out', join('models', 'co2-lstm')));

const warn = console.warn;
console.warn = () => {};
const tf = await import('@tensorflow/tfjs');
await tf.setBackend('cpu');
tf.tensor([0]).dispose();
console.warn = warn;

// --- data: weekly series with gaps; linear interpolation over the gaps, counted ---
const text = await readFile(join(root, 'models', 'co2-weekly-mauna-loa.csv'), 'utf8');
const rows = text
  .trim()
  .split('\n')
  .slice(1)
  .map((l) => l.split(','));
const raw = rows.map(([, v]) => (v === undefined || v.trim() === '' ? NaN : Number(v)));
let gaps = 0;
const series = raw.slice();
for (let i = 0; i < series.length; i++) {
  if (!Number.isNaN(series[i])) continue;
  gaps++;
  let j = i;
  while (j < series.length && Number.isNaN(series[j])) j++;
  const left = series[i - 1] ?? series[j];
  const right = series[j] ?? left;
  for (let k = i; k < j; k++) series[k] = left + ((right - left) * (k - i + 1)) / (j - i + 1);
}

// chronological split 70/15/15; normalisation from the training part only
const n = series.length;
const trainEnd = Math.floor(n * 0.7);
const valEnd = Math.floor(n * 0.85);
const train = series.slice(0, trainEnd);
const mean = train.reduce((a, b) => a + b, 0) / train.length;
const std = Math.sqrt(train.reduce((a, b) => a + (b - mean) ** 2, 0) / train.length);
const norm = series.map((v) => (v - mean) / std);
// Week-over-week changes are ~1/50 of the level's spread: give the target its own scale.
const deltas = train.slice(1).map((v, i) => v - train[i]);
const dMean = deltas.reduce((a, b) => a + b, 0) / deltas.length;
const dStd = Math.sqrt(deltas.reduce((a, b) => a + (b - dMean) ** 2, 0) / deltas.length);

function windows(from, to) {
  const xs = [];
  const ys = [];
  for (let t = Math.max(from, WINDOW); t < to; t++) {
    xs.push(norm.slice(t - WINDOW, t).map((v) => [v]));
    ys.push([(series[t] - series[t - 1] - dMean) / dStd]);
  }
  return { x: tf.tensor3d(xs), y: tf.tensor2d(ys), n: ys.length };
}
const tr = windows(0, trainEnd);
const va = windows(trainEnd, valEnd);
const te = windows(valEnd, n);

// The model predicts the standardised week-over-week change; forecast = last value + dMean + dStd·output.
const model = tf.sequential({
  name: 'co2_lstm',
  layers: [
    tf.layers.lstm({
      units: UNITS,
      inputShape: [null, 1],
      name: 'lstm',
      kernelInitializer: tf.initializers.glorotUniform({ seed: SEED }),
      recurrentInitializer: tf.initializers.orthogonal({ seed: SEED + 1 }),
    }),
    tf.layers.dense({ units: 1, name: 'delta', kernelInitializer: tf.initializers.glorotUniform({ seed: SEED + 2 }) }),
  ],
});
model.compile({ optimizer: tf.train.adam(0.003), loss: 'meanSquaredError' });
const t0 = Date.now();
await model.fit(tr.x, tr.y, { epochs: EPOCHS, batchSize: 64, shuffle: false, validationData: [va.x, va.y], verbose: 0 });
const trainSeconds = (Date.now() - t0) / 1000;

const pred = model.predict(te.x).dataSync();
const truth = te.y.dataSync();
let se = 0;
let seNaive = 0;
for (let i = 0; i < te.n; i++) {
  se += ((pred[i] - truth[i]) * dStd) ** 2;
  seNaive += (truth[i] * dStd + dMean) ** 2; // last value: change 0
}
const rmse = Math.sqrt(se / te.n);
const rmseNaive = Math.sqrt(seNaive / te.n);

await mkdir(out, { recursive: true });
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
  task: 'forecast',
  target: 'co2',
  channels: ['co2'],
  window: WINDOW,
  horizon: 1,
  sample_rate: 1 / (7 * 24 * 3600),
  normalization: { co2: { mean, std } },
  output: { kind: 'delta', mean: dMean, std: dStd },
  seed: SEED,
  data: { file: 'models/co2-weekly-mauna-loa.csv', rows: n, gaps_interpolated: gaps, split: [trainEnd, valEnd, n] },
  metrics: { test_rmse_ppm: rmse, last_value_rmse_ppm: rmseNaive, epochs: EPOCHS, train_seconds: trainSeconds, backend: tf.getBackend() },
};
await writeFile(join(out, 'preprocessing.json'), JSON.stringify(preprocessing, null, 2) + '\n');
console.log(`${out}: LSTM-${UNITS}, ${n} weeks (${gaps} gaps interpolated), ${EPOCHS} epochs in ${trainSeconds.toFixed(1)} s on tfjs ${tf.getBackend()}`);
console.log(`test RMSE ${rmse.toFixed(3)} ppm vs last-value baseline ${rmseNaive.toFixed(3)} ppm`);
