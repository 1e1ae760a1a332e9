/**
 * Task metrics of an ONNX model on a CSV, using the model's preprocessing: MAE/RMSE for
 * forecasting (in target units), accuracy and macro F1 for classification. Sequence models
 * see sliding windows; step models are streamed over the whole series with state carried.
 */
import { InputError } from '../errors.js';
import { resolveBackend } from '../runtime/backend-impl.js';
import type { BackendName, TensorData } from '../runtime/backend.js';
import { readModelInfo } from '../runtime/step-model.js';
import { stepOverSequence } from '../runtime/step-sequence.js';
import { column, fillGaps, readCsv, type Table } from './csv.js';
import { classifyScore, forecastScore } from './metrics.js';
import type { PreprocessingJson } from './preprocessing.js';

export interface Metrics {
  task: 'forecast' | 'classify';
  n: number;
  mae?: number;
  rmse?: number;
  accuracy?: number;
  f1?: number;
  /** The metric the gate compares: rmse (lower is better) or accuracy (higher is better). */
  primary: { name: 'rmse' | 'accuracy'; value: number; higherIsBetter: boolean };
}

export interface Evaluation {
  metrics: Metrics;
  /** Per evaluated position: predicted value (forecast) or class index (classify). */
  predictions: Float64Array;
  /** Raw model outputs, flattened [n, outputs]. */
  raw: Float32Array;
  truth: Float64Array;
  /** Row index of each evaluated position. */
  rows: Int32Array;
  gapsFilled: number;
}

export interface Dataset {
  table: Table;
  /** Per channel of the preprocessing: the CSV column, gaps filled, in its own units. */
  raw: Float64Array[];
  /** The same, normalised (the model's inputs). */
  features: Float32Array[];
  gapsFilled: number;
}

/** Reads the CSV columns the preprocessing names, fills gaps, normalises. */
export async function loadDataset(file: string, pre: PreprocessingJson): Promise<Dataset> {
  const table = await readCsv(file, { textColumns: pre.task === 'classify' && pre.label ? [pre.label] : [] });
  let gapsFilled = 0;
  const raw = pre.channels.map((c) => {
    const v = Float64Array.from(column(table, c));
    gapsFilled += fillGaps(v);
    return v;
  });
  const features = raw.map((v, i) => {
    const { mean, std } = pre.normalization[pre.channels[i]!]!;
    return Float32Array.from(v, (x) => (x - mean) / std);
  });
  if (table.rows <= pre.window)
    throw new InputError(`the CSV has ${table.rows} rows; the model's window needs more than ${pre.window}`, {
      file,
      expected: `more than ${pre.window} rows`,
    });
  return { table, raw, features, gapsFilled };
}

/** The task metrics of predictions (forecast values or class indices) against the truth. */
export function metricsOf(pre: PreprocessingJson, pred: Float64Array, truth: Float64Array): Metrics {
  if (pre.task === 'forecast') {
    const { n, rmse, mae } = forecastScore(pred, truth);
    return { task: 'forecast', n, mae, rmse, primary: { name: 'rmse', value: rmse, higherIsBetter: false } };
  }
  const { n, accuracy, f1 } = classifyScore(pred, truth, pre.classes!.length);
  return { task: 'classify', n, accuracy, f1, primary: { name: 'accuracy', value: accuracy, higherIsBetter: true } };
}

/** A [positions, W, channels] batch of the normalised windows ending just before each position. */
export function windowBatch(data: Dataset, positions: number[], W: number): TensorData {
  const C = data.features.length;
  const x = new Float32Array(positions.length * W * C);
  positions.forEach((t, b) => {
    for (let k = 0; k < W; k++) for (let c = 0; c < C; c++) x[(b * W + k) * C + c] = data.features[c]![t - W + k]!;
  });
  return { type: 'float32', data: x, dims: [positions.length, W, C] };
}

/** Row `t` of the features as one step model input: [1, 1, C] (rank 3) or [1, C]. */
export function stepRow(data: Dataset, t: number, rank: number): TensorData {
  const C = data.features.length;
  const x = new Float32Array(C);
  for (let c = 0; c < C; c++) x[c] = data.features[c]![t]!;
  return { type: 'float32', data: x, dims: rank === 3 ? [1, 1, C] : [1, C] };
}

