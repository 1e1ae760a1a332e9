/**
 * `streamcell train`: CSV → tfjs model → model.json + weights.bin + preprocessing.json +
 * training-report.json, with the test metric next to a naive baseline.
 *
 * Forecasting predicts the standardised change of the target `horizon` steps ahead from its
 * last seen value (preprocessing output {kind: 'delta'}). By default the model's first layer
 * is a fixed causal difference ('diff', see {@link TrainOptions.diff}): the recurrent layers
 * then see week-over-week changes instead of a level that drifts out of the training range,
 * which is what lets a small LSTM beat the last-value baseline on trending series. The layer is
 * part of the model, so the inputs stay the plain normalised channels that the daemon feeds.
 */
import { writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LayersModel, Tensor } from '@tensorflow/tfjs';
import { CheckFailedError, InputError } from '../errors.js';
import { MAX_GENERATED_ELEMENTS } from '../limits.js';
import type { PreprocessingJson } from '../data/preprocessing.js';
import { loadTfjs, type Tf } from '../export/tfjs-backend.js';
import { formatArch, parseArch, type ArchLayer } from './arch.js';
import {
  changeStats,
  classifyWindows,
  forecastWindows,
  loadTrainingData,
  normalise,
  rolloutWindows,
  splitBounds,
  stats,
  type DataSpec,
  type Stats,
  type Windows,
} from './data.js';
import { argmaxRows, classifyScore, forecastScore } from '../data/metrics.js';
import { rng } from '../data/random.js';
import { buildArModel, buildModel, countParameters, rolloutModel, saveModel } from './model.js';
import { arPredict, fitAr } from './ar.js';
import { fitLogistic } from './logistic.js';

/** Options of {@link trainModel}: the CSV, the target (forecast) or label (classify), inputs, window, architecture and training settings. */
export interface TrainOptions {
  /** CSV file with a header row. */
  data: string;
  /** forecast: the column to predict (one of target/label is required). */
  target?: string;
  /** classify: the text column with the class of each row. */
  label?: string;
  /** Input columns besides the target (forecast; default none) or the inputs (classify; required). */
  inputs?: string[];
  window: number;
  /** forecast: predict the target this many steps ahead (default 1). */
  horizon?: number;
  /** e.g. "lstm:32,dense:16", see src/train/arch.ts. */
  arch: string | ArchLayer[];
  /** Train and validation fractions, chronological; the rest is the test part (default [0.7, 0.15]). */
  split?: [number, number];
  /**
   * Which normalised channels the fixed first layer turns into first differences, scaled to
   * unit standard deviation on the training part: 'target' (forecast default), 'all', or
   * 'none' (classify default; no diff layer).
   */
  diff?: 'target' | 'all' | 'none';
  epochs?: number;
  batchSize?: number;
  /** Adam learning rate (default 0.005). */
  lr?: number;
  /** Early stopping: stop after this many epochs without a lower validation loss, keep the best weights (0: off; default 5). */
  patience?: number;
  /** Dropout after each recurrent and hidden dense layer (default 0). */
  dropout?: number;
  /** Seeds initializers, dropout masks and the shuffle order (default 42). */
  seed?: number;
  /** Shuffle training windows each epoch, in seeded order (default true). */
  shuffle?: boolean;
  /** Distance between window positions (default: 1 forecast, window/2 classify, as evaluate.ts). */
  stride?: number;
  /** Samples per second, recorded in preprocessing.json. */
  sampleRate?: number;
  /**
   * forecast, horizon 1: train on the loss of a `rolloutLoss`-step rollout (each prediction fed
   * back as the next input inside the graph, the other inputs held), averaged over the steps,
   * instead of the one-step loss; validation and early stopping use the same loss. Default 1.
   */
  rolloutLoss?: number;
  /** forecast: season length in rows for the seasonal-naive baseline (e.g. 52 for weekly data). */
  season?: number;
  /** Write the model, preprocessing.json and training-report.json here. */
  outDir?: string;
  /**
   * tfjs backend: 'auto' (default: tfjs-node when it loads, else the WebAssembly backend, else
   * the cpu backend), or 'cpu' / 'wasm' of @tensorflow/tfjs (tfjs-node is then not used).
   */
  backend?: 'auto' | 'cpu' | 'wasm';
  onProgress?: (p: TrainProgress) => void;
}

/** A progress event of {@link trainModel} (per batch and at each epoch end), with elapsed time and ETA. */
export interface TrainProgress {
  /** 1-based. */
  epoch: number;
  epochs: number;
  /** Batches done in this epoch. */
  batch: number;
  batches: number;
  loss: number;
  valLoss?: number;
  /** True on the event that closes an epoch. */
  epochEnd: boolean;
  elapsedSeconds: number;
  etaSeconds: number;
}

/** One epoch of training: its number, loss, validation loss and duration. */
export interface EpochRecord {
  epoch: number;
  loss: number;
  valLoss?: number;
  seconds: number;
}

