/** WindowPool: fixed windows with hop, batched across streams, snapshots, policies. */
import { afterAll, describe, expect, it } from 'vitest';
import { isInputError } from '../../src/errors.js';
import { isSampleError } from '../../src/runtime/pool-errors.js';
import type { Prediction, WindowPoolOptions } from '../../src/runtime/pool-types.js';
import { WindowPool } from '../../src/runtime/window.js';
import { bareWindowRun, lstmStepModel, lstmWindowModel, maxAbsDiff, signal } from './models.js';

const W = 6;
const model = lstmWindowModel({ hidden: 8, seed: 4 }, W);
const pools: WindowPool[] = [];

async function makePool(opts: WindowPoolOptions = {}, bytes: Uint8Array = model): Promise<WindowPool> {
  const p = await WindowPool.create(bytes, opts);
  pools.push(p);
  return p;
}

afterAll(async () => {
  await Promise.all(pools.map((p) => p.close()));
});

/** Expected predictions of one stream: the window ending at each due sample. */
async function expectedFor(xs: Float32Array[], hop: number, window = W, bytes = model): Promise<Map<number, Float32Array>> {
  const due: number[] = [];
  for (let t = window - 1; t < xs.length; t++) if ((t + 1 - window) % hop === 0) due.push(t);
  const ys = await bareWindowRun(
    bytes,
    due.map((t) => xs.slice(t - window + 1, t + 1)),
  );
  return new Map(due.map((t, i) => [t, ys[i]!]));
}

describe('WindowPool', () => {
  it('predicts every hop samples once the window is full, batched across streams', async () => {
    const hop = 2;
    const pool = await makePool({ hop });
    expect(pool.window).toBe(W);
    const S = 5;
    const T = 21;
    const xs = Array.from({ length: S }, (_, s) => signal(s, T, 3));
    const got: (Prediction | null)[][] = Array.from({ length: S }, () => []);
    for (let t = 0; t < T; t++) {
      const r = await Promise.all(xs.map((x, s) => pool.push(`s${s}`, x[t]!)));
      r.forEach((p, s) => (got[s]![t] = p));
    }
    for (let s = 0; s < S; s++) {
      const want = await expectedFor(xs[s]!, hop);
      for (let t = 0; t < T; t++) {
        const p = got[s]![t]!;
        if (!want.has(t)) {
          expect(p).toBeNull();
          continue;
        }
        expect(p).not.toBeNull();
        expect(p.step).toBe(t);
        expect(maxAbsDiff(p.outputs.y!, want.get(t)!)).toBeLessThanOrEqual(1e-6);
      }
    }
    const st = pool.stats();
    expect(st.steps).toBe(S * 8); // t = 5, 7, ..., 19
    expect(st.meanBatchSize).toBe(S);
    expect(st.pushes).toBe(S * T);
  });

  it('lets one stream hold several rows of a batch (windows carry no state to order)', async () => {
    const pool = await makePool();
    const xs = signal(9, 10, 3);
    const got = await Promise.all(xs.map((x) => pool.push('a', x)));
    const want = await expectedFor(xs, 1);
    for (let t = W - 1; t < 10; t++) expect(maxAbsDiff(got[t]!.outputs.y!, want.get(t)!)).toBeLessThanOrEqual(1e-6);
    expect(pool.stats().batches).toBe(1);
  });

  it('takes the window from an option when the time dimension is symbolic, and checks it otherwise', async () => {
    const sym = lstmWindowModel({ hidden: 8, seed: 4 }, 'time');
    const pool = await makePool({ window: 4, hop: 3 }, sym);
    const xs = signal(1, 12, 3);
    const got: (Prediction | null)[] = [];
    for (const x of xs) got.push(await pool.push('a', x));
    const want = await expectedFor(xs, 3, 4, sym);
    expect(got.map((p, t) => (p ? t : -1)).filter((t) => t >= 0)).toEqual([...want.keys()]);
    for (const [t, y] of want) expect(maxAbsDiff(got[t]!.outputs.y!, y)).toBeLessThanOrEqual(1e-6);

    await expect(WindowPool.create(sym)).rejects.toSatisfy((e: unknown) => isInputError(e) && (e as Error).message.includes("'window'"));
    await expect(WindowPool.create(model, { window: 5 })).rejects.toSatisfy(isInputError);
    await expect(WindowPool.create(lstmStepModel())).rejects.toThrow(/StreamPool/);
  });

  it('snapshot mid-window, restore, continue == uninterrupted', async () => {
    const hop = 3;
    const a = await makePool({ hop });
    const xs = Array.from({ length: 3 }, (_, s) => signal(s + 20, 17, 3));
    const k = 4; // window not yet full
    const k2 = 11;
    for (let t = 0; t < k; t++) await Promise.all(xs.map((x, s) => a.push(`s${s}`, x[t]!)));
    const early = a.snapshotBytes();
    for (let t = k; t < k2; t++) await Promise.all(xs.map((x, s) => a.push(`s${s}`, x[t]!)));
    const late = a.snapshotBytes();
    for (const [snap, from] of [
      [early, k],
      [late, k2],
    ] as const) {
      const b = await makePool({ hop });
      b.restoreBytes(snap);
      for (let s = 0; s < 3; s++) {
        const want = await expectedFor(xs[s]!, hop);
        for (let t = from; t < 17; t++) {
          const p = await b.push(`s${s}`, xs[s]![t]!);
          if (want.has(t)) expect(maxAbsDiff(p!.outputs.y!, want.get(t)!)).toBeLessThanOrEqual(1e-6);
          else expect(p).toBeNull();
        }
      }
    }
    // A window pool's snapshot is not a step pool's (different layout, different model).
    const other = await makePool({ hop: 1 }, lstmWindowModel({ hidden: 8, seed: 5 }, W));
    expect(() => other.restoreBytes(late, 'late.snap')).toThrow(/late\.snap.*sha256/);
  });

  it('applies the sample policies; hold-last repairs from the previous sample in the window', async () => {
    const strict = await makePool();
    const r = await Promise.allSettled([strict.push('a', [1, 2]), strict.push('b', [NaN, 1, 2]), strict.push('c', [1, 2, 3])]);
    expect(r.map((x) => x.status)).toEqual(['rejected', 'rejected', 'fulfilled']);
    expect(isSampleError((r[0] as PromiseRejectedResult).reason)).toBe(true);

    const hold = await makePool({ nonFinite: 'hold-last' });
    const xs = signal(3, W, 3);
    const bad = xs.map((x) => Float32Array.from(x));
    bad[4]![2] = NaN;
    let last: Prediction | null = null;
    for (const x of bad) last = await hold.push('a', x);
    const fixed = xs.map((x) => Float32Array.from(x));
    fixed[4]![2] = fixed[3]![2]!;
    const [want] = await bareWindowRun(model, [fixed]);
    expect(maxAbsDiff(last!.outputs.y!, want!)).toBeLessThanOrEqual(1e-6);
    expect(hold.stats().repaired).toBe(1);
  });
});
