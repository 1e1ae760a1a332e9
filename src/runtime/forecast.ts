/**
 * Autoregressive rollout: what a pool's `forecast` feeds back. A forecaster's prediction of
 * the next sample becomes its next input, k times, from a copy of a stream's state. This
 * module holds the types and the feedback plan: which input channel each output value
 * predicts, how it maps back to channel units (the model's preprocessing: `delta` or `value`
 * outputs, output scaling, input normalisation), and which channels are held at their last
 * value. The pools (pool.ts, window.ts) copy the state and run the steps.
 */
import { InputError } from '../errors.js';
import type { PreprocessingJson } from '../model-format/preprocessing.js';
import type { InputLayout } from './pool-core.js';

/** Options of `forecast` / `forecastMany`. */
export interface ForecastOptions {
  /**
   * Input channels the model does not predict, held at their last value through the rollout
   * (names from the preprocessing's `channels`, or 0-based indices). Without it, a model that
   * does not predict every input channel is refused, naming the channels.
   */
  hold?: readonly (string | number)[];
  /**
   * The preprocessing to apply around each step (default: the model's
   * `streamcell.preprocessing` metadata; without either, inputs and outputs are in model units).
   */
  preprocessing?: PreprocessingJson;
}

/** Options of `forecastMany`: the shared options plus each row's last reading. */
export interface ForecastManyOptions extends ForecastOptions {
  /**
   * Per row: the stream's last reading in channel units (what `delta` outputs are added to and
   * held channels keep). Default: the stream's last sample de-normalised, which is the same
   * reading up to float32 rounding of the normalised value.
   */
  last?: readonly (ArrayLike<number> | undefined)[];
}

/** Options of `forecast`: the shared options plus the stream's last reading. */
export interface ForecastOneOptions extends ForecastOptions {
  /** The stream's last reading in channel units; see {@link ForecastManyOptions.last}. */
  last?: ArrayLike<number>;
}

/** One stream's k-step trajectory. */
export interface Forecast {
  id: string;
  /** 0-based step of the stream's last sample: row j of `values` predicts sample `step + 1 + j`. */
  step: number;
  /** Steps ahead. */
  k: number;
  /** The predicted channels, in the order of a row of `values`. */
  channels: readonly string[];
  /** k rows × channels.length values, row-major, in channel units (model units without preprocessing). */
  values: Float64Array;
}

/** The results of one `forecastMany` call, row for row. */
export interface ForecastResult {
  /** Per row: the trajectory, or undefined when the row failed (see `errors`). */
  forecasts: (Forecast | undefined)[];
  /** Failed rows: row index → why (unknown stream, no prediction yet, inference failure). */
  errors: Map<number, Error>;
}

/** Most steps one rollout takes. */
export const MAX_ROLLOUT = 100_000;

/**
 * What a rollout feeds back, built once per (hold, output size): for output value q the input
 * channel it predicts and its mapping to channel units; the normalisation of every input channel.
 */
export interface FeedbackPlan {
  /** Every input channel's name, in sample order. */
  names: string[];
  /** Predicted channel names (a row of {@link Forecast.values}). */
  predictedNames: string[];
  /** Per output value: the input channel it predicts. */
  channel: Int32Array;
  /** Per output value: channel units = (delta ? last : 0) + outMean + outStd · y. */
  outMean: Float64Array;
  outStd: Float64Array;
  delta: boolean;
  /** Per input channel: normalised = (units − mean) / std. */
  mean: Float64Array;
  std: Float64Array;
}

/** Channel names of a pool's samples: the preprocessing's, else `input[i]` per value. */
export function channelNames(inputs: readonly InputLayout[], pre: PreprocessingJson | undefined, sampleSize: number): string[] {
  if (pre && pre.channels.length === sampleSize) return [...pre.channels];
  const names: string[] = [];
  for (const l of inputs) for (let i = 0; i < l.sampleSize; i++) names.push(inputs.length === 1 && l.sampleSize === 1 ? l.name : `${l.name}[${i}]`);
  return names;
}

/**
 * The feedback plan for a model with `sampleSize` input values and `outSize` values in its
 * first prediction output. Throws {@link InputError} (field `hold`, or the preprocessing
 * field) when the outputs cannot be fed back: a classifier, a horizon other than 1, outputs
 * that do not map to input channels, or unpredicted channels not listed in `hold`.
 */
