/**
 * A minimal float64 n-d array for the reference interpreter. Row-major, no views: every
 * helper returns a fresh array, which keeps the layer code obviously correct at the cost of
 * copies that do not matter at reference-check sizes.
 */
import { InputError } from '../../errors.js';

export interface NDArray {
  shape: number[];
  data: Float64Array;
}

export function sizeOf(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

export function zeros(shape: readonly number[]): NDArray {
  return { shape: [...shape], data: new Float64Array(sizeOf(shape)) };
}

/** Wraps (and widens) flat row-major values; checks the length against the shape. */
export function ndarray(shape: readonly number[], values: ArrayLike<number>): NDArray {
  const n = sizeOf(shape);
  if (values.length !== n) {
    throw new InputError(`an array of shape [${shape}] needs ${n} values, got ${values.length}`, { expected: `${n} values` });
  }
  return { shape: [...shape], data: Float64Array.from(values) };
}

/** Row-major strides of `shape`. */
export function stridesOf(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i]!;
  }
  return s;
}

/** Resolves a possibly negative axis against `rank`; `where` names the caller in the error. */
export function normAxis(axis: number, rank: number, where: string): number {
  const a = axis < 0 ? axis + rank : axis;
  if (!Number.isInteger(a) || a < 0 || a >= rank) {
    throw new InputError(`${where}: axis ${axis} is out of range for a rank-${rank} tensor`, { expected: `an axis in [${-rank}, ${rank - 1}]` });
  }
  return a;
}

export function map(a: NDArray, f: (v: number) => number): NDArray {
  const out = new Float64Array(a.data.length);
  for (let i = 0; i < out.length; i++) out[i] = f(a.data[i]!);
  return { shape: [...a.shape], data: out };
}

export function reshape(a: NDArray, shape: readonly number[]): NDArray {
  if (sizeOf(shape) !== a.data.length) {
    throw new InputError(`cannot reshape [${a.shape}] (${a.data.length} values) to [${shape}]`, { expected: `a shape with ${a.data.length} values` });
  }
  return { shape: [...shape], data: a.data.slice() };
}

/** General transpose: output axis i is input axis perm[i]. */
export function transpose(a: NDArray, perm: readonly number[]): NDArray {
  const shape = perm.map((p) => a.shape[p]!);
  const inStrides = stridesOf(a.shape);
  const permStrides = perm.map((p) => inStrides[p]!);
  const out = new Float64Array(a.data.length);
  const idx = new Array<number>(shape.length).fill(0);
  let src = 0;
  for (let o = 0; o < out.length; o++) {
    out[o] = a.data[src]!;
    // Odometer increment over the output index, tracking the matching input offset.
    for (let d = shape.length - 1; d >= 0; d--) {
      idx[d]!++;
      src += permStrides[d]!;
      if (idx[d]! < shape[d]!) break;
      src -= permStrides[d]! * shape[d]!;
      idx[d] = 0;
    }
  }
  return { shape, data: out };
}

/** Views `a` as [outer, axisLen, inner] around `axis`, the layout every per-axis op works in. */
export function splitAround(shape: readonly number[], axis: number): { outer: number; len: number; inner: number } {
  return { outer: sizeOf(shape.slice(0, axis)), len: shape[axis]!, inner: sizeOf(shape.slice(axis + 1)) };
}

/** Reverses one axis. */
export function reverseAxis(a: NDArray, axis: number): NDArray {
  const { outer, len, inner } = splitAround(a.shape, axis);
  const out = new Float64Array(a.data.length);
  for (let o = 0; o < outer; o++) {
    for (let t = 0; t < len; t++) {
      const from = (o * len + t) * inner;
      out.set(a.data.subarray(from, from + inner), (o * len + (len - 1 - t)) * inner);
    }
  }
  return { shape: [...a.shape], data: out };
}

/** Concatenates along `axis`; all other dimensions must agree. */
export function concat(parts: readonly NDArray[], axis: number): NDArray {
  const first = parts[0]!;
  const shape = [...first.shape];
  for (const p of parts) {
    if (p.shape.length !== shape.length || p.shape.some((d, i) => i !== axis && d !== shape[i])) {
      throw new InputError(`cannot concatenate [${p.shape}] with [${first.shape}] along axis ${axis}`, { expected: 'equal shapes except on the concat axis' });
    }
  }
  shape[axis] = parts.reduce((n, p) => n + p.shape[axis]!, 0);
  const { outer, inner } = splitAround(shape, axis);
  const out = new Float64Array(sizeOf(shape));
  let dst = 0;
  for (let o = 0; o < outer; o++) {
    for (const p of parts) {
      const chunk = p.shape[axis]! * inner;
      out.set(p.data.subarray(o * chunk, (o + 1) * chunk), dst);
      dst += chunk;
    }
  }
  return { shape, data: out };
}

