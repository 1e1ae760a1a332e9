/**
 * StreamPool against a bare session stepping each stream by hand: interleaved streams,
 * batching, ordering of a stream's own pushes, snapshots, eviction, bad input, backends.
 */
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isInputError } from '../../src/errors.js';
import {
  isInferenceError,
  isPoolBusyError,
  isSampleError,
  isStreamRejectedError,
  type SampleError,
  type StreamRejectedError,
} from '../../src/runtime/pool-errors.js';
import { StreamPool } from '../../src/runtime/pool.js';
import type { PoolOptions, Prediction } from '../../src/runtime/pool-types.js';
import { bareStepRun, lstmStepModel, lstmWindowModel, maxAbsDiff, signal, twoInputStepModel, wrappedBackend } from './models.js';

const model = lstmStepModel({ hidden: 8, input: 3, out: 2, seed: 1 });
const otherModel = lstmStepModel({ hidden: 8, input: 3, out: 2, seed: 2 });
const pools: StreamPool[] = [];
let dir: string;

async function makePool(opts: PoolOptions = {}, bytes: Uint8Array = model): Promise<StreamPool> {
  const p = await StreamPool.create(bytes, opts);
  pools.push(p);
  return p;
}

async function expected(stream: number, steps: number, from = 0): Promise<Float32Array[]> {
  const xs = signal(stream, steps, 3).map((x) => ({ x }));
  return (await bareStepRun(model, xs, { hidden: 8 })).slice(from);
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error('expected the push to reject');
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'streamcell-pool-'));
});

afterAll(async () => {
  await Promise.all(pools.map((p) => p.close()));
  await rm(dir, { recursive: true, force: true });
});

