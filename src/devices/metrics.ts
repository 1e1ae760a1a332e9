/**
 * The daemon's Prometheus metrics (prom-client), one registry per daemon so tests can run
 * several. Names follow Prometheus conventions: `_total` counters, seconds for durations.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { DropReason } from './types.js';

export class DaemonMetrics {
  readonly registry = new Registry();
  readonly samplesIn = new Counter({ name: 'streamcell_samples_in_total', help: 'Readings received, per stream', labelNames: ['stream'] as const, registers: [this.registry] });
  readonly predictionsOut = new Counter({ name: 'streamcell_predictions_out_total', help: 'Predictions produced, per stream', labelNames: ['stream'] as const, registers: [this.registry] });
  readonly dropped = new Counter({ name: 'streamcell_dropped_total', help: 'Readings dropped, by reason', labelNames: ['reason'] as const, registers: [this.registry] });
  readonly reconnects = new Counter({ name: 'streamcell_reconnects_total', help: 'Source reconnections after a disconnect', labelNames: ['source'] as const, registers: [this.registry] });
  readonly sinkErrors = new Counter({ name: 'streamcell_sink_errors_total', help: 'Sink delivery failures (retried or queued)', labelNames: ['sink'] as const, registers: [this.registry] });
  readonly queueDepth = new Gauge({ name: 'streamcell_queue_depth', help: 'Predictions waiting in a sink queue', labelNames: ['sink'] as const, registers: [this.registry] });
  readonly queueOverflow = new Counter({ name: 'streamcell_queue_overflow_total', help: 'Predictions discarded because a sink queue was full', labelNames: ['sink'] as const, registers: [this.registry] });
  readonly streams = new Gauge({ name: 'streamcell_streams', help: 'Streams in the pool', registers: [this.registry] });
  readonly backendInfo = new Gauge({ name: 'streamcell_backend_info', help: 'The inference backend in use (1), how it was chosen, and the native probe verdict', labelNames: ['backend', 'version', 'how', 'native_probe'] as const, registers: [this.registry] });
  readonly stepSeconds = new Histogram({
    name: 'streamcell_step_seconds', help: 'Time from reading to prediction',
    buckets: [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.05, 0.1], registers: [this.registry],
  });

  drop(reason: DropReason): void {
    this.dropped.inc({ reason });
  }

  async text(): Promise<string> {
    return this.registry.metrics();
  }
}
