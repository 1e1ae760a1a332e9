/** Weight quantization math: symmetric int8 (per channel or per tensor) and float16. */
import { tensorValues, type TensorProto } from '../../onnx/proto.js';

export interface Int8Weights {
  q: Int8Array;
  /** One scale per channel along `axis` (or one for the tensor). */
  scale: Float32Array;
  dims: number[];
  axis: number | undefined;
}

/** The float32 values of an initializer, or undefined when it is not float32. */
export function floatValues(t: TensorProto): Float32Array | undefined {
  if (t.dataType !== 1) return undefined;
  const v = tensorValues(t);
  return v.data instanceof Float32Array ? v.data : undefined;
}

/**
 * Weights that integer kernels multiply with uint8 activations use 7 bits (|q| ≤ 63), as
 * onnxruntime's `reduce_range` does: x86 CPUs without VNNI (AVX2 `vpmaddubsw`) add two
 * u8×s8 products into a saturating int16, and 2·255·127 > 32767 overflows where 2·255·63 does
 * not. With 7 bits every CPU (AVX2, AVX-512 VNNI, ARM, WASM) computes the same integers.
 */
export const INT8_KERNEL_BITS = 7;

/**
 * Symmetric int8 quantization, zero point 0: q = round(w / s), s = max|w| / qmax per channel
 * along `axis` (undefined: one scale for the whole tensor), qmax = 2^(bits−1) − 1 (127 for 8
 * bits, 63 for 7). A channel of zeros gets scale 1.
 */
export function quantizeInt8(w: Float32Array, dims: number[], axis: number | undefined, bits = 8): Int8Weights {
  const qmax = 2 ** (bits - 1) - 1;
  const channels = axis === undefined ? 1 : dims[axis]!;
  const inner = axis === undefined ? 1 : dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const chanOf = (i: number) => (axis === undefined ? 0 : Math.floor(i / inner) % channels);
  const maxAbs = new Float32Array(channels);
  for (let i = 0; i < w.length; i++) {
    const c = chanOf(i);
    const a = Math.abs(w[i]!);
    if (a > maxAbs[c]!) maxAbs[c] = a;
  }
  const scale = Float32Array.from(maxAbs, (m) => (m > 0 ? m / qmax : 1));
  const q = new Int8Array(w.length);
  for (let i = 0; i < w.length; i++) q[i] = Math.max(-qmax, Math.min(qmax, Math.round(w[i]! / scale[chanOf(i)]!)));
  return { q, scale, dims, axis };
}

/** Transposes a row-major tensor by `perm`. */
export function transposeData<T extends Float32Array | Int8Array>(src: T, dims: number[], perm: number[]): { data: T; dims: number[] } {
  const outDims = perm.map((p) => dims[p]!);
  const rank = dims.length;
  const inStrides = new Array<number>(rank);
  let s = 1;
  for (let i = rank - 1; i >= 0; i--) {
    inStrides[i] = s;
    s *= dims[i]!;
  }
  const out = new (src.constructor as new (n: number) => T)(src.length);
  const idx = new Array<number>(rank).fill(0);
  for (let o = 0; o < src.length; o++) {
    let off = 0;
    for (let k = 0; k < rank; k++) off += idx[k]! * inStrides[perm[k]!]!;
    out[o] = src[off]!;
    for (let k = rank - 1; k >= 0; k--) {
      if (++idx[k]! < outDims[k]!) break;
      idx[k] = 0;
    }
  }
  return { data: out, dims: outDims };
}

const F16_MAX = 65504;

/** float32 → IEEE half bits, round to nearest even. */
export function toHalf(v: number): number {
  const f = new Float32Array([v]);
  const x = new Uint32Array(f.buffer)[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let h = mant >> shift;
    const rem = mant & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && h & 1)) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && h & 1)) h++;
  return sign | h;
}

/** float32 → float16 bits with values beyond ±65504 clamped; returns the clamp count. */
export function toFloat16(w: Float32Array): { bits: Uint16Array; clamped: number; flushed: number } {
  const bits = new Uint16Array(w.length);
  let clamped = 0;
  let flushed = 0;
  for (let i = 0; i < w.length; i++) {
    let v = w[i]!;
    if (v > F16_MAX || v < -F16_MAX) {
      v = Math.sign(v) * F16_MAX;
      clamped++;
    }
    const h = toHalf(v);
    if (v !== 0 && (h & 0x7fff) === 0) flushed++;
    bits[i] = h;
  }
  return { bits, clamped, flushed };
}
