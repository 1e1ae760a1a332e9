/**
 * Readings → validation → per-stream policy → (resampling) → normalisation → stream pool →
 * predictions → sinks. Every reading that does not become a prediction is counted by reason.
 *
 * The readings validated in one tick (one serial chunk can hold 64 lines) are batched and
 * stepped with one pool call on the next microtask (no timer): rows of a stream keep their
 * order, in the batch and across batches. Hot-path costs are per batch where they can be
 * (one promise, one normalised Float32Array); per reading there are plain counters and, one
 * reading in 64 by default, the latency trace's stamps (./trace.ts).
 */
import type { PreprocessingJson } from '../data/preprocessing.js';
import type { BatchResult, Pool, Prediction } from '../runtime/pool-types.js';
import type { DaemonMetrics, StreamCounts } from './metrics.js';
import { LatencyTrace, S_PREDICTED, S_PUSHED, S_VALIDATED, S_WRITTEN } from './trace.js';
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
}

/** Stream limit of the daemon by default (pool, pipeline state, dashboard history). */
export const DEFAULT_MAX_STREAMS = 10_000;

/** Drops keys whose value is undefined, so a spread keeps the defaults they would hide. */
export function definedOnly<T extends object>(o: T | undefined): Partial<T> {
  return Object.fromEntries(Object.entries(o ?? {}).filter(([, v]) => v !== undefined)) as Partial<T>;
}

interface StreamState {
  lastT: number;
  last: number[] | undefined;
  /** This stream's label's plain counters (metrics). */
  counts: StreamCounts;
  /** Resampling: the previous reading and the next output time. */
  prev?: Reading;
  nextT?: number;
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
    this.ids.length = this.raws.length = this.ts.length = this.counts.length = this.stamps.length = 0;
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
  /** Forecast / classification post-processing, decided once. */
  private readonly forecast?: { target: number; mean: number; std: number; delta: boolean };
  private readonly classes?: readonly string[];

