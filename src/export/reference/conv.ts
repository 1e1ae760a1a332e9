/**
 * 1-D convolution and pooling over [batch, steps, channels], with TensorFlow's padding
 * arithmetic, plus ZeroPadding1D, Cropping1D and the global poolings.
 */
import { InputError } from '../../errors.js';
import { applyActivation } from './activations.js';
import { concat, sliceAxis, splitAround, zeros } from './ndarray.js';
import { requireChannelsLast, requireRank, unsupported, who, type RefArgs, type RefLayer } from './types.js';

type Padding = 'valid' | 'same' | 'causal';

/** Output length and left padding of a window of span `span` sliding by `stride` over `len` steps. */
export function windowPlan(len: number, span: number, stride: number, padding: Padding): { out: number; left: number } {
  if (padding === 'same') {
    // TF 'same': as many outputs as ceil(len / stride); any odd padding cell goes on the right.
    const out = Math.ceil(len / stride);
    const total = Math.max((out - 1) * stride + span - len, 0);
    return { out, left: Math.floor(total / 2) };
  }
  const left = padding === 'causal' ? span - 1 : 0;
  return { out: Math.max(Math.floor((len + left - span) / stride) + 1, 0), left };
}

function requireSteps(args: RefArgs, out: number, len: number): void {
  if (out <= 0) {
    throw new InputError(`layer '${args.layer.name}' (${args.layer.className}): ${len} steps are too few for its window`, {
      field: `${args.layer.name} input`,
      expected: 'more time steps',
    });
  }
}

export const conv1d: RefLayer = (args) => {
  const { cfg, layer } = args;
  const x = args.inputs[0]!;
  requireRank(args, x, 3, '[batch, steps, channels]');
  requireChannelsLast(args);
  const [batch, len, cin] = x.shape as [number, number, number];
  const k = cfg.int1('kernel_size');
  const stride = cfg.int1('strides', 1);
  const dilation = cfg.int1('dilation_rate', 1);
  const groups = cfg.int('groups', 1);
  const filters = cfg.int('filters');
  const padding = cfg.oneOf('padding', ['valid', 'same', 'causal'] as const, 'valid');
  if (cin % groups !== 0 || filters % groups !== 0) {
    throw unsupported(layer, `groups=${groups} does not divide ${cin} input channels and ${filters} filters`, 'groups');
  }
  const cinG = cin / groups;
  const coutG = filters / groups;
  const w = cfg.weightOfShape('kernel', [k, cinG, filters])!.data;
  const bias = cfg.bool('use_bias', true) ? cfg.weightOfShape('bias', [filters])!.data : undefined;
  const { out, left } = windowPlan(len, (k - 1) * dilation + 1, stride, padding);
  requireSteps(args, out, len);
  const y = zeros([batch, out, filters]);
  for (let b = 0; b < batch; b++) {
    for (let t = 0; t < out; t++) {
      for (let o = 0; o < filters; o++) {
        const g = Math.floor(o / coutG);
        let acc = bias ? bias[o]! : 0;
        for (let j = 0; j < k; j++) {
          const ti = t * stride - left + j * dilation;
          if (ti < 0 || ti >= len) continue; // zero padding
          const xBase = (b * len + ti) * cin + g * cinG;
          for (let c = 0; c < cinG; c++) acc += x.data[xBase + c]! * w[(j * cinG + c) * filters + o]!;
        }
        y.data[(b * out + t) * filters + o] = acc;
      }
    }
  }
  return [applyActivation(cfg.str('activation', 'linear'), y, who(layer))];
};

