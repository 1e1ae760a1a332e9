/**
 * Training data: CSV columns → cleaned series → chronological split → normalised sliding
 * windows. Pure functions (no tfjs), shared by the trainer and its tests.
 *
 * Window positions follow src/data/evaluate.ts: at position t the model has seen rows
 * [t − window, t); a forecast targets row t + horizon − 1, a classification labels row t − 1.
 * A window belongs to the split its target/label row falls in, so no training target lies in
 * the validation or test part (their input windows may reach back into the part before).
 */
import { readFile } from 'node:fs/promises';
import { InputError } from '../errors.js';
import { column, fillGaps, parseCsv } from '../data/csv.js';

export type Task = 'forecast' | 'classify';

export interface DataSpec {
  task: Task;
  /** Model input columns in feature order (forecast: the target first). */
  channels: string[];
  /** forecast: the column to predict. */
  target?: string;
  /** classify: the label column (text). */
  label?: string;
}

export interface CleanData {
  file: string;
  /** Data rows in the CSV. */
  rows: number;
  /** Per channel, raw units, gaps filled (forecast) or gap rows dropped (classify). */
  series: Float64Array[];
  /** classify: label per kept row. */
  labels?: string[];
  /** forecast: gaps filled by linear interpolation, per channel. */
  gapsFilled: Record<string, number>;
  /** classify: rows dropped because a channel or the label was empty/NaN. */
  rowsDropped: number;
}

export interface Stats {
  mean: number;
  std: number;
}

/** Names the option a column came from, for error messages. */
export type ColumnRole = Record<string, string>;

/**
 * Reads the columns `spec` names from a CSV. Columns the model does not use are not parsed as
 * numbers (a date column may hold anything); used columns must be numeric or empty.
 */
