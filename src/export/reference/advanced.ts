/** Advanced activation layers: ReLU, LeakyReLU, PReLU, ELU, ThresholdedReLU, Softmax. */
import { softmax } from './activations.js';
import { broadcastBinary, map, normAxis, reshape, sizeOf, transpose, type NDArray } from './ndarray.js';
import { unsupported, type RefLayer } from './types.js';

/**
 * Keras' relu(x, negative_slope, max_value, threshold), term for term: the thresholded part
 * keeps x only where x > threshold, is clipped to [0, max_value] when a maximum is given, and
 * negative_slope·relu(threshold − x) is subtracted. (tfjs' ReLU only has max_value, which this
 * reduces to.)
 */
export function kerasRelu(x: number, slope: number, maxValue: number | undefined, threshold: number): number {
  if (slope !== 0 && maxValue === undefined && threshold === 0) return x >= 0 ? x : slope * x;
  let y = threshold !== 0 ? (x > threshold ? x : 0) : Math.max(x, 0);
  if (maxValue !== undefined) y = Math.min(Math.max(y, 0), maxValue);
  if (slope !== 0) y -= slope * Math.max(threshold - x, 0);
  return y;
}

export const relu: RefLayer = ({ cfg, inputs }) => {
  const maxValue = cfg.has('max_value') ? cfg.num('max_value') : undefined;
  const slope = cfg.num('negative_slope', 0);
  const threshold = cfg.num('threshold', 0);
  return [map(inputs[0]!, (x) => kerasRelu(x, slope, maxValue, threshold))];
};

export const leakyRelu: RefLayer = ({ cfg, inputs }) => {
  // tfjs and Keras 2 call it alpha (default 0.3); Keras 3 writes negative_slope.
  const alpha = cfg.has('negative_slope') ? cfg.num('negative_slope') : cfg.num('alpha', 0.3);
  return [map(inputs[0]!, (x) => (x >= 0 ? x : alpha * x))];
};

export const elu: RefLayer = ({ cfg, inputs }) => {
  const alpha = cfg.num('alpha', 1);
  return [map(inputs[0]!, (x) => (x > 0 ? x : alpha * Math.expm1(x)))];
};

export const thresholdedRelu: RefLayer = ({ cfg, inputs }) => {
  const theta = cfg.num('theta', 1);
  return [map(inputs[0]!, (x) => (x > theta ? x : 0))];
};

export const prelu: RefLayer = ({ layer, cfg, inputs }) => {
  const x = inputs[0]!;
  const alpha = cfg.weight('alpha')!;
  // alpha has the input's shape without batch, with 1 on shared_axes, so it broadcasts as is.
  if (alpha.shape.length !== x.shape.length - 1) {
    throw unsupported(layer, `alpha of shape [${alpha.shape}] does not match an input of shape [${x.shape}]`, 'alpha');
  }
  const a: NDArray = { shape: [1, ...alpha.shape], data: Float64Array.from(alpha.data) };
  return [broadcastBinary(x, a, (v, s) => (v > 0 ? v : s * v))];
};

export const softmaxLayer: RefLayer = ({ layer, cfg, inputs }) => {
  const x = inputs[0]!;
  const raw = cfg.raw('axis');
  // tfjs always saves the axis; an absent one means Keras' default, the last axis.
  const axes = Array.isArray(raw) ? cfg.ints('axis') : [cfg.int('axis', -1)];
  const norm = [...new Set(axes.map((a) => normAxis(a, x.shape.length, `layer '${layer.name}'`)))].sort((a, b) => a - b);
  if (norm.length === 1) return [softmax(x, norm[0]!)];
  return [softmaxOverAxes(x, norm)];
};

/** Softmax over several axes: move them last, merge them into one, normalize, undo. */
function softmaxOverAxes(x: NDArray, axes: number[]): NDArray {
  const rest = x.shape.map((_, i) => i).filter((i) => !axes.includes(i));
  const perm = [...rest, ...axes];
  const moved = transpose(x, perm);
  const lead = rest.map((i) => x.shape[i]!);
  const merged = softmax(reshape(moved, [...lead, sizeOf(axes.map((i) => x.shape[i]!))]), -1);
  const back = reshape(merged, moved.shape);
  const inverse = perm.map((_, i) => perm.indexOf(i));
  return transpose(back, inverse);
}
