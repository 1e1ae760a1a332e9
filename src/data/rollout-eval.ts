/**
 * How far a forecaster's rollout can be trusted: RMSE/MAE of the k-step autoregressive
 * rollout at several horizons, next to the last-value baseline and (given a season) the
 * seasonal-naive baseline, over the same forecast origins. The model runs in the pool a
 * device runs it in: a step model streams the series from its first row with state carried
 * (StreamPool), a sequence model slides its window (WindowPool); each origin's rollout is
 * `pool.forecast` from the live state, so the preprocessing is applied exactly as in streaming.
 */
import { InputError } from '../errors.js';
import type { BackendName } from '../runtime/backend.js';
import type { Forecast } from '../runtime/forecast.js';
import { StreamPool } from '../runtime/pool.js';
import { readModelInfo } from '../runtime/step-model.js';
import { WindowPool } from '../runtime/window.js';
import type { Dataset } from './evaluate.js';
import { forecastScore, type ForecastScore } from './metrics.js';
import { esc, htmlPage, linePlot } from './plot.js';
import type { PreprocessingJson } from './preprocessing.js';

/** Options of {@link evaluateRollout}. */
export interface RolloutEvalOptions {
  /** Steps ahead to score, e.g. [1, 4, 16, 64]. */
  horizons: readonly number[];
  /** Season length in rows for the seasonal-naive baseline (e.g. 52 for weekly data with a yearly cycle). */
  season?: number;
  /** First forecast origin (0-based row of the last sample seen); default: the model's window. */
  from?: number;
  /** Channels held at their last value during the rollout (see `ForecastOptions.hold`). */
  hold?: readonly string[];
  backend?: BackendName;
}

/** One horizon's scores over the origins. */
export interface RolloutRow {
  k: number;
  rollout: ForecastScore;
  lastValue: ForecastScore;
  seasonalNaive?: ForecastScore;
}

/** What {@link evaluateRollout} measured. */
export interface RolloutEvaluation {
  target: string;
  /** How the model ran: streamed with state (step model) or on a sliding window (sequence model). */
  mode: 'stream' | 'window';
  season?: number;
  /** Forecast origins: rows first..last (horizon k is scored on the origins with k rows ahead: `rows[i].rollout.n` of them). */
  origins: { first: number; last: number };
  rows: RolloutRow[];
}

/** The pool a device would run `model` in: StreamPool for a step model, WindowPool (the preprocessing's window) for a sequence model. */
export async function poolFor(model: Uint8Array, pre: PreprocessingJson, backend?: BackendName): Promise<StreamPool | WindowPool> {
  return readModelInfo(model).kind === 'step' ? StreamPool.create(model, { backend }) : WindowPool.create(model, { backend, window: pre.window });
}

/** Parses a horizon list such as `1,4,16,64` (flag `field`); throws {@link InputError} naming it. */
export function parseHorizons(text: string, field: string, max: number): number[] {
  const ks = text.split(',').map((s) => s.trim());
  const out = ks.map(Number);
  if (ks.length === 0 || out.some((k, i) => ks[i] === '' || !Number.isInteger(k) || k < 1 || k > max))
    throw new InputError(`${field} is '${text}'`, { field, expected: `comma-separated integers from 1 to ${max}, e.g. 1,4,16,64` });
  return [...new Set(out)].sort((a, b) => a - b);
}

/**
 * Rolls the model out from every origin of `data` and scores each horizon against the truth
 * and the baselines. Throws {@link InputError} when the data is too short for the largest
 * horizon, or the model cannot be rolled out (see `feedbackPlan`).
 *
 * @example
 * const e = await evaluateRollout(bytes, pre, await loadDataset('co2.csv', pre), { horizons: [1, 4, 13, 52], season: 52 });
 */