/** Max or average pooling; padded cells are skipped, so 'same' averages count real cells only. */
function pool1d(kind: 'max' | 'avg'): RefLayer {
  return (args) => {
    const { cfg } = args;
    const x = args.inputs[0]!;
    requireRank(args, x, 3, '[batch, steps, channels]');
    requireChannelsLast(args);
    const [batch, len, ch] = x.shape as [number, number, number];
    const size = cfg.int1('pool_size', 2);
    const stride = cfg.has('strides') ? cfg.int1('strides') : size;
    const padding = cfg.oneOf('padding', ['valid', 'same'] as const, 'valid');
    const { out, left } = windowPlan(len, size, stride, padding);
    requireSteps(args, out, len);
    const y = zeros([batch, out, ch]);
    for (let b = 0; b < batch; b++) {
      for (let t = 0; t < out; t++) {
        const from = Math.max(t * stride - left, 0);
        const to = Math.min(t * stride - left + size, len);
        for (let c = 0; c < ch; c++) {
          let acc = kind === 'max' ? -Infinity : 0;
          for (let ti = from; ti < to; ti++) {
            const v = x.data[(b * len + ti) * ch + c]!;
            acc = kind === 'max' ? Math.max(acc, v) : acc + v;
          }
          y.data[(b * out + t) * ch + c] = kind === 'max' ? acc : acc / (to - from);
        }
      }
    }
    return [y];
  };
}

export const maxPooling1d = pool1d('max');
export const averagePooling1d = pool1d('avg');

function globalPool1d(kind: 'max' | 'avg'): RefLayer {
  return (args) => {
    const x = args.inputs[0]!;
    requireRank(args, x, 3, '[batch, steps, channels]');
    // channels_first data is [batch, channels, steps]: the steps axis is the last one.
    const axis = args.cfg.raw('data_format') === 'channels_first' ? 2 : 1;
    const keepdims = args.cfg.bool('keepdims', false);
    const { outer, len, inner } = splitAround(x.shape, axis);
    const data = new Float64Array(outer * inner);
    for (let o = 0; o < outer; o++) {
      for (let i = 0; i < inner; i++) {
        let acc = kind === 'max' ? -Infinity : 0;
        for (let t = 0; t < len; t++) {
          const v = x.data[(o * len + t) * inner + i]!;
          acc = kind === 'max' ? Math.max(acc, v) : acc + v;
        }
        data[o * inner + i] = kind === 'max' ? acc : acc / len;
      }
    }
    const shape = [...x.shape];
    if (keepdims) shape[axis] = 1;
    else shape.splice(axis, 1);
    return [{ shape, data }];
  };
}

export const globalAveragePooling1d = globalPool1d('avg');
export const globalMaxPooling1d = globalPool1d('max');

/** `padding`/`cropping` as Keras writes it: one int for both sides, or [left, right]. */
function leftRight(args: RefArgs, field: string): [number, number] {
  const v = args.cfg.ints(field, [1]);
  const [l, r] = v.length === 1 ? [v[0]!, v[0]!] : v.length === 2 ? [v[0]!, v[1]!] : [NaN, NaN];
  if (!(l >= 0 && r >= 0)) throw unsupported(args.layer, `${field} ${JSON.stringify(args.cfg.raw(field))} is not an int or [left, right]`, field);
  return [l, r];
}

export const zeroPadding1d: RefLayer = (args) => {
  const x = args.inputs[0]!;
  requireRank(args, x, 3, '[batch, steps, channels]');
  const [l, r] = leftRight(args, 'padding');
  const [batch, , ch] = x.shape as [number, number, number];
  return [concat([zeros([batch, l, ch]), x, zeros([batch, r, ch])], 1)];
};

export const cropping1d: RefLayer = (args) => {
  const x = args.inputs[0]!;
  requireRank(args, x, 3, '[batch, steps, channels]');
  const [l, r] = leftRight(args, 'cropping');
  const keep = x.shape[1]! - l - r;
  if (keep <= 0) {
    throw new InputError(`layer '${args.layer.name}' (Cropping1D): cropping [${l}, ${r}] removes all ${x.shape[1]} steps`, {
      field: `${args.layer.name}.config.cropping`,
      expected: 'fewer cropped steps than the input has',
    });
  }
  return [sliceAxis(x, 1, l, keep)];
};
