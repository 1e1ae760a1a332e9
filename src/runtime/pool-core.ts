/**
 * The machinery {@link StreamPool} and {@link WindowPool} share: the stream table, sample
 * validation, the micro-batch queue, delivery of each stream's slice of the outputs, stats
 * and snapshots. Internal: the public contract is `pool-types.ts`.
 *
 * The hot path (one push) allocates the promise and the prediction object and nothing else:
 * samples are copied straight into a reused batch buffer, feeds objects are cached per batch
 * size, and per-input work loops over precomputed arrays.
 */
import { open, readFile, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { InputError } from '../errors.js';
import { BACKEND_NAMES, type Backend, type BackendRecord, type Session, type TensorData } from './backend.js';
import { resolveBackend } from './backend-impl.js';
import { ForecastError, InferenceError, PoolBusyError, SampleError, StreamRejectedError } from './pool-errors.js';
import type {
  BatchResult,
  FullPolicy,
  NonFinitePolicy,
  Pool,
  PoolOptions,
  PoolStats,
  Prediction,
  RejectReason,
  Sample,
  UnknownStreamPolicy,
} from './pool-types.js';
import { decodeSnapshot, encodeSnapshot, floatsPerStream } from './snapshot.js';
import { feedBack, feedbackPlan, MAX_ROLLOUT, type Forecast, type ForecastManyOptions, type ForecastOneOptions, type ForecastResult } from './forecast.js';
import { readPreprocessing, type PreprocessingJson } from '../model-format/preprocessing.js';
import { MAX_GENERATED_ELEMENTS } from '../limits.js';
import { readModelInfo, type ModelInfo } from './step-model.js';

/** One open stream. Mutable on purpose: it is touched on every push. */
export interface Entry {
  readonly id: string;
  /** Row of this stream in the pool's per-stream tables; -1 once freed. */
  slot: number;
  /** StreamPool: steps taken. WindowPool: samples pushed. */
  step: number;
  /** Bumped by reset/delete/restore so a result computed before cannot overwrite the state. */
  gen: number;
  /** Accepted pushes not yet settled. */
  pending: number;
  /** In a batch whose run is in flight. */
  running: boolean;
  /** Sequence number of the latest batch holding one of its pushes (keeps a stream's pushes in order). */
  lastSeq: number;
  /** Date.now() of the last push (WindowPool) or delivered step (StreamPool). */
  lastUsed: number;
  alive: boolean;
  /** WindowPool: next ring row to write. */
  head: number;
  /** StreamPool under `hold-last`: the last accepted sample, inputs concatenated. */
  held: Float32Array | null;
  /** StreamPool: its last sample and prediction are in the tables (a rollout can start); false after open, reset and restore. */
  primed: boolean;
}

/**
 * A copy of some streams' state, taken when `forecastMany` is called, that a rollout steps
 * on its own (the live streams are never touched).
 */
export interface RolloutSeed {
  /** Rows (streams). */
  n: number;
  /** Each row's last sample (normalised, as pushed), inputs concatenated; the rollout overwrites it with the samples it feeds. */
  x: Float32Array;
  /** Each row's last prediction (first prediction output) when the pool keeps it (StreamPool); else the first `run(null)` computes it. */
  y?: Float32Array;
  /** Runs one step of every row: first fed `x` (the next samples) or, with null, on the current windows (WindowPool). Resolves to the first prediction output. */
  run(session: Session, x: Float32Array | null): Promise<Float32Array>;
}

/** A sample input as the pool feeds it. */
export interface InputLayout {
  name: string;
  /** Values per sample. */
  sampleSize: number;
  /** Values per batch row: `sampleSize` (StreamPool) or `window * sampleSize` (WindowPool). */
  rowSize: number;
  /** Feed dims after the batch dimension. */
  rowDims: number[];
  /** Offset of this input in a concatenated sample. */
  offset: number;
}

type Settle = (v: never) => void;

/** Most worker threads (sessions) one pool runs. */
const MAX_WORKERS = 64;

/** What a push that makes no prediction resolves to (WindowPool: window not full, or between hops). */
const NO_PREDICTION: Promise<null> = Promise.resolve(null);

/** A micro-batch: rows of samples (written at push time) and who gets each row's result. */
export class Batch {
  seq = 0;
  n = 0;
  /** performance.now() of the first row (bounded wait). */
  firstAt = 0;
  readonly entries: (Entry | undefined)[] = [];
  readonly gens: number[] = [];
  readonly steps: number[] = [];
  readonly resolves: (((v: unknown) => void) | undefined)[] = [];
  readonly rejects: (((e: unknown) => void) | undefined)[] = [];
  /** Rows pushed by `pushMany`: the call that gets the row's result, and its row index there. */
  readonly calls: (ManyCall | undefined)[] = [];
  readonly callRows: number[] = [];
  readonly inputs: Float32Array[];
  /** Feeds records by batch size: built once, reused (the session reads them synchronously). */
  readonly feeds: (Record<string, TensorData> | undefined)[] = [];

  constructor(layouts: readonly InputLayout[], maxBatch: number) {
    this.inputs = layouts.map((l) => new Float32Array(l.rowSize * maxBatch));
  }
}

/**
 * One `pushMany` call: its rows' results land in arrays owned by the caller, and one promise
 * settles when the last row has.
 */
export class ManyCall {
  readonly steps: Float64Array;
  readonly errors = new Map<number, Error>();
  readonly outputs: Record<string, Float32Array> = {};
  readonly sizes: Record<string, number> = {};
  private left = 0;
  private armed = false;
  private resolve!: (r: BatchResult) => void;
  readonly promise: Promise<BatchResult>;

  constructor(
    readonly n: number,
    private readonly names: readonly string[],
    knownSizes: readonly number[],
  ) {
    this.steps = new Float64Array(n).fill(-1);
    this.promise = new Promise((res) => (this.resolve = res));
    for (let j = 0; j < names.length; j++) if (knownSizes[j]! >= 0) this.alloc(j, knownSizes[j]!);
  }

  private alloc(j: number, size: number): Float32Array {
    const a = new Float32Array(this.n * size).fill(NaN);
    this.outputs[this.names[j]!] = a;
    this.sizes[this.names[j]!] = size;
    return a;
  }

  /** A row went into a batch. */
  added(): void {
    this.left++;
  }

  /** Row `row` got its prediction: batch row `r` of `datas` (per output, `sizes[j]` values per row). */
  put(row: number, step: number, datas: readonly Float32Array[], sizes: readonly number[], r: number): void {
    this.steps[row] = step;
    for (let j = 0; j < datas.length; j++) {
      const s = sizes[j]!;
      const out = this.outputs[this.names[j]!] ?? this.alloc(j, s);
      const d = datas[j]!;
      const from = r * s;
      const to = row * s;
      for (let k = 0; k < s; k++) out[to + k] = d[from + k]!;
    }
    this.settle();
  }

  /** Row `row` was rejected; `queued`: it had gone into a batch. */
  fail(row: number, err: Error, queued: boolean): void {
    this.errors.set(row, err);
    if (queued) this.settle();
  }

  /** Every row has been handed out: resolve now if none is pending. */
  arm(): Promise<BatchResult> {
    this.armed = true;
    if (this.left === 0) this.finish();
    return this.promise;
  }

  private settle(): void {
    if (--this.left === 0 && this.armed) this.finish();
  }

  private finish(): void {
    for (let j = 0; j < this.names.length; j++) if (this.outputs[this.names[j]!] === undefined) this.alloc(j, 0);
    this.resolve({ n: this.n, steps: this.steps, outputs: this.outputs, sizes: this.sizes, errors: this.errors });
  }
}

/** Reads the model, picks the backend, opens the session (or one per worker thread under `workers`). */
export async function openModel(
  model: Uint8Array | string,
  opts: PoolOptions,
): Promise<{ info: ModelInfo; sessions: Session[]; record: BackendRecord; file?: string; release(): Promise<void> }> {
  let bytes: Uint8Array;
  let file: string | undefined;
  if (typeof model === 'string') {
    file = model;
    try {
      bytes = await readFile(model);
    } catch (e) {
      throw new InputError(`cannot read model '${model}': ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, {
        file,
        expected: 'an ONNX model file',
      });
    }
  } else {
    bytes = model;
  }
  const info = readModelInfo(bytes, file);
  let backend: Backend;
  let record: BackendRecord;
  if (typeof opts.backend === 'object') {
    backend = opts.backend;
    record = { name: backend.name, version: backend.version, skipped: [], how: 'forced' };
  } else {
    if (opts.backend !== undefined && !BACKEND_NAMES.includes(opts.backend)) {
      throw new RangeError(
        `option 'backend' must be one of ${BACKEND_NAMES.map((b) => `'${b}'`).join(', ')} or a Backend object, got ${JSON.stringify(opts.backend)}`,
      );
    }
    ({ backend, record } = await resolveBackend(opts.backend ? { force: opts.backend } : { prefer: opts.preferBackends }));
  }
  const workers = checkInt('workers', opts.workers, 0, 0);
  if (workers > MAX_WORKERS) throw new RangeError(`option 'workers' must be at most ${MAX_WORKERS}, got ${workers}`);
  let sessions: Session[];
  if (workers === 0) {
    sessions = [await backend.createSession(bytes, opts.session)];
  } else {
    const create = backend.createWorkerSession?.bind(backend);
    if (create === undefined) throw new RangeError(`option 'workers': backend ${backend.name} cannot run sessions in worker threads`);
    const opened = await Promise.allSettled(Array.from({ length: workers }, () => create(bytes, opts.session)));
    sessions = opened.flatMap((o) => (o.status === 'fulfilled' ? [o.value] : []));
    const failed = opened.find((o) => o.status === 'rejected');
    if (failed) {
      await Promise.all(sessions.map((x) => x.release()));
      throw failed.reason;
    }
  }
  return { info, sessions, record, file, release: async () => void (await Promise.all(sessions.map((x) => x.release()))) };
}

function checkInt(name: string, v: number | undefined, min: number, dflt: number): number {
  if (v === undefined) return dflt;
  if (!Number.isInteger(v) || v < min) throw new RangeError(`option '${name}' must be an integer >= ${min}, got ${v}`);
  return v;
}

function checkEnum<T extends string>(name: string, v: T | undefined, allowed: readonly T[], dflt: T): T {
  if (v === undefined) return dflt;
  if (!allowed.includes(v)) throw new RangeError(`option '${name}' must be one of ${allowed.map((a) => `'${a}'`).join(', ')}, got ${JSON.stringify(v)}`);
  return v;
}

/** The batch size a model allows: 1 when its batch dimension is fixed at 1, else `maxBatch`. */
export function batchLimit(info: ModelInfo, maxBatch: number, file?: string): number {
  for (const i of info.inputs) {
    const b = i.dims[0];
    if (typeof b !== 'number') continue;
    if (b === 1) return 1;
    throw new InputError(`input '${i.name}' has a fixed batch dimension of ${b}; a pool needs a symbolic batch dimension or 1`, {
      file,
      field: i.name,
      expected: "batch dimension 'batch' or 1",
    });
  }
  return maxBatch;
}

export abstract class PoolCore<P> implements Pool<P> {
  /** Everything read from the model: inputs, outputs, state tensors, SHA-256. */
  readonly info: ModelInfo;
  /** The backend in use, and why others were skipped. */
  readonly backendRecord: BackendRecord;
  /** The most rows one `session.run` takes. */
  readonly maxBatch: number;

  protected readonly entries = new Map<string, Entry>();
  /** One session, or one per worker thread (`workers`); each runs one batch at a time. */
  protected readonly sessions: readonly Session[];
  protected readonly inputs: readonly InputLayout[];
  protected readonly nonFinite: NonFinitePolicy;
  protected closed = false;
  /** Values per sample, all sample inputs concatenated (a row of `pushMany`'s samples). */
  readonly sampleSize: number;
  /** Per-push scratch: the source array of each input and where its values start, filled by `resolveSample` / `pushMany`. */
  protected readonly srcs: ArrayLike<number>[];
  protected readonly srcOffs: Int32Array;
  /** Set by `stage`: the batch row the sample went to, and the step its prediction answers (-1: read at run time). */
  protected stagedRow = 0;
  protected stagedStep = -1;

  private readonly kind: 'stream' | 'window';
  private readonly maxWait: number;
  private readonly idleMs: number | undefined;
  private readonly maxStreams: number;
  private readonly whenFull: FullPolicy;
  private readonly unknownStream: UnknownStreamPolicy;
  /** Keep the Map in LRU order (re-insert on push) only when eviction needs it. */
  private readonly lru: boolean;
  private readonly outNames: readonly string[];
  private readonly outDatas: Float32Array[];
  private readonly outSizes: number[];
  /** Values per row of each prediction output when the model declares them (else -1). */
  private readonly knownOutSizes: number[];
  private readonly freeSlots: number[] = [];
  private nextSlot = 0;
  private capacity = 0;
  /** Batches being filled, in sequence order; the head runs next. */
  private readonly forming: Batch[] = [];
  private readonly spare: Batch[] = [];
  private nextSeq = 1;
  /** Per session: the batch whose `run` is in flight there. */
  private readonly current: (Batch | undefined)[];
  /** Sessions with no batch in flight. */
  private readonly idle: number[];
  /** Per session: its run's result handlers, bound once. */
  private readonly onRun: ((res: Record<string, TensorData>) => void)[];
  private readonly onRunFailed: ((err: unknown) => void)[];
  /** Rollouts waiting for a session, in call order; `after`: the newest batch when it was queued (it runs after that one starts). */
  private readonly jobs: { after: number; start(s: Session): Promise<void>; cancel(e: Error): void }[] = [];
  private scheduled = false;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private sweeper: ReturnType<typeof setInterval> | undefined;
  private unsettled = 0;
  private drainWaiters: (() => void)[] = [];
  private closing: Promise<void> | undefined;
  // The promise executor is bound once; it parks resolve/reject here for `enqueue`.
  private parkedResolve: ((v: unknown) => void) | undefined;
  private parkedReject: ((e: unknown) => void) | undefined;
  private readonly capture = (res: (v: never) => void, rej: (e: unknown) => void): void => {
    this.parkedResolve = res as (v: unknown) => void;
    this.parkedReject = rej;
  };
  private readonly pumpCb = (): void => {
    this.scheduled = false;
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.idle.length > 0) this.pump();
  };

  private counters = { pushes: 0, steps: 0, batches: 0, rows: 0, evicted: 0, repaired: 0 };
  private readonly rejected: Partial<Record<RejectReason, number>> = {};

  protected constructor(
    kind: 'stream' | 'window',
    sessions: readonly Session[],
    info: ModelInfo,
    record: BackendRecord,
    inputs: InputLayout[],
    opts: PoolOptions,
    modelBatchLimit: number,
  ) {
    this.kind = kind;
    this.sessions = sessions;
    this.current = sessions.map(() => undefined);
    this.idle = sessions.map((_, i) => sessions.length - 1 - i);
    this.onRun = sessions.map((_, i) => (res: Record<string, TensorData>) => this.ran(i, res));
    this.onRunFailed = sessions.map((_, i) => (err: unknown) => this.runFailed(i, err));
    this.info = info;
    this.backendRecord = record;
    this.inputs = inputs;
    this.srcs = inputs.map(() => []);
    this.srcOffs = new Int32Array(inputs.length);
    this.sampleSize = inputs.reduce((a, l) => a + l.sampleSize, 0);
    // Several sessions: smaller batches by default, so that one tick's rows keep them all busy.
    this.maxBatch = Math.min(
      checkInt('maxBatch', opts.maxBatch, 1, sessions.length > 1 ? Math.max(16, Math.floor(256 / sessions.length)) : 256),
      modelBatchLimit,
    );
    if (opts.maxWaitMs !== undefined && !(opts.maxWaitMs >= 0 && Number.isFinite(opts.maxWaitMs)))
      throw new RangeError(`option 'maxWaitMs' must be a finite number >= 0, got ${opts.maxWaitMs}`);
    this.maxWait = opts.maxWaitMs ?? 0;
    if (opts.idleMs !== undefined && !(opts.idleMs >= 0)) throw new RangeError(`option 'idleMs' must be a number >= 0, got ${opts.idleMs}`);
    this.idleMs = opts.idleMs;
    this.maxStreams = checkInt('maxStreams', opts.maxStreams, 1, Number.MAX_SAFE_INTEGER);
    this.whenFull = checkEnum('whenFull', opts.whenFull, ['evict-lru', 'reject'], 'evict-lru');
    this.unknownStream = checkEnum('unknownStream', opts.unknownStream, ['create', 'reject'], 'create');
    this.nonFinite = checkEnum('nonFinite', opts.nonFinite, ['reject', 'hold-last', 'zero'], 'reject');
    this.lru = opts.maxStreams !== undefined;
    this.outNames = info.predictionOutputs.map((o) => o.name);
    this.outDatas = this.outNames.map(() => new Float32Array(0));
    this.outSizes = this.outNames.map(() => 0);
    this.knownOutSizes = info.predictionOutputs.map((o) =>
      o.dims.slice(1).every((d) => typeof d === 'number') ? (o.dims.slice(1) as number[]).reduce((a, b) => a * b, 1) : -1,
    );
    if (this.idleMs !== undefined) {
      this.sweeper = setInterval(() => this.evictIdle(), Math.max(this.idleMs, 1000));
      this.sweeper.unref();
    }
  }

  // ---- per-stream tables, implemented by each pool ----

  /** Grows the per-stream tables to `capacity` rows, keeping existing rows. */
  protected abstract growSlots(capacity: number): void;
  /** Puts a stream's row in its initial state. */
  protected abstract initSlot(e: Entry): void;
  /** Called just before `session.run`: gather per-stream state into the feeds. */
  protected abstract prepare(b: Batch, feeds: Record<string, TensorData>): void;
  /** Called after a successful run, before delivery: write state back. */
  protected abstract scatter(b: Batch, res: Record<string, TensorData>): void;
  /** Per-stream tensors in a snapshot. */
  protected abstract snapshotTensors(): { name: string; shape: number[] }[];
  protected abstract saveSlot(e: Entry, data: Float32Array, offset: number): void;
  protected abstract loadSlot(e: Entry, data: Float32Array, offset: number): void;

  /** Why stream `e` cannot be rolled out now, or null when it can. */
  protected abstract notReady(e: Entry): string | null;
  /** Copies the state of `rows` (all ready) for a rollout; see {@link RolloutSeed}. */
  protected abstract rolloutSeed(rows: readonly Entry[]): RolloutSeed;

  /**
   * Takes a validated sample (input k's values at `srcs[k]` from `srcOffs[k]`) for stream `e`:
   * writes it into a batch row and returns the batch, with `stagedRow` / `stagedStep` set; or
   * returns null when the sample makes no prediction (WindowPool: window not full, or between hops).
   */
  protected abstract stage(e: Entry): Batch | null;

  /** Steps stream `id` with one sample; see the pool's docs for ordering and batching. */
  push(id: string, sample: Sample): Promise<P> {
    if (this.closed) return this.refuseClosed(id);
    const bad = this.resolveSample(id, sample);
    if (bad !== null) return this.refuse(bad);
    const e = this.lookup(id);
    if (e instanceof StreamRejectedError) return this.refuse(e);
    const b = this.stage(e);
    if (b === null) {
      this.counters.pushes++;
      return NO_PREDICTION as Promise<P>;
    }
    return this.enqueue(e, b, this.stagedRow, this.stagedStep, undefined, 0);
  }

  /**
   * Steps many streams at once: row i of `samples` (`sampleSize` values, the sample inputs
   * concatenated in model order) is a sample of stream `ids[i]`. One promise for the call,
   * no per-row promise or object; rows of one stream step in order, and rows of different
   * streams share batches. A bad row is rejected alone (in `errors`), like a bad `push`.
   * `samples` is copied before `pushMany` returns.
   *
   * @example
   * ```ts
   * const x = new Float32Array(ids.length * pool.sampleSize);  // fill row i for ids[i]
   * const r = await pool.pushMany(ids, x);
   * const y = r.outputs.y;  // row i: y.subarray(i * r.sizes.y, (i + 1) * r.sizes.y); r.steps[i] === -1 when rejected
   * ```
   */
  pushMany(ids: readonly string[], samples: Float32Array, n: number = ids.length): Promise<BatchResult> {
    if (!Number.isInteger(n) || n < 0 || n > ids.length) throw new RangeError(`pushMany: n must be an integer in [0, ${ids.length}] (ids.length), got ${n}`);
    const S = this.sampleSize;
    if (!(samples instanceof Float32Array) || samples.length < n * S)
      throw new RangeError(`pushMany: samples must be a Float32Array of at least ${n} × ${S} values, got ${samples?.length ?? typeof samples}`);
    const call = new ManyCall(n, this.outNames, this.knownOutSizes);
    const ins = this.inputs;
    const srcs = this.srcs;
    const offs = this.srcOffs;
    for (let k = 0; k < ins.length; k++) srcs[k] = samples;
    for (let i = 0; i < n; i++) {
      const id = ids[i]!;
      if (this.closed) {
        call.fail(i, this.refused(new StreamRejectedError(id, 'closed', 'the pool is closed')), false);
        continue;
      }
      const base = i * S;
      for (let k = 0; k < ins.length; k++) offs[k] = base + ins[k]!.offset;
      if (this.nonFinite === 'reject') {
        const bad = this.nonFiniteIn(id, samples, base);
        if (bad !== null) {
          call.fail(i, this.refused(bad), false);
          continue;
        }
      }
      const e = this.lookup(id);
      if (e instanceof StreamRejectedError) {
        call.fail(i, this.refused(e), false);
        continue;
      }
      const b = this.stage(e);
      if (b === null) {
        this.counters.pushes++;
        continue;
      }
      this.enqueue(e, b, this.stagedRow, this.stagedStep, call, i);
    }
    return call.arm();
  }

  // ---- the push path helpers ----

  /** The first non-finite value of a `pushMany` row, as the error to reject it with, or null. */
  private nonFiniteIn(id: string, samples: Float32Array, base: number): SampleError | null {
    for (const l of this.inputs) {
      for (let i = 0; i < l.sampleSize; i++) {
        const v = samples[base + l.offset + i]!;
        if (v - v !== 0) return new SampleError(id, 'non-finite', l.name, 'finite numbers', `${v} at index ${i}`);
      }
    }
    return null;
  }

  /**
   * Points `this.srcs` at the sample's arrays and checks lengths (and finiteness under
   * `reject`). Returns the error to reject the push with, or null.
   */
  protected resolveSample(id: string, sample: Sample): SampleError | null {
    const ins = this.inputs;
    const srcs = this.srcs;
    if (sample === null || typeof sample !== 'object') {
      return new SampleError(id, 'missing-input', ins[0]!.name, `an array of ${ins[0]!.sampleSize} numbers`, sample === null ? 'null' : typeof sample);
    }
    if (typeof (sample as ArrayLike<number>).length === 'number') {
      if (ins.length !== 1) {
        return new SampleError(
          id,
          'missing-input',
          ins.map((l) => l.name).join(', '),
          `an object keyed by input name (${ins.map((l) => `${l.name}: ${l.sampleSize} values`).join(', ')})`,
          'one array',
        );
      }
      srcs[0] = sample as ArrayLike<number>;
    } else {
      for (let k = 0; k < ins.length; k++) {
        const s = (sample as Record<string, ArrayLike<number>>)[ins[k]!.name];
        if (s === undefined || s === null || typeof s.length !== 'number') {
          return new SampleError(id, 'missing-input', ins[k]!.name, `an array of ${ins[k]!.sampleSize} numbers`, s === undefined ? 'no such key' : typeof s);
        }
        srcs[k] = s;
      }
    }
    for (let k = 0; k < ins.length; k++) {
      this.srcOffs[k] = 0;
      if (srcs[k]!.length !== ins[k]!.sampleSize)
        return new SampleError(id, 'length', ins[k]!.name, `${ins[k]!.sampleSize} values`, `${srcs[k]!.length} values`);
    }
    if (this.nonFinite === 'reject') {
      for (let k = 0; k < ins.length; k++) {
        const s = srcs[k]!;
        for (let i = 0; i < s.length; i++) {
          const v = s[i]!;
          // v - v is 0 exactly for finite numbers: one test for NaN, ±Infinity and non-numbers.
          if (v - v !== 0) return new SampleError(id, 'non-finite', ins[k]!.name, 'finite numbers', `${v} at index ${i}`);
        }
      }
    }
    return null;
  }

  /**
   * Copies one input of a validated sample (from `src[srcOff]`) into `dst`, replacing non-finite values per the
   * policy from `hold` (hold-last) or with 0. Returns whether anything was replaced.
   */
  protected copyIn(src: ArrayLike<number>, srcOff: number, dst: Float32Array, off: number, n: number, hold: Float32Array | null, holdOff: number): boolean {
    if (this.nonFinite === 'reject') {
      for (let i = 0; i < n; i++) dst[off + i] = src[srcOff + i]!;
      return false;
    }
    let repaired = false;
    for (let i = 0; i < n; i++) {
      const v = +src[srcOff + i]!;
      if (v - v === 0) {
        dst[off + i] = v;
      } else {
        dst[off + i] = hold === null ? 0 : hold[holdOff + i]!;
        repaired = true;
      }
    }
    return repaired;
  }

  protected noteRepaired(): void {
    this.counters.repaired++;
  }

  /** The stream for `id`, opened per the unknown-stream and full policies, or the error to reject with. */
  protected lookup(id: string): Entry | StreamRejectedError {
    const e = this.entries.get(id);
    if (e !== undefined) {
      if (this.lru) {
        this.entries.delete(id);
        this.entries.set(id, e);
      }
      return e;
    }
    if (this.unknownStream === 'reject')
      return new StreamRejectedError(id, 'unknown-stream', "unknown stream (unknownStream: 'reject'); call pool.open(id) first");
    return this.createEntry(id);
  }

  private createEntry(id: string): Entry | StreamRejectedError {
    if (this.entries.size >= this.maxStreams) {
      if (this.whenFull === 'reject') return new StreamRejectedError(id, 'max-streams', `${this.maxStreams} streams are open (maxStreams, whenFull: 'reject')`);
      if (!this.evictLru()) return new StreamRejectedError(id, 'max-streams', `${this.maxStreams} streams are open and every one has a push pending`);
    }
    let slot = this.freeSlots.pop();
    if (slot === undefined) {
      slot = this.nextSlot++;
      if (slot >= this.capacity) this.ensureCapacity(slot + 1);
    }
    const e: Entry = {
      id,
      slot,
      step: 0,
      gen: 0,
      pending: 0,
      running: false,
      lastSeq: 0,
      lastUsed: Date.now(),
      alive: true,
      head: 0,
      held: null,
      primed: false,
    };
    this.initSlot(e);
    this.entries.set(id, e);
    return e;
  }

  private ensureCapacity(rows: number): void {
    if (rows <= this.capacity) return;
    let c = Math.max(16, this.capacity);
    while (c < rows) c *= 2;
    this.capacity = c;
    this.growSlots(c);
  }

  private evictLru(): boolean {
    // The Map is kept in use order under maxStreams, so the first idle entry is the LRU one.
    for (const e of this.entries.values()) {
      if (e.pending === 0) {
        this.remove(e);
        this.counters.evicted++;
        return true;
      }
    }
    return false;
  }

  private remove(e: Entry): void {
    this.entries.delete(e.id);
    e.alive = false;
    e.gen++;
    // Its pending rows are discarded (never scattered); keeping its table row until they
    // settle just means no other stream's row is read for them meanwhile.
    if (e.pending === 0) this.freeSlot(e);
  }

  private freeSlot(e: Entry): void {
    if (e.slot >= 0) {
      this.freeSlots.push(e.slot);
      e.slot = -1;
    }
  }

  /** Rejects a push at the door, counting the reason. */
  protected refuse(err: SampleError | StreamRejectedError): Promise<never> {
    return Promise.reject(this.refused(err));
  }

  /** Counts a rejection by its reason and returns the error. */
  private refused<E extends SampleError | StreamRejectedError>(err: E): E {
    this.rejected[err.reason] = (this.rejected[err.reason] ?? 0) + 1;
    return err;
  }

  protected refuseClosed(id: string): Promise<never> {
    return this.refuse(new StreamRejectedError(id, 'closed', 'the pool is closed'));
  }

  /**
   * The batch a stream's next row goes into. `ordered`: not a batch that already holds (or
   * comes before one that holds) this stream, so its pushes run in order against its state.
   */
  protected batchFor(e: Entry, ordered: boolean): Batch {
    const f = this.forming;
    let idx = f.length === 0 ? 0 : ordered ? Math.max(0, e.lastSeq + 1 - f[0]!.seq) : f.length - 1;
    for (;;) {
      while (idx >= f.length) f.push(this.newBatch());
      const b = f[idx]!;
      if (b.n < this.maxBatch) return b;
      idx++;
    }
  }

  private newBatch(): Batch {
    const b = this.spare.pop() ?? new Batch(this.inputs, this.maxBatch);
    b.seq = this.nextSeq++;
    b.n = 0;
    return b;
  }

  /**
   * Commits row `row` of `b` (its sample already written): for `pushMany` row `callRow` of
   * `call`, else a push whose promise is returned.
   */
  private enqueue(e: Entry, b: Batch, row: number, step: number, call: ManyCall | undefined, callRow: number): Promise<P> {
    let p: Promise<P> = NO_PREDICTION as Promise<P>;
    if (call === undefined) {
      p = new Promise<P>(this.capture as (res: Settle, rej: (e: unknown) => void) => void);
      b.resolves[row] = this.parkedResolve;
      b.rejects[row] = this.parkedReject;
      b.calls[row] = undefined;
    } else {
      call.added();
      b.calls[row] = call;
      b.callRows[row] = callRow;
    }
    b.entries[row] = e;
    b.steps[row] = step;
    b.n = row + 1;
    e.pending++;
    e.lastSeq = b.seq;
    this.unsettled++;
    this.counters.pushes++;
    if (row === 0 && this.maxWait > 0) b.firstAt = performance.now();
    if (this.idle.length > 0) {
      if (this.maxWait === 0 || b.n >= this.maxBatch) {
        this.kick();
      } else if (this.timer === undefined) {
        this.timer = setTimeout(this.pumpCb, this.maxWait);
      }
    }
    return p;
  }

  // ---- the batch loop ----

  private isDue(b: Batch): boolean {
    if (this.maxWait === 0 || b.n >= this.maxBatch || this.closed) return true;
    if (performance.now() - b.firstAt >= this.maxWait) return true;
    // A full batch behind this one must not wait for it.
    for (let i = 1; i < this.forming.length; i++) if (this.forming[i]!.n >= this.maxBatch) return true;
    return false;
  }

  /** Schedules a pump on the next microtask (after the pushes of the current tick). */
  private kick(): void {
    if (!this.scheduled && this.idle.length > 0) {
      this.scheduled = true;
      queueMicrotask(this.pumpCb);
    }
  }

  /**
   * Starts due batches, in sequence order, on idle sessions; arms the wait timer for one not
   * yet due. Callback-driven rather than an async loop: two fewer promises per step on the
   * single-stream fast path. With several sessions a batch waits while one of its streams is
   * in a running batch (its state is being computed there).
   */
  private pump(): void {
    const f = this.forming;
    while (this.idle.length > 0) {
      while (f.length > 0 && f[0]!.n === 0) this.spare.push(f.shift()!);
      const b = f[0];
      const j = this.jobs[0];
      if (j !== undefined && (b === undefined || b.seq > j.after)) {
        this.jobs.shift();
        this.startJob(j, this.idle.pop()!);
        continue;
      }
      if (b === undefined) return;
      if (!this.isDue(b)) {
        const left = Math.max(0, this.maxWait - (performance.now() - b.firstAt));
        this.timer ??= setTimeout(this.pumpCb, Math.ceil(left));
        return;
      }
      if (this.idle.length < this.sessions.length && this.waitsForRunning(b)) return;
      f.shift();
      this.start(b, this.idle.pop()!);
    }
  }

  /** Whether a stream of `b` is in a running batch. */
  private waitsForRunning(b: Batch): boolean {
    for (let i = 0; i < b.n; i++) if (b.entries[i]!.running) return true;
    return false;
  }

  private start(b: Batch, si: number): void {
    this.current[si] = b;
    const n = b.n;
    // Only several sessions can run a stream's next batch while this one runs (see waitsForRunning).
    if (this.sessions.length > 1) for (let i = 0; i < n; i++) b.entries[i]!.running = true;
    let feeds = b.feeds[n];
    if (feeds === undefined) {
      feeds = {};
      for (let k = 0; k < this.inputs.length; k++) {
        const l = this.inputs[k]!;
        feeds[l.name] = { type: 'float32', data: b.inputs[k]!.subarray(0, n * l.rowSize), dims: [n, ...l.rowDims] };
      }
      b.feeds[n] = feeds;
    }
    let run: Promise<Record<string, TensorData>>;
    try {
      this.prepare(b, feeds);
      run = this.sessions[si]!.run(feeds);
    } catch (err) {
      run = Promise.reject(err);
    }
    run.then(this.onRun[si], this.onRunFailed[si]);
  }

  private ran(si: number, res: Record<string, TensorData>): void {
    const b = this.current[si]!;
    try {
      this.counters.batches++;
      this.counters.rows += b.n;
      this.scatter(b, res);
      this.deliver(b, res);
    } finally {
      this.finish(b, si);
    }
  }

  private runFailed(si: number, err: unknown): void {
    const b = this.current[si]!;
    try {
      this.failBatch(b, err);
    } finally {
      this.finish(b, si);
    }
  }

  private finish(b: Batch, si: number): void {
    b.n = 0;
    this.current[si] = undefined;
    this.idle.push(si);
    this.spare.push(b);
    // Deferred a microtask so that callers resuming from this batch can join the next one.
    if (this.forming.length > 0 || this.jobs.length > 0) this.kick();
  }

  private startJob(j: (typeof this.jobs)[number], si: number): void {
    void j.start(this.sessions[si]!).finally(() => {
      this.idle.push(si);
      this.settled(1);
      if (this.forming.length > 0 || this.jobs.length > 0) this.kick();
    });
  }

  /** Runs `fn` with a session of its own (no batch runs there meanwhile), after the batches formed before this call. */
  private exclusive<T>(fn: (s: Session) => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.unsettled++;
      this.jobs.push({
        after: this.nextSeq - 1,
        start: async (s) => {
          try {
            resolve(await fn(s));
          } catch (e) {
            reject(e);
          }
        },
        cancel: (e) => {
          reject(e);
          this.settled(1);
        },
      });
      this.kick();
    });
  }

  private deliver(b: Batch, res: Record<string, TensorData>): void {
    const n = b.n;
    const names = this.outNames;
    const m = names.length;
    const datas = this.outDatas;
    const sizes = this.outSizes;
    for (let j = 0; j < m; j++) {
      const t = res[names[j]!]!;
      const d = t.data instanceof Float32Array ? t.data : Float32Array.from(t.data as ArrayLike<number>, Number);
      datas[j] = d;
      sizes[j] = d.length / n;
    }
    let delivered = 0;
    // One clock read per batch: a stream is not evictable while its push is pending anyway.
    const now = Date.now();
    for (let i = 0; i < n; i++) {
      const e = b.entries[i]!;
      const call = b.calls[i];
      const resolve = b.resolves[i];
      const reject = b.rejects[i];
      b.entries[i] = undefined;
      b.resolves[i] = undefined;
      b.rejects[i] = undefined;
      b.calls[i] = undefined;
      e.pending--;
      e.running = false;
      if (!e.alive) {
        if (e.pending === 0) this.freeSlot(e);
        this.rejected.deleted = (this.rejected.deleted ?? 0) + 1;
        const err = new StreamRejectedError(e.id, 'deleted', 'the stream was deleted or evicted while this push waited');
        if (call !== undefined) call.fail(b.callRows[i]!, err, true);
        else reject!(err);
        continue;
      }
      e.lastUsed = now;
      delivered++;
      if (call !== undefined) {
        call.put(b.callRows[i]!, b.steps[i]!, datas, sizes, i);
        continue;
      }
      const outputs: Record<string, Float32Array> = {};
      for (let j = 0; j < m; j++) {
        const d = datas[j]!;
        const s = sizes[j]!;
        // A view on the run's own output buffer (never reused): no copy. The constructor
        // form is about twice as fast as subarray() in V8.
        outputs[names[j]!] = n === 1 ? d : new Float32Array(d.buffer, d.byteOffset + i * s * 4, s);
      }
      resolve!({ id: e.id, step: b.steps[i]!, outputs } satisfies Prediction);
    }
    this.counters.steps += delivered;
    this.settled(n);
  }

  private failBatch(b: Batch, err: unknown): void {
    const n = b.n;
    for (let i = 0; i < n; i++) {
      const e = b.entries[i]!;
      const call = b.calls[i];
      const reject = b.rejects[i];
      b.entries[i] = undefined;
      b.resolves[i] = undefined;
      b.rejects[i] = undefined;
      b.calls[i] = undefined;
      e.pending--;
      e.running = false;
      if (!e.alive && e.pending === 0) this.freeSlot(e);
      const failure = new InferenceError(e.id, n, err);
      if (call !== undefined) call.fail(b.callRows[i]!, failure, true);
      else reject!(failure);
    }
    this.rejected.inference = (this.rejected.inference ?? 0) + n;
    this.settled(n);
  }

  private settled(n: number): void {
    this.unsettled -= n;
    if (this.unsettled === 0 && this.drainWaiters.length > 0) {
      const w = this.drainWaiters;
      this.drainWaiters = [];
      for (const f of w) f();
    }
  }

  // ---- the public API ----

  open(id: string): void {
    if (this.closed) throw new StreamRejectedError(id, 'closed', 'the pool is closed');
    if (this.entries.has(id)) return;
    const e = this.createEntry(id);
    if (e instanceof StreamRejectedError) throw e;
  }

  reset(id: string): boolean {
    const e = this.entries.get(id);
    if (e === undefined) return false;
    e.gen++;
    e.step = 0;
    e.head = 0;
    this.initSlot(e);
    return true;
  }

  delete(id: string): boolean {
    const e = this.entries.get(id);
    if (e === undefined) return false;
    this.remove(e);
    return true;
  }

  has(id: string): boolean {
    return this.entries.has(id);
  }

  get size(): number {
    return this.entries.size;
  }

  /** Stream ids, in no particular order. */
  ids(): string[] {
    return [...this.entries.keys()];
  }

  evictIdle(now: number = Date.now()): number {
    if (this.idleMs === undefined) return 0;
    let count = 0;
    for (const e of this.entries.values()) {
      if (e.pending === 0 && now - e.lastUsed > this.idleMs) {
        this.remove(e);
        count++;
      }
    }
    this.counters.evicted += count;
    return count;
  }

  /**
   * Rolls stream `id` out `k` steps from a copy of its state; see {@link forecastMany}.
   * Rejects with {@link ForecastError} when the stream cannot be rolled out.
   */
  async forecast(id: string, k: number, opts: ForecastOneOptions = {}): Promise<Forecast> {
    const r = await this.forecastMany([id], k, { ...opts, last: opts.last === undefined ? undefined : [opts.last] });
    const e = r.errors.get(0);
    if (e !== undefined) throw e;
    return r.forecasts[0]!;
  }

  /**
   * Autoregressive rollout of several streams at once: copies each stream's state (when
   * called: after its last delivered step; pushes still pending are not included, and the
   * live streams are never touched), then feeds the model's prediction of the next sample
   * back as its input, `k` times, all rows in one `session.run` a step. Row j of a trajectory
   * predicts sample `step + 1 + j`; the first is the stream's last prediction.
   *
   * The outputs map to input channels through the preprocessing (`opts.preprocessing`, else
   * the model's metadata): a forecaster's target (`delta` outputs added to the last value,
   * outputs scaled back, inputs normalised again), or one output per channel. Channels the
   * model does not predict are held at their last value when named in `hold`; otherwise the
   * call rejects with {@link InputError} naming them (also for a classifier or a horizon
   * other than 1). Per-row failures (unknown stream, no prediction yet) are in `errors`.
   *
   * @example
   * ```ts
   * await pool.push('site-1', [x]);
   * const { forecasts } = await pool.forecastMany(['site-1', 'site-2'], 16);
   * console.log(forecasts[0]?.values); // 16 values in target units
   * ```
   */
  async forecastMany(ids: readonly string[], k: number, opts: ForecastManyOptions = {}): Promise<ForecastResult> {
    if (!Number.isInteger(k) || k < 1 || k > MAX_ROLLOUT) throw new RangeError(`forecast: k must be an integer from 1 to ${MAX_ROLLOUT}, got ${k}`);
    if (ids.length * k * Math.max(1, this.sampleSize) > MAX_GENERATED_ELEMENTS)
      throw new RangeError(`forecast: ${ids.length} streams × ${k} steps × ${this.sampleSize} values is over the limit of 2^26 values`);
    if (this.closed) throw new StreamRejectedError('*', 'closed', 'the pool is closed');
    const out = this.info.predictionOutputs[0];
    if (out === undefined) throw new InputError('the model has no prediction output to feed back', { field: 'outputs', expected: 'a forecasting output' });
    const pre = opts.preprocessing ?? this.modelPreprocessing();
    const S = this.sampleSize;
    const plan = (outSize: number) => feedbackPlan(this.inputs, S, out.name, outSize, pre, opts.hold);
    // A declared output size: refuse a model that cannot be rolled out before any work.
    if (this.knownOutSizes[0]! >= 0) plan(this.knownOutSizes[0]!);
    const forecasts: (Forecast | undefined)[] = ids.map(() => undefined);
    const errors = new Map<number, Error>();
    const rows: Entry[] = [];
    const at: number[] = [];
    for (let i = 0; i < ids.length; i++) {
      const e = this.entries.get(ids[i]!);
      const why = e === undefined ? 'no such stream (never pushed, evicted or deleted)' : this.notReady(e);
      if (why !== null) errors.set(i, new ForecastError(ids[i]!, e === undefined ? 'unknown-stream' : 'not-ready', why));
      else {
        rows.push(e!);
        at.push(i);
      }
      const last = opts.last?.[i];
      if (last !== undefined && last.length !== S) throw new RangeError(`forecast: last[${i}] has ${last.length} values, a sample has ${S}`);
    }
    const jobs: Promise<void>[] = [];
    for (let c = 0; c < rows.length; c += this.maxBatch) {
      const chunk = rows.slice(c, c + this.maxBatch);
      const idx = at.slice(c, c + this.maxBatch);
      // The copy is taken now, synchronously: later pushes cannot leak into it.
      const seed = this.rolloutSeed(chunk);
      const steps = chunk.map((e) => e.step - 1);
      const lasts = idx.map((i) => (opts.last?.[i] === undefined ? undefined : Float64Array.from(opts.last[i]!)));
      const n = chunk.length;
      const job = this.exclusive(async (session) => {
        let y = seed.y ?? (await seed.run(session, null));
        const p = plan(y.length / n);
        // Channel units of each row's last sample: given, or the normalised sample mapped back.
        const units = new Float64Array(n * S);
        for (let i = 0; i < n; i++) for (let ch = 0; ch < S; ch++) units[i * S + ch] = lasts[i]?.[ch] ?? p.mean[ch]! + p.std[ch]! * seed.x[i * S + ch]!;
        const traj = chunk.map(() => new Float64Array(k * p.channel.length));
        for (let j = 0; j < k; j++) {
          if (j > 0) y = await seed.run(session, seed.x);
          feedBack(p, n, y, units, seed.x, traj, j);
        }
        return { traj, names: p.predictedNames };
      }).then(
        ({ traj, names }) => {
          for (let i = 0; i < n; i++) forecasts[idx[i]!] = { id: chunk[i]!.id, step: steps[i]!, k, channels: names, values: traj[i]! };
        },
        (err: unknown) => {
          if (err instanceof InputError || err instanceof StreamRejectedError) throw err;
          for (let i = 0; i < n; i++)
            errors.set(idx[i]!, new ForecastError(chunk[i]!.id, 'inference', `inference failed: ${(err as Error)?.message ?? String(err)}`, err));
        },
      );
      jobs.push(job);
    }
    await Promise.all(jobs);
    return { forecasts, errors };
  }

  private pre: PreprocessingJson | null | undefined;

  /** The model's `streamcell.preprocessing` (read on first use), or undefined. */
  private modelPreprocessing(): PreprocessingJson | undefined {
    if (this.pre === undefined) this.pre = readPreprocessing(this.info.metadata, `model ${this.info.sha256.slice(0, 12)}`) ?? null;
    return this.pre ?? undefined;
  }

  stats(): PoolStats {
    const c = this.counters;
    return {
      streams: this.entries.size,
      pushes: c.pushes,
      steps: c.steps,
      batches: c.batches,
      meanBatchSize: c.batches === 0 ? 0 : c.rows / c.batches,
      evicted: c.evicted,
      repaired: c.repaired,
      rejected: { ...this.rejected },
    };
  }

  drain(): Promise<void> {
    if (this.unsettled === 0) return Promise.resolve();
    return new Promise((res) => this.drainWaiters.push(res));
  }

  snapshotBytes(): Uint8Array {
    const tensors = this.snapshotTensors();
    const per = floatsPerStream(tensors);
    const list = [...this.entries.values()];
    return encodeSnapshot({ pool: this.kind, modelSha256: this.info.sha256, tensors, ids: list.map((e) => e.id), steps: list.map((e) => e.step) }, (data) => {
      for (let i = 0; i < list.length; i++) this.saveSlot(list[i]!, data, i * per);
    });
  }

  async snapshot(file: string): Promise<void> {
    const bytes = this.snapshotBytes();
    // Same directory, so the rename is atomic: a reader sees the old file or the new one.
    const tmp = join(dirname(file), snapshotTempName(file, process.pid));
    try {
      const fh = await open(tmp, 'w');
      try {
        await fh.writeFile(bytes);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tmp, file);
    } catch (e) {
      await unlink(tmp).catch(() => undefined);
      throw e;
    }
  }

  async restore(file: string): Promise<void> {
    let bytes: Uint8Array;
    try {
      bytes = await readFile(file);
    } catch (e) {
      throw new InputError(`cannot read snapshot '${file}': ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, {
        file,
        expected: 'a pool snapshot file',
      });
    }
    this.restoreBytes(bytes, file);
  }

  restoreBytes(bytes: Uint8Array, source = '(bytes)'): void {
    if (this.closed) throw new StreamRejectedError('*', 'closed', 'the pool is closed');
    if (this.unsettled > 0) throw new PoolBusyError('restore', this.unsettled);
    const s = decodeSnapshot(bytes, source);
    const mine = this.info.sha256;
    if (s.modelSha256 !== mine) {
      throw new InputError(`snapshot ${source} was taken with model sha256 ${s.modelSha256}, but this pool runs model sha256 ${mine}; nothing was restored`, {
        file: source,
        field: 'model_sha256',
        expected: mine,
      });
    }
    const want = this.snapshotTensors();
    const layout = (t: { name: string; shape: number[] }[]) => t.map((x) => `${x.name}[${x.shape.join(',')}]`).join(' ');
    if (s.pool !== this.kind || layout(s.tensors) !== layout(want)) {
      throw new InputError(
        `snapshot ${source} has a different state layout (${s.pool}: ${layout(s.tensors)}) than this pool (${this.kind}: ${layout(want)}); snapshot model sha256 ${s.modelSha256}, pool model sha256 ${mine}; nothing was restored`,
        { file: source, field: 'tensors', expected: layout(want) },
      );
    }
    if (s.ids.length > this.maxStreams) {
      throw new InputError(`snapshot ${source} holds ${s.ids.length} streams, more than maxStreams ${this.maxStreams}; nothing was restored`, {
        file: source,
        field: 'stream_ids',
        expected: `at most ${this.maxStreams} streams`,
      });
    }
    // Everything checked: replace the table.
    for (const e of this.entries.values()) {
      e.alive = false;
      e.gen++;
      e.slot = -1;
    }
    this.entries.clear();
    this.freeSlots.length = 0;
    this.nextSlot = s.ids.length;
    this.ensureCapacity(s.ids.length);
    const per = floatsPerStream(s.tensors);
    const now = Date.now();
    for (let i = 0; i < s.ids.length; i++) {
      const e: Entry = {
        id: s.ids[i]!,
        slot: i,
        step: s.steps[i]!,
        gen: 0,
        pending: 0,
        running: false,
        lastSeq: 0,
        lastUsed: now,
        alive: true,
        head: 0,
        held: null,
        primed: false,
      };
      this.initSlot(e);
      this.loadSlot(e, s.data, i * per);
      this.entries.set(e.id, e);
    }
  }

  close(): Promise<void> {
    if (this.closing) return this.closing;
    this.closed = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.sweeper !== undefined) clearInterval(this.sweeper);
    // Rows not yet running are rejected; the running batch (if any) finishes and delivers.
    const waiting = this.forming.splice(0);
    for (const b of waiting) {
      for (let i = 0; i < b.n; i++) {
        const e = b.entries[i]!;
        e.pending--;
        const err = new StreamRejectedError(e.id, 'closed', 'the pool was closed before this push ran');
        const call = b.calls[i];
        if (call !== undefined) call.fail(b.callRows[i]!, err, true);
        else b.rejects[i]!(err);
        b.entries[i] = b.resolves[i] = b.rejects[i] = b.calls[i] = undefined;
      }
      this.rejected.closed = (this.rejected.closed ?? 0) + b.n;
      this.settled(b.n);
      b.n = 0;
    }
    for (const j of this.jobs.splice(0)) j.cancel(new StreamRejectedError('*', 'closed', 'the pool was closed before this forecast ran'));
    this.closing = this.drain().then(async () => {
      await Promise.all(this.sessions.map((x) => x.release()));
    });
    return this.closing;
  }
}

/** The temp file a snapshot of `file` is written to before its rename: `.NAME.PID.RANDOM.tmp`. */
export function snapshotTempName(file: string, pid: number): string {
  return `.${basename(file)}.${pid}.${Math.random().toString(36).slice(2)}.tmp`;
}

/** The writer's pid when `name` (in `file`'s folder) is a snapshot temp of `file`, else undefined. */
export function snapshotTempPid(file: string, name: string): number | undefined {
  const prefix = `.${basename(file)}.`;
  const m = name.startsWith(prefix) ? /^(\d+)\.[a-z0-9]+\.tmp$/.exec(name.slice(prefix.length)) : null;
  return m ? Number(m[1]) : undefined;
}
