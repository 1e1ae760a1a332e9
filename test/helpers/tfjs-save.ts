/** Saves a tfjs LayersModel to a directory in the on-disk tfjs format (model.json + weights.bin). */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';

export async function saveModel(model: tf.LayersModel, dir: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  await model.save(
    tf.io.withSaveHandler(async (a) => {
      const weightData = a.weightData as ArrayBuffer;
      const json = {
        format: 'layers-model',
        generatedBy: `TensorFlow.js tfjs-layers v${tf.version_layers}`,
        convertedBy: null,
        modelTopology: a.modelTopology,
        weightsManifest: [{ paths: ['weights.bin'], weights: a.weightSpecs }],
      };
      await writeFile(join(dir, 'model.json'), JSON.stringify(json));
      await writeFile(join(dir, 'weights.bin'), new Uint8Array(weightData));
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  return join(dir, 'model.json');
}

/** Writes a hand-made (Keras-origin style) model.json with float32 weights in one shard. */
export async function writeKerasModel(
  dir: string,
  modelTopology: object,
  weights: { name: string; shape: number[]; data: ArrayLike<number> }[],
): Promise<string> {
  await mkdir(dir, { recursive: true });
  const total = weights.reduce((n, w) => n + w.data.length, 0);
  const buf = new Float32Array(total);
  let off = 0;
  for (const w of weights) {
    if (w.data.length !== w.shape.reduce((a, b) => a * b, 1)) throw new Error(`test weight ${w.name}: data length does not match shape`);
    buf.set(Array.from(w.data), off);
    off += w.data.length;
  }
  const json = {
    format: 'layers-model',
    generatedBy: 'keras v2.15.0',
    convertedBy: 'TensorFlow.js Converter v4.22.0',
    modelTopology,
    weightsManifest: [{ paths: ['group1-shard1of1.bin'], weights: weights.map((w) => ({ name: w.name, shape: w.shape, dtype: 'float32' })) }],
  };
  await writeFile(join(dir, 'model.json'), JSON.stringify(json));
  await writeFile(join(dir, 'group1-shard1of1.bin'), new Uint8Array(buf.buffer));
  return join(dir, 'model.json');
}

/** Seeded uniform weights in [-s, s]. */
export function seededValues(n: number, seed: number, scale = 0.5): Float32Array {
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
