/**
 * `pushMany`: the batched push API gives, at every step, exactly what the per-push path
 * gives (same batches of the same rows, so equal to the last bit), keeps each stream's rows in
 * order within and across calls, and rejects bad rows alone, counted like rejected pushes.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { isInferenceError, isSampleError, isStreamRejectedError, type SampleError, type StreamRejectedError } from '../../src/runtime/pool-errors.js';
import { StreamPool } from '../../src/runtime/pool.js';
import type { BatchResult, PoolOptions, Prediction } from '../../src/runtime/pool-types.js';
import { WindowPool } from '../../src/runtime/window.js';
import { lstmStepModel, lstmWindowModel, signal, twoInputStepModel, wrappedBackend } from './models.js';

const model = lstmStepModel({ hidden: 8, input: 3, out: 2, seed: 1 });
const opened: { close(): Promise<void> }[] = [];

async function streamPool(opts: PoolOptions = {}, bytes: Uint8Array = model): Promise<StreamPool> {
  const p = await StreamPool.create(bytes, opts);
  opened.push(p);
  return p;
}

afterAll(async () => {
  await Promise.all(opened.map((p) => p.close()));
});

/** Row i of a result as the per-push path's outputs. */
function rowOf(r: BatchResult, i: number): Record<string, Float32Array> {
  const o: Record<string, Float32Array> = {};
  for (const [k, a] of Object.entries(r.outputs)) o[k] = a.slice(i * r.sizes[k]!, (i + 1) * r.sizes[k]!);
  return o;
}

/** A deterministic schedule: per tick, which streams push (some twice, some not at all). */
function schedule(S: number, T: number): string[][] {
  const next = new Array<number>(S).fill(0);
  const ticks: string[][] = [];
  for (let tick = 0; next.some((n) => n < T); tick++) {
    const ids: string[] = [];
    for (let s = 0; s < S; s++) {
      const times = (s * 7 + tick * 3) % 4 === 0 ? 0 : (s + tick) % 5 === 0 ? 2 : 1;
      for (let r = 0; r < times && next[s]! < T; r++, next[s]!++) ids.push(`s${s}`);
    }
    ticks.push(ids);
  }
  return ticks;
}

