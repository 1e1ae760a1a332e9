/**
 * The dashboard's `status` event (`/events`): uptime, model, backend, sources, drops, latency,
 * sinks, checkpoint and per-stream figures, read from the same counters `/metrics` serves
 * ({@link DaemonMetrics}), never counted a second time.
 */
import type { BackendRecord } from '../runtime/backend.js';
import type { DaemonMetrics } from './metrics.js';
import type { Sink } from './types.js';

/** Streams listed in one status event at most (the labelled ones, first come). */
export const STATUS_MAX_STREAMS = 256;

/** One stream's row of the status event. */
export interface StreamStatus {
  id: string;
  /** Readings per second over about the last 10 s. */
  rate: number;
  /** Wall-clock ms of the last reading. */
  lastSeenMs: number;
  /** Readings of this stream dropped (validation, pool refusals; source-level drops have no stream). */
  drops: number;
  /** Line in → prediction written p99 (ms) of its last 64 traced readings (stage `total`); null before any. */
  latencyP99Ms: number | null;
  /** The last prediction's forecast or label. */
  last: number | string | null;
}

/** The `status` event's data (one JSON line). Fields the daemon cannot know are null. */
export interface StatusReport {
  t: number;
  uptimeS: number;
  /** `channels` (input names) and `target` (a forecaster's predicted channel) come from the model's preprocessing. */
  model: { sha256: string; bundleVersion: string | null; name: string | null; channels: string[] | null; target: string | null };
  backend: { name: string; version: string; how: string };
  sources: { name: string; connected: boolean; reconnects: number }[];
  /** Cumulative drops by reason: `streamcell_dropped_total`. */
  drops: Record<string, number>;
  /** Line in → prediction written (stage `total` of `streamcell_stage_seconds`, the traced readings): quantiles and cumulative buckets in ms. */
  latencyMs: { p50: number | null; p99: number | null; buckets: [number, number][]; count: number };
  sinks: { uri: string; backlog: number; errors: number; ok: boolean }[];
  checkpoint: { file: string | null; ageS: number | null };
  /** Total predictions: `streamcell_predictions_out_total` summed. */
  predictions: number;
  streams: StreamStatus[];
}

/** What {@link statusReport} reads from the daemon. */
export interface StatusInputs {
  metrics: DaemonMetrics;
  startedMs: number;
  model: StatusReport['model'];
  backend: BackendRecord;
  sources: { name: string; connected: boolean }[];
  sinks: readonly Sink[];
  checkpoint: { file?: string; writtenMs?: number };
  /** The pool's stream limit (the list is bounded by it and by {@link STATUS_MAX_STREAMS}). */
  maxStreams: number;
}

/**
 * The q-quantile of a cumulative histogram (`[le, count]` ascending, finite bounds), as
 * Prometheus' `histogram_quantile` computes it: linear within the bucket; the last finite bound
 * when it falls beyond; null without observations.
 */
export function histogramQuantile(buckets: readonly (readonly [number, number])[], count: number, q: number): number | null {
  if (!(count > 0)) return null;
  const rank = q * count;
  let prevLe = 0;
  let prevN = 0;
  for (const [le, n] of buckets) {
    if (n >= rank) return n === prevN ? le : prevLe + ((le - prevLe) * (rank - prevN)) / (n - prevN);
    prevLe = le;
    prevN = n;
  }
  return buckets.length ? buckets[buckets.length - 1]![0] : null;
}

/** The q-quantile of a sample (nearest rank); null when empty. */
function sampleQuantile(xs: Float64Array, n: number, q: number): number | null {
  if (n === 0) return null;
  const sorted = Float64Array.from(xs.subarray(0, n)).sort();
  return sorted[Math.min(n - 1, Math.max(0, Math.ceil(q * n) - 1))]!;
}

const round3 = (x: number): number => Math.round(x * 1000) / 1000;

/** Builds the status event from the daemon's counters. */
export async function statusReport(d: StatusInputs): Promise<StatusReport> {
  const m = d.metrics;
  const now = Date.now();
  const [dropped, reconnects, sinkErrors, stages, predictions] = await Promise.all([
    m.dropped.get(),
    m.reconnects.get(),
    m.sinkErrors.get(),
    m.stageSeconds.get(),
    m.predictionsOut.get(),
  ]);
  const drops: Record<string, number> = {};
  for (const v of dropped.values) {
    const reason = String(v.labels.reason);
    drops[reason] = (drops[reason] ?? 0) + v.value;
  }
  const sumBy = (values: { labels: Record<string, unknown>; value: number }[], key: string, want: string): number =>
    values.reduce((a, v) => (v.labels[key] === want ? a + v.value : a), 0);
  const buckets: [number, number][] = [];
  let count = 0;
  for (const v of stages.values) {
    const labels = v.labels as Record<string, unknown>;
    if (labels.stage !== 'total' || !v.metricName?.endsWith('_bucket')) continue;
    if (labels.le === '+Inf' || labels.le === Infinity) count = v.value;
    else buckets.push([round3(Number(labels.le) * 1000), v.value]);
  }
  buckets.sort((a, b) => a[0] - b[0]);
  const q = (p: number): number | null => {
    const x = histogramQuantile(buckets, count, p);
    return x === null ? null : round3(x);
  };
  const streams = m.streamRates(Math.min(STATUS_MAX_STREAMS, d.maxStreams)).map(({ c, rate }) => {
    const p99 = sampleQuantile(c.latencyMs, Math.min(c.latencyN, c.latencyMs.length), 0.99);
    return { id: c.label, rate: round3(rate), lastSeenMs: c.lastSeenMs, drops: c.drops, latencyP99Ms: p99 === null ? null : round3(p99), last: c.last };
  });
  return {
    t: now,
    uptimeS: d.startedMs ? Math.round((now - d.startedMs) / 1000) : 0,
    model: d.model,
    backend: { name: d.backend.name, version: d.backend.version, how: d.backend.how },
    sources: d.sources.map((s) => ({ ...s, reconnects: sumBy(reconnects.values, 'source', s.name) })),
    drops,
    latencyMs: { p50: q(0.5), p99: q(0.99), buckets, count },
    sinks: d.sinks.map((s) => ({ uri: s.uri, backlog: s.backlog?.() ?? 0, errors: sumBy(sinkErrors.values, 'sink', s.uri), ok: s.health?.().ok ?? true })),
    checkpoint: { file: d.checkpoint.file ?? null, ageS: d.checkpoint.writtenMs === undefined ? null : Math.round((now - d.checkpoint.writtenMs) / 1000) },
    predictions: predictions.values.reduce((a, v) => a + v.value, 0),
    streams,
  };
}
