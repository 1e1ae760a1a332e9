/**
 * Baselines for `verify --data`: what a model's metric on a CSV is worth, scored on exactly the
 * positions {@link evaluateModel} scored the model on. Forecasters: last value, seasonal naive
 * given a season, and AR(p) ({@link fitAr}). Classifiers: the majority class and the logistic
 * baseline ({@link fitLogistic}). The learnt ones learn from the CSV's first 70% of rows (ridge
 * or L2 strength chosen on the next 15%, as `train --split 0.7,0.15` does) and are scored on all
 * evaluated rows — their own training rows included, which flatters them, as it may flatter a
 * model trained on this CSV. Inputs are normalised with the model's own normalisation.
 */
import type { Dataset, Evaluation, Metrics } from '../data/evaluate.js';
import { defaultStride, metricsOf, windowBatch } from '../data/evaluate.js';
import { jsLatencyUs } from '../data/metrics.js';
import type { PreprocessingJson } from '../data/preprocessing.js';
import { arPredict, fitAr } from './ar.js';
import { changeStats, classifyWindows, forecastWindows, oneWindow, splitBounds, type Windows } from './data.js';
import { fitLogistic } from './logistic.js';

/** The chronological split the learnt baselines use: fit on the first 70% of rows, choose on the next 15%. */
export const BASELINE_SPLIT: [number, number] = [0.7, 0.15];

export interface Baseline {
  name: string;
  metrics: Metrics;
  /** Learnt numbers (0 for last value / seasonal naive / majority class). */
  parameters: number;
  /** Per prediction in JS, µs ({@link jsLatencyUs}). */
  latencyUs: number;
  /** How it was fitted or where it differs from the model's positions. */
  note?: string;
}

/**
 * The baselines for `pre`'s task on `data`, scored at `e`'s positions (`e` is a model's
 * evaluation on the same data). `season` (rows) adds seasonal naive for a forecaster; positions
 * less than a season in have no value a season back and are left out of that row (its `n` says so).
 *
 * @example
 * const e = await evaluateModel(bytes, pre, data);
 * for (const b of verifyBaselines(pre, data, e, { season: 52 })) console.log(b.name, b.metrics.rmse);
 */
export function verifyBaselines(pre: PreprocessingJson, data: Dataset, e: Evaluation, opts: { season?: number } = {}): Baseline[] {
  return pre.task === 'forecast' ? forecastBaselines(pre, data, e, opts.season) : classifyBaselines(pre, data, e);
}

function forecastBaselines(pre: PreprocessingJson, data: Dataset, e: Evaluation, season?: number): Baseline[] {
  const target = data.raw[pre.channels.indexOf(pre.target ?? pre.channels[0]!)]!;
  const h = pre.horizon ?? 1;
  const rows = e.rows;
  const last = Float64Array.from(rows, (t) => target[t - 1]!);
  const out: Baseline[] = [
    { name: 'last value', metrics: metricsOf(pre, last, e.truth), parameters: 0, latencyUs: jsLatencyUs(rows.length, (i) => target[rows[i]! - 1]) },
  ];
  if (season) {
    // Row t + h − 1 predicted by the row one or more seasons before it.
    const back = season * Math.ceil(h / season);
    const keep = [...rows.keys()].filter((i) => rows[i]! + h - 1 - back >= 0);
    const pred = Float64Array.from(keep, (i) => target[rows[i]! + h - 1 - back]!);
    const dropped = rows.length - keep.length;
    out.push({
      name: `seasonal naive (${season})`,
      metrics: metricsOf(
        pre,
        pred,
        Float64Array.from(keep, (i) => e.truth[i]!),
      ),
      parameters: 0,
      latencyUs: jsLatencyUs(keep.length, (i) => target[rows[keep[i]!]! + h - 1 - back]),
      ...(dropped ? { note: `the first ${dropped} positions have no row a season back and are left out` } : {}),
    });
  }
  const T = data.table.rows;
  const { trainEnd, valEnd } = splitBounds(T, BASELINE_SPLIT);
  // The model's target: the standardised change over the horizon (data.ts), as train fits it.
  const change = changeStats(target, h, trainEnd);
  const win = (from: number, to: number) => forecastWindows(data.features, target, change, pre.window, h, from, to);
  const train = win(0, trainEnd);
  if (train.n === 0) return out;
  const ar = fitAr(train, win(trainEnd, valEnd));
  const all = evaluatedWindows(pre, data, e, 1);
  const y = arPredict(ar, all);
  out.push({
    name: `AR(${ar.p})`,
    metrics: metricsOf(
      pre,
      Float64Array.from(rows, (t, i) => target[t - 1]! + change.mean + change.std * y[i]!),
      e.truth,
    ),
    parameters: ar.parameters,
    latencyUs: jsLatencyUs(all.n, (i) => arPredict(ar, oneWindow(all, i))),
    note: `${fitNote(trainEnd, rows.length)}; ridge λ ${ar.lambda} chosen on the next 15%`,
  });
  return out;
}

const fitNote = (trainEnd: number, n: number) => `learnt from rows 1–${trainEnd} (the first 70%), scored on all ${n} positions`;

/** The normalised windows at `e`'s positions (targets left zero: only predicted on). */
function evaluatedWindows(pre: PreprocessingJson, data: Dataset, e: Evaluation, outputs: number): Windows {
  const n = e.rows.length;
  const x = windowBatch(data, Array.from(e.rows), pre.window).data as Float32Array;
  return { x, y: new Float32Array(n * outputs), n, window: pre.window, channels: pre.channels.length, outputs, positions: e.rows };
}

function classifyBaselines(pre: PreprocessingJson, data: Dataset, e: Evaluation): Baseline[] {
  const K = pre.classes!.length;
  const T = data.table.rows;
  const { trainEnd, valEnd } = splitBounds(T, BASELINE_SPLIT);
  const index = new Map(pre.classes!.map((c, i) => [c, i]));
  const labels = Int32Array.from(data.table.text.get(pre.label!)!, (l) => index.get(l) ?? -1);
  const counts = new Array<number>(K).fill(0);
  for (let r = 0; r < trainEnd; r++) if (labels[r]! >= 0) counts[labels[r]!]!++;
  const majority = counts.indexOf(Math.max(...counts));
  const n = e.rows.length;
  const out: Baseline[] = [
    {
      name: `majority class (${pre.classes![majority]})`,
      metrics: metricsOf(pre, new Float64Array(n).fill(majority), e.truth),
      parameters: 0,
      latencyUs: jsLatencyUs(n, () => majority),
      note: fitNote(trainEnd, n),
    },
  ];
  // The same window grid as evaluateModel, so every fitted window's label was checked there.
  const W = pre.window;
  const win = (from: number, to: number) => classifyWindows(data.features, labels, K, W, from, to, defaultStride(pre));
  const train = win(0, trainEnd);
  if (train.n === 0) return out;
  const model = fitLogistic(train, win(trainEnd, valEnd));
  const all = evaluatedWindows(pre, data, e, K);
  out.push({
    name: 'logistic regression',
    metrics: metricsOf(pre, Float64Array.from(model.predict(all)), e.truth),
    parameters: model.parameters,
    latencyUs: model.latencyUs(all),
    note: `${fitNote(trainEnd, n)}; λ ${model.lambda} chosen on the next 15%; features: ${model.features}`,
  });
  return out;
}
