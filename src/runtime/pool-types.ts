/**
 * The multi-stream pool contract: what {@link StreamPool} (step models with recurrent state)
 * and {@link WindowPool} (sequence models over a sliding window) promise their callers.
 * `pool.ts`, `window.ts` and the shared `pool-core.ts` implement it.
 *
 * A pool serves many independent sensor streams with ONE inference session. Pushes from
 * different streams made in the same tick are stepped together in one `session.run`
 * (a micro-batch); a stream's own pushes always run in the order they were made.
 */
import type { Backend, BackendName, BackendRecord, SessionOptions } from './backend.js';
import type { Forecast, ForecastManyOptions, ForecastOneOptions, ForecastResult } from './forecast.js';

/** What to do with NaN / ±Infinity in a sample. */
export type NonFinitePolicy =
  /** Reject the push with a {@link SampleError} (reason `non-finite`); the stream is untouched. */
  | 'reject'
  /** Replace each non-finite value with the stream's last finite value there (0 before any). */
  | 'hold-last'
  /** Replace each non-finite value with 0. */
  | 'zero';

/** What a push to an id the pool has never seen (or has evicted) does. */
export type UnknownStreamPolicy =
  /** Open the stream from the model's initial state. */
  | 'create'
  /** Reject with {@link StreamRejectedError} (reason `unknown-stream`); open streams with `open(id)`. */
  | 'reject';

/** What opening a stream does when `maxStreams` streams are open. */
export type FullPolicy =
  /**
   * Evict the least-recently-used idle stream (no push pending), counted in
   * `stats().evicted`; reject with reason `max-streams` only when every stream is busy.
   */
  | 'evict-lru'
  /** Reject the push with reason `max-streams`. */
  | 'reject';

/**
 * One sample: the values of one time step, row-major over the input's per-step shape.
 * A model with several sample inputs takes an object keyed by input name.
 */
export type Sample = ArrayLike<number> | Readonly<Record<string, ArrayLike<number>>>;

/** Why a push was rejected; the keys of `stats().rejected`. */
export type RejectReason = 'length' | 'non-finite' | 'missing-input' | 'unknown-stream' | 'max-streams' | 'deleted' | 'closed' | 'inference';

/** Options of {@link StreamPool.create}: batching, stream limits and policies, backend and session settings. */
export interface PoolOptions {
  /** Force a backend by name (no fallback), or pass a backend object (tests, custom builds). */
  backend?: BackendName | Backend;
  /**
   * When no backend is forced: the order to try (default onnxruntime-node, then onnxruntime-web).
   * onnxruntime-node is probed in a child process first, so a binary that would crash falls back.
   */
  preferBackends?: readonly BackendName[];
  session?: SessionOptions;
  /** Most streams stepped in one `session.run` (default 256; with `workers` ≥ 2, 256 / workers, at least 16). */
  maxBatch?: number;
  /**
   * Run the model in this many worker threads, one session each (default 0: one session in
   * the calling thread). Each computes a batch while this thread validates, batches and
   * delivers; with two or more, batches run on several cores at once (a stream's batches
   * still run one after another). Results are identical to one session. Pushes from many
   * streams in the same tick (or `pushMany`) are what keeps several workers busy; a single
   * stream only pays the hand-over (tens of µs).
   */
  workers?: number;
  /**
   * Longest a push waits for others to join its batch, in ms. Default 0: the batch runs on
   * the microtask after the current synchronous pushes. A full batch runs at once.
   */
  maxWaitMs?: number;
  /**
   * Streams idle (no push) longer than this are evicted by `evictIdle()`, which the pool
   * also calls every max(idleMs, 1000) ms on an unref'd timer. Default: never.
   */
  idleMs?: number;
  /** Most open streams (default unlimited); see {@link FullPolicy}. */
  maxStreams?: number;
  /** Default `evict-lru`. */
  whenFull?: FullPolicy;
  /** Default `create`. */
  unknownStream?: UnknownStreamPolicy;
  /** Default `reject`. */
  nonFinite?: NonFinitePolicy;
}

/** Options of {@link WindowPool.create}: the pool options plus the window length. */
export interface WindowPoolOptions extends PoolOptions {
  /** Window length W in samples; required when the model's time dimension is symbolic. */
  window?: number;
  /** Predict every `hop` samples once the window is full (default 1). */
  hop?: number;
}

/** One stream's result of one push. */
export interface Prediction {
  id: string;
  /**
   * 0-based index, within its stream, of the sample this prediction answers
   * (the newest sample of the window, for {@link WindowPool}).
   */
  step: number;
  /**
   * This stream's slice of every prediction output (state outputs excluded), shaped as the
   * output without its batch dimension. The arrays are views the pool never writes again.
   */
  outputs: Record<string, Float32Array>;
}