export async function evaluateRollout(model: Uint8Array, pre: PreprocessingJson, data: Dataset, opts: RolloutEvalOptions): Promise<RolloutEvaluation> {
  if (pre.task !== 'forecast') throw new InputError('a rollout needs a forecaster; this model is a classifier', { field: 'task', expected: "task 'forecast'" });
  const K = Math.max(...opts.horizons);
  const T = data.table.rows;
  const file = data.table.file;
  const targetName = pre.target ?? pre.channels[0]!;
  const raw = data.raw;
  const target = raw[pre.channels.indexOf(targetName)]!;
  const season = opts.season;
  if (season !== undefined && !(Number.isInteger(season) && season >= 1))
    throw new InputError(`season is ${season}`, { field: '--season', expected: 'a positive integer number of rows' });
  const mode = readModelInfo(model).kind === 'step' ? 'stream' : 'window';
  // The seasonal-naive forecast of row t + k is the row one or more seasons before it: origins start a season in.
  const first = Math.max(opts.from ?? pre.window, mode === 'window' ? pre.window - 1 : 0, season ?? 0);
  // Every origin with a row ahead; each horizon is scored where it fits.
  const last = T - 2;
  if (last - first + 1 < Math.min(...opts.horizons) || first + K > T - 1)
    throw new InputError(`the CSV has ${T} rows: no forecast origin from row ${first} leaves ${K} rows ahead`, {
      file,
      // --from past the data is the flag to blame; else the horizons are too long for it.
      field: opts.from !== undefined && opts.from + Math.min(...opts.horizons) > T - 1 ? '--from' : '--rollout',
      expected: `at least ${first + K + 1} rows, or smaller horizons / --from`,
    });
  const pool = await poolFor(model, pre, opts.backend);
  let forecasts: Forecast[];
  try {
    const C = pre.channels.length;
    const pending: Promise<Forecast>[] = [];
    const x = new Float32Array(C);
    for (let t = 0; t <= last; t++) {
      for (let c = 0; c < C; c++) x[c] = data.features[c]![t]!;
      await pool.push('series', x);
      // The copy is taken now; the rollouts run between the next pushes.
      if (t >= first) {
        const f = pool.forecast('series', Math.min(K, T - 1 - t), { hold: opts.hold, last: raw.map((r) => r[t]!), preprocessing: pre });
        // Handled by Promise.all below; a refusal must not surface as an unhandled rejection meanwhile.
        f.catch(() => undefined);
        pending.push(f);
      }
    }
    forecasts = await Promise.all(pending);
  } finally {
    await pool.close();
  }
  const q = forecasts[0]!.channels.indexOf(targetName);
  const m = forecasts[0]!.channels.length;
  const rows = opts.horizons.map((k) => {
    // Origins with k rows ahead.
    const n = T - k - first;
    const truth = new Float64Array(n);
    const roll = new Float64Array(n);
    const lastV = new Float64Array(n);
    const seas = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const t = first + i;
      truth[i] = target[t + k]!;
      roll[i] = forecasts[i]!.values[(k - 1) * m + q]!;
      lastV[i] = target[t]!;
      if (season) seas[i] = target[t + k - season * Math.ceil(k / season)]!;
    }
    const row: RolloutRow = { k, rollout: forecastScore(roll, truth), lastValue: forecastScore(lastV, truth) };
    if (season) row.seasonalNaive = forecastScore(seas, truth);
    return row;
  });
  return { target: targetName, mode, ...(season ? { season } : {}), origins: { first, last }, rows };
}

/** The horizon table as text: RMSE / MAE of the rollout and the baselines, the best of each row marked. */
export function rolloutTable(e: RolloutEvaluation, digits = 3): string {
  const head = [
    'k',
    'origins',
    'rollout RMSE',
    'last-value RMSE',
    ...(e.season ? [`seasonal-naive(${e.season}) RMSE`] : []),
    'rollout MAE',
    'last-value MAE',
    ...(e.season ? ['seasonal-naive MAE'] : []),
  ];
  const f = (v: number, best: boolean) => `${v.toFixed(digits)}${best ? ' *' : ''}`;
  const body = e.rows.map((r) => {
    const rm = [r.rollout.rmse, r.lastValue.rmse, ...(r.seasonalNaive ? [r.seasonalNaive.rmse] : [])];
    const ma = [r.rollout.mae, r.lastValue.mae, ...(r.seasonalNaive ? [r.seasonalNaive.mae] : [])];
    const br = Math.min(...rm);
    const bm = Math.min(...ma);
    return [String(r.k), String(r.rollout.n), ...rm.map((v) => f(v, v === br)), ...ma.map((v) => f(v, v === bm))];
  });
  const all = [head, ...body];
  const w = head.map((_, j) => Math.max(...all.map((r) => r[j]!.length)));
  const line = (r: string[]) => r.map((c, j) => c.padStart(w[j]!)).join('  ');
  return [
    `rollout of '${e.target}' (${e.mode === 'stream' ? 'step model, state carried from row 0' : 'window model'}), origins from row ${e.origins.first}; * best`,
    line(head),
    w.map((n) => '-'.repeat(n)).join('  '),
    ...body.map(line),
  ].join('\n');
}

/** A self-contained HTML page: per model, RMSE against k for the rollout and the baselines, and the table. */
export function rolloutHtml(title: string, results: readonly (RolloutEvaluation & { model: string })[]): string {
  const figures = results.map((r) => {
    const x = r.rows.map((row) => row.k);
    const series = [
      { name: 'rollout', color: '#1f77b4', x, y: r.rows.map((row) => row.rollout.rmse), dots: true },
      { name: 'last value', color: '#555', x, y: r.rows.map((row) => row.lastValue.rmse), dash: true, dots: true },
      ...(r.season
        ? [{ name: `seasonal naive (${r.season})`, color: '#2ca02c', x, y: r.rows.map((row) => row.seasonalNaive!.rmse), dash: true, dots: true }]
        : []),
    ];
    return `${linePlot(series, `${r.model}: RMSE of '${r.target}' against steps ahead (origins from row ${r.origins.first})`, `RMSE (${r.target})`, 'steps ahead (k)')}<pre>${esc(rolloutTable(r))}</pre>`;
  });
  return htmlPage(title, `${figures.join('\n')}\n<p>Errors compound with k: each step feeds the previous prediction back. Generated by streamcell.</p>`);
}