export function feedbackPlan(
  inputs: readonly InputLayout[],
  sampleSize: number,
  outName: string,
  outSize: number,
  pre: PreprocessingJson | undefined,
  hold: readonly (string | number)[] = [],
  file?: string,
): FeedbackPlan {
  const names = channelNames(inputs, pre, sampleSize);
  const mean = new Float64Array(sampleSize);
  const std = new Float64Array(sampleSize).fill(1);
  let channel: number[];
  let outMean: number[];
  let outStd: number[];
  let delta = false;
  if (pre) {
    if (pre.task !== 'forecast')
      throw new InputError(`this model is a classifier (task '${pre.task}'): its outputs are class scores, not the next sample, so they cannot be fed back`, {
        file,
        field: 'streamcell.preprocessing.task',
        expected: "a forecaster (task 'forecast')",
      });
    const horizon = pre.horizon ?? 1;
    if (horizon !== 1)
      throw new InputError(
        `this model predicts ${horizon} steps ahead (horizon ${horizon}); a rollout feeds each prediction back as the next sample, which needs a one-step model (train --horizon 1)`,
        { file, field: 'streamcell.preprocessing.horizon', expected: 'horizon 1' },
      );
    if (pre.channels.length !== sampleSize)
      throw new InputError(`the preprocessing names ${pre.channels.length} channels, the model takes ${sampleSize} values a sample`, {
        file,
        field: 'streamcell.preprocessing.channels',
        expected: `${sampleSize} channels`,
      });
    pre.channels.forEach((c, i) => {
      mean[i] = pre.normalization[c]!.mean;
      std[i] = pre.normalization[c]!.std;
    });
    const target = pre.channels.indexOf(pre.target ?? pre.channels[0]!);
    if (outSize === 1 && target >= 0) {
      const o = pre.output ?? { kind: 'value' as const, mean: mean[target]!, std: std[target]! };
      channel = [target];
      outMean = [o.mean];
      outStd = [o.std];
      delta = o.kind === 'delta';
    } else if (outSize === sampleSize) {
      // One normalised value per channel, in channel order.
      channel = names.map((_, i) => i);
      outMean = Array.from(mean);
      outStd = Array.from(std);
    } else {
      throw new InputError(
        `output '${outName}' has ${outSize} values; a rollout needs one value (the target '${pre.target ?? pre.channels[0]}') or one per input channel (${sampleSize})`,
        { file, field: outName, expected: `1 or ${sampleSize} values` },
      );
    }
  } else if (outSize === sampleSize) {
    channel = names.map((_, i) => i);
    outMean = names.map(() => 0);
    outStd = names.map(() => 1);
  } else {
    throw new InputError(
      `output '${outName}' has ${outSize} values for ${sampleSize} input values, and the model carries no preprocessing to say which channel each predicts; a rollout needs one output value per input channel (or preprocessing metadata naming the target)`,
      { file, field: outName, expected: `${sampleSize} values, or streamcell.preprocessing metadata` },
    );
  }
  const predicted = new Set(channel);
  const held = new Set<number>();
  for (const h of hold) {
    // A name, or an index (a number, or digits given on a command line) that is not itself a name.
    const index = typeof h === 'number' ? h : !names.includes(h) && /^\d+$/.test(h) ? Number(h) : NaN;
    const i = Number.isInteger(index) ? (index >= 0 && index < sampleSize ? index : -1) : names.indexOf(h as string);
    if (i < 0)
      throw new InputError(`hold names ${JSON.stringify(h)}, which is not an input channel`, {
        file,
        field: 'hold',
        expected: `channel names (${names.join(', ')}) or indices 0–${sampleSize - 1}`,
      });
    if (predicted.has(i))
      throw new InputError(`hold names '${names[i]}', which the model predicts; only channels it does not predict can be held`, {
        file,
        field: 'hold',
        expected: `a subset of: ${names.filter((_, j) => !predicted.has(j)).join(', ') || '(none: every channel is predicted)'}`,
      });
    held.add(i);
  }
  const missing = names.filter((_, i) => !predicted.has(i) && !held.has(i));
  if (missing.length > 0)
    throw new InputError(
      `the model predicts only ${channel.map((c) => `'${names[c]}'`).join(', ')}; channels ${missing.map((m) => `'${m}'`).join(', ')} would have no next value. Hold them at their last value (hold: [${missing.map((m) => `'${m}'`).join(', ')}], CLI --hold ${missing.join(',')}) if that is what you mean`,
      { file, field: 'hold', expected: missing.join(', ') },
    );
  return {
    names,
    predictedNames: channel.map((c) => names[c]!),
    channel: Int32Array.from(channel),
    outMean: Float64Array.from(outMean),
    outStd: Float64Array.from(outStd),
    delta,
    mean,
    std,
  };
}

/**
 * Feeds one step back for `n` rows: row i's output values `y` (outSize a row) become
 * channel units in `units` (sampleSize a row; held channels keep theirs), are written to row
 * j of the trajectories, and normalised into `x`, the next samples.
 */
export function feedBack(plan: FeedbackPlan, n: number, y: Float32Array, units: Float64Array, x: Float32Array, out: Float64Array[], j: number): void {
  const O = plan.channel.length;
  const S = plan.mean.length;
  for (let i = 0; i < n; i++) {
    const traj = out[i]!;
    for (let q = 0; q < O; q++) {
      const c = plan.channel[q]!;
      const v = plan.outMean[q]! + plan.outStd[q]! * y[i * O + q]!;
      const u = plan.delta ? units[i * S + c]! + v : v;
      units[i * S + c] = u;
      traj[j * O + q] = u;
      x[i * S + c] = (u - plan.mean[c]!) / plan.std[c]!;
    }
  }
}
