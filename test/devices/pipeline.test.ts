/**
 * Pipeline unit tests with a stand-in pool (the integration tests use the real StreamPool):
 * validation and per-stream policies, drop counting, resampling to the model's rate.
 */
import { describe, expect, it } from 'vitest';
import { DaemonMetrics } from '../../src/devices/metrics.js';
import { Pipeline } from '../../src/devices/pipeline.js';
import type { PredictionRecord, Sink } from '../../src/devices/types.js';
import type { Pool, Prediction } from '../../src/runtime/pool-types.js';

/** A pool that echoes its input as output 'y' and counts steps per stream. */
function echoPool(): Pool<Prediction | null> & { resets: string[] } {
  const steps = new Map<string, number>();
  const resets: string[] = [];
  return {
    resets,
    push: async (id: string, x: ArrayLike<number>) => {
      const s = steps.get(id) ?? 0;
      steps.set(id, s + 1);
      return { id, step: s, outputs: { y: Float32Array.from(x as ArrayLike<number>) } };
    },
    reset: (id: string) => {
      resets.push(id);
      steps.set(id, 0);
      return true;
    },
  } as unknown as Pool<Prediction | null> & { resets: string[] };
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
    const p = new Pipeline({ pool: echoPool(), channels: 2, pre, metrics, sinks: [sink], policy: { min: -100, max: 100 } });
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
    const hold = new Pipeline({ pool: echoPool(), channels: 2, metrics: new DaemonMetrics(), sinks: [sink], policy: { nonFinite: 'hold' } });
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
      push: (id: string) => new Promise((r) => pending.push(() => r({ id, step: 0, outputs: { y: new Float32Array(1) } }))),
    } as unknown as Pool<Prediction | null>;
    const p = new Pipeline({ pool, channels: 1, metrics: new DaemonMetrics(), sinks: [collect()], highWater: 8 });
    for (let i = 0; i < 7; i++) p.reading({ stream: 's', values: [i], t: i });
    expect(p.pressure()).toBeUndefined();
    p.reading({ stream: 's', values: [7], t: 7 });
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
});
