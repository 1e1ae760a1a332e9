/**
 * The daemon's Prometheus metrics (prom-client), one registry per daemon so tests can run
 * several. Names follow Prometheus conventions: `_total` counters, seconds for durations.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { DropReason } from './types.js';

/** Streams that get their own label value on the per-stream counters; the rest count as `other`. */
export const DEFAULT_LABELLED_STREAMS = 64;
/** The label value shared by streams beyond the labelled ones. */
export const OTHER_STREAMS = '(other)';

export class DaemonMetrics {
  readonly registry = new Registry();
  private readonly labelled = new Set<string>();

  /**
   * @param labelledStreams how many stream ids get their own `stream` label value (first come);
   *   the others share `(other)`, so `/metrics` stays bounded whatever ids a source sends.
   */
  constructor(private readonly labelledStreams = DEFAULT_LABELLED_STREAMS) {}

  /** The `stream` label value for a stream id (bounded cardinality). */
  streamLabel(stream: string): string {
    if (this.labelled.has(stream)) return stream;
    if (this.labelled.size < this.labelledStreams && stream !== OTHER_STREAMS) {
      this.labelled.add(stream);
      return stream;
    }
    return OTHER_STREAMS;
  }

  readonly samplesIn = new Counter({
    name: 'streamcell_samples_in_total',
    help: 'Readings received, per stream (the first 64 ids; later ones as "(other)")',
    labelNames: ['stream'] as const,
    registers: [this.registry],
  });
  readonly predictionsOut = new Counter({
    name: 'streamcell_predictions_out_total',
    help: 'Predictions produced, per stream (the first 64 ids; later ones as "(other)")',
    labelNames: ['stream'] as const,
    registers: [this.registry],
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
  readonly stepSeconds = new Histogram({
    name: 'streamcell_step_seconds',
    help: 'Time from reading to prediction',
    buckets: [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.05, 0.1],
    registers: [this.registry],
  });

  drop(reason: DropReason): void {
    this.dropped.inc({ reason });
  }

  async text(): Promise<string> {
    return this.registry.metrics();
  }
}