/** Test metrics: RMSE and MAE for a forecaster, accuracy and macro-F1 for a classifier. */
export interface Score {
  n: number;
  rmse?: number;
  mae?: number;
  accuracy?: number;
  f1?: number;
}

/** One baseline of the training report: its test score (and validation score when fitted), size, and where a deployable one was saved. */
export interface BaselineReport {
  name: string;
  kind: 'last-value' | 'seasonal-naive' | 'ar' | 'majority' | 'logistic';
  test: Score;
  /** Fitted baselines: the validation score the fit was chosen on. */
  validation?: Score;
  /** Fitted values (0 for the naive ones). */
  parameters: number;
  /** AR(p): its order. */
  p?: number;
  /** AR(p): ridge strength relative to the mean feature variance; logistic: L2 strength on standardised features. */
  lambda?: number;
  /** logistic: what its features are. */
  features?: string;
  /** AR(p) with an output folder: its model.json (export, streamify, bundle and stream take it like any trained model). */
  modelJson?: string;
}

/** The training report (also training-report.json): data and split, model, training history, test metric next to the naive baseline, backend and timing. */
export interface TrainReport {
  ok: true;
  task: 'forecast' | 'classify';
  data: {
    file: string;
    rows: number;
    gapsFilled: Record<string, number>;
    rowsDropped: number;
    /** Row index where validation and test begin, and the rows used. */
    split: { trainEnd: number; valEnd: number; rows: number };
    windows: { train: number; validation: number; test: number };
  };
  model: {
    arch: string;
    inputs: string[];
    /** Channels the fixed 'diff' layer differences (empty: no diff layer). */
    diff: string[];
    parameters: number;
    layers: string[];
  };
  training: {
    epochs: number;
    maxEpochs: number;
    bestEpoch: number;
    stoppedEarly: boolean;
    batchSize: number;
    lr: number;
    patience: number;
    dropout: number;
    seed: number;
    shuffle: boolean;
    /** Steps of the training loss (1: one-step; see TrainOptions.rolloutLoss). */
    rolloutLoss: number;
    history: EpochRecord[];
  };
  /** Test part, in target units (forecast) or classes. */
  test: Score;
  /** Validation part, scored as the test part (absent without validation windows); `train --arch` picks on it. */
  validation?: Score;
  baseline: Score & { name: string };
  /**
   * Every baseline on the same test windows: forecast — last value, seasonal naive (with
   * `season`), AR(p) fitted on the training windows (saved in `ar/` with an output folder);
   * classify — the majority class and a logistic regression on window summaries.
   */
  baselines: BaselineReport[];
  primary: { name: 'rmse' | 'accuracy'; model: number; baseline: number; higherIsBetter: boolean; beatsBaseline: boolean };
  backend: string;
  fallbackReason?: string;
  seconds: number;
  meanEpochSeconds: number;
  /** Training windows per second of epoch time (an epoch's time includes its validation pass), over all epochs. */
  windowsPerSecond: number;
  files?: { modelJson: string; weightsBin: string; preprocessing: string; report: string };
}

/** preprocessing.json as written: the toolkit's format plus provenance the exporter leaves out of the ONNX metadata. */
export type WrittenPreprocessing = PreprocessingJson & { seed: number; data: Record<string, unknown>; metrics: Record<string, unknown> };

/** What {@link trainModel} returns: the report, the preprocessing written next to the model, and the weights. */
export interface TrainResult {
  report: TrainReport;
  preprocessing: WrittenPreprocessing;
  /** weights.bin bytes (also when nothing is written). */
  weights: Uint8Array;
}

/** Default training batch size (`--batch-size`). */
export const DEFAULT_BATCH_SIZE = 64;

const DEFAULTS = {
  horizon: 1,
  split: [0.7, 0.15] as [number, number],
  epochs: 20,
  batchSize: DEFAULT_BATCH_SIZE,
  lr: 0.005,
  patience: 5,
  dropout: 0,
  seed: 42,
  shuffle: true,
};

function check(ok: boolean, option: string, got: unknown, expected: string): void {
  if (!ok) throw new InputError(`option '${option}' is ${JSON.stringify(got)}`, { option, expected });
}

const MAX_CLASSES = 256;

const isPosInt = (v: number) => Number.isInteger(v) && v >= 1;

async function withSeededMathRandom<T>(seed: number, body: () => Promise<T>): Promise<T> {
  const original = Math.random;
  // tfjs draws dropout masks and fit's shuffle order from Math.random.
  Math.random = rng(seed);
  try {
    return await body();
  } finally {
    Math.random = original;
  }
}

/** tfjs warns that orthogonal initialisation of matrices over 2000 elements is slow; it takes milliseconds here. */
function quietly<T>(body: () => T): T {
  const warn = console.warn;
  console.warn = () => {};
  try {
    return body();
  } finally {
    console.warn = warn;
  }
}

