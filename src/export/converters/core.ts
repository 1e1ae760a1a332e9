/**
 * Core layers: Dense, identity-at-inference layers, Flatten, Reshape, Permute, RepeatVector,
 * Embedding, and TimeDistributed around layers that act on the last axis.
 */
import { UnsupportedError } from '../../errors.js';
import { A } from '../onnx/builder.js';
import type { Converter, ConverterArgs, Tensor } from '../context.js';
import { LayerConfig, type LayerSpec } from '../topology.js';
import { emitActivation } from './activations.js';

function who(layer: LayerSpec) {
  return { name: layer.name, className: layer.className };
}

export const dense: Converter = ({ ctx, layer, cfg, inputs }) => {
  const g = ctx.g;
  const x = inputs[0]!;
  const units = cfg.int('units');
  const inDim = x.shape[x.shape.length - 1];
  if (typeof inDim !== 'number') {
    throw new UnsupportedError('the last input dimension must be known', { layer: who(layer), field: 'input shape' });
  }
  const kernel = cfg.weightOfShape('kernel', [inDim, units])!;
  let y = g.op('MatMul', [x.name, g.initializer(`${layer.name}/kernel`, 'float32', kernel.shape, kernel.data)]);
  if (cfg.bool('use_bias', true)) {
    const bias = cfg.weightOfShape('bias', [units])!;
    y = g.op('Add', [y, g.initializer(`${layer.name}/bias`, 'float32', bias.shape, bias.data)]);
  }
  y = emitActivation(g, cfg.str('activation', 'linear'), y, who(layer));
  return [{ name: y, shape: [...x.shape.slice(0, -1), units], dtype: 'float32' }];
};

/** Dropout, SpatialDropout1D, GaussianNoise, GaussianDropout, AlphaDropout: identity at inference. */
export const identity: Converter = ({ inputs }) => [inputs[0]!];

export const flatten: Converter = ({ ctx, inputs }) => {
  const x = inputs[0]!;
  const rest = x.shape.slice(1);
  const n = rest.every((d) => typeof d === 'number') ? (rest as number[]).reduce((a, b) => a * b, 1) : null;
  if (x.shape.length <= 2) return [x];
  return [{ name: ctx.g.op('Flatten', [x.name], { axis: A.i(1) }), shape: [x.shape[0]!, n], dtype: x.dtype }];
};

export const reshape: Converter = ({ ctx, layer, cfg, inputs }) => {
  const x = inputs[0]!;
  // tfjs saves an inferred dimension as null, Keras as -1.
  const raw = cfg.raw('target_shape');
  const target = Array.isArray(raw) ? raw.map((d) => (d === null ? -1 : d)) : raw;
  if (!Array.isArray(target) || !target.every((d) => typeof d === 'number' && Number.isInteger(d) && (d > 0 || d === -1))) {
    throw new UnsupportedError(`target_shape ${JSON.stringify(raw)} is not a list of positive integers (one may be -1/null)`, {
      layer: who(layer),
      field: 'target_shape',
    });
  }
  const known = x.shape.slice(1).every((d) => typeof d === 'number') ? (x.shape.slice(1) as number[]).reduce((a, b) => a * b, 1) : null;
  const free = target.filter((d) => d === -1).length;
  if (free > 1) throw new UnsupportedError('target_shape may contain at most one -1', { layer: who(layer), field: 'target_shape' });
  const out = (target as number[]).map((d) =>
    d === -1 ? (known !== null ? known / (target as number[]).filter((t) => t !== -1).reduce((a, b) => a * b, 1) : null) : d,
  );
  // Leading 0 copies the (symbolic) batch dimension from the input.
  const y = ctx.g.op('Reshape', [x.name, ctx.g.i64([0, ...(target as number[])])]);
  return [{ name: y, shape: [x.shape[0]!, ...out], dtype: x.dtype }];
};

