import { resolve } from 'node:path';
import type { Argv } from 'yargs';
import { InputError } from '../../errors.js';
import { backendChoice, describeBackend, withBackendOption } from '../backend-option.js';
import { commaList, emit, guarded, type ArgsOf } from '../output.js';

export const command = 'forecast <model>';
export const describe = 'Warm a forecaster on the history in a CSV and print the next K steps, each prediction fed back as the next input';

export function builder(y: Argv) {
  const withOptions = y
    .positional('model', { type: 'string', describe: 'forecaster: ONNX (step or sequence), tfjs model.json or its folder, or a bundle', demandOption: true })
    .option('input', { alias: 'i', type: 'string', demandOption: true, describe: "CSV with the model's channels (the history)" })
    .option('steps', { alias: 'k', type: 'number', demandOption: true, describe: 'steps ahead to forecast' })
    .option('from', { type: 'number', describe: 'last row of history to use (0-based data row; default: the last row); later rows are shown as the truth' })
    .option('hold', { type: 'string', describe: 'comma-separated input channels the model does not predict, held at their last value' })
    .option('preprocessing', { type: 'string', describe: 'preprocessing.json when the model carries none' })
    .option('plot', { type: 'boolean', default: true, describe: 'a small terminal plot of the history and the forecast (--no-plot: the table only)' });
  return withBackendOption(withOptions);
}

/** A terminal plot: the last history rows ('·'), the forecast ('*') and the truth ahead when known ('o'), `height` rows tall. */
export function terminalPlot(history: number[], forecast: number[], truth: number[], height = 10, width = 72): string {
  const fWidth = Math.min(forecast.length, Math.floor(width / 2));
  const hWidth = Math.min(history.length, width - fWidth);
  // More steps than columns: every column shows the step it falls on.
  const pick = (a: number[], n: number) => Array.from({ length: n }, (_, i) => a[Math.floor((i * a.length) / n)]!);
  const h = history.slice(-hWidth);
  const f = pick(forecast, fWidth);
  const t = truth.length ? pick(truth, Math.min(fWidth, truth.length)) : [];
  const all = [...h, ...f, ...t].filter(Number.isFinite);
  let lo = Math.min(...all);
  let hi = Math.max(...all);
  if (lo === hi) [lo, hi] = [lo - 1, hi + 1];
  const grid = Array.from({ length: height }, () => new Array<string>(h.length + f.length).fill(' '));
  const put = (col: number, v: number, ch: string) => {
    if (!Number.isFinite(v)) return;
    const row = height - 1 - Math.round(((v - lo) / (hi - lo)) * (height - 1));
    grid[row]![col] = ch;
  };
  h.forEach((v, i) => put(i, v, '·'));
  t.forEach((v, i) => put(h.length + i, v, 'o'));
  f.forEach((v, i) => put(h.length + i, v, '*'));
  const label = (v: number) => v.toPrecision(6).padStart(11);
  return grid
    .map((r, i) => `${i === 0 ? label(hi) : i === height - 1 ? label(lo) : ' '.repeat(11)} |${r.join('')}`)
    .concat(
      `${' '.repeat(11)} +${'-'.repeat(h.length)}|${'-'.repeat(f.length)}> ${truth.length ? '(· history, * forecast, o truth)' : '(· history, * forecast)'}`,
    )
    .join('\n');
}

export async function handler(args: ArgsOf<typeof builder>): Promise<void> {
  await guarded(args, async () => {
    const { forecasterModel, withHoldFlag } = await import('../any-model.js');
    const { loadDataset } = await import('../../data/evaluate.js');
    const { MAX_ROLLOUT } = await import('../../runtime/forecast.js');
    const { readModelInfo } = await import('../../runtime/step-model.js');
    const K = args.steps;
    if (!Number.isInteger(K) || K < 1 || K > MAX_ROLLOUT)
      throw new InputError(`--steps is ${K}`, { field: '--steps', expected: `an integer from 1 to ${MAX_ROLLOUT}` });
    const choice = backendChoice(args);
    const file = resolve(args.model);
    const { bytes, pre } = await forecasterModel(args.model, choice, args.preprocessing);
    const input = resolve(args.input);
    const data = await loadDataset(input, pre);
    const T = data.table.rows;
    const from = args.from ?? T - 1;
    if (!Number.isInteger(from) || from < 0 || from >= T)
      throw new InputError(`--from is ${args.from}`, { file: input, field: '--from', expected: `a data row from 0 to ${T - 1}` });
    const info = readModelInfo(bytes, file);
    if (info.kind !== 'step' && from < pre.window - 1)
      throw new InputError(`--from ${from}: the window model needs ${pre.window} rows of history`, { field: '--from', expected: `at least ${pre.window - 1}` });
    const raw = data.raw;
    const { resolveBackend } = await import('../../runtime/backend-impl.js');
    const { record } = await resolveBackend(choice.force ? { force: choice.force } : { prefer: choice.prefer });
    const { poolFor } = await import('../../data/rollout-eval.js');
    const pool = await poolFor(bytes, pre, record.name);
    let f;
    try {
      const x = new Float32Array(pre.channels.length);
      for (let t = 0; t <= from; t++) {
        for (let c = 0; c < x.length; c++) x[c] = data.features[c]![t]!;
        await pool.push('history', x);
      }
      const hold = commaList(args.hold);
      f = await withHoldFlag(() => pool.forecast('history', K, { hold, last: raw.map((r) => r[from]!), preprocessing: pre }));
    } finally {
      await pool.close();
    }
    const m = f.channels.length;
    const target = pre.target ?? pre.channels[0]!;
    const q = Math.max(0, f.channels.indexOf(target));
    const series = raw[pre.channels.indexOf(f.channels[q]!)]!;
    const truth = Array.from(series.subarray(from + 1, Math.min(T, from + 1 + K)));
    const values = Array.from({ length: K }, (_, j) => Array.from(f.values.subarray(j * m, (j + 1) * m)));
    emit(args, { ok: true, model: file, input, from, step: f.step, channels: f.channels, values, ...(truth.length ? { truth } : {}), backend: record }, () => {
      const lines = [`${K} step${K > 1 ? 's' : ''} after row ${from} of ${input} (${f.channels.join(', ')}; each prediction fed back as the next input)`];
      lines.push(`${'k'.padStart(5)}  ${f.channels.map((c) => c.padStart(12)).join('  ')}${truth.length ? `  ${`truth ${f.channels[q]}`.padStart(14)}` : ''}`);
      values.forEach((row, j) =>
        lines.push(
          `${String(j + 1).padStart(5)}  ${row.map((v) => v.toPrecision(7).padStart(12)).join('  ')}${j < truth.length ? `  ${truth[j]!.toPrecision(7).padStart(14)}` : ''}`,
        ),
      );
      if (args.plot)
        lines.push(
          '',
          terminalPlot(
            Array.from(series.subarray(Math.max(0, from + 1 - 48), from + 1)),
            values.map((r) => r[q]!),
            truth,
          ),
        );
      lines.push(describeBackend(record));
      return lines.join('\n');
    });
  });
}