  constructor(private readonly opts: PipelineOptions) {
    // An option given as undefined (an unset flag) must not hide the default.
    this.policy = { nonFinite: 'skip', monotonicTime: true, ...definedOnly(opts.policy) };
    this.maxStreams = opts.maxStreams ?? DEFAULT_MAX_STREAMS;
    this.highWater = opts.highWater ?? 256;
    this.sinkHighWater = opts.sinkHighWater ?? 16_384;
    this.trace = opts.trace ?? new LatencyTrace();
    const pre = opts.pre;
    this.mean = Float64Array.from({ length: opts.channels }, (_, c) => (pre ? (pre.normalization[pre.channels[c]!]?.mean ?? 0) : 0));
    this.std = Float64Array.from({ length: opts.channels }, (_, c) => (pre ? (pre.normalization[pre.channels[c]!]?.std ?? 1) : 1));
    this.batch = new Batch(opts.channels);
    if (pre?.task === 'forecast') {
      const target = pre.channels.indexOf(pre.target ?? pre.channels[0]!);
      const o = pre.output ?? { kind: 'value', mean: this.mean[target]!, std: this.std[target]! };
      this.forecast = { target, mean: o.mean, std: o.std, delta: o.kind === 'delta' };
    } else if (pre?.classes) this.classes = pre.classes;
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

  /** The stream's validation state, most recently used last (least recently used evicted at `maxStreams`). */
  private state(stream: string): StreamState {
    let st = this.streams.get(stream);
    if (st) {
      // Map order is use order: re-inserting keeps the least recently used stream first.
      this.streams.delete(stream);
    } else {
      st = { lastT: -Infinity, last: undefined, counts: this.opts.metrics.streamCounts(stream) };
      if (this.streams.size >= this.maxStreams) this.streams.delete(this.streams.keys().next().value!);
    }
    this.streams.set(stream, st);
    return st;
  }

  reading(r: Reading): void {
    const stamps = this.trace.begin(r.rx);
    if (r.values.length !== this.opts.channels) {
      this.opts.metrics.streamCounts(r.stream).in++;
      return this.drop('column-count', `${r.values.length} values, the model takes ${this.opts.channels}`);
    }
    const st = this.state(r.stream);
    st.counts.in++;
    const values = this.validate(st, r);
    if (!values) return;
    if (stamps) stamps[S_VALIDATED] = performance.now();
    if (this.opts.resampleHz) return this.resample(st, r.stream, values, r.t, stamps);
    this.step(st, r.stream, values, r.t, stamps);
  }

  /**
   * Validation and the stream policy, in one place (the channel count is checked before): the
   * values to step (the reading's own, or repaired by 'hold'), or undefined when the reading
   * was dropped (counted by reason).
   * Updates the stream's last time and values.
   */
  private validate(st: StreamState, r: Reading): number[] | undefined {
    let values = r.values;
    const ch = this.opts.channels;
    if (this.policy.monotonicTime && r.t < st.lastT) {
      this.drop('time-backwards', `stream '${r.stream}': ${r.t} < ${st.lastT}`);
      return undefined;
    }
    let finite = true;
    for (let c = 0; c < ch; c++) if (!Number.isFinite(values[c])) finite = false;
    if (!finite) {
      const last = st.last;
      if (this.policy.nonFinite === 'hold' && last) values = values.map((v, c) => (Number.isFinite(v) ? v : last[c]!));
      else {
        if (this.policy.nonFinite === 'reset') this.opts.pool.reset(r.stream);
        this.drop('non-finite', `stream '${r.stream}': ${values.join(',')}`);
        return undefined;
      }
    }
    const { min, max } = this.policy;
    if (min !== undefined || max !== undefined) {
      for (let c = 0; c < ch; c++) {
        if ((min !== undefined && values[c]! < min) || (max !== undefined && values[c]! > max)) {
          this.drop('out-of-range', `stream '${r.stream}': ${values.join(',')} outside [${min ?? '-∞'}, ${max ?? '∞'}]`);
          return undefined;
        }
      }
    }
    st.lastT = r.t;
    st.last = values;
    return values;
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
    const b = this.batch;
    const off = b.grow();
    const ch = this.opts.channels;
    for (let c = 0; c < ch; c++) b.x[off + c] = (raw[c]! - this.mean[c]!) / this.std[c]!;
    b.ids.push(stream);
    b.raws.push(raw);
    b.ts.push(t);
    b.counts.push(st.counts);
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
    this.drop(e.reason === 'unknown-stream' || e.reason === 'max-streams' ? 'unknown-stream' : 'rejected', `stream '${stream}': ${e.message}`);
  }

  /** Delivers a batch's predictions in row order; its rejected rows are drops. */
  private settled(b: Batch, res: BatchResult, t0: number): void {
    const now = performance.now();
    const m = this.opts.metrics;
    const stepS = (now - t0) / 1000;
    const names = Object.keys(res.outputs);
    let predicted = 0;
    for (let i = 0; i < b.n; i++) {
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
      if (stamps) stamps[S_PREDICTED] = now;
      predicted++;
      b.counts[i]!.out++;
      const outputs: Record<string, number[]> = {};
      for (const k of names) {
        const size = res.sizes[k]!;
        const v = res.outputs[k]!;
        const o = new Array<number>(size);
        for (let j = 0, off = i * size; j < size; j++) o[j] = v[off + j]!;
        outputs[k] = o;
      }
      const raw = b.raws[i]!;
      const rec: PredictionRecord = { stream: b.ids[i]!, seq: step, t: b.ts[i]!, input: raw, outputs };
      const first = names.length ? outputs[names[0]!]! : undefined;
      if (first) {
        const f = this.forecast;
        if (f) {
          const v = f.mean + f.std * first[0]!;
          rec.forecast = f.delta ? raw[f.target]! + v : v;
        } else if (this.classes) {
          let best = 0;
          for (let j = 1; j < first.length; j++) if (first[j]! > first[best]!) best = j;
          rec.label = this.classes[best];
        }
      }
      this.write(rec);
      if (stamps) {
        stamps[S_WRITTEN] = performance.now();
        this.trace.end(stamps);
      }
    }
    m.stepSeconds.observe(stepS, predicted);
    this.settle(b);
  }

  private write(rec: PredictionRecord): void {
    for (const s of this.opts.sinks) {
      try {
        s.write(rec);
      } catch (e) {
        // A sink must not throw; one that does must not take the others down.
        this.opts.metrics.sinkErrors.inc({ sink: s.uri, code: (e as NodeJS.ErrnoException).code ?? 'exception' });
        this.opts.log?.warn({ sink: s.uri, err: (e as Error).message }, 'sink write threw');
      }
    }
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
