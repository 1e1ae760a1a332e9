/**
 * Conv1D, 1-D pooling, global pooling, ZeroPadding1D and Cropping1D. Keras tensors are
 * [batch, time, channels]; ONNX Conv/Pool want [batch, channels, time], so each op is
 * wrapped in a pair of transposes (onnxruntime folds consecutive transposes).
 */
import { UnsupportedError } from '../../errors.js';
import { A, type GraphBuilder } from '../onnx/builder.js';
import { reduce } from '../onnx/ops.js';
import type { Converter, Tensor } from '../context.js';
import type { LayerConfig, LayerSpec } from '../topology.js';
import { emitActivation } from './activations.js';

function who(layer: LayerSpec) {
  return { name: layer.name, className: layer.className };
}

function need3d(layer: LayerSpec, x: Tensor): void {
  if (x.shape.length !== 3)
    throw new UnsupportedError(`expects a 3-D input [batch, time, channels], got rank ${x.shape.length}`, { layer: who(layer), field: 'input shape' });
}

function channelsLast(layer: LayerSpec, cfg: LayerConfig): void {
  cfg.oneOf('data_format', ['channels_last'] as const, 'channels_last');
  void layer;
}

export type Padding = 'valid' | 'same' | 'causal';

/** Output length of a 1-D window op, TF conventions. */
export function windowOutLen(T: number | null, k: number, s: number, d: number, padding: Padding): number | null {
  if (T === null) return null;
  if (padding === 'valid') return Math.floor((T - d * (k - 1) - 1) / s) + 1;
  return Math.ceil(T / s);
}

/** ONNX padding attributes for TF padding modes. Explicit pads when T is known, SAME_UPPER otherwise. */
function padAttrs(
  T: number | null,
  k: number,
  s: number,
  d: number,
  padding: Padding,
): Record<string, ReturnType<typeof A.is>> | Record<string, ReturnType<typeof A.s>> {
  if (padding === 'valid') return { pads: A.is([0, 0]) };
  if (padding === 'causal') return { pads: A.is([d * (k - 1), 0]) };
  // With stride 1 the 'same' padding does not depend on T; onnxruntime also refuses SAME_UPPER with dilation.
  if (s === 1) {
    const total = (k - 1) * d;
    return { pads: A.is([Math.floor(total / 2), total - Math.floor(total / 2)]) };
  }
  if (T === null) return { auto_pad: A.s('SAME_UPPER') };
  const out = Math.ceil(T / s);
  const total = Math.max((out - 1) * s + (k - 1) * d + 1 - T, 0);
  const left = Math.floor(total / 2);
  return { pads: A.is([left, total - left]) };
}

const toNCT = (g: GraphBuilder, x: string) => g.op('Transpose', [x], { perm: A.is([0, 2, 1]) });
const toNTC = (g: GraphBuilder, x: string) => g.op('Transpose', [x], { perm: A.is([0, 2, 1]) });

export const conv1d: Converter = ({ ctx, layer, cfg, inputs }) => {
  const g = ctx.g;
  const x = inputs[0]!;
  need3d(layer, x);
  channelsLast(layer, cfg);
  const inCh = x.shape[2];
  if (typeof inCh !== 'number') throw new UnsupportedError('the channel dimension must be known', { layer: who(layer), field: 'input shape' });
  const filters = cfg.int('filters');
  const k = cfg.int1('kernel_size');
  const s = cfg.int1('strides', 1);
  const d = cfg.int1('dilation_rate', 1);
  const groups = cfg.int('groups', 1);
  if (s > 1 && d > 1)
    throw new UnsupportedError('strides > 1 together with dilation_rate > 1 is not allowed (as in Keras)', { layer: who(layer), field: 'strides' });
  if (inCh % groups !== 0 || filters % groups !== 0)
    throw new UnsupportedError(`groups=${groups} must divide input channels ${inCh} and filters ${filters}`, { layer: who(layer), field: 'groups' });
  const padding = cfg.oneOf('padding', ['valid', 'same', 'causal'] as const, 'valid');
  const kernel = cfg.weightOfShape('kernel', [k, inCh / groups, filters])!;
  // Keras [k, in/g, out] → ONNX [out, in/g, k].
  const cin = inCh / groups;
  const W = new Float32Array(filters * cin * k);
  for (let t = 0; t < k; t++)
    for (let c = 0; c < cin; c++) for (let o = 0; o < filters; o++) W[(o * cin + c) * k + t] = kernel.data[(t * cin + c) * filters + o]!;
  const convIn = [toNCT(g, x.name), g.initializer(`${layer.name}/kernel`, 'float32', [filters, cin, k], W)];
  if (cfg.bool('use_bias', true)) {
    const b = cfg.weightOfShape('bias', [filters])!;
    convIn.push(g.initializer(`${layer.name}/bias`, 'float32', [filters], b.data));
  }
  const T = x.shape[1] ?? null;
  const y = g.op(
    'Conv',
    convIn,
    {
      kernel_shape: A.is([k]),
      strides: A.is([s]),
      dilations: A.is([d]),
      group: A.i(groups),
      ...padAttrs(T, k, s, d, padding),
    },
    { name: layer.name },
  );
  const out = emitActivation(g, cfg.str('activation', 'linear'), toNTC(g, y), who(layer));
  return [{ name: out, shape: [x.shape[0]!, windowOutLen(T, k, s, d, padding), filters], dtype: 'float32' }];
};

