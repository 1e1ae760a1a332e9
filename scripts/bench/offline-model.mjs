/**
 * Builds the step models the offline-run benchmark (and anyone reproducing it) uses: a tfjs
 * recurrent model with seeded weights → export → streamify, through dist/index.js.
 *
 *   makeStepModel(dir, { cell: 'lstm', units: 48, channels: 3, task: 'forecast' })
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

function seeded(n, seed, scale) {
  let a = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = ((((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1) * scale;
  }
  return out;
}

/**
 * Writes DIR/model.json (+ weights, preprocessing.json), DIR/seq.onnx and DIR/step.onnx; returns the step model's path.
 * `task`: 'forecast' (one output, `delta` kind when `delta`), or 'classify' (softmax over 3 classes).
 */
export async function makeStepModel(dir, { cell = 'lstm', units = 48, channels = 3, layers = 1, task = 'forecast', delta = false, seed = 7 } = {}) {
  const api = await import('../../dist/index.js');
  const warn = console.warn;
  console.warn = () => {};
  const tf = await import('@tensorflow/tfjs');
  await tf.setBackend('cpu');
  console.warn = warn;
  await mkdir(dir, { recursive: true });
  const names = Array.from({ length: channels }, (_, i) => `c${i}`);
  const m = tf.sequential();
  for (let l = 0; l < layers; l++) {
    const opts = { units, returnSequences: l < layers - 1, ...(l === 0 ? { inputShape: [null, channels] } : {}) };
    m.add(cell === 'gru' ? tf.layers.gru(opts) : tf.layers.lstm(opts));
  }
  if (task === 'classify') m.add(tf.layers.dense({ units: 3, activation: 'softmax', name: 'activity' }));
  else m.add(tf.layers.dense({ units: 1, name: 'y' }));
  m.setWeights(
    m.weights.map((w, i) => {
      const n = w.shape.reduce((a, b) => a * b, 1);
      return tf.tensor(seeded(n, seed * 1000 + i, w.name.includes('recurrent') ? 0.4 : 0.6), w.shape);
    }),
  );
  await m.save(
    tf.io.withSaveHandler(async (a) => {
      const json = {
        format: 'layers-model',
        generatedBy: 'bench',
        convertedBy: null,
        modelTopology: a.modelTopology,
        weightsManifest: [{ paths: ['weights.bin'], weights: a.weightSpecs }],
      };
      await writeFile(join(dir, 'model.json'), JSON.stringify(json));
      await writeFile(join(dir, 'weights.bin'), new Uint8Array(a.weightData));
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  const normalization = Object.fromEntries(names.map((n, i) => [n, { mean: 0.1 * i, std: 1 + 0.5 * i }]));
  const pre =
    task === 'classify'
      ? { task: 'classify', channels: names, window: 16, label: 'activity', classes: ['still', 'walk', 'run'], normalization, sample_rate: 50 }
      : {
          task: 'forecast',
          target: names[0],
          channels: names,
          window: 16,
          horizon: 1,
          sample_rate: 50,
          normalization,
          ...(delta ? { output: { kind: 'delta', mean: 0.01, std: 0.5 } } : {}),
        };
  await writeFile(join(dir, 'preprocessing.json'), JSON.stringify(pre));
  const { result } = await api.exportModelFile(join(dir, 'model.json'), { verify: false });
  await writeFile(join(dir, 'seq.onnx'), result.model);
  const { model } = await api.streamifyModel(result.model, { verify: false });
  await writeFile(join(dir, 'step.onnx'), model);
  return join(dir, 'step.onnx');
}

/** A CSV of `rows` readings of `channels` channels, `streams` interleaved streams (column `sid`), time column `t`. */
export function makeCsv(rows, { channels = 3, streams = 1, seed = 3 } = {}) {
  const v = seeded(rows * channels, seed, 2);
  const lines = [['t', 'sid', ...Array.from({ length: channels }, (_, i) => `c${i}`)].join(',')];
  for (let r = 0; r < rows; r++) {
    const cells = Array.from({ length: channels }, (_, c) => v[r * channels + c].toFixed(5));
    lines.push([1000 + r * 20, `s${r % streams}`, ...cells].join(','));
  }
  return lines.join('\n') + '\n';
}
