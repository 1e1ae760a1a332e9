/** BatchNormalization (inference: moving statistics) and LayerNormalization. */
import { normAxis, sizeOf, splitAround, transpose, type NDArray } from './ndarray.js';
import { unsupported, type RefArgs, type RefLayer } from './types.js';

/** Reads `axis` as one int or a list, resolved against `rank` and sorted. */
function readAxes(args: RefArgs, rank: number, dflt: number): number[] {
  const raw = args.cfg.raw('axis');
  const list = Array.isArray(raw) ? args.cfg.ints('axis') : [args.cfg.int('axis', dflt)];
  const axes = [...new Set(list.map((a) => normAxis(a, rank, `layer '${args.layer.name}'`)))].sort((a, b) => a - b);
  if (axes.includes(0)) throw unsupported(args.layer, 'normalizing over the batch axis is not supported', 'axis');
  return axes;
}

/** A per-channel parameter, or `fill` when the layer was built without it (center/scale false). */
function param(args: RefArgs, name: string, present: boolean, n: number, fill: number): ArrayLike<number> {
  if (!present) return new Float64Array(n).fill(fill);
  return args.cfg.weightOfShape(name, [n])!.data;
}

export const batchNormalization: RefLayer = (args) => {
  const { cfg, inputs, layer } = args;
  const x = inputs[0]!;
  const axes = readAxes(args, x.shape.length, -1);
  if (axes.length !== 1) throw unsupported(layer, `normalizing over several axes ${JSON.stringify(cfg.raw('axis'))} is not supported`, 'axis');
  const axis = axes[0]!;
  const n = x.shape[axis]!;
  const eps = cfg.num('epsilon', 1e-3);
  const gamma = param(args, 'gamma', cfg.bool('scale', true), n, 1);
  const beta = param(args, 'beta', cfg.bool('center', true), n, 0);
  const mean = cfg.weightOfShape('moving_mean', [n])!.data;
  const variance = cfg.weightOfShape('moving_variance', [n])!.data;
  const { outer, len, inner } = splitAround(x.shape, axis);
  const out = new Float64Array(x.data.length);
  for (let o = 0; o < outer; o++) {
    for (let c = 0; c < len; c++) {
      const k = gamma[c]! / Math.sqrt(variance[c]! + eps);
      const base = (o * len + c) * inner;
      for (let i = 0; i < inner; i++) out[base + i] = (x.data[base + i]! - mean[c]!) * k + beta[c]!;
    }
  }
  return [{ shape: [...x.shape], data: out }];
};

export const layerNormalization: RefLayer = (args) => {
  const { cfg, inputs, layer } = args;
  const x = inputs[0]!;
  if (cfg.bool('rms_scaling', false)) throw unsupported(layer, 'rms_scaling=true is not supported', 'rms_scaling', ['rms_scaling=false']);
  const axes = readAxes(args, x.shape.length, -1);
  // Move the normalized axes last (in increasing order, which is also how Keras lays out
  // gamma/beta when it reshapes them to broadcast), so each row is one normalization group.
  const rest = x.shape.map((_, i) => i).filter((i) => !axes.includes(i));
  const perm = [...rest, ...axes];
  const moved = transpose(x, perm);
  const m = sizeOf(axes.map((a) => x.shape[a]!));
  const paramShape = axes.map((a) => x.shape[a]!);
  const gamma = cfg.bool('scale', true) ? cfg.weightOfShape('gamma', paramShape)!.data : new Float64Array(m).fill(1);
  const beta = cfg.bool('center', true) ? cfg.weightOfShape('beta', paramShape)!.data : new Float64Array(m);
  const eps = cfg.num('epsilon', 1e-3);
  const rows = moved.data.length / m;
  const out = new Float64Array(moved.data.length);
  for (let r = 0; r < rows; r++) normalizeRow(moved.data, out, r * m, m, eps, gamma, beta);
  const normalized: NDArray = { shape: moved.shape, data: out };
  return [
    transpose(
      normalized,
      perm.map((_, i) => perm.indexOf(i)),
    ),
  ];
};

/** (x − mean)/√(var + eps)·gamma + beta over one row, with the biased variance Keras uses. */
function normalizeRow(src: Float64Array, dst: Float64Array, at: number, m: number, eps: number, gamma: ArrayLike<number>, beta: ArrayLike<number>): void {
  let mean = 0;
  for (let j = 0; j < m; j++) mean += src[at + j]!;
  mean /= m;
  let variance = 0;
  for (let j = 0; j < m; j++) variance += (src[at + j]! - mean) ** 2;
  variance /= m;
  const inv = 1 / Math.sqrt(variance + eps);
  for (let j = 0; j < m; j++) dst[at + j] = (src[at + j]! - mean) * inv * gamma[j]! + beta[j]!;
}
