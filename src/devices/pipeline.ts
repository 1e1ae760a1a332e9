/**
 * Readings → validation → per-stream policy → (resampling) → normalisation → stream pool →
 * predictions → sinks. Every reading that does not become a prediction is counted by reason.
 */
import type { PreprocessingJson } from '../data/preprocessing.js';
import type { Pool, Prediction } from '../runtime/pool-types.js';
import type { DaemonMetrics } from './metrics.js';
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
  /** Readings in flight (pushed, not yet predicted) at which sources are asked to pause; default 1024. */
  highWater?: number;
  /** Records waiting in one sink at which sources are asked to pause; default 16,384. */
  sinkHighWater?: number;
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
  /** Resampling: the previous reading and the next output time. */
  prev?: Reading;
  nextT?: number;
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
  if (values.some((v) => !Number.isFinite(v))) {
    if (policy.nonFinite === 'hold' && st.last) values = values.map((v, c) => (Number.isFinite(v) ? v : st!.last![c]!));
    else return { drop: 'non-finite', detail: `stream '${r.stream}': ${values.join(',')}`, ...(policy.nonFinite === 'reset' ? { reset: true as const } : {}) };
  }
  const { min, max } = policy;
  if ((min !== undefined && values.some((v) => v < min)) || (max !== undefined && values.some((v) => v > max))) {
    return { drop: 'out-of-range', detail: `stream '${r.stream}': ${values.join(',')} outside [${min ?? '-∞'}, ${max ?? '∞'}]` };
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

/** Validates readings, applies the stream policy and normalisation, steps the pool and writes predictions to the sinks; counts every drop; exerts backpressure on sources. */
export class Pipeline implements SourceEvents {
  readonly streams = new Map<string, StreamState>();
  private readonly policy: StreamPolicy;
  private inflight = 0;
  private idle: (() => void)[] = [];
  private disconnected = new Set<string>();
  private readonly mean: number[];
  private readonly std: number[];
  private readonly maxStreams: number;
  private readonly highWater: number;
  private readonly sinkHighWater: number;
  private waiters: (() => void)[] = [];
  private pollTimer?: NodeJS.Timeout;

  constructor(private readonly opts: PipelineOptions) {
    this.policy = streamPolicy(opts.policy);
    this.maxStreams = opts.maxStreams ?? DEFAULT_MAX_STREAMS;
    this.highWater = opts.highWater ?? 256;
    this.sinkHighWater = opts.sinkHighWater ?? 16_384;
    ({ mean: this.mean, std: this.std } = normalisation(opts.pre, opts.channels));
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

  reading(r: Reading): void {
    const m = this.opts.metrics;
    m.samplesIn.inc({ stream: m.streamLabel(r.stream) });
    const v = checkReading(r, this.opts.channels, this.policy, this.streams, this.maxStreams);
    if ('drop' in v) {
      if (v.reset) this.opts.pool.reset(r.stream);
      return this.drop(v.drop, v.detail);
    }
    if (this.opts.resampleHz) return this.resample(v.st, { ...r, values: v.values });
    this.step(r.stream, v.values, r.t);
  }

  /** Emits readings at the model's period, interpolated between the source's readings. */
  private resample(st: StreamState, r: Reading): void {
    const period = 1000 / this.opts.resampleHz!;
    if (!st.prev) {
      st.prev = r;
      st.nextT = r.t;
    }
    const a = st.prev;
    while (st.nextT! <= r.t) {
      const f = r.t === a.t ? 1 : (st.nextT! - a.t) / (r.t - a.t);
      this.step(
        r.stream,
        r.values.map((v, c) => a.values[c]! + f * (v - a.values[c]!)),
        st.nextT!,
      );
      st.nextT! += period;
    }
    st.prev = r;
  }

  private step(stream: string, raw: number[], t: number): void {
    const x = new Float32Array(raw.length);
    for (let c = 0; c < raw.length; c++) x[c] = (raw[c]! - this.mean[c]!) / this.std[c]!;
    const t0 = performance.now();
    this.inflight++;
    this.opts.pool.push(stream, x).then(
      (p) => {
        if (p) this.deliver(stream, raw, t, p, t0);
        this.settle();
      },
      (e: Error & { reason?: string }) => {
        this.drop(e.reason === 'unknown-stream' || e.reason === 'max-streams' ? 'unknown-stream' : 'rejected', `stream '${stream}': ${e.message}`);
        this.settle();
      },
    );
  }

  private deliver(stream: string, raw: number[], t: number, p: Prediction, t0: number): void {
    const m = this.opts.metrics;
    m.stepSeconds.observe((performance.now() - t0) / 1000);
    m.predictionsOut.inc({ stream: m.streamLabel(stream) });
    const rec = predictionRecord(stream, raw, t, p.step, p.outputs, this.opts.pre, { mean: this.mean, std: this.std });
    writeToSinks(this.opts.sinks, rec, m, this.opts.log);
  }

  private settle(): void {
    if (--this.inflight === 0) for (const f of this.idle.splice(0)) f();
    if (this.waiters.length > 0) this.release();
  }

  /** Resolves when every reading received so far has become a prediction or a drop. */
  drained(): Promise<void> {
    return this.inflight === 0 ? Promise.resolve() : new Promise((r) => this.idle.push(r));
  }
}
