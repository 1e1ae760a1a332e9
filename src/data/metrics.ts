/** Task metrics shared by training (src/train) and evaluation (evaluate.ts): one definition each. */

export interface ForecastScore {
  n: number;
  rmse: number;
  mae: number;
}

export interface ClassifyScore {
  n: number;
  accuracy: number;
  /** Macro F1 over all classes (a class never predicted nor present counts 0, as in evaluate.ts). */
  f1: number;
}

export function forecastScore(pred: ArrayLike<number>, truth: ArrayLike<number>): ForecastScore {
  const n = truth.length;
  let se = 0;
  let ae = 0;
  for (let i = 0; i < n; i++) {
    const d = pred[i]! - truth[i]!;
    se += d * d;
    ae += Math.abs(d);
  }
  return { n, rmse: Math.sqrt(se / n), mae: ae / n };
}

export function classifyScore(pred: ArrayLike<number>, truth: ArrayLike<number>, classes: number): ClassifyScore {
  const n = truth.length;
  const tp = new Float64Array(classes);
  const fp = new Float64Array(classes);
  const fn = new Float64Array(classes);
  let correct = 0;
  for (let i = 0; i < n; i++) {
    const p = pred[i]!;
    const t = truth[i]!;
    if (p === t) {
      correct++;
      tp[t]!++;
    } else {
      fp[p]!++;
      fn[t]!++;
    }
  }
  let f1 = 0;
  for (let c = 0; c < classes; c++) f1 += tp[c]! === 0 ? 0 : (2 * tp[c]!) / (2 * tp[c]! + fp[c]! + fn[c]!);
  return { n, accuracy: correct / n, f1: f1 / classes };
}

/** Index of the largest value in each row of a row-major [n, k] array. */
export function argmaxRows(y: ArrayLike<number>, k: number): Int32Array {
  const n = Math.floor(y.length / k);
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let c = 1; c < k; c++) if (y[i * k + c]! > y[i * k + best]!) best = c;
    out[i] = best;
  }
  return out;
}

/**
 * Per-call latency of a JS predictor, µs: the median over `rounds` of the mean time of
 * `fn(0)` … `fn(n − 1)` (calls timed together, so the clock's own cost does not count).
 */
export function jsLatencyUs(n: number, fn: (i: number) => void, rounds = 11): number {
  const calls = Math.max(1, Math.min(n, 1000));
  const per: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < calls; i++) fn(i);
    per.push(Number(process.hrtime.bigint() - t0) / 1000 / calls);
  }
  return per.sort((a, b) => a - b)[rounds >> 1]!;
}
