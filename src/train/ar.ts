/**
 * The linear autoregressive baseline AR(p): the model's own target (the standardised change of
 * the target, see data.ts) as a linear function of the last p samples of every input channel
 * (normalised, as the recurrent model sees them), fitted by ridge least squares on the training
 * windows, the ridge strength chosen on the validation windows. Pure (no tfjs): the fit, its
 * predictions, and its coefficients in the target's own units; `buildArModel` (model.ts) turns
 * it into a deployable model.
 */
import type { Stats, Windows } from './data.js';

/** Largest p the baseline uses (p = the window, capped). */
export const MAX_AR_ORDER = 64;

/** Ridge strengths tried, relative to the mean feature variance (0: plain least squares). */
export const AR_LAMBDAS = [0, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1];

/** The ridge strength used when there are no validation windows to choose on. */
export const NO_VALIDATION_LAMBDA = 1e-4;

/** A fitted AR(p). */
export interface ArModel {
  /** Order: samples of history used. */
  p: number;
  channels: number;
  /** p × channels coefficients, oldest sample first (row k multiplies sample t − p + k). */
  weights: Float64Array;
  bias: number;
  /** The ridge strength chosen (relative, see {@link AR_LAMBDAS}). */
  lambda: number;
  /** Validation mean squared error per λ tried, in the model's output units. */
  validation: { lambda: number; mse: number }[];
  /** Coefficients + bias. */
  parameters: number;
}

/** Row i's features: the last p samples of window i (p × C values, oldest first). */
function features(w: Windows, p: number, i: number, out: Float64Array): void {
  const C = w.channels;
  const base = (i * w.window + (w.window - p)) * C;
  for (let j = 0; j < p * C; j++) out[j] = w.x[base + j]!;
}

/** Solves the symmetric positive-definite system A x = b in place (Cholesky); false when A is not positive definite. */
function choleskySolve(A: Float64Array, b: Float64Array, d: number): boolean {
  for (let j = 0; j < d; j++) {
    let s = A[j * d + j]!;
    for (let k = 0; k < j; k++) s -= A[j * d + k]! * A[j * d + k]!;
    if (!(s > 0)) return false;
    const l = Math.sqrt(s);
    A[j * d + j] = l;
    for (let i = j + 1; i < d; i++) {
      let t = A[i * d + j]!;
      for (let k = 0; k < j; k++) t -= A[i * d + k]! * A[j * d + k]!;
      A[i * d + j] = t / l;
    }
  }
  for (let i = 0; i < d; i++) {
    let t = b[i]!;
    for (let k = 0; k < i; k++) t -= A[i * d + k]! * b[k]!;
    b[i] = t / A[i * d + i]!;
  }
  for (let i = d - 1; i >= 0; i--) {
    let t = b[i]!;
    for (let k = i + 1; k < d; k++) t -= A[k * d + i]! * b[k]!;
    b[i] = t / A[i * d + i]!;
  }
  return true;
}

/** Predictions of `m` on windows `w` (the model's output: the standardised change). */
export function arPredict(m: ArModel, w: Windows): Float32Array {
  const d = m.p * m.channels;
  const f = new Float64Array(d);
  const y = new Float32Array(w.n);
  for (let i = 0; i < w.n; i++) {
    features(w, m.p, i, f);
    let s = m.bias;
    for (let j = 0; j < d; j++) s += m.weights[j]! * f[j]!;
    y[i] = s;
  }
  return y;
}

/**
 * Fits AR(p) (p = min(window, {@link MAX_AR_ORDER}) unless given) on the training windows of a
 * one-output forecaster; λ minimises the validation MSE (ties: the larger λ), or is
 * {@link NO_VALIDATION_LAMBDA} without validation windows.
 *
 * @example
 * const ar = fitAr(sets.train, sets.val);
 * const y = arPredict(ar, sets.test);
 */
export function fitAr(train: Windows, val: Windows, p = Math.min(train.window, MAX_AR_ORDER)): ArModel {
  const C = train.channels;
  const d = p * C;
  const n = train.n;
  // Centred normal equations: the bias is not penalised.
  const mean = new Float64Array(d);
  let yMean = 0;
  const f = new Float64Array(d);
  for (let i = 0; i < n; i++) {
    features(train, p, i, f);
    for (let j = 0; j < d; j++) mean[j]! += f[j]!;
    yMean += train.y[i]!;
  }
  for (let j = 0; j < d; j++) mean[j]! /= n;
  yMean /= n;
  const XtX = new Float64Array(d * d);
  const Xty = new Float64Array(d);
  for (let i = 0; i < n; i++) {
    features(train, p, i, f);
    for (let j = 0; j < d; j++) f[j]! -= mean[j]!;
    const yi = train.y[i]! - yMean;
    for (let a = 0; a < d; a++) {
      const fa = f[a]!;
      Xty[a]! += fa * yi;
      for (let b = 0; b <= a; b++) XtX[a * d + b]! += fa * f[b]!;
    }
  }
  for (let a = 0; a < d; a++) for (let b = 0; b < a; b++) XtX[b * d + a] = XtX[a * d + b]!;
  let trace = 0;
  for (let a = 0; a < d; a++) trace += XtX[a * d + a]!;
  const scale = trace / d;
  let best: ArModel | undefined;
  let bestMse = Infinity;
  const validation: { lambda: number; mse: number }[] = [];
  for (const lambda of AR_LAMBDAS) {
    const A = Float64Array.from(XtX);
    for (let a = 0; a < d; a++) A[a * d + a]! += lambda * scale;
    const w = Float64Array.from(Xty);
    // Singular without ridge (collinear lags): skip λ = 0.
    if (!choleskySolve(A, w, d)) continue;
    let bias = yMean;
    for (let j = 0; j < d; j++) bias -= w[j]! * mean[j]!;
    const m: ArModel = { p, channels: C, weights: w, bias, lambda, validation, parameters: d + 1 };
    if (val.n === 0) {
      // Nothing to choose on: a light ridge.
      if (lambda === NO_VALIDATION_LAMBDA) best = m;
      continue;
    }
    const mse = meanSquared(arPredict(m, val), val.y);
    validation.push({ lambda, mse });
    if (!best || mse <= bestMse) {
      best = m;
      bestMse = mse;
    }
  }
  if (!best) throw new Error('internal: no ridge strength gave a positive-definite system');
  return best;
}

function meanSquared(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i]! - b[i]!) ** 2;
  return s / a.length;
}

/**
 * The fit in the target's own units: next value = intercept + Σ_j coef[j] · value(t − 1 − j)
 * over the target's lags j = 0 … p − 1 (lag 1 first), plus the other channels' terms (not
 * returned). `norm`: the target's normalisation; `out`: the change's standardisation.
 */
export function arTargetCoefficients(m: ArModel, norm: Stats, out: Stats, target = 0): { coef: number[]; intercept: number } {
  const coef: number[] = [];
  let intercept = out.mean + out.std * m.bias;
  for (let lag = 1; lag <= m.p; lag++) {
    const w = m.weights[(m.p - lag) * m.channels + target]!;
    coef.push((lag === 1 ? 1 : 0) + (out.std * w) / norm.std);
    intercept -= (out.std * w * norm.mean) / norm.std;
  }
  return { coef, intercept };
}
