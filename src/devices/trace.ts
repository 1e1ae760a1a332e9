/**
 * Sampled latency trace of the daemon's hot path: `performance.now()` stamps of one reading in
 * N at each stage — line in (the source's data event), framed (a reading), validated, pushed to
 * the pool, prediction back, written to the sinks — kept as the last {@link TRACE_KEEP}
 * durations per stage (p50/p99 on demand), plus the event-loop delay (`monitorEventLoopDelay`).
 * A sampled reading costs six clock reads and one small array; the others a counter test.
 */
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';

/** The stamps of a traced reading, in order; a stage's duration runs from the previous stamp. */
export const TRACE_STAMPS = ['in', 'framed', 'validated', 'pushed', 'predicted', 'written'] as const;
export type TraceStamp = (typeof TRACE_STAMPS)[number];
/** Stage names of the breakdown: one per stamp after the first, and `total` (in → written). */
export const TRACE_STAGES = ['frame', 'validate', 'queue', 'infer', 'sink', 'total'] as const;
export type TraceStage = (typeof TRACE_STAGES)[number];

/** Durations kept per stage (a ring: the newest). */
export const TRACE_KEEP = 4096;
/** Readings per traced one by default. */
export const DEFAULT_TRACE_EVERY = 64;

/** Stamp indices, for the hot path. */
export const S_IN = 0;
export const S_FRAMED = 1;
export const S_VALIDATED = 2;
export const S_PUSHED = 3;
export const S_PREDICTED = 4;
export const S_WRITTEN = 5;

/** p50/p99 of one stage over the kept samples. */
export interface StageSummary {
  n: number;
  p50Ms: number;
  p99Ms: number;
}

/** What {@link LatencyTrace.breakdown} reports. */
export interface LatencyBreakdown {
  every: number;
  stages: Record<TraceStage, StageSummary>;
  eventLoop: { p50Ms: number; p99Ms: number; maxMs: number };
}

export class LatencyTrace {
  private countdown: number;
  private readonly rings = TRACE_STAGES.map(() => new Float64Array(TRACE_KEEP));
  private readonly counts = TRACE_STAGES.map(() => 0);
  private loop?: IntervalHistogram;
  /** Called with each finished trace (stage durations in ms, TRACE_STAGES order): the /metrics histogram. */
  onTrace?: (ms: Float64Array) => void;
  private readonly scratch = new Float64Array(TRACE_STAGES.length);

  /** @param every trace one reading in `every` (1: all; 0: none). */
  constructor(readonly every = DEFAULT_TRACE_EVERY) {
    if (!(Number.isInteger(every) && every >= 0)) throw new RangeError(`trace interval must be a non-negative integer, got ${every}`);
    this.countdown = every;
  }

  /** A stamp array for this reading when it is sampled (the first two stamps set), else undefined. */
  begin(rx: number | undefined): Float64Array | undefined {
    if (this.every === 0 || --this.countdown > 0) return undefined;
    this.countdown = this.every;
    const s = new Float64Array(TRACE_STAMPS.length);
    const now = performance.now();
    s[S_IN] = rx ?? now;
    s[S_FRAMED] = now;
    return s;
  }

  /** Records a reading whose stamps are all set. */
  end(s: Float64Array): void {
    const d = this.scratch;
    for (let i = 0; i < TRACE_STAGES.length - 1; i++) d[i] = s[i + 1]! - s[i]!;
    d[TRACE_STAGES.length - 1] = s[S_WRITTEN]! - s[S_IN]!;
    for (let i = 0; i < d.length; i++) this.rings[i]![this.counts[i]!++ % TRACE_KEEP] = d[i]!;
    this.onTrace?.(d);
  }

  /** Starts sampling the event-loop delay (stop with {@link stopLoop}). */
  startLoop(): void {
    if (this.loop) return;
    this.loop = monitorEventLoopDelay({ resolution: 10 });
    this.loop.enable();
  }

  stopLoop(): void {
    this.loop?.disable();
  }

  /** The event-loop delay so far (ms); zeros when not started. */
  eventLoop(): { p50Ms: number; p99Ms: number; maxMs: number } {
    const h = this.loop;
    if (!h || h.count === 0) return { p50Ms: 0, p99Ms: 0, maxMs: 0 };
    return { p50Ms: h.percentile(50) / 1e6, p99Ms: h.percentile(99) / 1e6, maxMs: h.max / 1e6 };
  }

  /** p50/p99 per stage over the last {@link TRACE_KEEP} traced readings, and the event-loop delay. */
  breakdown(): LatencyBreakdown {
    const stages = {} as Record<TraceStage, StageSummary>;
    TRACE_STAGES.forEach((name, i) => {
      const n = Math.min(this.counts[i]!, TRACE_KEEP);
      const v = this.rings[i]!.slice(0, n).sort();
      const q = (p: number) => (n ? v[Math.min(n - 1, Math.floor(p * n))]! : 0);
      stages[name] = { n, p50Ms: q(0.5), p99Ms: q(0.99) };
    });
    return { every: this.every, stages, eventLoop: this.eventLoop() };
  }
}
