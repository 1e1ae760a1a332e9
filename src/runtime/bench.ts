/**
 * Micro-benchmark of {@link StreamPool} on a step model: per-step latency against a bare
 * `session.run` loop, throughput across stream counts, and memory per 1000 streams. Used by
 * `streamcell bench` and `npm run bench`.
 *
 * Pool and bare runs are interleaved in blocks in the same process and on the same backend,
 * so their ratio holds on a noisy shared machine even when the absolute numbers move.
 */
import type { BackendName, BackendRecord, SessionOptions, TensorData } from './backend.js';
import { resolveBackend } from './backend-impl.js';
import { StreamPool } from './pool.js';
import { readModelInfo } from './step-model.js';
import { StateCarry } from './step-sequence.js';

/** Options of {@link benchPool}: stream counts, steps, backend, and the streams for the memory measurement. */
export interface BenchPoolOptions {
  /** Stream counts to measure throughput at, e.g. [1, 16, 256]. */
  streams: number[];
  /** Timed steps: per latency series, and rounds per stream count. */
  steps: number;
  backend?: BackendName;
  session?: SessionOptions;
  /** Streams opened for the memory figure (default 10 000; reported per 1000). */
  memoryStreams?: number;
  /** Pool options for the throughput runs (default maxBatch 256). */
  maxBatch?: number;
}

/** Latency of one series, in microseconds. */
export interface LatencyStats {
  n: number;
  p50Us: number;
  p99Us: number;
  meanUs: number;
}

/** What {@link benchPool} measured: per-step latency, throughput per stream count (with bare onnxruntime alongside) and memory. */
export interface BenchPoolResult {
  backend: BackendRecord;
  modelSha256: string;
  states: { name: string; shape: number[] }[];
  latency: {
    /** `await pool.push(id, x)` for one stream. */
    pool: LatencyStats;
    /** `await session.run(feeds)` with the state fed back by hand. */
    bare: LatencyStats;
    /** pool p50 / bare p50 (the overhead the pool adds; target ≤ 1.2). */
    ratioP50: number;
    ratioMean: number;
    /**
     * Median over adjacent 50-step blocks of pool time / bare time: the figure to trust on a
     * shared machine, where the speed drifts between seconds and both p50s move with it.
     */
    ratioPaired: number;
  };
  /**
   * Per stream count: stream-steps/s through `push` (one promise per sample), through
   * `pushMany` (one call per round), and bare `session.run` on the same rows for reference.
   */
  throughput: {
    streams: number;
    rounds: number;
    seconds: number;
    streamStepsPerSec: number;
    manyStreamStepsPerSec: number;
    bareStreamStepsPerSec: number;
    /** pushMany / bare, paired: the median over interleaved chunks. */
    manyVsBare: number;
    meanBatchSize: number;
  }[];
  /**
   * Growth while `streams` streams are opened, per 1000. Heap includes typed arrays (the
   * state tables grow by doubling, so this includes up to 2x slack); RSS is what the OS sees.
   */
  memory: { streams: number; rssBytesPer1000: number; heapBytesPer1000: number; stateBytesPerStream: number; gcAvailable: boolean };
}

function latencyStats(us: number[]): LatencyStats {
  const s = [...us].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))] ?? 0;
  return { n: s.length, p50Us: q(0.5), p99Us: q(0.99), meanUs: s.reduce((a, b) => a + b, 0) / Math.max(1, s.length) };
}

const now = (): number => performance.now() * 1000;

function gc(): boolean {
  const g = (globalThis as { gc?: () => void }).gc;
  if (g) g();
  return g !== undefined;
}

/** A deterministic sample per input: a slow sine, so recurrent state stays in range. */
function samples(info: ReturnType<typeof readModelInfo>): { name: string; rowDims: number[]; values: Float32Array }[] {
  return info.sampleInputs.map((i, k) => {
    const rowDims = i.dims.slice(1).map((d) => (typeof d === 'number' ? d : 1));
    const n = rowDims.reduce((a, b) => a * b, 1);
    return { name: i.name, rowDims, values: Float32Array.from({ length: n }, (_, j) => Math.sin(0.3 * j + k)) };
  });
}

/**
 * Measures the pool on `model` (a step model's bytes).
 *
 * @example
 * ```ts
 * const r = await benchPool(await readFile('step.onnx'), { streams: [1, 16, 256], steps: 2000 });
 * console.log(r.latency.ratioP50, r.throughput.at(-1)?.streamStepsPerSec);
 * ```
 */
