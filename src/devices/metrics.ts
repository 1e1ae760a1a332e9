/**
 * The daemon's Prometheus metrics (prom-client), one registry per daemon so tests can run
 * several. Names follow Prometheus conventions: `_total` counters, seconds for durations.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { TRACE_STAGES, type LatencyTrace } from './trace.js';
import type { DropReason } from './types.js';

/** Readings in and predictions out of one `stream` label value, counted in plain numbers on the hot path and added to the counters at each scrape. */
export interface StreamCounts {
  readonly label: string;
  in: number;
  out: number;
  /** Readings of this label dropped (validation, pool refusals); the by-reason total is `streamcell_dropped_total`. */
  drops: number;
  /** Wall-clock ms of the last reading handled (set per batch, and on a drop). */
  lastSeenMs: number;
  /** The last prediction's forecast or label. */
  last: number | string | null;
  /** Line in → written to the sinks latencies (ms) of this label's traced readings (stage `total`): a ring of {@link STREAM_LATENCY_KEEP}. */
  readonly latencyMs: Float64Array;
  latencyN: number;
}

/** Latencies kept per labelled stream for its p99 on the dashboard's status. */
export const STREAM_LATENCY_KEEP = 64;

/** Records one traced reading's line → written latency (ms, stage `total`) in its label's ring. */
export function observeStreamLatency(c: StreamCounts, ms: number): void {
  c.latencyMs[c.latencyN++ % STREAM_LATENCY_KEEP] = ms;
}

/** Streams that get their own label value on the per-stream counters; the rest count as `other`. */
export const DEFAULT_LABELLED_STREAMS = 64;
/** The label value shared by streams beyond the labelled ones. */
export const OTHER_STREAMS = '(other)';

/**
 * A label-less Prometheus histogram that takes `n` equal observations in one call: the
 * pipeline's rows of one pool call share their step time, so it records a batch at once
 * (a prom-client `observe` costs ~0.3 µs a call). Registered like a prom-client metric.
 */
export class BatchHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  private readonly counts: Float64Array;
  private sum = 0;
  private count = 0;

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly buckets: readonly number[],
    registry: Registry,
  ) {
    this.counts = new Float64Array(buckets.length);
    registry.registerMetric(this as unknown as Parameters<Registry['registerMetric']>[0]);
  }

  /** Records `n` observations of `value` (seconds). */
  observe(value: number, n = 1): void {
    if (!Number.isFinite(value)) return;
    this.sum += value * n;
    this.count += n;
    for (let i = 0; i < this.buckets.length; i++) {
      if (value <= this.buckets[i]!) {
        this.counts[i] += n;
        break;
      }
    }
  }

  /** prom-client's metric shape: cumulative `_bucket` values (with `+Inf`), `_sum` and `_count`. */
  async get(): Promise<{
    name: string;
    help: string;
    type: 'histogram';
    aggregator: 'sum';
    values: { labels: { le?: number | string }; value: number; metricName: string }[];
  }> {
    const values: { labels: { le?: number | string }; value: number; metricName: string }[] = [];
    let acc = 0;
    this.buckets.forEach((le, i) => {
      acc += this.counts[i]!;
      values.push({ labels: { le }, value: acc, metricName: `${this.name}_bucket` });
    });
    values.push({ labels: { le: '+Inf' }, value: this.count, metricName: `${this.name}_bucket` });
    values.push({ labels: {}, value: this.sum, metricName: `${this.name}_sum` });
    values.push({ labels: {}, value: this.count, metricName: `${this.name}_count` });
    return { name: this.name, help: this.help, type: 'histogram', aggregator: 'sum', values };
  }

  reset(): void {
    this.counts.fill(0);
    this.sum = this.count = 0;
  }
}

export class DaemonMetrics {
  readonly registry = new Registry();
  private readonly labelled = new Set<string>();
  /** Per label value: the counts, and what the counters already hold. */
  private readonly counts = new Map<string, { c: StreamCounts; in: number; out: number; rate: { t: number; n: number }[] }>();

  /**
   * @param labelledStreams how many stream ids get their own `stream` label value (first come);
   *   the others share `(other)`, so `/metrics` stays bounded whatever ids a source sends.
   */
  constructor(private readonly labelledStreams = DEFAULT_LABELLED_STREAMS) {
    // Every stage present from the start (a histogram family without samples is not valid text to some parsers).
    for (const stage of TRACE_STAGES) this.stageSeconds.zero({ stage });
  }

