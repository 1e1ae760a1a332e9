/**
 * Readings → validation → per-stream policy → (resampling) → normalisation → stream pool →
 * predictions → sinks. Every reading that does not become a prediction is counted by reason.
 *
 * The readings validated in one tick (one serial chunk can hold 64 lines) are batched and
 * stepped with one pool call on the next microtask (no timer): rows of a stream keep their
 * order, in the batch and across batches. Hot-path costs are per batch where they can be
 * (one promise, one normalised Float32Array); per reading there are plain counters and, one
 * reading in 64 by default, the latency trace's stamps (./trace.ts). With a rollout
 * (`PipelineOptions.rollout`), a settled batch's due rows are rolled out from the pool's state
 * at once and its records written once their trajectories are in, after earlier batches'.
 */
import type { PreprocessingJson } from '../data/preprocessing.js';
import { MAX_GENERATED_ELEMENTS } from '../limits.js';
import type { Forecast } from '../runtime/forecast.js';
import type { BatchResult, Pool, Prediction } from '../runtime/pool-types.js';
import { observeStreamLatency, type DaemonMetrics, type StreamCounts } from './metrics.js';
import { LatencyTrace, S_IN, S_PREDICTED, S_PUSHED, S_VALIDATED, S_WRITTEN } from './trace.js';
import type { DropReason, PredictionRecord, Reading, Sink, SourceEvents } from './types.js';

/** What the pipeline does with bad readings of a stream: non-finite values, the accepted range, timestamps going backwards. */
export interface StreamPolicy {
  /** NaN/Inf values: drop the reading, hold each channel's last good value, or reset the stream's state (and drop). */
  nonFinite: 'skip' | 'hold' | 'reset';
  /** Accepted raw range per value (inclusive); outside → dropped as 'out-of-range'. */
  min?: number;
  max?: number;
  /** Drop readings whose timestamp goes backwards within a stream. */
  monotonicTime: boolean;
}

/** The autoregressive rollout the pipeline attaches to predictions (daemon `--rollout K`). */
export interface RolloutOptions {
  /** Steps ahead, K (1 to MAX_ROLLOUT): the record's `rollout` holds K predicted samples. */
  steps: number;
  /** Roll out every Nth prediction of each stream (its 1st, N+1th, …); default 1: every one. */
  every?: number;
  /** Input channels the model does not predict, held at their last value (the pool's `hold`). */
  hold?: readonly (string | number)[];
}

/** Options of {@link Pipeline}: the pool, channel count, preprocessing, metrics, sinks, policy, resampling and the bounds (streams, in-flight readings, sink backlog). */
export interface PipelineOptions {
  pool: Pool<Prediction | null>;
  channels: number;
  pre?: PreprocessingJson;
  metrics: DaemonMetrics;
  sinks: Sink[];
  policy?: Partial<StreamPolicy>;
  /** Resample each stream to this rate (Hz) by linear interpolation between readings. */
  resampleHz?: number;
  log?: { warn(o: object, msg: string): void; info(o: object, msg: string): void };
  /** Called for every drop (tests, logs). */
  onDrop?: (reason: DropReason, detail: string) => void;
  /** Streams whose validation state (last time, last values) is kept, least recently used evicted; default 10,000 (the pool's limit). */
  maxStreams?: number;
  /**
   * Readings in flight (pushed, not yet predicted) at which sources are asked to pause; default
   * 256. Checked after a source's chunk, whose readings go to the pool in one batch: a serial
   * read larger than the mark pauses the port until that batch is predicted (see README,
   * "Performance", on raising it).
   */
  highWater?: number;
  /** Records waiting in one sink at which sources are asked to pause; default 16,384. */
  sinkHighWater?: number;
  /** The latency trace (default: one reading in 64; `new LatencyTrace(0)` turns it off). */
  trace?: LatencyTrace;
  /**
   * Attach a K-step rollout to predictions. Each stream then has at most one row per pool call
   * (a tick's batch is flushed early when a stream repeats): the state a rollout copies is the
   * stream's after its last stepped row, which must be the row the trajectory is attached to.
   */
  rollout?: RolloutOptions;
}

/** Stream limit of the daemon by default (pool, pipeline state, dashboard history). */
export const DEFAULT_MAX_STREAMS = 10_000;