export async function benchPool(model: Uint8Array, opts: BenchPoolOptions): Promise<BenchPoolResult> {
  if (!Number.isInteger(opts.steps) || opts.steps < 1) throw new RangeError(`option 'steps' must be an integer >= 1, got ${opts.steps}`);
  if (!Array.isArray(opts.streams) || !opts.streams.every((n) => Number.isInteger(n) && n >= 1))
    throw new RangeError(`option 'streams' must be positive integers, got ${JSON.stringify(opts.streams)}`);
  const info = readModelInfo(model);
  const { backend, record } = await resolveBackend(opts.backend ? [opts.backend] : undefined);
  const ins = samples(info);
  const single: Record<string, Float32Array> = {};
  for (const s of ins) single[s.name] = s.values;
  const sample = ins.length === 1 ? ins[0]!.values : single;

  // (c) memory first, while the heap is small: RSS and heap growth while opening streams
  // (their state rows, with the tables' doubling slack, and their entries).
  const memStreams = opts.memoryStreams ?? 10_000;
  const mp = await StreamPool.create(model, { backend, session: opts.session });
  const gcAvailable = gc();
  const m0 = process.memoryUsage();
  for (let i = 0; i < memStreams; i++) mp.open(`mem-${i}`);
  gc();
  const m1 = process.memoryUsage();
  await mp.close();
  const heap = (m: NodeJS.MemoryUsage) => m.heapUsed + m.arrayBuffers;

  // (a) latency: one stream, pool vs bare, interleaved in blocks.
  const pool = await StreamPool.create(model, { backend, session: opts.session });
  const session = await backend.createSession(model, opts.session);
  const carry = new StateCarry(info.states);
  for (const s of ins) carry.feeds[s.name] = { type: 'float32', data: s.values, dims: [1, ...s.rowDims] };
  const resetBare = () => carry.reset();
  const bareStep = async () => {
    await carry.step(session);
  };
  const poolUs: number[] = [];
  const bareUs: number[] = [];
  const blockRatios: number[] = [];
  const block = 50;
  // Enough for V8 to optimise the pool's and the wrapper's code: fewer than ~1000 steps
  // measures the pool half-interpreted and overstates its overhead by 10-20%.
  const warm = 2000;
  for (let i = 0; i < warm; i++) {
    await pool.push('s', sample);
    await bareStep();
  }
  const timePool = async (m: number): Promise<number> => {
    let sum = 0;
    for (let i = 0; i < m; i++) {
      const t0 = now();
      await pool.push('s', sample);
      const dt = now() - t0;
      poolUs.push(dt);
      sum += dt;
    }
    return sum;
  };
  const timeBare = async (m: number): Promise<number> => {
    let sum = 0;
    for (let i = 0; i < m; i++) {
      const t0 = now();
      await bareStep();
      const dt = now() - t0;
      bareUs.push(dt);
      sum += dt;
    }
    return sum;
  };
  for (let done = 0, k = 0; done < opts.steps; done += block, k++) {
    const m = Math.min(block, opts.steps - done);
    // The state of a long run drifts; restart both periodically so they do the same work.
    if (done % 1000 === 0) {
      pool.reset('s');
      resetBare();
    }
    // Alternate which goes first, so neither always runs on the warmer caches.
    let p: number;
    let b: number;
    if (k % 2 === 0) {
      p = await timePool(m);
      b = await timeBare(m);
    } else {
      b = await timeBare(m);
      p = await timePool(m);
    }
    blockRatios.push(p / b);
  }
  await pool.close();
  const poolLat = latencyStats(poolUs);
  const bareLat = latencyStats(bareUs);
  blockRatios.sort((a, b) => a - b);

  // (b) throughput: every stream pushes one sample per round; the round is awaited. The bare
  // figure runs the same rows as batches of up to maxBatch with prebuilt feeds (no per-stream
  // work at all): the ceiling the pool is measured against.
  const maxBatch = opts.maxBatch ?? 256;
  const throughput: BenchPoolResult['throughput'] = [];
  for (const n of opts.streams) {
    const p = await StreamPool.create(model, { backend, session: opts.session, maxBatch });
    const ids = Array.from({ length: n }, (_, i) => `s${i}`);
    const pending: Promise<unknown>[] = new Array(n);
    const round = async () => {
      for (let i = 0; i < n; i++) pending[i] = p.push(ids[i]!, sample);
      await Promise.all(pending);
    };
    // pushMany: the same samples as one call per round (rows refilled each round, as a caller would).
    const flat = new Float32Array(n * p.sampleSize);
    const rowSample = ins.length === 1 ? ins[0]!.values : Float32Array.from(ins.flatMap((s) => [...s.values]));
    const manyRound = async () => {
      for (let i = 0; i < n; i++) flat.set(rowSample, i * rowSample.length);
      await p.pushMany(ids, flat);
    };
    const rows = Math.min(n, maxBatch);
    const bareFeeds: Record<string, TensorData> = {};
    for (const s of ins) {
      const data = new Float32Array(rows * s.values.length);
      for (let r = 0; r < rows; r++) data.set(s.values, r * s.values.length);
      bareFeeds[s.name] = { type: 'float32', data, dims: [rows, ...s.rowDims] };
    }
    // State rows like a stepping stream's (values spread over [-0.5, 0.5)), not the initial zeros:
    // onnxruntime's LSTM kernel ran ~15% faster on constant inputs than on such data here, which
    // would flatter the bare figure against the pool's evolving states.
    for (const st of info.states) {
      const n = rows * st.shape.reduce((a, b) => a * b, 1);
      bareFeeds[st.input] = {
        type: 'float32',
        data: Float32Array.from({ length: n }, (_, i) => ((i * 2654435761) % 1000) / 1000 - 0.5),
        dims: [rows, ...st.shape],
      };
    }
    const bareRound = async () => {
      for (let done = 0; done < n; done += rows) await session.run(bareFeeds);
    };
    const warmRounds = Math.max(20, Math.ceil(2000 / n));
    for (let r = 0; r < warmRounds; r++) {
      await round();
      await manyRound();
      await bareRound();
    }
    const before = p.stats();
    // Interleaved in chunks, like the latency series, so drift hits both alike.
    let poolUs = 0;
    let manyUs = 0;
    let bareUs = 0;
    const pairs: number[] = [];
    const chunk = Math.max(1, Math.ceil(opts.steps / 10));
    for (let done = 0; done < opts.steps; done += chunk) {
      const m = Math.min(chunk, opts.steps - done);
      let t0 = now();
      for (let r = 0; r < m; r++) await round();
      poolUs += now() - t0;
      t0 = now();
      for (let r = 0; r < m; r++) await manyRound();
      const many = now() - t0;
      manyUs += many;
      t0 = now();
      for (let r = 0; r < m; r++) await bareRound();
      const bare = now() - t0;
      bareUs += bare;
      pairs.push(bare / many);
    }
    pairs.sort((a, b) => a - b);
    const after = p.stats();
    const batches = after.batches - before.batches;
    throughput.push({
      streams: n,
      rounds: opts.steps,
      seconds: poolUs / 1e6,
      streamStepsPerSec: (n * opts.steps) / (poolUs / 1e6),
      manyStreamStepsPerSec: (n * opts.steps) / (manyUs / 1e6),
      bareStreamStepsPerSec: (n * opts.steps) / (bareUs / 1e6),
      manyVsBare: pairs[pairs.length >> 1]!,
      meanBatchSize: batches === 0 ? 0 : (after.steps - before.steps) / batches,
    });
    await p.close();
  }
  await session.release();

  return {
    backend: record,
    modelSha256: info.sha256,
    states: info.states.map((s) => ({ name: s.name, shape: s.shape })),
    latency: {
      pool: poolLat,
      bare: bareLat,
      ratioP50: poolLat.p50Us / bareLat.p50Us,
      ratioMean: poolLat.meanUs / bareLat.meanUs,
      ratioPaired: blockRatios[blockRatios.length >> 1] ?? NaN,
    },
    throughput,
    memory: {
      streams: memStreams,
      rssBytesPer1000: ((m1.rss - m0.rss) / memStreams) * 1000,
      heapBytesPer1000: ((heap(m1) - heap(m0)) / memStreams) * 1000,
      stateBytesPerStream: info.states.reduce((a, st) => a + 4 * st.shape.reduce((x, y) => x * y, 1), 0),
      gcAvailable,
    },
  };
}