export const permute: Converter = ({ ctx, layer, cfg, inputs }) => {
  const x = inputs[0]!;
  const dims = cfg.ints('dims');
  const sorted = [...dims].sort((a, b) => a - b);
  if (dims.length !== x.shape.length - 1 || sorted.some((d, i) => d !== i + 1)) {
    throw new UnsupportedError(`dims ${JSON.stringify(dims)} is not a permutation of 1..${x.shape.length - 1}`, { layer: who(layer), field: 'dims' });
  }
  const y = ctx.g.op('Transpose', [x.name], { perm: A.is([0, ...dims]) });
  return [{ name: y, shape: [x.shape[0]!, ...dims.map((d) => x.shape[d]!)], dtype: x.dtype }];
};

export const repeatVector: Converter = ({ ctx, layer, cfg, inputs }) => {
  const g = ctx.g;
  const x = inputs[0]!;
  if (x.shape.length !== 2) throw new UnsupportedError(`input must be 2-D [batch, features], got rank ${x.shape.length}`, { layer: who(layer) });
  const n = cfg.int('n');
  const y = g.op('Tile', [g.op('Unsqueeze', [x.name, g.i64([1])]), g.i64([1, n, 1])]);
  return [{ name: y, shape: [x.shape[0]!, n, x.shape[1]!], dtype: x.dtype }];
};

export const embedding: Converter = ({ ctx, layer, cfg, inputs }) => {
  const g = ctx.g;
  const x = inputs[0]!;
  if (cfg.bool('mask_zero', false)) {
    throw new UnsupportedError('mask_zero=true is not supported: masked steps would be computed, not skipped, so the export would differ', {
      layer: who(layer),
      supported: ['mask_zero=false'],
      field: 'mask_zero',
    });
  }
  const inputDim = cfg.int('input_dim');
  const outputDim = cfg.int('output_dim');
  const table = cfg.weightOfShape('embeddings', [inputDim, outputDim])!;
  // tfjs casts the (float) indices to int32, truncating toward zero.
  const idx = g.op('Cast', [x.name], { to: A.i(7) });
  const y = g.op('Gather', [g.initializer(`${layer.name}/embeddings`, 'float32', table.shape, table.data), idx], { axis: A.i(0) });
  return [{ name: y, shape: [...x.shape, outputDim], dtype: 'float32' }];
};

/**
 * TimeDistributed(layer): the wrapped layers streamcell supports here act on the last axis
 * only, so applying them to the whole [batch, time, features] tensor is the same computation.
 */
export function timeDistributed(lookup: (className: string) => Converter | undefined): Converter {
  return (args: ConverterArgs) => {
    const { layer, cfg } = args;
    const inner = cfg.raw('layer') as { class_name?: string; config?: Record<string, unknown> } | undefined;
    const allowed = ['Dense', 'Activation', 'Dropout', 'ReLU', 'LeakyReLU', 'ELU', 'ThresholdedReLU', 'Softmax'];
    if (!inner || typeof inner.class_name !== 'string' || !allowed.includes(inner.class_name)) {
      throw new UnsupportedError(`TimeDistributed(${inner?.class_name ?? '?'}) is not supported`, {
        layer: who(layer),
        supported: allowed.map((c) => `TimeDistributed(${c})`),
        field: 'layer',
      });
    }
    const conv = lookup(inner.class_name)!;
    // Weights are stored under the wrapper's name (`td/kernel`), the config is the inner layer's.
    const innerSpec: LayerSpec = { name: layer.name, className: inner.class_name, config: inner.config as LayerSpec['config'], weights: layer.weights };
    const x: Tensor = args.inputs[0]!;
    if (x.shape.length < 3) throw new UnsupportedError('TimeDistributed needs an input of rank ≥ 3', { layer: who(layer) });
    return conv({ ...args, layer: innerSpec, cfg: new LayerConfig(innerSpec) });
  };
}