/** Takes `count` entries of `axis` starting at `start`. */
export function sliceAxis(a: NDArray, axis: number, start: number, count: number): NDArray {
  const { outer, len, inner } = splitAround(a.shape, axis);
  const shape = [...a.shape];
  shape[axis] = count;
  const out = new Float64Array(outer * count * inner);
  for (let o = 0; o < outer; o++) {
    const from = (o * len + start) * inner;
    out.set(a.data.subarray(from, from + count * inner), o * count * inner);
  }
  return { shape, data: out };
}

/** Index `i` of axis 1 of a [batch, time, ...] array: the time step, as [batch, ...]. */
export function timeStep(a: NDArray, t: number): NDArray {
  const s = sliceAxis(a, 1, t, 1);
  return { shape: [a.shape[0]!, ...a.shape.slice(2)], data: s.data };
}

/** Stacks one or more [batch, ...] arrays along a new axis 1. */
export function stackTime(steps: readonly NDArray[]): NDArray {
  return concat(
    steps.map((s) => ({ shape: [s.shape[0]!, 1, ...s.shape.slice(1)], data: s.data })),
    1,
  );
}

/**
 * [..., k] · [k, n] → [..., n]: contracts the last axis of `a` with a row-major matrix given
 * as flat values (weights arrive as Float32Array; they are widened per multiply-add).
 */
export function matmulLast(a: NDArray, w: ArrayLike<number>, k: number, n: number): NDArray {
  if (a.shape[a.shape.length - 1] !== k || w.length !== k * n) {
    throw new InputError(`cannot multiply [${a.shape}] by a [${k}, ${n}] matrix`, { expected: `last dimension ${k}` });
  }
  const rows = a.data.length / k;
  const out = new Float64Array(rows * n);
  for (let r = 0; r < rows; r++) {
    const o = r * n;
    for (let i = 0; i < k; i++) {
      const v = a.data[r * k + i]!;
      if (v === 0) continue;
      const wr = i * n;
      for (let j = 0; j < n; j++) out[o + j]! += v * w[wr + j]!;
    }
  }
  return { shape: [...a.shape.slice(0, -1), n], data: out };
}

/** Adds a vector along the last axis, in place. */
export function addLastInPlace(a: NDArray, v: ArrayLike<number>): NDArray {
  const n = v.length;
  for (let i = 0; i < a.data.length; i++) a.data[i]! += v[i % n]!;
  return a;
}

/**
 * Element-wise binary op with NumPy broadcasting (shapes aligned at the trailing end; each
 * dimension equal or 1).
 */
export function broadcastBinary(a: NDArray, b: NDArray, f: (x: number, y: number) => number): NDArray {
  if (a.shape.length === b.shape.length && a.shape.every((d, i) => d === b.shape[i])) {
    const out = new Float64Array(a.data.length);
    for (let i = 0; i < out.length; i++) out[i] = f(a.data[i]!, b.data[i]!);
    return { shape: [...a.shape], data: out };
  }
  const rank = Math.max(a.shape.length, b.shape.length);
  const pa = [...new Array<number>(rank - a.shape.length).fill(1), ...a.shape];
  const pb = [...new Array<number>(rank - b.shape.length).fill(1), ...b.shape];
  const shape = pa.map((d, i) => {
    const e = pb[i]!;
    if (d !== e && d !== 1 && e !== 1) {
      throw new InputError(`shapes [${a.shape}] and [${b.shape}] do not broadcast`, { expected: 'equal dimensions or 1' });
    }
    return Math.max(d, e);
  });
  const sa = stridesOf(pa).map((s, i) => (pa[i] === 1 ? 0 : s));
  const sb = stridesOf(pb).map((s, i) => (pb[i] === 1 ? 0 : s));
  const os = stridesOf(shape);
  const out = new Float64Array(sizeOf(shape));
  for (let o = 0; o < out.length; o++) {
    let ia = 0;
    let ib = 0;
    let rem = o;
    for (let d = 0; d < rank; d++) {
      const q = Math.floor(rem / os[d]!);
      rem -= q * os[d]!;
      ia += q * sa[d]!;
      ib += q * sb[d]!;
    }
    out[o] = f(a.data[ia]!, b.data[ib]!);
  }
  return { shape, data: out };
}

/** Narrows to float32, the precision the exported models and tfjs work in. */
export function toFloat32(a: NDArray): Float32Array {
  return Float32Array.from(a.data);
}