function resolveSpec(o: TrainOptions): { spec: DataSpec; roles: Record<string, string> } {
  if ((o.target === undefined) === (o.label === undefined)) {
    throw new InputError(
      o.target === undefined ? 'name the column to forecast (option "target") or to classify by (option "label")' : 'target and label both given',
      {
        option: o.target === undefined ? 'target' : 'label',
        expected: 'target: COL to forecast, or label: COL to classify',
      },
    );
  }
  const roles: Record<string, string> = {};
  for (const c of o.inputs ?? []) roles[c] = 'inputs';
  if (o.target !== undefined) {
    roles[o.target] = 'target';
    const channels = [o.target, ...(o.inputs ?? []).filter((c) => c !== o.target)];
    return { spec: { task: 'forecast', channels: [...new Set(channels)], target: o.target }, roles };
  }
  roles[o.label!] = 'label';
  if (!o.inputs || o.inputs.length === 0)
    throw new InputError('classification needs its input columns', { option: 'inputs', expected: 'comma-separated numeric columns, e.g. ax,ay,az' });
  return { spec: { task: 'classify', channels: [...new Set(o.inputs)], label: o.label }, roles };
}

function diffKernel(series: Float64Array[], norms: Stats[], which: boolean[], trainEnd: number): Float32Array {
  const C = series.length;
  const k = new Float32Array(2 * C * C); // Keras Conv1D kernel [k=2, in=C, out=C]
  for (let c = 0; c < C; c++) {
    if (which[c]) {
      // Scale the difference of the normalised channel to unit std on the training part.
      const a = norms[c]!.std / changeStats(series[c]!, 1, trainEnd).std;
      k[(0 * C + c) * C + c] = -a;
      k[(1 * C + c) * C + c] = a;
    } else k[(1 * C + c) * C + c] = 1;
  }
  return k;
}

/**
 * Trains a forecaster (`target`) or classifier (`label`) on a CSV.
 *
 * @example
 * const { report } = await trainModel({ data: 'co2.csv', target: 'co2', window: 52, arch: 'lstm:32', outDir: 'out' });
 * console.log(report.test.rmse, 'vs last value', report.baseline.rmse);
 */
export async function trainModel(opts: TrainOptions): Promise<TrainResult> {
  const t0 = performance.now();
  const st = resolveSettings(opts);
  const d = await prepareData(st);
  const fit = await fitAndPredict(st, d, opts);
  const { score, baseline } = scoreTest(st, d, fit.y);
  const baselines = await fitBaselines(st, d, baseline, opts.outDir);
  return writeResults(st, d, fit, score, baseline, baselines, opts, (performance.now() - t0) / 1000);
}

/** Options with their defaults, checked (errors name the option). */
function resolveSettings(opts: TrainOptions) {
  const { spec, roles } = resolveSpec(opts);
  const forecast = spec.task === 'forecast';
  const W = opts.window;
  const h = opts.horizon ?? DEFAULTS.horizon;
  const split = opts.split ?? DEFAULTS.split;
  const epochs = opts.epochs ?? DEFAULTS.epochs;
  const batchSize = opts.batchSize ?? DEFAULTS.batchSize;
  const lr = opts.lr ?? DEFAULTS.lr;
  const patience = opts.patience ?? DEFAULTS.patience;
  const dropout = opts.dropout ?? DEFAULTS.dropout;
  const seed = opts.seed ?? DEFAULTS.seed;
  const shuffle = opts.shuffle ?? DEFAULTS.shuffle;
  const stride = opts.stride ?? (forecast ? 1 : Math.max(1, Math.floor(W / 2)));
  const diff = opts.diff ?? (forecast ? 'target' : 'none');
  check(isPosInt(W), 'window', W, 'a positive integer number of samples');
  check(isPosInt(h), 'horizon', h, 'a positive integer number of steps ahead');
  check(isPosInt(epochs), 'epochs', epochs, 'a positive integer');
  check(isPosInt(batchSize), 'batchSize', batchSize, 'a positive integer');
  check(lr > 0 && Number.isFinite(lr), 'lr', lr, 'a positive learning rate, e.g. 0.005');
  check(Number.isInteger(patience) && patience >= 0, 'patience', patience, 'a non-negative integer (0 turns early stopping off)');
  check(dropout >= 0 && dropout < 1, 'dropout', dropout, 'a rate in [0, 1)');
  check(Number.isInteger(seed), 'seed', seed, 'an integer');
  check(isPosInt(stride), 'stride', stride, 'a positive integer');
  const rolloutLoss = opts.rolloutLoss ?? 1;
  check(isPosInt(rolloutLoss) && rolloutLoss <= 1024, 'rolloutLoss', rolloutLoss, 'a positive integer number of steps, at most 1024');
  check(rolloutLoss === 1 || (forecast && h === 1), 'rolloutLoss', rolloutLoss, '1 unless forecasting one step ahead (horizon 1)');
  check(opts.season === undefined || (isPosInt(opts.season) && forecast), 'season', opts.season, 'a positive integer number of rows, for a forecaster');
  check(['target', 'all', 'none'].includes(diff), 'diff', diff, 'target, all or none');
  check(forecast || diff !== 'target', 'diff', diff, 'all or none when classifying (there is no target)');
  check(
    opts.sampleRate === undefined || (opts.sampleRate > 0 && Number.isFinite(opts.sampleRate)),
    'sampleRate',
    opts.sampleRate,
    'samples per second, a positive number',
  );
  const backend = opts.backend ?? 'auto';
  check(['auto', 'cpu', 'wasm'].includes(backend), 'backend', backend, 'auto, cpu or wasm');
  const arch = typeof opts.arch === 'string' ? parseArch(opts.arch) : opts.arch;
  const file = resolve(opts.data);
  return {
    spec,
    roles,
    forecast,
    W,
    h,
    split,
    epochs,
    batchSize,
    lr,
    patience,
    dropout,
    seed,
    shuffle,
    stride,
    diff,
    arch,
    file,
    backend,
    rolloutLoss,
    season: opts.season,
  };
}
type Settings = ReturnType<typeof resolveSettings>;