  /** The `stream` label value for a stream id (bounded cardinality). */
  streamLabel(stream: string): string {
    if (this.labelled.has(stream)) return stream;
    if (this.labelled.size < this.labelledStreams && stream !== OTHER_STREAMS) {
      this.labelled.add(stream);
      return stream;
    }
    return OTHER_STREAMS;
  }

  /**
   * The plain counters of a stream's label value (one object per label value: at most
   * `labelledStreams` + 1). The pipeline keeps it with the stream and increments it per
   * reading; `streamcell_samples_in_total` / `streamcell_predictions_out_total` catch up at
   * each scrape (a prom-client `inc` with labels costs ~0.2 µs, a plain increment nothing).
   */
  streamCounts(stream: string): StreamCounts {
    const label = this.streamLabel(stream);
    let e = this.counts.get(label);
    if (!e) {
      const c: StreamCounts = {
        label,
        in: 0,
        out: 0,
        drops: 0,
        lastSeenMs: Date.now(),
        last: null,
        latencyMs: new Float64Array(STREAM_LATENCY_KEEP),
        latencyN: 0,
      };
      this.counts.set(label, (e = { c, in: 0, out: 0, rate: [{ t: c.lastSeenMs, n: 0 }] }));
    }
    return e.c;
  }

  /**
   * The labelled streams' counts (not `(other)`), at most `max`, each with its rate in readings
   * per second over about the last `windowMs` (from samples taken at each call, so the first
   * call gives the rate since the stream was first seen).
   */
  streamRates(max: number, windowMs = 10_000): { c: StreamCounts; rate: number }[] {
    const now = Date.now();
    const out: { c: StreamCounts; rate: number }[] = [];
    for (const e of this.counts.values()) {
      if (e.c.label === OTHER_STREAMS) continue;
      if (out.length >= max) break;
      const r = e.rate;
      // Keep the newest sample at least windowMs old as the base, and nothing older.
      while (r.length > 1 && now - r[1]!.t >= windowMs) r.shift();
      const base = r[0]!;
      const dt = (now - base.t) / 1000;
      out.push({ c: e.c, rate: dt > 0 ? (e.c.in - base.n) / dt : 0 });
      if (r.length < 32) r.push({ t: now, n: e.c.in });
      else r[r.length - 1] = { t: now, n: e.c.in };
    }
    return out;
  }

  /** Adds what the plain counters gained since the last scrape. */
  private catchUp(): void {
    for (const e of this.counts.values()) {
      if (e.c.in > e.in) this.samplesIn.inc({ stream: e.c.label }, e.c.in - e.in);
      if (e.c.out > e.out) this.predictionsOut.inc({ stream: e.c.label }, e.c.out - e.out);
      e.in = e.c.in;
      e.out = e.c.out;
    }
  }

