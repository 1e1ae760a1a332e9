/**
 * Pipeline unit tests with a stand-in pool (the integration tests use the real StreamPool):
 * validation and per-stream policies, drop counting, resampling to the model's rate.
 */
import { describe, expect, it } from 'vitest';
import { DaemonMetrics } from '../../src/devices/metrics.js';
import { Pipeline } from '../../src/devices/pipeline.js';
import { LatencyTrace, TRACE_STAGES } from '../../src/devices/trace.js';
import type { PredictionRecord, Sink } from '../../src/devices/types.js';
import type { Pool, Prediction } from '../../src/runtime/pool-types.js';

/**
 * A pool that echoes its input as output 'y' and counts steps per stream; `pushMany` records
 * each call's ids. Streams named 'bad…' are rejected (reason `length`), row by row.
 */
function echoPool(width = 1): Pool<Prediction | null> & { resets: string[]; calls: string[][] } {
  const steps = new Map<string, number>();
  const resets: string[] = [];
  const calls: string[][] = [];
  return {
    resets,
    calls,
    sampleSize: width,
    pushMany: async (ids: readonly string[], x: Float32Array, n = ids.length) => {
      calls.push(ids.slice(0, n));
      const res = {
        n,
        steps: new Float64Array(n).fill(-1),
        outputs: { y: new Float32Array(n * width).fill(NaN) },
        sizes: { y: width },
        errors: new Map<number, Error>(),
      };
      for (let i = 0; i < n; i++) {
        const id = ids[i]!;
        if (id.startsWith('bad')) {
          res.errors.set(i, Object.assign(new Error('bad row'), { reason: 'length' }));
          continue;
        }
        const s = steps.get(id) ?? 0;
        steps.set(id, s + 1);
        res.steps[i] = s;
        res.outputs.y.set(x.subarray(i * width, (i + 1) * width), i * width);
      }
      return res;
    },
    reset: (id: string) => {
      resets.push(id);
      steps.set(id, 0);
      return true;
    },
  } as unknown as Pool<Prediction | null> & { resets: string[]; calls: string[][] };
}

function collect(): Sink & { recs: PredictionRecord[] } {
  const recs: PredictionRecord[] = [];
  return { uri: 'mem:', recs, write: (r) => recs.push(r), flush: async () => {}, close: async () => {} };
}

async function dropped(m: DaemonMetrics): Promise<Record<string, number>> {
  return Object.fromEntries((await m.dropped.get()).values.map((v) => [v.labels.reason, v.value]));
}