export async function loadTrainingData(file: string, spec: DataSpec, roles: ColumnRole = {}): Promise<CleanData> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new InputError(`cannot read '${file}': ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, {
      file,
      option: 'data',
      expected: 'a CSV file with a header row',
    });
  }
  const header = parseCsv(text.split(/\r?\n/, 1)[0] ?? '', file).columns;
  const wanted = [...spec.channels, ...(spec.label ? [spec.label] : [])];
  for (const c of wanted) {
    if (!header.includes(c)) {
      throw new InputError(`no column '${c}' in ${file}`, {
        file,
        line: 1,
        ...(roles[c] ? { option: roles[c] } : { field: c }),
        expected: `a column of: ${header.join(', ')}`,
      });
    }
  }
  if (spec.label && spec.channels.includes(spec.label)) {
    throw new InputError(`'${spec.label}' is both the label and an input`, { option: 'inputs', expected: 'input columns other than the label' });
  }
  const table = parseCsv(text, file, { textColumns: header.filter((c) => !spec.channels.includes(c)) });
  const cols = spec.channels.map((c) => Float64Array.from(column(table, c)));
  const gapsFilled: Record<string, number> = {};
  if (spec.task === 'forecast') {
    spec.channels.forEach((c, i) => {
      gapsFilled[c] = fillGaps(cols[i]!);
      if (table.rows > 0 && Number.isNaN(cols[i]![0]!))
        throw new InputError(`column '${c}' has no numbers`, { file, ...(roles[c] ? { option: roles[c] } : { field: c }), expected: 'a numeric column' });
    });
    return { file, rows: table.rows, series: cols, gapsFilled, rowsDropped: 0 };
  }
  const labelsRaw = table.text.get(spec.label!)!;
  const keep: number[] = [];
  for (let r = 0; r < table.rows; r++) {
    if (labelsRaw[r] !== '' && cols.every((v) => Number.isFinite(v[r]!))) keep.push(r);
  }
  return {
    file,
    rows: table.rows,
    series: cols.map((v) => Float64Array.from(keep, (r) => v[r]!)),
    labels: keep.map((r) => labelsRaw[r]!),
    gapsFilled,
    rowsDropped: table.rows - keep.length,
  };
}

/** `--split 0.7,0.15` → row indices where validation and test start. */
export function splitBounds(rows: number, split: [number, number]): { trainEnd: number; valEnd: number } {
  const [a, b] = split;
  if (!(a > 0 && b >= 0 && a + b < 1)) {
    throw new InputError(`split ${split.join(',')}`, {
      option: 'split',
      expected: 'TRAIN,VALIDATION fractions with TRAIN > 0, VALIDATION ≥ 0 and TRAIN + VALIDATION < 1 (the rest is the test part), e.g. 0.7,0.15',
    });
  }
  return { trainEnd: Math.floor(rows * a), valEnd: Math.floor(rows * (a + b)) };
}

/** Mean and population standard deviation of v[from, to); a constant series gets std 1. */
export function stats(v: ArrayLike<number>, from = 0, to = v.length): Stats {
  const n = to - from;
  let mean = 0;
  for (let i = from; i < to; i++) mean += v[i]!;
  mean /= n;
  let ss = 0;
  for (let i = from; i < to; i++) ss += (v[i]! - mean) ** 2;
  const std = Math.sqrt(ss / n);
  return { mean, std: std > 1e-12 * Math.max(1, Math.abs(mean)) ? std : 1 };
}

/** Statistics of the change v[i] − v[i − lag] over i in [lag, to). */
export function changeStats(v: ArrayLike<number>, lag: number, to: number): Stats {
  const d = new Float64Array(Math.max(0, to - lag));
  for (let i = lag; i < to; i++) d[i - lag] = v[i]! - v[i - lag]!;
  return stats(d);
}

export function normalise(v: Float64Array, s: Stats): Float32Array {
  return Float32Array.from(v, (x) => (x - s.mean) / s.std);
}

/** Windows in row-major [n, window, channels] with their targets [n, outputs]. */
export interface Windows {
  x: Float32Array;
  y: Float32Array;
  n: number;
  window: number;
  channels: number;
  outputs: number;
  /** Position t of each window (rows [t − window, t) are its input). */
  positions: Int32Array;
}

/** Window i of `w` alone (views, no copy): what a per-prediction latency is measured on. */
export function oneWindow(w: Windows, i: number): Windows {
  const size = w.window * w.channels;
  return {
    ...w,
    n: 1,
    x: w.x.subarray(i * size, (i + 1) * size),
    y: w.y.subarray(i * w.outputs, (i + 1) * w.outputs),
    positions: w.positions.subarray(i, i + 1),
  };
}

function pack(z: Float32Array[], window: number, positions: number[], outputs: number, target: (t: number, out: Float32Array, o: number) => void): Windows {
  const C = z.length;
  const n = positions.length;
  const x = new Float32Array(n * window * C);
  const y = new Float32Array(n * outputs);
  positions.forEach((t, i) => {
    for (let k = 0; k < window; k++) for (let c = 0; c < C; c++) x[(i * window + k) * C + c] = z[c]![t - window + k]!;
    target(t, y, i * outputs);
  });
  return { x, y, n, window, channels: C, outputs, positions: Int32Array.from(positions) };
}

/**
 * Forecast windows whose target row t + horizon − 1 lies in [from, to). The target is the
 * standardised change from the last seen value: (v[t + h − 1] − v[t − 1] − out.mean) / out.std.
 */
export function forecastWindows(
  z: Float32Array[],
  target: Float64Array,
  out: Stats,
  window: number,
  horizon: number,
  from: number,
  to: number,
  stride = 1,
): Windows {
  const positions: number[] = [];
  for (let t = window; t + horizon - 1 < to; t += stride) if (t + horizon - 1 >= from) positions.push(t);
  return pack(z, window, positions, 1, (t, y, o) => {
    y[o] = (target[t + horizon - 1]! - target[t - 1]! - out.mean) / out.std;
  });
}

/**
 * Windows for multi-step (rollout) training: the one-step forecast windows whose next `steps`
 * rows lie before `to`, each with `steps` targets, the standardised change of every step:
 * (v[t + j] − v[t + j − 1] − out.mean) / out.std for j = 0 … steps − 1.
 */
export function rolloutWindows(
  z: Float32Array[],
  target: Float64Array,
  out: Stats,
  window: number,
  steps: number,
  from: number,
  to: number,
  stride = 1,
): Windows {
  const positions: number[] = [];
  for (let t = window; t + steps - 1 < to; t += stride) if (t >= from) positions.push(t);
  return pack(z, window, positions, steps, (t, y, o) => {
    for (let j = 0; j < steps; j++) y[o + j] = (target[t + j]! - target[t + j - 1]! - out.mean) / out.std;
  });
}

/** Classification windows whose labelled row t − 1 lies in [from, to); targets one-hot. */
export function classifyWindows(z: Float32Array[], labels: Int32Array, classes: number, window: number, from: number, to: number, stride: number): Windows {
  const positions: number[] = [];
  // The same grid as evaluate.ts (t = window, window + stride, …), so test windows are among its positions.
  for (let t = window; t <= to; t += stride) if (t - 1 >= from) positions.push(t);
  return pack(z, window, positions, classes, (t, y, o) => {
    y[o + labels[t - 1]!] = 1;
  });
}
