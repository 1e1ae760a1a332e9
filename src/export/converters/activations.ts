/**
 * tfjs activations (as named in model.json) → ONNX nodes, and the advanced activation
 * layers (ReLU, LeakyReLU, PReLU, ELU, ThresholdedReLU, Softmax).
 */
import { UnsupportedError } from '../../errors.js';
import { A, type GraphBuilder } from '../onnx/builder.js';
import type { Converter } from '../context.js';

/** Names as written in model.json, with the camelCase spellings tfjs also accepts. */
const ALIASES: Record<string, string> = { hardSigmoid: 'hard_sigmoid', silu: 'swish', gelu_new: 'gelu_new', logSoftmax: 'log_softmax' };

/** Activation names the exporter converts (Keras/tfjs spellings). */
export const SUPPORTED_ACTIVATIONS = [
  'linear',
  'relu',
  'relu6',
  'elu',
  'selu',
  'tanh',
  'sigmoid',
  'hard_sigmoid',
  'softmax',
  'softplus',
  'softsign',
  'swish',
  'mish',
  'gelu',
  'gelu_new',
  'log_softmax',
  'exponential',
] as const;

export function normalizeActivation(name: string | null | undefined): string {
  if (name === null || name === undefined) return 'linear';
  return ALIASES[name] ?? name;
}

export function isSupportedActivation(name: string): boolean {
  return (SUPPORTED_ACTIVATIONS as readonly string[]).includes(normalizeActivation(name));
}

/**
 * Emits `act(x)` into `g` and returns the result name. `where` names the layer for errors.
 * Softmax-like activations work on the last axis, as in tfjs.
 */
export function emitActivation(g: GraphBuilder, activation: string, x: string, where: { name: string; className: string; field?: string }): string {
  const act = normalizeActivation(activation);
  switch (act) {
    case 'linear':
      return x;
    case 'relu':
      return g.op('Relu', [x]);
    case 'relu6':
      return g.op('Clip', [x, g.scalarF(0), g.scalarF(6)]);
    case 'elu':
      return g.op('Elu', [x], { alpha: A.f(1) });
    case 'selu':
      return g.op('Selu', [x], { alpha: A.f(1.6732632423543772), gamma: A.f(1.0507009873554805) });
    case 'tanh':
      return g.op('Tanh', [x]);
    case 'sigmoid':
      return g.op('Sigmoid', [x]);
    // tfjs and Keras 2: 0.2x + 0.5 clipped to [0, 1].
    case 'hard_sigmoid':
      return g.op('HardSigmoid', [x], { alpha: A.f(0.2), beta: A.f(0.5) });
    case 'softmax':
      return g.op('Softmax', [x], { axis: A.i(-1) });
    case 'log_softmax':
      return g.op('LogSoftmax', [x], { axis: A.i(-1) });
    case 'softplus':
      return g.op('Softplus', [x]);
    case 'softsign':
      return g.op('Softsign', [x]);
    case 'exponential':
      return g.op('Exp', [x]);
    case 'swish':
      return g.op('Mul', [x, g.op('Sigmoid', [x])]);
    case 'mish':
      return g.op('Mul', [x, g.op('Tanh', [g.op('Softplus', [x])])]);
    case 'gelu': {
      // 0.5·x·(1 + erf(x/√2)), as tfjs computes it.
      const erf = g.op('Erf', [g.op('Mul', [x, g.scalarF(Math.SQRT1_2)])]);
      return g.op('Mul', [g.op('Mul', [x, g.scalarF(0.5)]), g.op('Add', [erf, g.scalarF(1)])]);
    }
    case 'gelu_new': {
      // 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).
      const x3 = g.op('Mul', [g.op('Mul', [x, x]), x]);
      const inner = g.op('Mul', [g.op('Add', [x, g.op('Mul', [x3, g.scalarF(0.044715)])]), g.scalarF(Math.sqrt(2 / Math.PI))]);
      return g.op('Mul', [g.op('Mul', [x, g.scalarF(0.5)]), g.op('Add', [g.op('Tanh', [inner]), g.scalarF(1)])]);
    }
    default:
      throw new UnsupportedError(`activation '${activation}' is not supported`, {
        layer: { name: where.name, className: where.className },
        supported: [...SUPPORTED_ACTIVATIONS],
        field: where.field ?? 'activation',
      });
  }
}