/** Drops keys whose value is undefined, so a spread keeps the defaults they would hide. */
export function definedOnly<T extends object>(o: T | undefined): Partial<T> {
  return Object.fromEntries(Object.entries(o ?? {}).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** A stream's validation state: its last accepted time and values (and resampling progress). */
export interface StreamState {
  lastT: number;
  last: number[] | undefined;
  /** The stream's label's plain counters (metrics), set by the Pipeline on first use. */
  counts?: StreamCounts;
  /** Resampling: the previous reading and the next output time. */
  prev?: Reading;
  nextT?: number;
  /** Rollout on: the flush number of the batch holding this stream's latest row, and its predictions so far (for `every`). */
  batched?: number;
  predicted?: number;
}

/** The policy with its defaults (an option given as undefined does not hide its default). */
export function streamPolicy(p?: Partial<StreamPolicy>): StreamPolicy {
  return { nonFinite: 'skip', monotonicTime: true, ...definedOnly(p) };
}

/** Per-channel normalisation from preprocessing.json (mean 0, std 1 without one). */
export function normalisation(pre: PreprocessingJson | undefined, channels: number): { mean: number[]; std: number[] } {
  return {
    mean: Array.from({ length: channels }, (_, c) => (pre ? (pre.normalization[pre.channels[c]!]?.mean ?? 0) : 0)),
    std: Array.from({ length: channels }, (_, c) => (pre ? (pre.normalization[pre.channels[c]!]?.std ?? 1) : 1)),
  };
}

/** What {@link checkReading} decides: the values to step (and the stream's state), or a drop (after which a `reset` policy resets the stream's model state). */
export type Verdict = { values: number[]; st: StreamState } | { drop: DropReason; detail: string; reset?: true };

/**
 * Validates one reading against its stream's state and the policy: column count, time going
 * backwards, non-finite values (skip, hold, reset), range. Updates `streams` (use order, the
 * stream limit, the last accepted time and values); no other side effect.
 */
export function checkReading(r: Reading, channels: number, policy: StreamPolicy, streams: Map<string, StreamState>, maxStreams: number): Verdict {
  if (r.values.length !== channels) return { drop: 'column-count', detail: `${r.values.length} values, the model takes ${channels}` };
  let st = streams.get(r.stream);
  if (st) {
    // Map order is use order: re-inserting keeps the least recently used stream first.
    streams.delete(r.stream);
  } else {
    st = { lastT: -Infinity, last: undefined };
    if (streams.size >= maxStreams) streams.delete(streams.keys().next().value!);
  }
  streams.set(r.stream, st);
  if (policy.monotonicTime && r.t < st.lastT) return { drop: 'time-backwards', detail: `stream '${r.stream}': ${r.t} < ${st.lastT}` };
  let values = r.values;
  let finite = true;
  for (let c = 0; c < channels; c++) if (!Number.isFinite(values[c])) finite = false;
  if (!finite) {
    if (policy.nonFinite === 'hold' && st.last) values = values.map((v, c) => (Number.isFinite(v) ? v : st!.last![c]!));
    else return { drop: 'non-finite', detail: `stream '${r.stream}': ${values.join(',')}`, ...(policy.nonFinite === 'reset' ? { reset: true as const } : {}) };
  }
  const { min, max } = policy;
  if (min !== undefined || max !== undefined) {
    for (let c = 0; c < channels; c++) {
      if ((min !== undefined && values[c]! < min) || (max !== undefined && values[c]! > max)) {
        return { drop: 'out-of-range', detail: `stream '${r.stream}': ${values.join(',')} outside [${min ?? '-∞'}, ${max ?? '∞'}]` };
      }
    }
  }
  st.lastT = r.t;
  st.last = values;
  return { values, st };
}

/**
 * The record sinks receive for one prediction: the model's outputs and, from the
 * preprocessing, the forecast in target units (`delta` outputs added to the last value) or the
 * class label.
 */
export function predictionRecord(
  stream: string,
  raw: number[],
  t: number,
  seq: number,
  modelOutputs: Record<string, ArrayLike<number>>,
  pre: PreprocessingJson | undefined,
  norm: { mean: number[]; std: number[] },
): PredictionRecord {
  const outputs: Record<string, number[]> = {};
  for (const [k, v] of Object.entries(modelOutputs)) outputs[k] = Array.from(v);
  const rec: PredictionRecord = { stream, seq, t, input: raw, outputs };
  const first = Object.values(outputs)[0];
  if (pre && first) {
    if (pre.task === 'forecast') {
      const target = pre.channels.indexOf(pre.target ?? pre.channels[0]!);
      const o = pre.output ?? { kind: 'value', mean: norm.mean[target]!, std: norm.std[target]! };
      const v = o.mean + o.std * first[0]!;
      rec.forecast = o.kind === 'delta' ? raw[target]! + v : v;
    } else if (pre.classes) {
      let best = 0;
      for (let i = 1; i < first.length; i++) if (first[i]! > first[best]!) best = i;
      rec.label = pre.classes[best];
    }
  }
  return rec;
}

/** Hands a record to every sink; a sink that throws (it must not) is counted and logged, and the others still get it. */
export function writeToSinks(sinks: readonly Sink[], rec: PredictionRecord, m: DaemonMetrics, log?: PipelineOptions['log']): void {
  for (const s of sinks) {
    try {
      s.write(rec);
    } catch (e) {
      // A sink must not throw; one that does must not take the others down.
      m.sinkErrors.inc({ sink: s.uri, code: (e as NodeJS.ErrnoException).code ?? 'exception' });
      log?.warn({ sink: s.uri, err: (e as Error).message }, 'sink write threw');
    }
  }
}

/** A forecast's values as the record's `rollout`: K numbers for one predicted channel, else K rows of one value per channel. */
function trajectory(f: Forecast): number[] | number[][] {
  const c = f.channels.length;
  if (c === 1) return Array.from(f.values);
  return Array.from({ length: f.k }, (_, j) => Array.from(f.values.subarray(j * c, (j + 1) * c)));
}

/** Rows validated in one tick, stepped with one pool call; recycled once settled. */
class Batch {
  n = 0;
  ids: string[] = [];
  raws: number[][] = [];
  ts: number[] = [];
  counts: StreamCounts[] = [];
  /** Trace stamps of sampled rows (undefined for the others). */
  stamps: (Float64Array | undefined)[] = [];
  /** Rollout on: each row's stream state. */
  states: StreamState[] = [];
  /** Normalised samples, row-major (`channels` floats a row). */
  x: Float32Array;

  constructor(private readonly channels: number) {
    this.x = new Float32Array(64 * Math.max(1, channels));
  }

  /** Makes room for one more row; returns its offset in `x`. */
  grow(): number {
    const off = this.n * this.channels;
    if (off + this.channels > this.x.length) {
      const x = new Float32Array(this.x.length * 2);
      x.set(this.x);
      this.x = x;
    }
    return off;
  }

  clear(): void {
    // Drop references to the rows' objects; the arrays keep their capacity.
    this.ids.length = this.raws.length = this.ts.length = this.counts.length = this.stamps.length = this.states.length = 0;
    this.n = 0;
  }
}

/** Validates readings, applies the stream policy and normalisation, steps the pool and writes predictions to the sinks; counts every drop; exerts backpressure on sources. */
export class Pipeline implements SourceEvents {
  readonly streams = new Map<string, StreamState>();
  /** The latency trace: sampled stage stamps and the event-loop delay. */
  readonly trace: LatencyTrace;
  private readonly policy: StreamPolicy;
  private inflight = 0;
  private idle: (() => void)[] = [];
  private disconnected = new Set<string>();
  private readonly norm: { mean: number[]; std: number[] };
  private readonly mean: Float64Array;
  private readonly std: Float64Array;
  private readonly maxStreams: number;
  private readonly highWater: number;
  private readonly sinkHighWater: number;
  private waiters: (() => void)[] = [];
  private pollTimer?: NodeJS.Timeout;
  private batch: Batch;
  private spare: Batch[] = [];
  private flushing = false;
  private readonly rollout?: Required<Omit<RolloutOptions, 'hold'>> & Pick<RolloutOptions, 'hold'>;
  /** Rollout on: batches flushed so far, and the sink writes of rolled-out batches, chained (records stay in order). */
  private flushes = 0;
  private writes: Promise<void> = Promise.resolve();
  private rolloutWarned = false;

  constructor(private readonly opts: PipelineOptions) {
    this.policy = streamPolicy(opts.policy);
    this.maxStreams = opts.maxStreams ?? DEFAULT_MAX_STREAMS;
    this.highWater = opts.highWater ?? 256;
    this.sinkHighWater = opts.sinkHighWater ?? 16_384;
    this.trace = opts.trace ?? new LatencyTrace();
    const pre = opts.pre;
    this.norm = normalisation(pre, opts.channels);
    this.mean = Float64Array.from(this.norm.mean);
    this.std = Float64Array.from(this.norm.std);
    this.batch = new Batch(opts.channels);
    if (opts.rollout) this.rollout = { every: 1, ...definedOnly(opts.rollout), steps: opts.rollout.steps };
  }

  drop(reason: DropReason, detail: string): void {
    this.opts.metrics.drop(reason);
    this.opts.onDrop?.(reason, detail);
  }

  status(state: 'connected' | 'disconnected', detail?: string, source = 'source'): void {
    if (state === 'disconnected') {
      this.disconnected.add(source);
      this.opts.log?.warn({ source, detail }, 'source disconnected');
    } else if (this.disconnected.delete(source)) {
      this.opts.metrics.reconnects.inc({ source });
      this.opts.log?.info({ source, detail }, 'source reconnected');
    }
  }

  /** Whether every source is connected (for /healthz). */
  get connected(): boolean {
    return this.disconnected.size === 0;
  }

  /** Whether this source is connected (it has not reported a disconnect since its last connect). */
  sourceConnected(source: string): boolean {
    return !this.disconnected.has(source);
  }

  /** SourceEvents bound to a source name (so reconnects are counted per source). */
  eventsFor(source: string): SourceEvents {
    return {
      reading: (r) => this.reading(r),
      drop: (reason, d) => this.drop(reason, d),
      status: (s, d) => this.status(s, d, source),
      pressure: () => this.pressure(),
    };
  }

  /** Readings pushed to the pool and not yet predicted or dropped. */
  get inFlight(): number {
    return this.inflight;
  }

  private behind(factor: number): boolean {
    if (this.inflight >= this.highWater * factor) return true;
    for (const s of this.opts.sinks) if ((s.backlog?.() ?? 0) >= this.sinkHighWater * factor) return true;
    return false;
  }

  /** Backpressure for sources: a promise while behind, resolved once half the high-water marks are cleared. */
  pressure(): Promise<void> | undefined {
    if (!this.behind(1)) return undefined;
    return new Promise<void>((resolve) => {
      this.waiters.push(resolve);
      // Sinks drain on their own schedule: look again every few ms while someone waits.
      this.pollTimer ??= setInterval(() => this.release(), 5);
    });
  }

  private release(): void {
    if (this.waiters.length === 0 || this.behind(0.5)) return;
    clearInterval(this.pollTimer);
    this.pollTimer = undefined;
    for (const w of this.waiters.splice(0)) w();
  }

  reading(r: Reading): void {
    const stamps = this.trace.begin(r.rx);
    const v = checkReading(r, this.opts.channels, this.policy, this.streams, this.maxStreams);
    if ('drop' in v) {
      const c = this.opts.metrics.streamCounts(r.stream);
      c.in++;
      c.drops++;
      c.lastSeenMs = Date.now();
      if (v.reset) this.opts.pool.reset(r.stream);
      return this.drop(v.drop, v.detail);
    }
    const st = v.st;
    (st.counts ??= this.opts.metrics.streamCounts(r.stream)).in++;
    if (stamps) stamps[S_VALIDATED] = performance.now();
    if (this.opts.resampleHz) return this.resample(st, r.stream, v.values, r.t, stamps);
    this.step(st, r.stream, v.values, r.t, stamps);
  }

  /** Emits readings at the model's period, interpolated between the source's readings. */
  private resample(st: StreamState, stream: string, values: number[], t: number, stamps: Float64Array | undefined): void {
    const period = 1000 / this.opts.resampleHz!;
    if (!st.prev) {
      st.prev = { stream, values, t };
      st.nextT = t;
    }
    const a = st.prev;
    while (st.nextT! <= t) {
      const f = t === a.t ? 1 : (st.nextT! - a.t) / (t - a.t);
      this.step(
        st,
        stream,
        values.map((v, c) => a.values[c]! + f * (v - a.values[c]!)),
        st.nextT!,
        stamps,
      );
      // One traced row per reading.
      stamps = undefined;
      st.nextT! += period;
    }
    st.prev = { stream, values, t };
  }

  /** Adds a row to this tick's batch (flushed on a microtask). */
  private step(st: StreamState, stream: string, raw: number[], t: number, stamps: Float64Array | undefined): void {
    if (this.rollout) {
      // One row per stream per pool call: a rollout copies the state after the stream's last row.
      if (st.batched === this.flushes && this.batch.n > 0) this.flush();
      st.batched = this.flushes;
      this.batch.states.push(st);
    }
    const b = this.batch;
    const off = b.grow();
    const ch = this.opts.channels;
    for (let c = 0; c < ch; c++) b.x[off + c] = (raw[c]! - this.mean[c]!) / this.std[c]!;
    b.ids.push(stream);
    b.raws.push(raw);
    b.ts.push(t);
    b.counts.push(st.counts!);
    b.stamps.push(stamps);
    b.n++;
    this.inflight++;
    if (!this.flushing) {
      this.flushing = true;
      queueMicrotask(this.flush);
    }
  }

  /** Steps this tick's rows with one pool call. */
  private readonly flush = (): void => {
    this.flushing = false;
    const b = this.batch;
    if (b.n === 0) return;
    this.batch = this.spare.pop() ?? new Batch(this.opts.channels);
    this.flushes++;
    const t0 = performance.now();
    for (const s of b.stamps) if (s) s[S_PUSHED] = t0;
    const failed = (e: Error & { reason?: string }) => {
      // The whole call failed: every row is a drop.
      for (let i = 0; i < b.n; i++) this.rejected(b.ids[i]!, e);
      this.settle(b);
    };
    const pool = this.opts.pool;
    // A row is `channels` values: a model whose samples are laid out otherwise cannot take them.
    if (pool.sampleSize !== this.opts.channels)
      return failed(new Error(`the model takes ${pool.sampleSize} values a sample, the readings have ${this.opts.channels}`));
    let call: Promise<BatchResult>;
    try {
      call = pool.pushMany(b.ids, b.x, b.n);
    } catch (e) {
      return failed(e as Error);
    }
    call.then((res) => this.settled(b, res, t0), failed);
  };

  private rejected(stream: string, e: Error & { reason?: string }): void {
    this.opts.metrics.streamCounts(stream).drops++;
    this.drop(e.reason === 'unknown-stream' || e.reason === 'max-streams' ? 'unknown-stream' : 'rejected', `stream '${stream}': ${e.message}`);
  }

  /** Delivers a batch's predictions in row order; its rejected rows are drops. */
  private settled(b: Batch, res: BatchResult, t0: number): void {
    const now = performance.now();
    const m = this.opts.metrics;
    const stepS = (now - t0) / 1000;
    const names = Object.keys(res.outputs);
    let predicted = 0;
    const wall = Date.now();
    // Rollout on: the records (their batch rows, and which are due a rollout) wait for the trajectories.
    const roll = this.rollout ? { every: this.rollout.every, recs: [] as PredictionRecord[], rows: [] as number[], due: [] as number[] } : undefined;
    for (let i = 0; i < b.n; i++) {
      b.counts[i]!.lastSeenMs = wall;
      if (res.errors.size > 0) {
        const e = res.errors.get(i);
        if (e) {
          this.rejected(b.ids[i]!, e);
          continue;
        }
      }
      const step = res.steps[i]!;
      // No prediction for this row (a window pool filling up, or between hops).
      if (step < 0) continue;
      const stamps = b.stamps[i];
      const counts = b.counts[i]!;
      if (stamps) stamps[S_PREDICTED] = now;
      predicted++;
      counts.out++;
      // This row's slice of each output: views, copied into the record by predictionRecord.
      const outputs: Record<string, Float32Array> = {};
      for (const k of names) {
        const size = res.sizes[k]!;
        outputs[k] = res.outputs[k]!.subarray(i * size, (i + 1) * size);
      }
      const rec = predictionRecord(b.ids[i]!, b.raws[i]!, b.ts[i]!, step, outputs, this.opts.pre, this.norm);
      counts.last = rec.label ?? rec.forecast ?? null;
      if (roll) {
        const st = b.states[i]!;
        st.predicted = (st.predicted ?? 0) + 1;
        if ((st.predicted - 1) % roll.every === 0) roll.due.push(roll.recs.length);
        roll.recs.push(rec);
        roll.rows.push(i);
        continue;
      }
      writeToSinks(this.opts.sinks, rec, m, this.opts.log);
      if (stamps) {
        stamps[S_WRITTEN] = performance.now();
        // The stream's share of stage `total` (line in → written), for the dashboard's per-stream p99.
        observeStreamLatency(counts, stamps[S_WRITTEN] - stamps[S_IN]!);
        this.trace.end(stamps);
      }
    }
    m.stepSeconds.observe(stepS, predicted);
    if (roll) return this.rollOut(b, roll.recs, roll.rows, roll.due);
    this.settle(b);
  }

  /**
   * Rolls the due records' streams out (the state is copied now, before any later batch of
   * theirs is stepped), attaches the trajectories and writes the records after those of
   * earlier batches. A trajectory whose start is not the record's step (the stream stepped on
   * first) is not attached: it counts as skipped, `stale`.
   */
  private rollOut(b: Batch, recs: PredictionRecord[], rows: number[], due: number[]): void {
    const k = this.rollout!.steps;
    const outcomes =
      due.length > 0
        ? this.forecastRows(
            due.map((j) => recs[j]!.stream),
            due.map((j) => recs[j]!.input),
          )
        : Promise.resolve([]);
    const prev = this.writes;
    const m = this.opts.metrics;
    this.writes = (async () => {
      const got = await outcomes;
      await prev;
      const skipped = new Map<string, number>();
      let n = 0;
      for (let j = 0; j < due.length; j++) {
        const rec = recs[due[j]!]!;
        const f = got[j]!;
        const why = typeof f === 'string' ? f : f.step !== rec.seq ? 'stale' : undefined;
        if (why !== undefined) skipped.set(why, (skipped.get(why) ?? 0) + 1);
        else {
          rec.rollout = trajectory(f as Forecast);
          n++;
        }
      }
      m.rollouts.inc(n);
      m.rolloutSteps.inc(n * k);
      for (const [reason, c] of skipped) m.rolloutsSkipped.inc({ reason }, c);
      for (let j = 0; j < recs.length; j++) {
        writeToSinks(this.opts.sinks, recs[j]!, m, this.opts.log);
        const stamps = b.stamps[rows[j]!];
        if (stamps) {
          stamps[S_WRITTEN] = performance.now();
          observeStreamLatency(b.counts[rows[j]!]!, stamps[S_WRITTEN] - stamps[S_IN]!);
          this.trace.end(stamps);
        }
      }
    })()
      .catch((e: unknown) => this.opts.log?.warn({ err: (e as Error).message }, 'rollout write failed'))
      .finally(() => this.settle(b));
  }

  /**
   * Starts the rollouts of `ids` from their streams' state now; per row a trajectory or why
   * there is none (a ForecastError's reason; `refused` when the pool refuses the call).
   */
  private forecastRows(ids: string[], last: number[][]): Promise<(Forecast | string)[]> {
    const { steps: k, hold } = this.rollout!;
    // Rows per call within the pool's limit on the values one call generates.
    const per = Math.max(1, Math.floor(MAX_GENERATED_ELEMENTS / (k * Math.max(1, this.opts.channels))));
    const parts: Promise<(Forecast | string)[]>[] = [];
    for (let c = 0; c < ids.length; c += per) {
      const n = Math.min(per, ids.length - c);
      parts.push(
        this.opts.pool.forecastMany(ids.slice(c, c + n), k, { last: last.slice(c, c + n), hold }).then(
          (r) => r.forecasts.map((f, i) => f ?? (r.errors.get(i) as { reason?: string } | undefined)?.reason ?? 'inference'),
          (e: Error & { reason?: string }) => {
            if (!this.rolloutWarned) this.opts.log?.warn({ err: e.message }, 'rollout refused by the pool');
            this.rolloutWarned = true;
            return new Array<string>(n).fill(e.reason ?? 'refused');
          },
        ),
      );
    }
    return Promise.all(parts).then((p) => p.flat());
  }

  private settle(b: Batch): void {
    this.inflight -= b.n;
    b.clear();
    if (this.spare.length < 4) this.spare.push(b);
    if (this.inflight === 0) for (const f of this.idle.splice(0)) f();
    if (this.waiters.length > 0) this.release();
  }

  /** Resolves when every reading received so far has become a prediction or a drop. */
  drained(): Promise<void> {
    return this.inflight === 0 ? Promise.resolve() : new Promise((r) => this.idle.push(r));
  }
}