/** Counters of a pool: pushes, steps, batches, rows, evicted and repaired streams, rejections by reason. */
export interface PoolStats {
  /** Open streams. */
  streams: number;
  /** Pushes accepted (not rejected at the door). */
  pushes: number;
  /** Stream-steps computed and delivered (for {@link WindowPool}: predictions). */
  steps: number;
  /** `session.run` calls. */
  batches: number;
  /** Mean rows per `session.run`. */
  meanBatchSize: number;
  /** Streams evicted, by `evictIdle` or to make room under `maxStreams`. */
  evicted: number;
  /** Samples whose non-finite values were replaced (`hold-last` / `zero`). */
  repaired: number;
  /** Rejected pushes by reason. */
  rejected: Partial<Record<RejectReason, number>>;
}

/**
 * The results of one `pushMany` call, row for row. The arrays belong to the caller (the pool
 * never writes them again).
 */
export interface BatchResult {
  /** Rows in the call. */
  readonly n: number;
  /**
   * Per row: the 0-based step its prediction answers (as {@link Prediction.step}); -1 when the
   * row made no prediction: rejected (see `errors`) or, for WindowPool, window not yet full / between hops.
   */
  readonly steps: Float64Array;
  /** Per prediction output: `n` rows of `sizes[name]` values, row-major; rows without a prediction hold NaN. */
  readonly outputs: Record<string, Float32Array>;
  /** Values per row of each output. */
  readonly sizes: Record<string, number>;
  /** Rejected rows: row index → the error ({@link SampleError}, {@link StreamRejectedError} or {@link InferenceError}, each with a `reason`). */
  readonly errors: Map<number, Error>;
}

/** The API both pools share. `P` is what a push resolves to. */
export interface Pool<P> {
  /** Steps stream `id` with one sample; see the pool's docs for ordering and batching. */
  push(id: string, sample: Sample): Promise<P>;
  /**
   * Steps many streams in one call: row i of `samples` (`sampleSize` values) is a sample of
   * `ids[i]` (first `n` rows; default all). One promise for the call; a stream's rows step in
   * order; a bad row is rejected alone, in `errors`. Throws RangeError when `samples` is too short.
   */
  pushMany(ids: readonly string[], samples: Float32Array, n?: number): Promise<BatchResult>;
  /**
   * Rolls stream `id` out `k` steps ahead from a copy of its state, feeding each prediction
   * back as the next sample (preprocessing applied around each step); the live stream is not
   * touched. Rejects with ForecastError (unknown stream, no prediction yet) or InputError
   * (outputs that cannot be fed back, channels neither predicted nor held).
   */
  forecast(id: string, k: number, opts?: ForecastOneOptions): Promise<Forecast>;
  /** {@link forecast} for many streams, all rows stepped in one `session.run` a step; per-row failures in `errors`. */
  forecastMany(ids: readonly string[], k: number, opts?: ForecastManyOptions): Promise<ForecastResult>;
  /** Values per sample (the model's sample inputs concatenated, in input order): a row of `pushMany`. */
  readonly sampleSize: number;
  /** Opens a stream from the initial state (no-op when open); the way in under `unknownStream: 'reject'`. */
  open(id: string): void;
  /** Back to the initial state and step 0. Pending pushes then run from the reset state. */
  reset(id: string): boolean;
  /** Forgets the stream; its pending pushes reject with reason `deleted`. */
  delete(id: string): boolean;
  has(id: string): boolean;
  readonly size: number;
  /** The backend in use, how it was chosen, and why others were skipped. */
  readonly backendRecord: BackendRecord;
  /** Evicts streams with no push for longer than `idleMs` (none when unset); returns how many. */
  evictIdle(now?: number): number;
  stats(): PoolStats;
  /** Resolves once every accepted push has settled. */
  drain(): Promise<void>;
  /** Writes every stream's state and counter to `file` atomically (temp file + rename). */
  snapshot(file: string): Promise<void>;
  /** Replaces every stream with those of a snapshot of the same model; see `restoreBytes`. */
  restore(file: string): Promise<void>;
  snapshotBytes(): Uint8Array;
  /**
   * Replaces every stream with the snapshot's. Throws {@link InputError} naming the source
   * and both SHA-256 hashes when the snapshot is of another model or state layout, and
   * {@link PoolBusyError} while pushes are pending; either way nothing is loaded.
   */
  restoreBytes(bytes: Uint8Array, source?: string): void;
  /** Rejects pushes not yet running (reason `closed`), waits for the running batch, releases the session. */
  close(): Promise<void>;
}
