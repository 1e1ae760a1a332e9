/** Builders shared by tests: deterministic weights for tfjs models. */
import * as tf from '@tensorflow/tfjs';
import { seededValues } from './tfjs-save.js';

/**
 * Replaces every weight with seeded values so failures reproduce. Variances stay positive,
 * biases non-zero (to exercise bias paths), recurrent kernels small enough to stay stable.
 */
export function setSeededWeights(model: tf.LayersModel, seed = 7): tf.LayersModel {
  const ws = model.weights.map((w, i) => {
    const n = w.shape.reduce((a: number, b) => a * (b ?? 1), 1);
    let v = seededValues(n, seed * 1000 + i, w.name.includes('recurrent') ? 0.4 : 0.6);
    if (w.name.includes('variance')) v = v.map((x) => Math.abs(x) + 0.5);
    if (w.name.includes('gamma')) v = v.map((x) => x + 1);
    return tf.tensor(v, w.shape as number[]);
  });
  model.setWeights(ws);
  ws.forEach((w) => w.dispose());
  return model;
}