/** The CSV → normalised series → windows of the three chronological parts (and the diff kernel). */
async function prepareData(st: Settings) {
  const { spec, roles, forecast, W, h, split, stride, diff, file } = st;
  const data = await loadTrainingData(file, spec, roles);
  const rows = data.series[0]!.length;
  const { trainEnd, valEnd } = splitBounds(rows, split);
  const tooFew = (why: string) => {
    throw new InputError(
      `${file} has ${rows} usable rows${data.rowsDropped ? ` (${data.rowsDropped} dropped for gaps)` : ''}: with window ${W}${forecast ? `, horizon ${h}` : ''} and split ${split.join(',')} ${why}`,
      {
        file,
        option: 'window',
        expected: `more rows, or a smaller window (the training part must hold at least 2 × window rows, and validation and test at least one window each)`,
      },
    );
  };
  if (trainEnd < 2 * W) tooFew(`the training part has ${trainEnd} rows, fewer than 2 × ${W}`);
  // Windows overlap: they hold about rows/stride × window × channels values, allocated up front.
  const windowValues = Math.ceil(rows / stride) * W * spec.channels.length;
  if (windowValues > MAX_GENERATED_ELEMENTS) {
    throw new InputError(
      `window ${W} with stride ${stride} cuts ${file} (${rows} rows) into windows holding ${windowValues.toExponential(2)} values, over streamcell's limit of 2^26 (${MAX_GENERATED_ELEMENTS}) for data it generates`,
      {
        file,
        option: 'window',
        expected: `a smaller window or a larger stride (at most ${Math.floor(MAX_GENERATED_ELEMENTS / (Math.ceil(rows / stride) * spec.channels.length))} samples at this stride)`,
      },
    );
  }
  const norms = data.series.map((v) => stats(v, 0, trainEnd));
  const z = data.series.map((v, i) => normalise(v, norms[i]!));
  let out: Stats | undefined;
  let classes: string[] | undefined;
  let sets: { train: Windows; val: Windows; test: Windows };
  let rolloutSets: { train: Windows; val: Windows } | undefined;
  if (forecast) {
    out = changeStats(data.series[0]!, h, trainEnd);
    const win = (from: number, to: number) => forecastWindows(z, data.series[0]!, out!, W, h, from, to, stride);
    sets = { train: win(0, trainEnd), val: win(trainEnd, valEnd), test: win(valEnd, rows) };
    if (st.rolloutLoss > 1) {
      const rw = (from: number, to: number) => rolloutWindows(z, data.series[0]!, out!, W, st.rolloutLoss, from, to, stride);
      rolloutSets = { train: rw(0, trainEnd), val: rw(trainEnd, valEnd) };
      if (rolloutSets.train.n === 0) tooFew(`the training part gets no window with ${st.rolloutLoss} rows ahead (rolloutLoss)`);
    }
  } else {
    classes = [...new Set(data.labels)].sort();
    if (classes.length > MAX_CLASSES) {
      throw new InputError(
        `label column '${spec.label}' has ${classes.length} distinct values (e.g. ${classes
          .slice(0, 3)
          .map((c) => `'${c}'`)
          .join(', ')})`,
        { file, option: 'label', expected: `a column of class names, at most ${MAX_CLASSES} classes` },
      );
    }
    if (classes.length < 2)
      throw new InputError(`label column '${spec.label}' has ${classes.length} class${classes.length === 1 ? ` ('${classes[0]}')` : 'es'}`, {
        file,
        option: 'label',
        expected: 'a column with at least two classes',
      });
    const index = new Map(classes.map((c, i) => [c, i]));
    const labels = Int32Array.from(data.labels!, (l) => index.get(l)!);
    const win = (from: number, to: number) => classifyWindows(z, labels, classes!.length, W, from, to, stride);
    sets = { train: win(0, trainEnd), val: win(trainEnd, valEnd), test: win(valEnd, rows) };
  }
  if (sets.train.n === 0) tooFew('the training part gets no window');
  if (sets.test.n === 0) tooFew('the test part gets no window');
  if (split[1] > 0 && sets.val.n === 0) tooFew('the validation part gets no window');
  const diffChannels = diff === 'none' ? [] : diff === 'all' ? spec.channels : [spec.channels[0]!];
  const kernel = diffChannels.length
    ? diffKernel(
        data.series,
        norms,
        spec.channels.map((c) => diffChannels.includes(c)),
        trainEnd,
      )
    : undefined;

  return { data, rows, trainEnd, valEnd, norms, out, classes, sets, rolloutSets, diffChannels, kernel };
}
type Prepared = Awaited<ReturnType<typeof prepareData>>;