  readonly samplesIn = new Counter({
    name: 'streamcell_samples_in_total',
    help: 'Readings received, per stream (the first 64 ids; later ones as "(other)")',
    labelNames: ['stream'] as const,
    registers: [this.registry],
    collect: () => this.catchUp(),
  });
  readonly predictionsOut = new Counter({
    name: 'streamcell_predictions_out_total',
    help: 'Predictions produced, per stream (the first 64 ids; later ones as "(other)")',
    labelNames: ['stream'] as const,
    registers: [this.registry],
    collect: () => this.catchUp(),
  });
  readonly dropped = new Counter({
    name: 'streamcell_dropped_total',
    help: 'Readings dropped, by reason',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly reconnects = new Counter({
    name: 'streamcell_reconnects_total',
    help: 'Source reconnections after a disconnect',
    labelNames: ['source'] as const,
    registers: [this.registry],
  });
  readonly sinkErrors = new Counter({
    name: 'streamcell_sink_errors_total',
    help: 'Sink delivery failures (retried or queued), by error code (ENOSPC, EIO, disconnected, …)',
    labelNames: ['sink', 'code'] as const,
    registers: [this.registry],
  });
  readonly sinkHealthy = new Gauge({
    name: 'streamcell_sink_healthy',
    help: '1 while the sink delivers, 0 while it is failing (records queued or dropped and counted)',
    labelNames: ['sink'] as const,
    registers: [this.registry],
  });
  readonly queueDepth = new Gauge({
    name: 'streamcell_queue_depth',
    help: 'Predictions waiting in a sink queue',
    labelNames: ['sink'] as const,
    registers: [this.registry],
  });
  readonly queueOverflow = new Counter({
    name: 'streamcell_queue_overflow_total',
    help: 'Predictions discarded by a sink: its bounded queue was full, or still unwritten at shutdown',
    labelNames: ['sink'] as const,
    registers: [this.registry],
  });
  readonly rollouts = new Counter({
    name: 'streamcell_rollouts_total',
    help: 'Predictions that carry a rollout trajectory (--rollout K)',
    registers: [this.registry],
  });
  readonly rolloutSteps = new Counter({
    name: 'streamcell_rollout_steps_total',
    help: 'Trajectory steps produced by rollouts: K per rollout (K - 1 model steps beyond the prediction)',
    registers: [this.registry],
  });
  readonly rolloutsSkipped = new Counter({
    name: 'streamcell_rollouts_skipped_total',
    help: 'Predictions due a rollout that got none, by reason (stale: the stream stepped on before the copy; not-ready, unknown-stream, closed, inference, refused)',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  /** Set by the daemon: the pool's stream count and evictions, read at each scrape. */
  poolStats?: () => { streams: number; evicted: number };
  readonly streams = new Gauge({
    name: 'streamcell_streams',
    help: 'Streams in the pool',
    registers: [this.registry],
    collect: () => {
      if (this.poolStats) this.streams.set(this.poolStats().streams);
    },
  });
  readonly evicted = new Gauge({
    name: 'streamcell_streams_evicted',
    help: 'Streams evicted from the pool so far (least recently used, at the stream limit, or idle)',
    registers: [this.registry],
    collect: () => {
      if (this.poolStats) this.evicted.set(this.poolStats().evicted);
    },
  });
  readonly backendInfo = new Gauge({
    name: 'streamcell_backend_info',
    help: 'The inference backend in use (1), how it was chosen, and the native probe verdict',
    labelNames: ['backend', 'version', 'how', 'native_probe'] as const,
    registers: [this.registry],
  });
  readonly stepSeconds = new BatchHistogram(
    'streamcell_step_seconds',
    'Time from a reading pushed to the pool to its prediction',
    [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.05, 0.1],
    this.registry,
  );

  readonly stageSeconds = new Histogram({
    name: 'streamcell_stage_seconds',
    help: 'Sampled readings (1 in 64 by default): time in each stage of the hot path (frame: line in → reading; validate; queue: → pushed to the pool; infer: → prediction back; sink: → written to the sinks; total: line in → written)',
    labelNames: ['stage'] as const,
    buckets: [0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.05, 0.1],
    registers: [this.registry],
  });
  /** Set by the daemon: the latency trace whose event-loop delay is read at each scrape. */
  trace?: LatencyTrace;
  readonly eventLoopDelay = new Gauge({
    name: 'streamcell_event_loop_delay_seconds',
    help: 'Event-loop delay since start (monitorEventLoopDelay, 10 ms resolution), by quantile (0.5, 0.99, max)',
    labelNames: ['quantile'] as const,
    registers: [this.registry],
    collect: () => {
      if (!this.trace) return;
      const l = this.trace.eventLoop();
      this.eventLoopDelay.set({ quantile: '0.5' }, l.p50Ms / 1000);
      this.eventLoopDelay.set({ quantile: '0.99' }, l.p99Ms / 1000);
      this.eventLoopDelay.set({ quantile: 'max' }, l.maxMs / 1000);
    },
  });

  /** Feeds a finished trace (ms per stage, TRACE_STAGES order) into `streamcell_stage_seconds`. */
  observeTrace(ms: Float64Array): void {
    for (let i = 0; i < TRACE_STAGES.length; i++) this.stageSeconds.observe({ stage: TRACE_STAGES[i]! }, ms[i]! / 1000);
  }

  drop(reason: DropReason): void {
    this.dropped.inc({ reason });
  }

  async text(): Promise<string> {
    return this.registry.metrics();
  }
}