/** Positions evaluated: every row for a forecaster, every half window for a classifier (as `train`'s default stride). */
export function defaultStride(pre: PreprocessingJson): number {
  return pre.task === 'classify' ? Math.max(1, Math.floor(pre.window / 2)) : 1;
}

/**
 * Evaluates `model` (ONNX bytes) on `data` with `pre`.
 *
 * @example
 * const e = await evaluateModel(bytes, pre, await loadDataset('test.csv', pre));
 * console.log(e.metrics.rmse);
 */
export async function evaluateModel(
  model: Uint8Array,
  pre: PreprocessingJson,
  data: Dataset,
  opts: { backend?: BackendName; stride?: number; maxWindows?: number } = {},
): Promise<Evaluation> {
  const info = readModelInfo(model);
  const { backend } = await resolveBackend(opts.backend ? [opts.backend] : undefined);
  const session = await backend.createSession(model);
  const W = pre.window;
  const T = data.table.rows;
  const horizon = pre.horizon ?? 1;
  const target = pre.task === 'forecast' ? Float64Array.from(column(data.table, pre.target ?? pre.channels[0]!)) : undefined;
  if (target) fillGaps(target);
  const labels = pre.task === 'classify' ? data.table.text.get(pre.label!) : undefined;
  const classIndex = new Map((pre.classes ?? []).map((c, i) => [c, i]));
  // Positions t: the model has seen rows < t (forecast predicts row t + horizon − 1) or ≤ t − 1 (classify labels row t − 1).
  const stride = opts.stride ?? defaultStride(pre);
  const positions: number[] = [];
  for (let t = W; t <= T - (pre.task === 'forecast' ? horizon : 0); t += stride) positions.push(t);
  if (opts.maxWindows && positions.length > opts.maxWindows) positions.splice(0, positions.length - opts.maxWindows);
  const outName = info.predictionOutputs[0]!.name;
  const inName = info.sampleInputs[0]!.name;
  const raws: number[] = [];
  let outSize = 0;
  try {
    if (info.kind === 'step') {
      // Stream the series from its start with state carried; read predictions at the positions.
      const want = new Set(positions);
      const rank = info.sampleInputs[0]!.dims.length;
      await stepOverSequence(session, info, T, (t) => ({ [inName]: stepRow(data, t, rank) }), {
        onStep: (t, r) => {
          if (!want.has(t + 1)) return;
          const y = r[outName]!.data as Float32Array;
          outSize = y.length;
          raws.push(...y);
        },
      });
    } else {
      const B = 256;
      for (let i = 0; i < positions.length; i += B) {
        const chunk = positions.slice(i, i + B);
        const r = await session.run({ [inName]: windowBatch(data, chunk, W) });
        const y = r[outName]!.data as Float32Array;
        outSize = y.length / chunk.length;
        raws.push(...y);
      }
    }
  } finally {
    await session.release();
  }
  const n = positions.length;
  const pred = new Float64Array(n);
  const truth = new Float64Array(n);
  positions.forEach((t, i) => {
    const y = raws.slice(i * outSize, (i + 1) * outSize);
    if (pre.task === 'forecast') {
      const o = pre.output ?? {
        kind: 'value',
        mean: pre.normalization[pre.target ?? pre.channels[0]!]!.mean,
        std: pre.normalization[pre.target ?? pre.channels[0]!]!.std,
      };
      const v = o.mean + o.std * y[0]!;
      pred[i] = o.kind === 'delta' ? target![t - 1]! + v : v;
      truth[i] = target![t + horizon - 1]!;
    } else {
      let best = 0;
      for (let c = 1; c < y.length; c++) if (y[c]! > y[best]!) best = c;
      pred[i] = best;
      const label = labels![t - 1]!;
      const idx = classIndex.get(label);
      if (idx === undefined)
        throw new InputError(`label '${label}' is not one of the model's classes`, {
          file: data.table.file,
          line: t + 1,
          field: pre.label,
          expected: pre.classes!.join(', '),
        });
      truth[i] = idx;
    }
  });
  return {
    metrics: metricsOf(pre, pred, truth),
    predictions: pred,
    raw: Float32Array.from(raws),
    truth,
    rows: Int32Array.from(positions),
    gapsFilled: data.gapsFilled,
  };
}