/** Builds the model, trains it (seeded), predicts the test windows and saves it when asked. */
async function fitAndPredict(st: Settings, d: Prepared, opts: TrainOptions) {
  const { spec, forecast, arch, seed, dropout, lr, epochs, batchSize, shuffle, patience } = st;
  const { classes, sets, kernel, rolloutSets } = d;
  const { tf, backend, fallbackReason } = await loadTfjs(st.backend === 'auto' ? 'train' : st.backend);
  const C = spec.channels.length;
  const K = forecast ? 1 : classes!.length;
  const history: EpochRecord[] = [];
  let bestEpoch = 0;
  let stoppedEarly = false;
  const result = await withSeededMathRandom(seed, async () => {
    const model = quietly(() => buildModel(tf, { arch, task: spec.task, channels: C, outputs: K, seed, dropout, diffKernel: kernel }));
    try {
      // Multi-step training fits the rolled-out graph (the model's own weights, shared); the model itself is what is saved.
      const fitted = rolloutSets
        ? rolloutModel(tf, model, { steps: st.rolloutLoss, window: st.W, channels: C, add: d.out!.mean / d.norms[0]!.std, scale: d.out!.std / d.norms[0]!.std })
        : model;
      fitted.compile({ optimizer: tf.train.adam(lr), loss: forecast ? 'meanSquaredError' : 'categoricalCrossentropy' });
      const fit = await fitModel(tf, fitted, rolloutSets ?? sets, { epochs, batchSize, shuffle, patience, onProgress: opts.onProgress, history });
      bestEpoch = fit.bestEpoch;
      stoppedEarly = fit.stoppedEarly;
      const y = await predict(tf, model, sets.test);
      const yVal = sets.val.n > 0 ? await predict(tf, model, sets.val) : undefined;
      const saved = opts.outDir ? await saveModel(tf, model, resolve(opts.outDir)) : undefined;
      const weights = saved?.weightBytes ?? concatBytes(await Promise.all(model.getWeights().map((w) => w.data())));
      return { y, yVal, saved, weights, parameters: countParameters(model), layers: model.layers.map((l) => l.name) };
    } finally {
      model.dispose();
    }
  });

  return { ...result, tf: { backend, fallbackReason }, history, bestEpoch, stoppedEarly, K };
}
type Fitted = Awaited<ReturnType<typeof fitAndPredict>>;

/** Test metrics of the model and of the naive baseline (last value, or the majority class). */
function scoreTest(st: Settings, d: Prepared, y: Float32Array): { score: Score; baseline: Score & { name: string } } {
  const { forecast } = st;
  const { data, sets, classes } = d;
  const K = forecast ? 1 : classes!.length;
  const test = sets.test;
  const score = partScore(st, d, test, y);
  let baseline: Score & { name: string };
  if (forecast) {
    const target = data.series[0]!;
    const last = Float64Array.from(test.positions, (t) => target[t - 1]!);
    baseline = { name: 'last value', ...forecastScore(last, forecastTruth(st, d, test)) };
  } else {
    const truth = argmaxRows(test.y, K);
    const counts = new Array<number>(K).fill(0);
    for (const c of argmaxRows(sets.train.y, K)) counts[c]!++;
    const majority = counts.indexOf(Math.max(...counts));
    baseline = { name: `majority class '${classes![majority]}'`, ...classifyScore(new Int32Array(test.n).fill(majority), truth, K) };
  }
  return { score, baseline };
}

/** The model's score on one part's windows from its outputs `y`: in target units (forecast) or classes. */
function partScore(st: Settings, d: Prepared, w: Windows, y: Float32Array): Score {
  if (st.forecast) return forecastScore(forecastValues(d, w, y), forecastTruth(st, d, w));
  const K = d.classes!.length;
  return classifyScore(argmaxRows(y, K), argmaxRows(w.y, K), K);
}

/** Forecasts in target units from the model's outputs on windows `w` (the standardised change from the last seen value). */
function forecastValues(d: Prepared, w: Windows, y: ArrayLike<number>): Float64Array {
  const target = d.data.series[0]!;
  return Float64Array.from(w.positions, (t, i) => target[t - 1]! + d.out!.mean + d.out!.std * y[i]!);
}