describe('Pipeline', () => {
  it('counts every rejected reading by reason and predicts the rest, normalised', async () => {
    const metrics = new DaemonMetrics();
    const sink = collect();
    const pre = { task: 'forecast' as const, channels: ['a', 'b'], window: 4, normalization: { a: { mean: 10, std: 2 }, b: { mean: 0, std: 1 } } };
    const p = new Pipeline({ pool: echoPool(2), channels: 2, pre, metrics, sinks: [sink], policy: { min: -100, max: 100 } });
    p.reading({ stream: 's', values: [12, 1], t: 1 });
    p.reading({ stream: 's', values: [12], t: 2 });
    p.reading({ stream: 's', values: [NaN, 1], t: 3 });
    p.reading({ stream: 's', values: [1000, 1], t: 4 });
    p.reading({ stream: 's', values: [14, 1], t: 0.5 });
    p.reading({ stream: 's', values: [8, -1], t: 5 });
    await p.drained();
    expect(await dropped(metrics)).toEqual({ 'column-count': 1, 'non-finite': 1, 'out-of-range': 1, 'time-backwards': 1 });
    expect(sink.recs.map((r) => [r.seq, r.outputs.y])).toEqual([
      [0, [1, 1]],
      [1, [-1, -1]],
    ]);
    // forecast in target units: the output is normalised like the target column
    expect(sink.recs[0]!.forecast).toBeCloseTo(10 + 2 * 1);
  });

  it("NaN policy 'hold' reuses the channel's last good value; 'reset' resets the stream", async () => {
    const sink = collect();
    const hold = new Pipeline({ pool: echoPool(2), channels: 2, metrics: new DaemonMetrics(), sinks: [sink], policy: { nonFinite: 'hold' } });
    hold.reading({ stream: 's', values: [1, 2], t: 1 });
    hold.reading({ stream: 's', values: [NaN, 3], t: 2 });
    await hold.drained();
    expect(sink.recs.map((r) => r.input)).toEqual([
      [1, 2],
      [1, 3],
    ]);
    const pool = echoPool();
    const reset = new Pipeline({ pool, channels: 1, metrics: new DaemonMetrics(), sinks: [collect()], policy: { nonFinite: 'reset' } });
    reset.reading({ stream: 'x', values: [Infinity], t: 1 });
    expect(pool.resets).toEqual(['x']);
  });

  it('resamples a 3 Hz stream with jittery timestamps to 10 Hz by linear interpolation', async () => {
    const sink = collect();
    const p = new Pipeline({ pool: echoPool(), channels: 1, metrics: new DaemonMetrics(), sinks: [sink], resampleHz: 10 });
    // value = t/1000 (a ramp), readings at irregular times
    for (const t of [0, 310, 650, 1000]) p.reading({ stream: 'r', values: [t / 1000], t });
    await p.drained();
    expect(sink.recs.map((r) => r.t)).toEqual([0, 100, 200, 300, 400, 500, 600, 700, 800, 900, 1000]);
    sink.recs.forEach((r) => expect(r.input[0]).toBeCloseTo(r.t / 1000, 9));
  });

  it('an option given as undefined keeps its default: timestamps going backwards are dropped', async () => {
    const metrics = new DaemonMetrics();
    const sink = collect();
    const p = new Pipeline({
      pool: echoPool(),
      channels: 1,
      metrics,
      sinks: [sink],
      policy: { nonFinite: undefined, monotonicTime: undefined, min: undefined },
    });
    for (const t of [10, 20, 15, 30]) p.reading({ stream: 's', values: [t], t });
    await p.drained();
    expect(await dropped(metrics)).toEqual({ 'time-backwards': 1 });
    expect(sink.recs).toHaveLength(3);
  });

  it('asks sources to pause while too many readings are in flight, and releases them at half the mark', async () => {
    const pending: (() => void)[] = [];
    const pool = {
      sampleSize: 1,
      pushMany: (_ids: readonly string[], _x: Float32Array, n: number) =>
        new Promise((r) => pending.push(() => r({ n, steps: new Float64Array(n), outputs: { y: new Float32Array(n) }, sizes: { y: 1 }, errors: new Map() }))),
    } as unknown as Pool<Prediction | null>;
    const p = new Pipeline({ pool, channels: 1, metrics: new DaemonMetrics(), sinks: [collect()], highWater: 8 });
    // One reading a tick: each is its own batch (one pool call), settled on its own.
    for (let i = 0; i < 7; i++) {
      p.reading({ stream: 's', values: [i], t: i });
      await Promise.resolve();
    }
    expect(p.pressure()).toBeUndefined();
    p.reading({ stream: 's', values: [7], t: 7 });
    await Promise.resolve();
    const wait = p.pressure();
    expect(wait).toBeInstanceOf(Promise);
    let released = false;
    void wait!.then(() => (released = true));
    for (let i = 0; i < 4; i++) pending.shift()!(); // 4 left in flight: not below half yet
    await new Promise((r) => setImmediate(r)); // every settled push has been handled
    expect(released).toBe(false);
    pending.shift()!(); // 3 left
    await wait;
    await new Promise((r) => setImmediate(r));
    expect(released).toBe(true);
    while (pending.length) pending.shift()!();
    await p.drained();
  });

  it('a sink that throws does not keep the others from their records; its errors are counted', async () => {
    const metrics = new DaemonMetrics();
    const good = collect();
    const bad: Sink = {
      uri: 'bad:',
      write: () => {
        throw Object.assign(new Error('boom'), { code: 'EIO' });
      },
      flush: async () => {},
      close: async () => {},
    };
    const p = new Pipeline({ pool: echoPool(), channels: 1, metrics, sinks: [bad, good] });
    for (let i = 0; i < 5; i++) p.reading({ stream: 's', values: [i], t: i });
    await p.drained();
    expect(good.recs).toHaveLength(5);
    expect((await metrics.sinkErrors.get()).values.find((v) => v.labels.sink === 'bad:' && v.labels.code === 'EIO')?.value).toBe(5);
  });

  it('keeps validation state for at most maxStreams streams (least recently used evicted) and labels at most 64 in metrics', async () => {
    const metrics = new DaemonMetrics();
    const p = new Pipeline({ pool: echoPool(), channels: 1, metrics, sinks: [collect()], maxStreams: 100 });
    for (let i = 0; i < 1000; i++) p.reading({ stream: `id${i}`, values: [i], t: i });
    await p.drained();
    expect(p.streams.size).toBe(100);
    expect([...p.streams.keys()][0]).toBe('id900');
    const labels = new Set((await metrics.samplesIn.get()).values.map((v) => v.labels.stream));
    expect(labels.size).toBe(65);
    expect((await metrics.samplesIn.get()).values.find((v) => v.labels.stream === '(other)')?.value).toBe(1000 - 64);
  });

  it('steps the readings of one tick with one pool call, keeping the order of each stream and counting rejected rows', async () => {
    const metrics = new DaemonMetrics();
    const sink = collect();
    const pool = echoPool();
    const p = new Pipeline({ pool, channels: 1, metrics, sinks: [sink], policy: { max: 1000 } });
    // One "serial chunk": 3 streams interleaved, one bad-id row (rejected by the pool), one out-of-range reading.
    const ids = ['a', 'b', 'c', 'a', 'bad1', 'b', 'a', 'c', 'b', 'a'];
    ids.forEach((id, i) => p.reading({ stream: id, values: [i], t: i }));
    p.reading({ stream: 'a', values: [5000], t: 99 });
    await Promise.resolve();
    // A second tick: its own call, after the first.
    p.reading({ stream: 'a', values: [10], t: 10 });
    p.reading({ stream: 'c', values: [11], t: 11 });
    await p.drained();
    expect(pool.calls).toEqual([ids, ['a', 'c']]);
    expect(await dropped(metrics)).toEqual({ 'out-of-range': 1, rejected: 1 });
    for (const id of ['a', 'b', 'c']) {
      const recs = sink.recs.filter((r) => r.stream === id);
      expect(recs.map((r) => r.seq)).toEqual(recs.map((_, k) => k));
      // the inputs in the order they were read
      expect(recs.map((r) => r.input[0])).toEqual([...recs.map((r) => r.input[0]!)].sort((x, y) => x - y));
      expect(recs.map((r) => r.outputs.y)).toEqual(recs.map((r) => r.input));
    }
    expect(sink.recs).toHaveLength(ids.length - 1 + 2);
    expect(p.inFlight).toBe(0);
    const sum = async (c: typeof metrics.samplesIn) => (await c.get()).values.reduce((n, v) => n + v.value, 0);
    expect(await sum(metrics.samplesIn)).toBe(13);
    expect(await sum(metrics.predictionsOut)).toBe(11);
    expect((await metrics.stepSeconds.get()).values.find((v) => v.metricName === 'streamcell_step_seconds_count')?.value).toBe(11);
  });

  it('a pool call that fails as a whole drops each of its rows, counted', async () => {
    const metrics = new DaemonMetrics();
    const pool = {
      sampleSize: 1,
      pushMany: () => Promise.reject(Object.assign(new Error('closed'), { reason: 'closed' })),
    } as unknown as Pool<Prediction | null>;
    const p = new Pipeline({ pool, channels: 1, metrics, sinks: [collect()] });
    for (let i = 0; i < 4; i++) p.reading({ stream: 's', values: [i], t: i });
    await p.drained();
    expect(await dropped(metrics)).toEqual({ rejected: 4 });
    // a model whose samples are not `channels` values: every row rejected, none misread
    const m2 = new DaemonMetrics();
    const p2 = new Pipeline({ pool: echoPool(3), channels: 1, metrics: m2, sinks: [collect()] });
    p2.reading({ stream: 's', values: [1], t: 1 });
    await p2.drained();
    expect(await dropped(m2)).toEqual({ rejected: 1 });
  });

  it('traces sampled readings with stamps in stage order, every Nth reading', async () => {
    const metrics = new DaemonMetrics();
    const sink = collect();
    const trace = new LatencyTrace(3);
    const seen: number[][] = [];
    trace.onTrace = (ms) => seen.push([...ms]);
    const stamps: Float64Array[] = [];
    const end = trace.end.bind(trace);
    trace.end = (s) => {
      stamps.push(s.slice());
      end(s);
    };
    const p = new Pipeline({ pool: echoPool(), channels: 1, metrics, sinks: [sink], trace });
    const rx = performance.now();
    for (let i = 0; i < 9; i++) p.reading({ stream: 's', values: [i], t: i, rx });
    await p.drained();
    expect(stamps).toHaveLength(3);
    for (const s of stamps) {
      expect(s[0]).toBe(rx);
      // in ≤ framed ≤ validated ≤ pushed ≤ predicted ≤ written: performance.now() never goes back
      for (let k = 1; k < s.length; k++) expect(s[k]!).toBeGreaterThanOrEqual(s[k - 1]!);
    }
    expect(seen).toHaveLength(3);
    for (const d of seen) {
      expect(d).toHaveLength(TRACE_STAGES.length);
      d.forEach((v) => expect(v).toBeGreaterThanOrEqual(0));
      // total = the sum of the stages (same stamps; float rounding only)
      expect(d.at(-1)!).toBeCloseTo(
        d.slice(0, -1).reduce((a, b) => a + b, 0),
        9,
      );
    }
    const b = trace.breakdown();
    expect(b.every).toBe(3);
    for (const name of TRACE_STAGES) expect(b.stages[name].n).toBe(3);
    expect(b.stages.total.p99Ms).toBeGreaterThanOrEqual(b.stages.total.p50Ms);
    // the per-stage histogram on /metrics gets them (when wired as the daemon does)
    metrics.observeTrace(new Float64Array(TRACE_STAGES.length).fill(0.01));
    const h = (await metrics.stageSeconds.get()).values.filter((v) => v.metricName === 'streamcell_stage_seconds_count');
    expect(h.map((v) => v.labels.stage).sort()).toEqual([...TRACE_STAGES].sort());
    // off: no stamps at all
    const off = new LatencyTrace(0);
    expect(off.begin(rx)).toBeUndefined();
  });
});