describe('pushMany', () => {
  it('equals the per-push path at every step for interleaved streams, repeated ids in one call included', async () => {
    const S = 10;
    const T = 20;
    const xs = Array.from({ length: S }, (_, s) => signal(s, T, 3));
    const ticks = schedule(S, T);
    const many = await streamPool();
    const each = await streamPool();
    const pos = new Map<string, number>();
    const posEach = new Map<string, number>();
    for (const ids of ticks) {
      const samples = new Float32Array(ids.length * many.sampleSize);
      ids.forEach((id, i) => {
        const t = pos.get(id) ?? 0;
        pos.set(id, t + 1);
        samples.set(xs[Number(id.slice(1))]![t]!, i * 3);
      });
      const r = await many.pushMany(ids, samples);
      const ps = await Promise.all(
        ids.map((id) => {
          const t = posEach.get(id) ?? 0;
          posEach.set(id, t + 1);
          return each.push(id, xs[Number(id.slice(1))]![t]!);
        }),
      );
      expect(r.n).toBe(ids.length);
      expect(r.errors.size).toBe(0);
      expect(r.sizes).toEqual({ y: 2 });
      ps.forEach((p: Prediction, i) => {
        expect(r.steps[i]).toBe(p.step);
        // Same rows in the same batches: bit-identical.
        expect(Array.from(rowOf(r, i).y!)).toEqual(Array.from(p.outputs.y!));
      });
    }
    // Each stream's rows stepped in order: its steps are 0..T-1.
    expect(many.stats().steps).toBe(S * T);
    expect(many.stats().batches).toBe(each.stats().batches);
  });

  it('keeps a stream in order across calls made in the same tick', async () => {
    const p = await streamPool();
    const xs = signal(3, 4, 3);
    const [a, b] = await Promise.all([p.pushMany(['a', 'b', 'a'], Float32Array.from([...xs[0]!, ...xs[0]!, ...xs[1]!])), p.pushMany(['a'], xs[2]!)]);
    expect(Array.from(a.steps)).toEqual([0, 0, 1]);
    expect(Array.from(b.steps)).toEqual([2]);
    const ref = await streamPool();
    for (let t = 0; t < 3; t++) {
      const q = await ref.push('a', xs[t]!);
      const got = t < 2 ? rowOf(a, t === 0 ? 0 : 2).y! : rowOf(b, 0).y!;
      expect(Array.from(got)).toEqual(Array.from(q.outputs.y!));
    }
  });

  it('rejects bad rows alone, with typed errors counted by reason; the others are predicted', async () => {
    const p = await streamPool({ unknownStream: 'reject' });
    p.open('good0');
    p.open('good1');
    p.open('nan');
    const x = signal(0, 1, 3)[0]!;
    const samples = new Float32Array(4 * 3);
    samples.set(x, 0);
    samples.set([1, NaN, 3], 3);
    samples.set(x, 6);
    samples.set(x, 9);
    const r = await p.pushMany(['good0', 'nan', 'unknown', 'good1'], samples);
    expect(Array.from(r.steps)).toEqual([0, -1, -1, 0]);
    expect([...r.errors.keys()]).toEqual([1, 2]);
    const nan = r.errors.get(1) as SampleError;
    expect(isSampleError(nan)).toBe(true);
    expect(nan).toMatchObject({ streamId: 'nan', reason: 'non-finite', input: 'x' });
    expect(nan.got).toContain('index 1');
    const unknown = r.errors.get(2) as StreamRejectedError;
    expect(isStreamRejectedError(unknown)).toBe(true);
    expect(unknown.reason).toBe('unknown-stream');
    expect(Number.isNaN(r.outputs.y![2])).toBe(true);
    expect(Array.from(rowOf(r, 0).y!)).toEqual(Array.from(rowOf(r, 3).y!));
    expect(p.stats().rejected).toEqual({ 'non-finite': 1, 'unknown-stream': 1 });
    expect(p.stats().pushes).toBe(2);
  });

  it('repairs non-finite values under hold-last as push does', async () => {
    const xs = signal(2, 3, 3);
    const bad = Float32Array.from([NaN, xs[2]![1]!, -Infinity]);
    const many = await streamPool({ nonFinite: 'hold-last' });
    const each = await streamPool({ nonFinite: 'hold-last' });
    const r = await many.pushMany(['s', 's', 's'], Float32Array.from([...xs[0]!, ...xs[1]!, ...bad]));
    for (const [i, x] of [xs[0]!, xs[1]!, bad].entries()) expect(Array.from(rowOf(r, i).y!)).toEqual(Array.from((await each.push('s', x)).outputs.y!));
    expect(many.stats().repaired).toBe(1);
  });

  it('serves a two-input model: a row is the inputs concatenated in model order', async () => {
    const two = twoInputStepModel({ hidden: 8, seed: 3 });
    const many = await streamPool({}, two);
    const each = await streamPool({}, two);
    const sizes = each.info.sampleInputs.map((i) => Number(i.dims.at(-1)));
    expect(many.sampleSize).toBe(sizes[0]! + sizes[1]!);
    const names = each.info.sampleInputs.map((i) => i.name);
    const a = Float32Array.from({ length: sizes[0]! }, (_, i) => 0.1 * i);
    const b = Float32Array.from({ length: sizes[1]! }, (_, i) => -0.2 * i);
    const r = await many.pushMany(['s'], Float32Array.from([...a, ...b]));
    const q = await each.push('s', { [names[0]!]: a, [names[1]!]: b });
    for (const k of Object.keys(q.outputs)) expect(Array.from(rowOf(r, 0)[k]!)).toEqual(Array.from(q.outputs[k]!));
  });

  it('turns a failing run into InferenceError on its rows; a closed pool rejects every row', async () => {
    let failNext = false;
    const flaky = await wrappedBackend((s, f, n) => {
      if (!failNext) return s.run(f, n);
      failNext = false;
      return Promise.reject(new Error('device lost'));
    });
    const p = await streamPool({ backend: flaky });
    const x = signal(0, 1, 3)[0]!;
    failNext = true;
    const r = await p.pushMany(['a', 'b'], Float32Array.from([...x, ...x]));
    expect(r.errors.size).toBe(2);
    expect(isInferenceError(r.errors.get(0))).toBe(true);
    expect(Array.from(r.steps)).toEqual([-1, -1]);
    const ok = await p.pushMany(['a'], x);
    expect(ok.steps[0]).toBe(0);
    await p.close();
    const closed = await p.pushMany(['a', 'b'], Float32Array.from([...x, ...x]));
    expect([...closed.errors.values()].map((e) => (e as StreamRejectedError).reason)).toEqual(['closed', 'closed']);
  });

  it('refuses samples shorter than n rows and a bad n, before touching any stream', async () => {
    const p = await streamPool();
    expect(() => p.pushMany(['a', 'b'], new Float32Array(5))).toThrow(RangeError);
    expect(() => p.pushMany(['a'], new Float32Array(3), 2)).toThrow(/n must be/);
    expect(p.size).toBe(0);
    const none = await p.pushMany([], new Float32Array(0));
    expect(none.n).toBe(0);
    expect(none.outputs.y!.length).toBe(0);
  });

  it('WindowPool: rows before the window is full (and between hops) have step -1 and no error; predictions equal push', async () => {
    const W = 4;
    const win = lstmWindowModel({ hidden: 8, seed: 4 }, W);
    const many = await WindowPool.create(win, { hop: 2 });
    const each = await WindowPool.create(win, { hop: 2 });
    opened.push(many, each);
    const xs = signal(1, 9, 3);
    const ids = ['w', 'w', 'w', 'w', 'w', 'w', 'w', 'w', 'w'];
    const r = await many.pushMany(ids, Float32Array.from(xs.flatMap((x) => [...x])));
    const ps = [];
    for (const x of xs) ps.push(await each.push('w', x));
    expect(Array.from(r.steps)).toEqual(ps.map((p) => (p ? p.step : -1)));
    expect(Array.from(r.steps)).toEqual([-1, -1, -1, 3, -1, 5, -1, 7, -1]);
    expect(r.errors.size).toBe(0);
    ps.forEach((p, i) => {
      if (p) expect(Array.from(rowOf(r, i).y!)).toEqual(Array.from(p.outputs.y!));
    });
  });
});