/** The target row each window forecasts. */
function forecastTruth(st: Settings, d: Prepared, w: Windows): Float64Array {
  const target = d.data.series[0]!;
  return Float64Array.from(w.positions, (t) => target[t + st.h - 1]!);
}

/**
 * The baselines on the test windows besides `naive` (last value / majority class): seasonal
 * naive with a season, and AR(p) fitted on the training windows (saved as a deployable model in
 * `outDir/ar/` with its preprocessing.json).
 */
async function fitBaselines(st: Settings, d: Prepared, naive: Score & { name: string }, outDir: string | undefined): Promise<BaselineReport[]> {
  const { name: naiveName, ...naiveScore } = naive;
  if (!st.forecast) {
    const K = d.classes!.length;
    const lg = fitLogistic(d.sets.train, d.sets.val);
    const score = (w: Windows) => classifyScore(lg.predict(w), argmaxRows(w.y, K), K);
    return [
      { name: naiveName, kind: 'majority', test: naiveScore, parameters: 0 },
      {
        name: 'logistic regression',
        kind: 'logistic',
        test: score(d.sets.test),
        ...(d.sets.val.n > 0 ? { validation: score(d.sets.val) } : {}),
        parameters: lg.parameters,
        lambda: lg.lambda,
        features: lg.features,
      },
    ];
  }
  const { sets } = d;
  const target = d.data.series[0]!;
  const out: BaselineReport[] = [{ name: naiveName, kind: 'last-value', test: naiveScore, parameters: 0 }];
  const truth = forecastTruth(st, d, sets.test);
  if (st.season) {
    const S = st.season;
    // The value one or more seasons before the target row (NaN, left out, before the data starts).
    const pred = Float64Array.from(sets.test.positions, (t) => target[t + st.h - 1 - S * Math.ceil(st.h / S)] ?? NaN);
    const keep = pred.map((v) => (Number.isFinite(v) ? 1 : 0));
    out.push({
      name: `seasonal naive (${S})`,
      kind: 'seasonal-naive',
      test: forecastScore(
        pred.filter((_, i) => keep[i]),
        truth.filter((_, i) => keep[i]),
      ),
      parameters: 0,
    });
  }
  const ar = fitAr(sets.train, sets.val);
  const row: BaselineReport = {
    name: `AR(${ar.p})`,
    kind: 'ar',
    test: forecastScore(forecastValues(d, sets.test, arPredict(ar, sets.test)), truth),
    ...(sets.val.n > 0 ? { validation: forecastScore(forecastValues(d, sets.val, arPredict(ar, sets.val)), forecastTruth(st, d, sets.val)) } : {}),
    parameters: ar.parameters,
    p: ar.p,
    lambda: ar.lambda,
  };
  if (outDir) {
    const { tf } = await loadTfjs(st.backend === 'auto' ? 'train' : st.backend);
    const model = buildArModel(tf, ar);
    try {
      row.modelJson = (await saveModel(tf, model, join(resolve(outDir), 'ar'))).modelJson;
    } finally {
      model.dispose();
    }
  }
  out.push(row);
  return out;
}