export const activationLayer: Converter = ({ ctx, layer, cfg, inputs }) => {
  const x = inputs[0]!;
  const act = cfg.str('activation', 'linear');
  const y = emitActivation(ctx.g, act, x.name, { name: layer.name, className: layer.className });
  return [{ ...x, name: y }];
};

export const reluLayer: Converter = ({ ctx, cfg, inputs }) => {
  const g = ctx.g;
  const x = inputs[0]!;
  // Keras' ReLU has max_value, negative_slope and threshold (tfjs only max_value). This follows
  // keras.backend.relu term for term, including its edges: x == threshold gives 0, and with a
  // negative threshold and max_value the values in (threshold, 0) are clipped up to 0.
  const maxValue = cfg.has('max_value') ? cfg.num('max_value') : undefined;
  const alpha = cfg.num('negative_slope', 0);
  const theta = cfg.num('threshold', 0);
  if (alpha !== 0 && maxValue === undefined && theta === 0) return [{ ...x, name: g.op('LeakyRelu', [x.name], { alpha: A.f(alpha) }) }];
  let y = theta !== 0 ? g.op('Mul', [x.name, g.op('Cast', [g.op('Greater', [x.name, g.scalarF(theta)])], { to: A.i(1) })]) : g.op('Relu', [x.name]);
  if (maxValue !== undefined) y = g.op('Clip', [y, g.scalarF(0), g.scalarF(maxValue)]);
  if (alpha !== 0) {
    const neg = g.op('Relu', [theta !== 0 ? g.op('Sub', [g.scalarF(theta), x.name]) : g.op('Neg', [x.name])]);
    y = g.op('Sub', [y, g.op('Mul', [neg, g.scalarF(alpha)])]);
  }
  return [{ ...x, name: y }];
};

export const leakyReluLayer: Converter = ({ ctx, cfg, inputs }) => {
  const x = inputs[0]!;
  // tfjs default alpha 0.3 (Keras 2 too); Keras 3 writes negative_slope.
  const alpha = cfg.has('negative_slope') ? cfg.num('negative_slope') : cfg.num('alpha', 0.3);
  return [{ ...x, name: ctx.g.op('LeakyRelu', [x.name], { alpha: A.f(alpha) }) }];
};

export const eluLayer: Converter = ({ ctx, cfg, inputs }) => {
  const x = inputs[0]!;
  return [{ ...x, name: ctx.g.op('Elu', [x.name], { alpha: A.f(cfg.num('alpha', 1)) }) }];
};

export const thresholdedReluLayer: Converter = ({ ctx, cfg, inputs }) => {
  const x = inputs[0]!;
  return [{ ...x, name: ctx.g.op('ThresholdedRelu', [x.name], { alpha: A.f(cfg.num('theta', 1)) }) }];
};

export const softmaxLayer: Converter = ({ ctx, layer, cfg, inputs }) => {
  const x = inputs[0]!;
  const axisRaw = cfg.raw('axis');
  const axis = Array.isArray(axisRaw) ? (axisRaw.length === 1 ? Number(axisRaw[0]) : NaN) : cfg.int('axis', -1);
  if (!Number.isInteger(axis)) {
    throw new UnsupportedError(`softmax over several axes ${JSON.stringify(axisRaw)} is not supported`, {
      layer: { name: layer.name, className: layer.className },
      supported: ['a single axis'],
      field: 'axis',
    });
  }
  return [{ ...x, name: ctx.g.op('Softmax', [x.name], { axis: A.i(axis) }) }];
};

export const preluLayer: Converter = ({ ctx, layer, cfg, inputs }) => {
  const x = inputs[0]!;
  const alpha = cfg.weight('alpha')!;
  const rank = x.shape.length;
  // alpha has the input's shape without batch, with 1 on shared axes: it broadcasts as is.
  if (alpha.shape.length !== rank - 1) {
    throw new UnsupportedError(`alpha of shape [${alpha.shape}] does not match input rank ${rank}`, {
      layer: { name: layer.name, className: layer.className },
      field: 'alpha',
    });
  }
  const slope = ctx.g.initializer(`${layer.name}/alpha`, 'float32', alpha.shape, alpha.data);
  return [{ ...x, name: ctx.g.op('PRelu', [x.name, slope]) }];
};
