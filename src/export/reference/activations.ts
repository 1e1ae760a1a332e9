/**
 * Activation functions by their model.json names, in float64, with tfjs 4.22 semantics where
 * Keras versions disagree (hard_sigmoid is tfjs/Keras-2's 0.2·x + 0.5, not Keras 3's x/6 + 0.5).
 */
import { UnsupportedError } from '../../errors.js';
import { map, normAxis, splitAround, type NDArray } from './ndarray.js';

export interface Who {
  name: string;
  className: string;
}

/** camelCase spellings tfjs also accepts, and Keras' silu alias. */
const ALIASES: Record<string, string> = { hardSigmoid: 'hard_sigmoid', logSoftmax: 'log_softmax', silu: 'swish' };

const SELU_ALPHA = 1.6732632423543772;
const SELU_SCALE = 1.0507009873554805;
const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

/** Accurate to a few ulps: the reference must not contribute error of its own. */
export function erf(x: number): number {
  if (Number.isNaN(x)) return NaN;
  const ax = Math.abs(x);
  const r = ax <= 3 ? erfSeries(ax) : 1 - erfcContinuedFraction(ax);
  return x < 0 ? -r : r;
}

/**
 * erf(x) = 2/√π · e^{−x²} · Σ 2ⁿ x^{2n+1} / (1·3·…·(2n+1)). Every term is positive, so unlike
 * the Maclaurin series there is no cancellation; for x ≤ 3 it converges in < 60 terms.
 */
function erfSeries(x: number): number {
  const x2 = x * x;
  let term = x;
  let sum = x;
  for (let n = 1; n < 200; n++) {
    term *= (2 * x2) / (2 * n + 1);
    sum += term;
    if (term < sum * 1e-17) break;
  }
  return (2 / Math.sqrt(Math.PI)) * Math.exp(-x2) * sum;
}

/**
 * erfc(x) = e^{−x²}/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + …)))), evaluated with the modified
 * Lentz algorithm; for x > 3 it converges in a few dozen steps.
 */
function erfcContinuedFraction(x: number): number {
  if (x > 27) return 0;
  const tiny = 1e-300;
  let f = x;
  let c = x;
  let d = 0;
  for (let n = 1; n < 500; n++) {
    const a = n / 2;
    d = x + a * d;
    d = Math.abs(d) < tiny ? tiny : d;
    c = x + a / c;
    c = Math.abs(c) < tiny ? tiny : c;
    d = 1 / d;
    const delta = c * d;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  return Math.exp(-x * x) / Math.sqrt(Math.PI) / f;
}

function sigmoid(x: number): number {
  // Split by sign so exp never overflows.
  if (x >= 0) return 1 / (1 + Math.exp(-x));
  const e = Math.exp(x);
  return e / (1 + e);
}

function softplus(x: number): number {
  return Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x)));
}

const SCALAR: Record<string, (x: number) => number> = {
  linear: (x) => x,
  relu: (x) => Math.max(x, 0),
  relu6: (x) => Math.min(Math.max(x, 0), 6),
  elu: (x) => (x > 0 ? x : Math.expm1(x)),
  selu: (x) => (x > 0 ? SELU_SCALE * x : SELU_SCALE * SELU_ALPHA * Math.expm1(x)),
  tanh: Math.tanh,
  sigmoid,
  hard_sigmoid: (x) => Math.min(Math.max(0.2 * x + 0.5, 0), 1),
  softplus,
  softsign: (x) => x / (1 + Math.abs(x)),
  swish: (x) => x * sigmoid(x),
  mish: (x) => x * Math.tanh(softplus(x)),
  gelu: (x) => 0.5 * x * (1 + erf(x / Math.SQRT2)),
  gelu_new: (x) => 0.5 * x * (1 + Math.tanh(SQRT_2_OVER_PI * (x + 0.044715 * x * x * x))),
  exponential: Math.exp,
};

export const REFERENCE_ACTIVATIONS = [...Object.keys(SCALAR), 'softmax', 'log_softmax'] as const;

export function normalizeActivationName(name: string | null | undefined): string {
  if (name === null || name === undefined) return 'linear';
  return ALIASES[name] ?? name;
}

/** The element-wise function behind a scalar activation, or undefined for softmax-like ones. */
export function scalarActivation(name: string): ((x: number) => number) | undefined {
  return SCALAR[normalizeActivationName(name)];
}

/** Softmax (or its log) over one axis, shifted by the maximum for stability. */
export function softmax(a: NDArray, axis: number, log = false): NDArray {
  const ax = normAxis(axis, a.shape.length, 'softmax');
  const { outer, len, inner } = splitAround(a.shape, ax);
  const out = new Float64Array(a.data.length);
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      const at = (t: number) => (o * len + t) * inner + i;
      let max = -Infinity;
      for (let t = 0; t < len; t++) max = Math.max(max, a.data[at(t)]!);
      let sum = 0;
      for (let t = 0; t < len; t++) sum += Math.exp(a.data[at(t)]! - max);
      const logSum = Math.log(sum);
      for (let t = 0; t < len; t++) {
        const shifted = a.data[at(t)]! - max;
        out[at(t)] = log ? shifted - logSum : Math.exp(shifted) / sum;
      }
    }
  }
  return { shape: [...a.shape], data: out };
}

/** Applies the activation named in model.json; softmax-like ones act on the last axis, as in tfjs. */
export function applyActivation(name: string | null | undefined, a: NDArray, who: Who, field = 'activation'): NDArray {
  const act = normalizeActivationName(name);
  if (act === 'linear') return a;
  if (act === 'softmax') return softmax(a, -1);
  if (act === 'log_softmax') return softmax(a, -1, true);
  const f = SCALAR[act];
  if (!f) {
    throw new UnsupportedError(`activation '${name}' is not supported by the reference interpreter`, {
      layer: who,
      supported: [...REFERENCE_ACTIVATIONS],
      field,
    });
  }
  return map(a, f);
}