/** The report and preprocessing.json, written next to the model when there is an output folder. */
async function writeResults(
  st: Settings,
  d: Prepared,
  fit: Fitted,
  score: Score,
  baseline: Score & { name: string },
  baselines: BaselineReport[],
  opts: TrainOptions,
  seconds: number,
): Promise<TrainResult> {
  const { spec, forecast, W, h, epochs, batchSize, lr, patience, dropout, seed, shuffle, arch, file } = st;
  const { data, rows, trainEnd, valEnd, norms, out, classes, sets, diffChannels } = d;
  const { history, bestEpoch, stoppedEarly } = fit;
  const { backend, fallbackReason } = fit.tf;
  const result = fit;
  const test = sets.test;
  const primaryName = forecast ? 'rmse' : 'accuracy';
  const primary = {
    name: primaryName,
    model: score[primaryName]!,
    baseline: baseline[primaryName]!,
    higherIsBetter: !forecast,
    beatsBaseline: forecast ? score.rmse! < baseline.rmse! : score.accuracy! > baseline.accuracy!,
  } as const;
  const report: TrainReport = {
    ok: true,
    task: spec.task,
    data: {
      file,
      rows: data.rows,
      gapsFilled: data.gapsFilled,
      rowsDropped: data.rowsDropped,
      split: { trainEnd, valEnd, rows },
      windows: { train: sets.train.n, validation: sets.val.n, test: test.n },
    },
    model: { arch: formatArch(arch), inputs: spec.channels, diff: diffChannels, parameters: result.parameters, layers: result.layers },
    training: {
      epochs: history.length,
      maxEpochs: epochs,
      bestEpoch,
      stoppedEarly,
      batchSize,
      lr,
      patience,
      dropout,
      seed,
      shuffle,
      rolloutLoss: st.rolloutLoss,
      history,
    },
    test: score,
    ...(fit.yVal ? { validation: partScore(st, d, sets.val, fit.yVal) } : {}),
    baseline,
    baselines,
    primary,
    backend,
    ...(fallbackReason ? { fallbackReason } : {}),
    seconds,
    meanEpochSeconds: history.reduce((a, e) => a + e.seconds, 0) / Math.max(1, history.length),
    windowsPerSecond:
      (sets.train.n * history.length) /
      Math.max(
        1e-9,
        history.reduce((a, e) => a + e.seconds, 0),
      ),
  };
  const preprocessing: WrittenPreprocessing = {
    task: spec.task,
    ...(forecast ? { target: spec.target } : { label: spec.label }),
    channels: spec.channels,
    window: W,
    ...(forecast ? { horizon: h } : { classes }),
    ...(opts.sampleRate !== undefined ? { sample_rate: opts.sampleRate } : {}),
    normalization: Object.fromEntries(spec.channels.map((c, i) => [c, { mean: norms[i]!.mean, std: norms[i]!.std }])),
    ...(forecast ? { output: { kind: 'delta' as const, mean: out!.mean, std: out!.std } } : {}),
    seed,
    data: {
      file,
      rows: data.rows,
      gaps_interpolated: Object.values(data.gapsFilled).reduce((a, b) => a + b, 0),
      rows_dropped: data.rowsDropped,
      split: [trainEnd, valEnd, rows],
      diff_channels: diffChannels,
    },
    metrics: forecast
      ? {
          test_rmse: score.rmse,
          test_mae: score.mae,
          last_value_rmse: baseline.rmse,
          last_value_mae: baseline.mae,
          epochs: history.length,
          train_seconds: seconds,
          backend,
        }
      : {
          test_accuracy: score.accuracy,
          test_f1: score.f1,
          majority_class_accuracy: baseline.accuracy,
          epochs: history.length,
          train_seconds: seconds,
          backend,
        },
  };
  if (opts.outDir && result.saved) {
    const dir = resolve(opts.outDir);
    const files = {
      modelJson: result.saved.modelJson,
      weightsBin: result.saved.weightsBin,
      preprocessing: join(dir, 'preprocessing.json'),
      report: join(dir, 'training-report.json'),
    };
    report.files = files;
    await writeFile(files.preprocessing, JSON.stringify(preprocessing, null, 2) + '\n');
    // The AR(p) model next to it takes the same inputs and gives the same output: the same preprocessing, its own metrics.
    const ar = baselines.find((b) => b.modelJson);
    if (ar)
      await writeFile(
        join(dirname(ar.modelJson!), 'preprocessing.json'),
        JSON.stringify({ ...preprocessing, metrics: { ...preprocessing.metrics, test_rmse: ar.test.rmse, test_mae: ar.test.mae, model: ar.name } }, null, 2) +
          '\n',
      );
    await writeFile(files.report, JSON.stringify(report, null, 2) + '\n');
  }
  return { report, preprocessing, weights: result.weights };
}

async function fitModel(
  tf: Tf,
  model: LayersModel,
  sets: { train: Windows; val: Windows },
  o: {
    epochs: number;
    batchSize: number;
    shuffle: boolean;
    patience: number;
    onProgress?: (p: TrainProgress) => void;
    history: EpochRecord[];
  },
): Promise<{ bestEpoch: number; stoppedEarly: boolean }> {
  const { train, val } = sets;
  const x = tf.tensor3d(train.x, [train.n, train.window, train.channels]);
  const y = tf.tensor2d(train.y, [train.n, train.outputs]);
  const validation =
    val.n > 0 ? ([tf.tensor3d(val.x, [val.n, val.window, val.channels]), tf.tensor2d(val.y, [val.n, val.outputs])] as [Tensor, Tensor]) : undefined;
  const batches = Math.ceil(train.n / o.batchSize);
  const t0 = performance.now();
  let epochStart = t0;
  // The bar shows the epoch's running mean loss, as Keras does, not the noisy last batch.
  let lossSum = 0;
  let best = { loss: Infinity, epoch: 0, weights: undefined as Tensor[] | undefined };
  let stoppedEarly = false;
  const progress = (epoch: number, batch: number, loss: number, valLoss: number | undefined, epochEnd: boolean) => {
    const elapsed = (performance.now() - t0) / 1000;
    const done = epoch + batch / batches;
    o.onProgress?.({
      epoch: epoch + 1,
      epochs: o.epochs,
      batch,
      batches,
      loss,
      valLoss,
      epochEnd,
      elapsedSeconds: elapsed,
      etaSeconds: done > 0 ? (elapsed / done) * (o.epochs - done) : NaN,
    });
  };
  try {
    await model.fit(x, y, {
      epochs: o.epochs,
      batchSize: o.batchSize,
      shuffle: o.shuffle,
      validationData: validation,
      verbose: 0,
      callbacks: {
        onEpochBegin: async () => {
          epochStart = performance.now();
          lossSum = 0;
        },
        onBatchEnd: async (batch, logs) => {
          lossSum += logs?.loss ?? NaN;
          if (o.onProgress) progress(o.history.length, batch + 1, lossSum / (batch + 1), undefined, false);
        },
        onEpochEnd: async (epoch, logs) => {
          const rec: EpochRecord = { epoch: epoch + 1, loss: logs?.loss ?? NaN, seconds: (performance.now() - epochStart) / 1000 };
          if (logs?.val_loss !== undefined) rec.valLoss = logs.val_loss;
          o.history.push(rec);
          progress(epoch, batches, rec.loss, rec.valLoss, true);
          if (!Number.isFinite(rec.loss)) {
            model.stopTraining = true;
            return;
          }
          if (rec.valLoss === undefined) return;
          if (rec.valLoss < best.loss) {
            best.weights?.forEach((w) => w.dispose());
            best = { loss: rec.valLoss, epoch: epoch + 1, weights: model.getWeights().map((w) => w.clone()) };
          } else if (o.patience > 0 && epoch + 1 - best.epoch >= o.patience) {
            model.stopTraining = true;
            stoppedEarly = epoch + 1 < o.epochs;
          }
        },
      },
    });
    const last = o.history[o.history.length - 1]!;
    if (!best.weights && !Number.isFinite(last.loss)) {
      throw new CheckFailedError(`training diverged: the loss is ${last.loss} in epoch ${last.epoch}`, {
        option: 'lr',
        expected: 'a smaller learning rate (or a smaller batch size / model)',
      });
    }
    // Early stopping (or a worse last epoch) keeps the weights of the best validation loss.
    if (best.weights && best.epoch !== o.history.length) model.setWeights(best.weights);
    return { bestEpoch: best.weights ? best.epoch : o.history.length, stoppedEarly };
  } finally {
    best.weights?.forEach((w) => w.dispose());
    x.dispose();
    y.dispose();
    validation?.forEach((t) => t.dispose());
  }
}