function pool1d(op: 'MaxPool' | 'AveragePool'): Converter {
  return ({ ctx, layer, cfg, inputs }) => {
    const g = ctx.g;
    const x = inputs[0]!;
    need3d(layer, x);
    channelsLast(layer, cfg);
    const k = cfg.int1('pool_size', 2);
    const s = cfg.has('strides') ? cfg.int1('strides') : k;
    const padding = cfg.oneOf('padding', ['valid', 'same'] as const, 'valid');
    const T = x.shape[1] ?? null;
    // TF's average pooling divides by the number of real (unpadded) cells: count_include_pad=0.
    const y = g.op(op, [toNCT(g, x.name)], { kernel_shape: A.is([k]), strides: A.is([s]), ...padAttrs(T, k, s, 1, padding) }, { name: layer.name });
    return [{ name: toNTC(g, y), shape: [x.shape[0]!, windowOutLen(T, k, s, 1, padding), x.shape[2]!], dtype: 'float32' }];
  };
}

export const maxPool1d = pool1d('MaxPool');
export const avgPool1d = pool1d('AveragePool');

function globalPool1d(op: 'ReduceMean' | 'ReduceMax'): Converter {
  return ({ ctx, layer, cfg, inputs }) => {
    const x = inputs[0]!;
    need3d(layer, x);
    channelsLast(layer, cfg);
    const keep = cfg.bool('keepdims', false);
    const y = reduce(ctx.g, op, x.name, [1], keep);
    return [{ name: y, shape: keep ? [x.shape[0]!, 1, x.shape[2]!] : [x.shape[0]!, x.shape[2]!], dtype: 'float32' }];
  };
}

export const globalAvgPool1d = globalPool1d('ReduceMean');
export const globalMaxPool1d = globalPool1d('ReduceMax');

function pair(cfg: LayerConfig, field: string, dflt: number): [number, number] {
  const v = cfg.ints(field, [dflt]);
  if (v.length === 1) return [v[0]!, v[0]!];
  if (v.length === 2 && v.every((n) => n >= 0)) return [v[0]!, v[1]!];
  throw new UnsupportedError(`${field} must be an int or [left, right], got ${JSON.stringify(v)}`, { layer: who(cfg.layer), field });
}

export const zeroPadding1d: Converter = ({ ctx, layer, cfg, inputs }) => {
  const g = ctx.g;
  const x = inputs[0]!;
  need3d(layer, x);
  const [l, r] = pair(cfg, 'padding', 1);
  const y = g.op('Pad', [x.name, g.i64([0, l, 0, 0, r, 0])], { mode: A.s('constant') });
  const T = x.shape[1];
  return [{ name: y, shape: [x.shape[0]!, typeof T === 'number' ? T + l + r : null, x.shape[2]!], dtype: x.dtype }];
};

export const cropping1d: Converter = ({ ctx, layer, cfg, inputs }) => {
  const g = ctx.g;
  const x = inputs[0]!;
  need3d(layer, x);
  const [l, r] = pair(cfg, 'cropping', 1);
  const end = r === 0 ? Number.MAX_SAFE_INTEGER : -r;
  const y = g.op('Slice', [x.name, g.i64([l]), g.i64([end]), g.i64([1])]);
  const T = x.shape[1];
  return [{ name: y, shape: [x.shape[0]!, typeof T === 'number' ? T - l - r : null, x.shape[2]!], dtype: x.dtype }];
};
