/**
 * Errors a pool rejects a single push with. Each rejects only the push it names: the other
 * streams, and the other pushes of the same batch, are unaffected.
 */
import { StreamcellError } from '../errors.js';
import type { RejectReason } from './pool-types.js';

/**
 * A sample that cannot be fed: wrong length, a missing input, or NaN/Infinity under
 * `nonFinite: 'reject'`.
 *
 * @example
 * ```ts
 * try { await pool.push('ecg-7', values); }
 * catch (e) { if (isSampleError(e)) log.warn(`${e.streamId}: ${e.message}`); else throw e; }
 * ```
 */
export class SampleError extends StreamcellError {
  override name = 'SampleError' as const;
  readonly streamId: string;
  readonly reason: Extract<RejectReason, 'length' | 'non-finite' | 'missing-input'>;
  /** The model input the problem is in. */
  readonly input: string;
  /** What was expected, e.g. `3 values`. */
  readonly expectedValue: string;
  /** What came, e.g. `4 values` or `NaN at index 2`. */
  readonly got: string;

  constructor(streamId: string, reason: SampleError['reason'], input: string, expected: string, got: string) {
    super(`stream '${streamId}': input '${input}': expected ${expected}, got ${got}`, { field: input, expected });
    this.streamId = streamId;
    this.reason = reason;
    this.input = input;
    this.expectedValue = expected;
    this.got = got;
  }
}

export function isSampleError(e: unknown): e is SampleError {
  return e instanceof SampleError;
}

/**
 * A push the pool refused for a reason about the stream rather than the sample: unknown id
 * under `unknownStream: 'reject'`, no room under `maxStreams`, the stream was deleted while
 * the push waited, or the pool is closed.
 *
 * @example
 * ```ts
 * pool.push('new-id', x).catch((e) => { if (isStreamRejectedError(e) && e.reason === 'unknown-stream') pool.open('new-id'); });
 * ```
 */
export class StreamRejectedError extends StreamcellError {
  override name = 'StreamRejectedError' as const;
  readonly streamId: string;
  readonly reason: Extract<RejectReason, 'unknown-stream' | 'max-streams' | 'deleted' | 'closed'>;

  constructor(streamId: string, reason: StreamRejectedError['reason'], detail: string) {
    super(`stream '${streamId}': ${detail}`, { field: 'id' });
    this.streamId = streamId;
    this.reason = reason;
  }
}

export function isStreamRejectedError(e: unknown): e is StreamRejectedError {
  return e instanceof StreamRejectedError;
}

/**
 * `session.run` failed for a batch. Every push of that batch rejects with it (the `cause`
 * is the backend's error) and no stream's state moves.
 */
export class InferenceError extends StreamcellError {
  override name = 'InferenceError' as const;
  readonly streamId: string;
  /** Rows in the failed batch. */
  readonly batchSize: number;

  constructor(streamId: string, batchSize: number, cause: unknown) {
    super(`stream '${streamId}': inference failed for a batch of ${batchSize}: ${cause instanceof Error ? cause.message : String(cause)}`, {}, { cause });
    this.streamId = streamId;
    this.batchSize = batchSize;
  }
}

export function isInferenceError(e: unknown): e is InferenceError {
  return e instanceof InferenceError;
}

/** `restore` was called while pushes were pending; `await pool.drain()` first. */
export class PoolBusyError extends StreamcellError {
  override name = 'PoolBusyError' as const;
  readonly pending: number;

  constructor(operation: string, pending: number) {
    super(`${operation}: ${pending} push(es) still pending; await pool.drain() first`, { expected: 'an idle pool' });
    this.pending = pending;
  }
}

export function isPoolBusyError(e: unknown): e is PoolBusyError {
  return e instanceof PoolBusyError;
}

/**
 * A stream a `forecastMany` row could not roll out: unknown (never pushed, evicted, deleted),
 * not ready (no prediction yet: a StreamPool stream before its first step or after a
 * reset/restore, a WindowPool stream whose window is not full), the pool closed, or the
 * session failed (`cause` is the backend's error). Only its row fails.
 */
export class ForecastError extends StreamcellError {
  override name = 'ForecastError' as const;
  readonly streamId: string;
  readonly reason: 'unknown-stream' | 'not-ready' | 'closed' | 'inference';

  constructor(streamId: string, reason: ForecastError['reason'], detail: string, cause?: unknown) {
    super(`stream '${streamId}': cannot forecast: ${detail}`, { field: 'id' }, cause === undefined ? undefined : { cause });
    this.streamId = streamId;
    this.reason = reason;
  }
}

export function isForecastError(e: unknown): e is ForecastError {
  return e instanceof ForecastError;
}