function concatBytes(parts: ArrayLike<number>[]): Uint8Array {
  const views = parts.map((p) => new Uint8Array((p as Float32Array).buffer, (p as Float32Array).byteOffset, (p as Float32Array).byteLength));
  const out = new Uint8Array(views.reduce((n, v) => n + v.byteLength, 0));
  let o = 0;
  for (const v of views) {
    out.set(v, o);
    o += v.byteLength;
  }
  return out;
}

async function predict(tf: Tf, model: LayersModel, w: Windows): Promise<Float32Array> {
  const x = tf.tensor3d(w.x, [w.n, w.window, w.channels]);
  try {
    const y = model.predict(x, { batchSize: 256 }) as Tensor;
    const data = (await y.data()) as Float32Array;
    y.dispose();
    return data;
  } finally {
    x.dispose();
  }
}

/** What {@link trainBenchmark} measured: windows per second and seconds per epoch on the tfjs backend in use. */
export interface TrainBenchmark {
  task: string;
  backend: string;
  fallbackReason?: string;
  epochs: number;
  epochSeconds: number[];
  meanEpochSeconds: number;
  trainWindows: number;
  windowsPerSecond: number;
  parameters: number;
  testRmse: number;
  lastValueRmse: number;
}

/** The CO2 series shipped in models/ (resolved from src/train or dist/train alike). */
export const CO2_CSV = fileURLToPath(new URL('../../models/co2-weekly-mauna-loa.csv', import.meta.url));

/**
 * Epoch time of a fixed task for `npm run bench`: LSTM-32, window 52, batch 32 (unless
 * `batchSize`), forecasting next week's CO2 (models/co2-weekly-mauna-loa.csv), no early
 * stopping, seed 42, on the training backend (`backend`: 'auto' as `streamcell train`).
 *
 * @example
 * const b = await trainBenchmark({ epochs: 2 });
 * console.log(`${b.meanEpochSeconds.toFixed(1)} s/epoch on ${b.backend}`);
 */
export async function trainBenchmark(
  opts: { epochs?: number; data?: string; batchSize?: number; backend?: TrainOptions['backend'] } = {},
): Promise<TrainBenchmark> {
  const epochs = opts.epochs ?? 2;
  const batchSize = opts.batchSize ?? 32;
  const { report } = await trainModel({
    data: opts.data ?? CO2_CSV,
    target: 'co2',
    window: 52,
    arch: 'lstm:32',
    epochs,
    batchSize,
    patience: 0,
    seed: 42,
    backend: opts.backend,
  });
  const epochSeconds = report.training.history.map((e) => e.seconds);
  return {
    task: `forecast co2 (LSTM-32, window 52, batch ${batchSize}, ${report.data.windows.train} training windows)`,
    backend: report.backend,
    ...(report.fallbackReason ? { fallbackReason: report.fallbackReason } : {}),
    epochs,
    epochSeconds,
    meanEpochSeconds: report.meanEpochSeconds,
    trainWindows: report.data.windows.train,
    windowsPerSecond: report.windowsPerSecond,
    parameters: report.model.parameters,
    testRmse: report.test.rmse!,
    lastValueRmse: report.baseline.rmse!,
  };
}