describe('workers', () => {
  it('sessions in worker threads give what one session gives, in order per stream', async () => {
    const S = 40;
    const T = 12;
    const xs = Array.from({ length: S }, (_, s) => signal(s, T, 3));
    const one = await streamPool({ maxBatch: 16 });
    const two = await streamPool({ workers: 2, maxBatch: 16 });
    const ids = Array.from({ length: S }, (_, s) => `s${s}`);
    for (let t = 0; t < T; t++) {
      const samples = new Float32Array(S * 3);
      for (let s = 0; s < S; s++) samples.set(xs[s]![t]!, s * 3);
      const [a, b] = await Promise.all([one.pushMany(ids, samples), two.pushMany(ids, samples)]);
      expect(Array.from(b.steps)).toEqual(Array.from(a.steps));
      // Same rows in the same batches on the same kernels: identical.
      expect(Array.from(b.outputs.y!)).toEqual(Array.from(a.outputs.y!));
    }
    // Per-push from the same tick, a stream pushed twice: order kept across workers.
    const ps = await Promise.all([two.push('s0', xs[0]![0]!), two.push('s0', xs[0]![1]!), two.push('s1', xs[1]![0]!)]);
    expect(ps.map((p) => p.step)).toEqual([T, T + 1, T]);
    expect(two.stats().batches).toBeGreaterThanOrEqual(3 * T);
    await two.close();
    const closed = await two.pushMany(['s0'], xs[0]![0]!);
    expect((closed.errors.get(0) as StreamRejectedError).reason).toBe('closed');
  });

  it('reports a model that does not load in a worker, and refuses a bad workers option', async () => {
    await expect(StreamPool.create(model, { workers: -1 })).rejects.toThrow(/workers/);
    await expect(StreamPool.create(model, { workers: 1000 })).rejects.toThrow(/at most/);
    const broken = model.slice(0, model.length >> 1);
    await expect(StreamPool.create(broken, { workers: 2, backend: 'onnxruntime-node' })).rejects.toThrow();
  });
});
