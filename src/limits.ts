/**
 * Size limits for what streamcell allocates from numbers it reads in files or flags (declared
 * dims of a model, --steps, --streams, window lengths). A model may declare any size — a
 * time dimension of 10⁹ streams fine, one sample at a time — but the data streamcell *makes*
 * for a check, a benchmark or a pool must fit a small board's memory, so every such size is
 * checked before the allocation and refused with exit 2 naming the limit.
 */
import { InputError, type ErrorContext } from './errors.js';

/** Elements of one generated tensor (sample data, check inputs, a pool's state): 2^26 = 64 Mi (256 MiB of float32). */
export const MAX_GENERATED_ELEMENTS = 2 ** 26;
/** Time steps of a generated check or benchmark sequence (parity, step check, window mode). */
export const MAX_CHECK_STEPS = 10_000;
/** Samples in a window-mode window (a stream's ring of its last W samples). */
export const MAX_WINDOW = 1_000_000;
/** Concurrent streams of a pool or a benchmark. */
export const MAX_STREAMS = 1_000_000;
/** Timed steps of a benchmark series. */
export const MAX_BENCH_STEPS = 1_000_000;

/** Product of `dims`, or Infinity when a dim is not a finite non-negative integer. */
export function elementCount(dims: readonly number[]): number {
  let n = 1;
  for (const d of dims) {
    if (!Number.isSafeInteger(d) || d < 0) return Infinity;
    n *= d;
  }
  return n;
}

/**
 * Throws {@link InputError} when a tensor of `dims` would exceed {@link MAX_GENERATED_ELEMENTS}.
 * `what` says which tensor, e.g. "check input 'x'"; `ctx` names the file or the flag.
 */
export function checkGeneratedSize(dims: readonly number[], what: string, ctx: ErrorContext = {}): void {
  const n = elementCount(dims);
  if (n <= MAX_GENERATED_ELEMENTS) return;
  const shown = Number.isFinite(n) ? `${n.toExponential(2)} elements` : 'an invalid size';
  throw new InputError(
    `${what} would be [${dims.join(', ')}]: ${shown}, over streamcell's limit of 2^26 (${MAX_GENERATED_ELEMENTS}) elements for data it generates`,
    {
      expected: `declared dims whose product stays within 2^26 elements (the model's fixed dims are used as they are)`,
      ...ctx,
    },
  );
}

/** Throws {@link InputError} unless `v` is an integer in [min, max]; `flag` names the option. */
export function checkIntRange(v: number, min: number, max: number, flag: string, limitName?: string): number {
  if (!Number.isInteger(v) || v < min || v > max) {
    throw new InputError(`${flag} is ${v}`, { field: flag, expected: `an integer from ${min} to ${max}${limitName ? ` (${limitName})` : ''}` });
  }
  return v;
}
