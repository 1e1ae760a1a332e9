/**
 * Core layers: Dense, the identity-at-inference layers, Activation, shape manipulation
 * (Flatten, Reshape, Permute, RepeatVector) and Embedding.
 */
import { InputError } from '../../errors.js';
import { applyActivation } from './activations.js';
import { addLastInPlace, matmulLast, reshape as reshapeArr, sizeOf, transpose } from './ndarray.js';
import { requireRank, unsupported, who, type RefLayer } from './types.js';

export const dense: RefLayer = ({ layer, cfg, inputs }) => {
  const x = inputs[0]!;
  const units = cfg.int('units');
  const inDim = x.shape[x.shape.length - 1]!;
  const kernel = cfg.weightOfShape('kernel', [inDim, units])!;
  const y = matmulLast(x, kernel.data, inDim, units);
  if (cfg.bool('use_bias', true)) addLastInPlace(y, cfg.weightOfShape('bias', [units])!.data);
  return [applyActivation(cfg.str('activation', 'linear'), y, who(layer))];
};

/** Dropout and noise layers: inference passes the input through untouched. */
export const identity: RefLayer = ({ inputs }) => [inputs[0]!];

export const activation: RefLayer = ({ layer, cfg, inputs }) => [applyActivation(cfg.str('activation', 'linear'), inputs[0]!, who(layer))];

export const flatten: RefLayer = ({ cfg, inputs }) => {
  let x = inputs[0]!;
  // Keras moves channels last before flattening channels_first data, so the order matches.
  if (cfg.raw('data_format') === 'channels_first' && x.shape.length > 2) {
    x = transpose(x, [0, ...x.shape.slice(2).map((_, i) => i + 2), 1]);
  }
  return [reshapeArr(x, [x.shape[0]!, sizeOf(x.shape.slice(1))])];
};

export const reshape: RefLayer = ({ layer, cfg, inputs }) => {
  const x = inputs[0]!;
  // Keras writes the free dimension as -1; tfjs saves it as null.
  const raw = cfg.raw('target_shape');
  if (!Array.isArray(raw) || !raw.every((d) => d === null || (typeof d === 'number' && Number.isInteger(d) && d >= -1))) {
    throw new InputError(`layer '${layer.name}' (Reshape): target_shape is ${JSON.stringify(raw)}`, {
      field: `${layer.name}.config.target_shape`,
      expected: 'a list of dimensions, one of them possibly -1 or null',
    });
  }
  const target = raw.map((d) => (d === null ? -1 : (d as number)));
  const per = sizeOf(x.shape.slice(1));
  const free = target.filter((d) => d === -1).length;
  if (free > 1) throw unsupported(layer, 'target_shape may contain at most one -1', 'target_shape');
  const known = sizeOf(target.filter((d) => d !== -1));
  const shape = target.map((d) => (d === -1 ? per / known : d));
  if (!shape.every(Number.isInteger) || sizeOf(shape) !== per) {
    throw new InputError(`layer '${layer.name}': cannot reshape [${x.shape.slice(1)}] to target_shape [${target}]`, {
      field: `${layer.name}.config.target_shape`,
      expected: `a shape with ${per} values`,
    });
  }
  return [reshapeArr(x, [x.shape[0]!, ...shape])];
};

export const permute: RefLayer = ({ layer, cfg, inputs }) => {
  const x = inputs[0]!;
  const dims = cfg.ints('dims');
  const sorted = [...dims].sort((a, b) => a - b);
  if (dims.length !== x.shape.length - 1 || sorted.some((d, i) => d !== i + 1)) {
    throw unsupported(layer, `dims ${JSON.stringify(dims)} is not a permutation of 1..${x.shape.length - 1}`, 'dims');
  }
  return [transpose(x, [0, ...dims])];
};

export const repeatVector: RefLayer = (args) => {
  const x = args.inputs[0]!;
  requireRank(args, x, 2, '[batch, features]');
  const n = args.cfg.int('n');
  const [b, f] = x.shape as [number, number];
  const out = new Float64Array(b * n * f);
  for (let i = 0; i < b; i++) {
    for (let t = 0; t < n; t++) out.set(x.data.subarray(i * f, (i + 1) * f), (i * n + t) * f);
  }
  return [{ shape: [b, n, f], data: out }];
};

export const embedding: RefLayer = ({ layer, cfg, inputs }) => {
  const x = inputs[0]!;
  if (cfg.bool('mask_zero', false)) {
    // Downstream recurrent layers would skip masked steps; nothing here models masks.
    throw unsupported(layer, 'mask_zero=true is not supported', 'mask_zero', ['mask_zero=false']);
  }
  const inputDim = cfg.int('input_dim');
  const outDim = cfg.int('output_dim');
  const table = cfg.weightOfShape('embeddings', [inputDim, outDim])!.data;
  const out = new Float64Array(x.data.length * outDim);
  for (let i = 0; i < x.data.length; i++) {
    // tfjs casts float indices to int32, which truncates toward zero.
    const idx = Math.trunc(x.data[i]!);
    if (!(idx >= 0 && idx < inputDim)) {
      throw new InputError(`layer '${layer.name}' (Embedding): index ${x.data[i]} is outside [0, ${inputDim})`, {
        field: `${layer.name} input`,
        expected: `indices in [0, ${inputDim})`,
      });
    }
    for (let j = 0; j < outDim; j++) out[i * outDim + j] = table[idx * outDim + j]!;
  }
  return [{ shape: [...x.shape, outDim], data: out }];
};