describe('StreamPool', () => {
  it('steps many interleaved streams, each equal to its own sequential bare run, in shared batches', async () => {
    const pool = await makePool();
    const S = 12;
    const T = 25;
    const xs = Array.from({ length: S }, (_, s) => signal(s, T, 3));
    const got: Prediction[][] = Array.from({ length: S }, () => []);
    const next = new Array<number>(S).fill(0);
    // Each tick a pseudo-random subset of streams pushes, some of them twice in the same tick.
    let tick = 0;
    while (next.some((n) => n < T)) {
      const ps: Promise<void>[] = [];
      for (let s = 0; s < S; s++) {
        const times = (s * 7 + tick * 3) % 4 === 0 ? 0 : (s + tick) % 5 === 0 ? 2 : 1;
        for (let r = 0; r < times && next[s]! < T; r++) {
          const t = next[s]!++;
          ps.push(pool.push(`s${s}`, xs[s]![t]!).then((p) => void (got[s]![t] = p)));
        }
      }
      await Promise.all(ps);
      tick++;
    }
    for (let s = 0; s < S; s++) {
      const want = await expected(s, T);
      for (let t = 0; t < T; t++) {
        const p = got[s]![t]!;
        expect(p.id).toBe(`s${s}`);
        expect(p.step).toBe(t);
        expect(Object.keys(p.outputs)).toEqual(['y']);
        expect(maxAbsDiff(p.outputs.y!, want[t]!)).toBeLessThanOrEqual(1e-6);
      }
    }
    const st = pool.stats();
    expect(st.steps).toBe(S * T);
    expect(st.streams).toBe(S);
    expect(st.meanBatchSize).toBeGreaterThan(1);
    expect(st.batches).toBeLessThan((S * T) / 4);
  });

  it("runs a stream's pushes in order even when made in the same tick (second goes to the next batch)", async () => {
    const pool = await makePool();
    const xs = signal(3, 6, 3);
    const ps = xs.map((x) => pool.push('a', x));
    const other = pool.push('b', signal(4, 1, 3)[0]!);
    const got = await Promise.all(ps);
    await other;
    const want = await expected(3, 6);
    got.forEach((p, t) => {
      expect(p.step).toBe(t);
      expect(maxAbsDiff(p.outputs.y!, want[t]!)).toBeLessThanOrEqual(1e-6);
    });
    // 'a' needs 6 sequential runs; 'b' rode along in the first.
    expect(pool.stats().batches).toBe(6);
  });

  it('bounds a batch by maxBatch and waits up to maxWaitMs to fill one', async () => {
    const small = await makePool({ maxBatch: 4 });
    await Promise.all(Array.from({ length: 10 }, (_, i) => small.push(`s${i}`, [0.1, 0.2, 0.3])));
    expect(small.stats().batches).toBe(3);
    expect(small.maxBatch).toBe(4);

    const waiting = await makePool({ maxWaitMs: 30 });
    const ps: Promise<Prediction>[] = [];
    for (let i = 0; i < 5; i++) {
      ps.push(waiting.push(`s${i}`, [0.1, 0.2, 0.3]));
      await new Promise((r) => setImmediate(r)); // separate ticks, inside the wait
    }
    await Promise.all(ps);
    expect(waiting.stats().batches).toBe(1);
    expect(waiting.stats().meanBatchSize).toBe(5);
  });

  it('serves a two-input model with samples keyed by input name', async () => {
    const bytes = twoInputStepModel({ hidden: 8, seed: 3 });
    const pool = await makePool({}, bytes);
    const xs = signal(1, 8, 3);
    const zs = signal(2, 8, 2);
    const zs2 = signal(5, 8, 2);
    const got = await Promise.all(xs.map((x, t) => pool.push('m', { x, z: zs[t]! })));
    const got2 = await Promise.all(xs.map((x, t) => pool.push('n', { x, z: zs2[t]! })));
    const want = await bareStepRun(
      bytes,
      xs.map((x, t) => ({ x, z: zs[t]! })),
      { hidden: 8, dims: { z: [1, 2] } },
    );
    const want2 = await bareStepRun(
      bytes,
      xs.map((x, t) => ({ x, z: zs2[t]! })),
      { hidden: 8, dims: { z: [1, 2] } },
    );
    got.forEach((p, t) => expect(maxAbsDiff(p.outputs.y!, want[t]!)).toBeLessThanOrEqual(1e-6));
    got2.forEach((p, t) => expect(maxAbsDiff(p.outputs.y!, want2[t]!)).toBeLessThanOrEqual(1e-6));
    const e = (await rejection(pool.push('m', [1, 2, 3]))) as SampleError;
    expect(isSampleError(e) && e.reason).toBe('missing-input');
    const e2 = (await rejection(pool.push('m', { x: [1, 2, 3] }))) as SampleError;
    expect(e2.input).toBe('z');
  });

  it('snapshot after k steps, restore into a new pool, continue == uninterrupted run', async () => {
    const T = 20;
    const k = 9;
    const S = 5;
    const a = await makePool();
    const xs = Array.from({ length: S }, (_, s) => signal(s, T, 3));
    for (let t = 0; t < k; t++) await Promise.all(xs.map((x, s) => a.push(`s${s}`, x[t]!)));
    const file = join(dir, 'pool.snap');
    await a.snapshot(file);
    expect((await readdir(dir)).filter((f) => f.includes('.tmp'))).toEqual([]);
    const bytes = a.snapshotBytes();
    expect(bytes.length).toBeLessThan(1000 + S * 16 * 4); // header + 2 x 8 floats per stream

    const b = await makePool();
    b.open('stale');
    await b.restore(file);
    expect(b.has('stale')).toBe(false);
    expect(b.size).toBe(S);
    const c = await makePool();
    c.restoreBytes(bytes);
    for (const p of [b, c]) {
      for (let t = k; t < T; t++) {
        const got = await Promise.all(xs.map((x, s) => p.push(`s${s}`, x[t]!)));
        for (let s = 0; s < S; s++) {
          expect(got[s]!.step).toBe(t);
          expect(maxAbsDiff(got[s]!.outputs.y!, (await expected(s, T))[t]!)).toBeLessThanOrEqual(1e-6);
        }
      }
    }
  });

  it('refuses a snapshot of another model, naming the file and both hashes, and loads nothing', async () => {
    const a = await makePool({}, otherModel);
    await a.push('x', [1, 2, 3]);
    const file = join(dir, 'other.snap');
    await a.snapshot(file);
    const b = await makePool();
    await b.push('keep', [0.5, 0.5, 0.5]);
    const e = await rejection(b.restore(file));
    expect(isInputError(e)).toBe(true);
    const msg = (e as Error).message;
    expect(msg).toContain(file);
    expect(msg).toContain(a.info.sha256);
    expect(msg).toContain(b.info.sha256);
    expect(b.has('keep')).toBe(true);
    expect(b.has('x')).toBe(false);

    await writeFile(join(dir, 'junk.snap'), 'not a snapshot');
    const junk = await rejection(b.restore(join(dir, 'junk.snap')));
    expect(isInputError(junk) && junk.context.file).toBe(join(dir, 'junk.snap'));
    const truncated = b.snapshotBytes().subarray(0, 40);
    expect(() => b.restoreBytes(truncated, 'cut.snap')).toThrow(/cut\.snap/);
  });

  it('refuses to restore while pushes are pending', async () => {
    const p = await makePool();
    const bytes = p.snapshotBytes();
    const pending = p.push('a', [1, 2, 3]);
    expect(() => p.restoreBytes(bytes)).toThrow(expect.objectContaining({ name: 'PoolBusyError' }));
    try {
      p.restoreBytes(bytes);
    } catch (e) {
      expect(isPoolBusyError(e)).toBe(true);
    }
    await pending;
    await p.drain();
    p.restoreBytes(bytes);
    expect(p.size).toBe(0);
  });

  it('evicts the least-recently-used idle stream at maxStreams, and idle streams by idleMs, counting both', async () => {
    const p = await makePool({ maxStreams: 3 });
    for (const id of ['a', 'b', 'c']) await p.push(id, [1, 2, 3]);
    await p.push('a', [1, 2, 3]); // b is now least recently used
    await p.push('d', [1, 2, 3]);
    expect(p.has('b')).toBe(false);
    expect(['a', 'c', 'd'].every((id) => p.has(id))).toBe(true);
    expect(p.stats().evicted).toBe(1);

    const strict = await makePool({ maxStreams: 2, whenFull: 'reject' });
    await strict.push('a', [1, 2, 3]);
    await strict.push('b', [1, 2, 3]);
    const e = (await rejection(strict.push('c', [1, 2, 3]))) as StreamRejectedError;
    expect(isStreamRejectedError(e) && e.reason).toBe('max-streams');
    expect(strict.stats().rejected['max-streams']).toBe(1);

    const idle = await makePool({ idleMs: 1000 });
    await idle.push('a', [1, 2, 3]);
    await idle.push('b', [1, 2, 3]);
    expect(idle.evictIdle(Date.now())).toBe(0);
    expect(idle.evictIdle(Date.now() + 1001)).toBe(2);
    expect(idle.size).toBe(0);
    expect(idle.stats().evicted).toBe(2);
    // An evicted stream comes back from the initial state.
    const again = await idle.push('a', signal(0, 1, 3)[0]!);
    expect(again.step).toBe(0);
    expect(maxAbsDiff(again.outputs.y!, (await expected(0, 1))[0]!)).toBeLessThanOrEqual(1e-6);
  });

  it('rejects only the bad pushes of a batch, with typed errors; the others get their predictions', async () => {
    const p = await makePool();
    const x0 = signal(0, 1, 3)[0]!;
    const x1 = signal(1, 1, 3)[0]!;
    const results = await Promise.allSettled([
      p.push('good0', x0),
      p.push('short', [1, 2]),
      p.push('nan', [1, NaN, 3]),
      p.push('inf', [Infinity, 0, 0]),
      p.push('good1', x1),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'rejected', 'rejected', 'fulfilled']);
    const short = (results[1] as PromiseRejectedResult).reason as SampleError;
    expect(isSampleError(short)).toBe(true);
    expect(short).toMatchObject({ name: 'SampleError', streamId: 'short', reason: 'length', input: 'x', expectedValue: '3 values', got: '2 values' });
    expect(short.message).toContain("stream 'short'");
    expect(((results[2] as PromiseRejectedResult).reason as SampleError).reason).toBe('non-finite');
    expect(((results[2] as PromiseRejectedResult).reason as SampleError).got).toContain('index 1');
    expect(maxAbsDiff((results[0] as PromiseFulfilledResult<Prediction>).value.outputs.y!, (await expected(0, 1))[0]!)).toBeLessThanOrEqual(1e-6);
    expect(maxAbsDiff((results[4] as PromiseFulfilledResult<Prediction>).value.outputs.y!, (await expected(1, 1))[0]!)).toBeLessThanOrEqual(1e-6);
    expect(p.stats().rejected).toEqual({ length: 1, 'non-finite': 2 });
    expect(p.stats().batches).toBe(1);
    // A rejected first sample does not open a stream.
    expect(p.has('short')).toBe(false);
    expect(p.has('nan')).toBe(false);
  });

  it('repairs non-finite values under zero and hold-last', async () => {
    const xs = signal(2, 4, 3);
    const zero = await makePool({ nonFinite: 'zero' });
    const hold = await makePool({ nonFinite: 'hold-last' });
    const bad = [xs[0]!, xs[1]!, Float32Array.from([NaN, xs[2]![1]!, -Infinity]), xs[3]!];
    const zeroGot = await Promise.all(bad.map((x) => zero.push('s', x)));
    const holdGot = await Promise.all(bad.map((x) => hold.push('s', x)));
    const zeroFixed = [xs[0]!, xs[1]!, Float32Array.from([0, xs[2]![1]!, 0]), xs[3]!];
    const holdFixed = [xs[0]!, xs[1]!, Float32Array.from([xs[1]![0]!, xs[2]![1]!, xs[1]![2]!]), xs[3]!];
    const zw = await bareStepRun(
      model,
      zeroFixed.map((x) => ({ x })),
      { hidden: 8 },
    );
    const hw = await bareStepRun(
      model,
      holdFixed.map((x) => ({ x })),
      { hidden: 8 },
    );
    zeroGot.forEach((g, t) => expect(maxAbsDiff(g.outputs.y!, zw[t]!)).toBeLessThanOrEqual(1e-6));
    holdGot.forEach((g, t) => expect(maxAbsDiff(g.outputs.y!, hw[t]!)).toBeLessThanOrEqual(1e-6));
    expect(zero.stats().repaired).toBe(1);
    expect(hold.stats().repaired).toBe(1);
  });

  it("rejects unknown ids under unknownStream 'reject' until opened", async () => {
    const p = await makePool({ unknownStream: 'reject' });
    const e = (await rejection(p.push('new', [1, 2, 3]))) as StreamRejectedError;
    expect(isStreamRejectedError(e)).toBe(true);
    expect(e).toMatchObject({ name: 'StreamRejectedError', streamId: 'new', reason: 'unknown-stream' });
    p.open('new');
    expect((await p.push('new', [1, 2, 3])).step).toBe(0);
    expect(p.stats().rejected['unknown-stream']).toBe(1);
  });

  it('reset starts a stream over; delete rejects its pending pushes and forgets it', async () => {
    const p = await makePool();
    const xs = signal(0, 3, 3);
    for (const x of xs) await p.push('a', x);
    expect(p.reset('a')).toBe(true);
    const first = await p.push('a', xs[0]!);
    expect(first.step).toBe(0);
    expect(maxAbsDiff(first.outputs.y!, (await expected(0, 1))[0]!)).toBeLessThanOrEqual(1e-6);

    // A reset before the batch runs: the pending push runs from the initial state.
    await p.push('a', xs[1]!);
    const queued = p.push('a', xs[0]!);
    p.reset('a');
    const fromReset = await queued;
    expect(fromReset.step).toBe(0);
    expect(maxAbsDiff(fromReset.outputs.y!, (await expected(0, 1))[0]!)).toBeLessThanOrEqual(1e-6);

    const pending = p.push('a', xs[1]!);
    const otherPending = p.push('b', xs[1]!);
    expect(p.delete('a')).toBe(true);
    expect(p.has('a')).toBe(false);
    const e = await rejection(pending);
    expect(isStreamRejectedError(e) && e.reason).toBe('deleted');
    expect((await otherPending).step).toBe(0);
    expect(p.delete('a')).toBe(false);
    expect(p.reset('zzz')).toBe(false);
  });

  it('a reset or delete while a batch runs keeps that result out of the stream state', async () => {
    let gate: Promise<void> | undefined;
    let reachedGate = () => {};
    const gated = await wrappedBackend(async (s, feeds, names) => {
      const out = await s.run(feeds, names);
      if (gate) {
        reachedGate();
        await gate;
      }
      return out;
    });
    const p = await makePool({ backend: gated });
    const xs = signal(0, 2, 3);
    const want = await expected(0, 2);
    await p.push('a', xs[0]!);
    await p.push('b', xs[0]!);
    let open!: () => void;
    gate = new Promise((r) => (open = r));
    const atGate = new Promise<void>((r) => (reachedGate = r));
    const inFlightA = p.push('a', xs[1]!);
    const inFlightB = p.push('b', xs[1]!);
    await atGate; // the batch is now running, held at the gate
    p.reset('a');
    p.delete('b');
    p.open('c'); // a stream opened meanwhile is not touched by b's discarded result
    gate = undefined;
    open();
    const a1 = await inFlightA;
    expect(a1.step).toBe(1);
    expect(maxAbsDiff(a1.outputs.y!, want[1]!)).toBeLessThanOrEqual(1e-6);
    expect(isStreamRejectedError(await rejection(inFlightB))).toBe(true);
    const a0 = await p.push('a', xs[0]!);
    expect(a0.step).toBe(0);
    expect(maxAbsDiff(a0.outputs.y!, want[0]!)).toBeLessThanOrEqual(1e-6);
    const c0 = await p.push('c', xs[0]!);
    expect(maxAbsDiff(c0.outputs.y!, want[0]!)).toBeLessThanOrEqual(1e-6);
  });

  it('turns a failing session.run into InferenceError for that batch only; the pool keeps serving', async () => {
    let failNext = false;
    const flaky = await wrappedBackend((s, feeds, names) => {
      if (!failNext) return s.run(feeds, names);
      failNext = false;
      return Promise.reject(new Error('device lost'));
    });
    const p = await makePool({ backend: flaky });
    const xs = signal(0, 2, 3);
    await p.push('a', xs[0]!);
    failNext = true;
    const r = await Promise.allSettled([p.push('a', xs[1]!), p.push('b', xs[0]!)]);
    expect(r.every((x) => x.status === 'rejected' && isInferenceError(x.reason))).toBe(true);
    expect(((r[0] as PromiseRejectedResult).reason as Error).message).toContain('device lost');
    // 'a' did not move: stepping with xs[1] now is step 1 of the bare run.
    const ok = await p.push('a', xs[1]!);
    expect(ok.step).toBe(1);
    expect(maxAbsDiff(ok.outputs.y!, (await expected(0, 2))[1]!)).toBeLessThanOrEqual(1e-6);
    expect(p.stats().rejected.inference).toBe(2);
  });

  it('onnxruntime-web (WASM) gives the same predictions as onnxruntime-node', async () => {
    const native = await makePool({ backend: 'onnxruntime-node' });
    const wasm = await makePool({ backend: 'onnxruntime-web' });
    expect(wasm.backendRecord.name).toBe('onnxruntime-web');
    const xs = Array.from({ length: 4 }, (_, s) => signal(s, 10, 3));
    const a: Prediction[][] = [];
    const b: Prediction[][] = [];
    for (let t = 0; t < 10; t++) {
      a.push(await Promise.all(xs.map((x, s) => native.push(`s${s}`, x[t]!))));
      b.push(await Promise.all(xs.map((x, s) => wasm.push(`s${s}`, x[t]!))));
    }
    // Compared at the end: a prediction's arrays must not be overwritten by later runs.
    const want = await Promise.all([0, 1, 2, 3].map((s) => expected(s, 10)));
    for (let t = 0; t < 10; t++) {
      for (let s = 0; s < 4; s++) {
        expect(maxAbsDiff(a[t]![s]!.outputs.y!, want[s]![t]!)).toBeLessThanOrEqual(1e-6);
        expect(maxAbsDiff(b[t]![s]!.outputs.y!, want[s]![t]!)).toBeLessThanOrEqual(1e-5);
      }
    }
    expect(wasm.stats().meanBatchSize).toBe(4);
  });

  it('refuses a sequence model, bad options, and pushes after close', async () => {
    const e = await rejection(StreamPool.create(lstmWindowModel({}, 6)));
    expect(isInputError(e) && e.message).toContain('WindowPool');
    await expect(StreamPool.create(model, { maxBatch: 0 })).rejects.toThrow(RangeError);
    await expect(StreamPool.create(model, { nonFinite: 'drop' as never })).rejects.toThrow(/nonFinite/);
    await expect(StreamPool.create(model, { backend: 'onnxruntime-nod' as never })).rejects.toThrow(/'backend'/);
    await expect(StreamPool.create(join(dir, 'missing.onnx'))).rejects.toSatisfy(
      (e: unknown) => isInputError(e) && e.context.file === join(dir, 'missing.onnx'),
    );
    const p = await StreamPool.create(model);
    const inFlight = p.push('a', [1, 2, 3]);
    const closing = p.close();
    const closedErr = await rejection(inFlight);
    expect(isStreamRejectedError(closedErr) && closedErr.reason).toBe('closed');
    await closing;
    const after = await rejection(p.push('a', [1, 2, 3]));
    expect(isStreamRejectedError(after) && after.reason).toBe('closed');
  });
});
