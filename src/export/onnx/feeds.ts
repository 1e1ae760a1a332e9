/**
 * Inputs for running a model whose inputs we did not write: every declared dim resolved to
 * one concrete size per symbolic name (a `batch` on axis 1 of `h0` is the same batch as on
 * axis 0 of `x`), every input fed with its declared element type, and integer inputs that
 * index an embedding table kept inside that table.
 */
import { rng } from '../../data/random.js';
import { InputError, UnsupportedError } from '../../errors.js';
import { checkGeneratedSize, MAX_CHECK_STEPS } from '../../limits.js';
import { decodeModel, DTYPE_NAMES, toNum, type GraphProto, type ValueInfoProto } from '../../onnx/proto.js';
import { initialStateRows, readModelInfo } from '../../runtime/step-model.js';
import type { TensorData, TensorType } from '../../runtime/backend.js';
import { dimsOf } from './edit.js';

export interface InputDesc {
  name: string;
  dtype: string;
  dims: (number | string | null)[];
  /** For integer inputs: values are drawn from [lo, hi) (an embedding table's rows, else small ids). */
  intRange?: [number, number];
}

/** The graph inputs that are fed (IR < 4 lists initializers among inputs too). */
export function describeInputs(g: GraphProto): InputDesc[] {
  const inits = new Map((g.initializer ?? []).map((t) => [t.name!, t]));
  return (g.input ?? [])
    .filter((i) => !inits.has(i.name!))
    .map((v: ValueInfoProto) => {
      const dtype = DTYPE_NAMES[v.type?.tensorType?.elemType ?? 1] ?? 'float32';
      const d: InputDesc = { name: v.name!, dtype, dims: dimsOf(v) };
      if (dtype.startsWith('int') || dtype.startsWith('uint')) {
        // Indices of a Gather over a table (Embedding): any id in [0, rows) is valid, others crash.
        let rows = Infinity;
        for (const n of g.node ?? []) {
          if (n.opType !== 'Gather' || n.input?.[1] !== v.name) continue;
          const table = inits.get(n.input![0]!);
          const axis = toNum(((n.attribute ?? []).find((a) => a.name === 'axis')?.i ?? 0) as number);
          if (table?.dims) rows = Math.min(rows, toNum(table.dims[axis < 0 ? table.dims.length + axis : axis] as number));
        }
        d.intRange = [0, Number.isFinite(rows) ? rows : 2];
      }
      return d;
    });
}

export interface DimChoice {
  batch: number;
  time: number;
  /** Size of any other free dimension. */
  other?: number;
}

/**
 * One size per symbolic dim name. Names found on the time axis of a sequence input are `time`,
 * on their batch axis (or axis 0 of any input) `batch`; the rest take `other`.
 */
export function resolveDims(inputs: InputDesc[], choice: DimChoice, timeAxes: Map<string, number> = new Map()): Map<string, number[]> {
  const sym = new Map<string, number>();
  for (const i of inputs) {
    const t = timeAxes.get(i.name);
    if (t === undefined) continue;
    const tName = i.dims[t];
    if (typeof tName === 'string') sym.set(tName, choice.time);
    const bAxis = t === 0 ? 1 : 0;
    const bName = i.dims[bAxis];
    if (typeof bName === 'string' && !sym.has(bName)) sym.set(bName, choice.batch);
  }
  for (const i of inputs) {
    const b = i.dims[0];
    if (typeof b === 'string' && !sym.has(b) && i.dims.length >= 2) sym.set(b, choice.batch);
  }
  const out = new Map<string, number[]>();
  for (const i of inputs) {
    const t = timeAxes.get(i.name);
    out.set(
      i.name,
      i.dims.map((d, j) => {
        if (typeof d === 'number' && d > 0) return d;
        if (typeof d === 'string' && sym.has(d)) return sym.get(d)!;
        if (j === t) return choice.time;
        if (j === (t === 0 ? 1 : 0)) return choice.batch;
        const v = choice.other ?? 3;
        if (typeof d === 'string') sym.set(d, v);
        return v;
      }),
    );
    // The model's fixed dims are used as they are: a declared [2e9, time, 3] cannot be generated.
    checkGeneratedSize(out.get(i.name)!, `generated input '${i.name}' (declared [${i.dims.map((d) => d ?? '?').join(', ')}])`, { field: i.name });
  }
  return out;
}

/** A tensor of the input's declared type filled by `draw` (floats) or uniformly from its integer range. */
export function randomInput(i: InputDesc, dims: number[], rand: () => number, draw: () => number): TensorData {
  const n = dims.reduce((a, b) => a * b, 1);
  const [lo, hi] = i.intRange ?? [0, 2];
  const int = () => lo + Math.floor(rand() * (hi - lo));
  switch (i.dtype) {
    case 'int64':
      return { type: 'int64', data: BigInt64Array.from({ length: n }, () => BigInt(int())), dims };
    case 'int32':
      return { type: 'int32', data: Int32Array.from({ length: n }, int), dims };
    case 'uint8':
      return { type: 'uint8', data: Uint8Array.from({ length: n }, int), dims };
    case 'int8':
      return { type: 'int8', data: Int8Array.from({ length: n }, int), dims };
    case 'bool':
      return { type: 'bool', data: Uint8Array.from({ length: n }, () => (rand() < 0.5 ? 1 : 0)), dims };
    case 'float32':
      return { type: 'float32', data: Float32Array.from({ length: n }, draw), dims };
    default:
      throw new UnsupportedError(`input '${i.name}' has element type ${i.dtype}`, {
        field: i.name,
        supported: ['float32, int64, int32, int8, uint8 and bool inputs'],
      });
  }
}

/** Zeros of the input's declared type. */
export function zeroInput(i: Pick<InputDesc, 'name' | 'dtype'>, dims: number[]): TensorData {
  const n = dims.reduce((a, b) => a * b, 1);
  const type = i.dtype as TensorType;
  const data =
    type === 'int64'
      ? new BigInt64Array(n)
      : type === 'int32'
        ? new Int32Array(n)
        : type === 'int8'
          ? new Int8Array(n)
          : type === 'uint8' || type === 'bool'
            ? new Uint8Array(n)
            : new Float32Array(n);
  return { type, data, dims };
}

/** Standard normal draws from a uniform generator (Box–Muller). */
export function normalFrom(rand: () => number): () => number {
  return () => Math.sqrt(-2 * Math.log(rand() + 1e-12)) * Math.cos(2 * Math.PI * rand());
}

/**
 * Random feeds for any model: declared element types, one size per symbolic dim, step-model
 * state inputs at their initial value. Used where no data is given (quantize/verify comparisons).
 */
export function modelFeeds(bytes: Uint8Array, choice: DimChoice, seed = 7, scale = 1): Record<string, TensorData> {
  const info = readModelInfo(bytes);
  const inputs = describeInputs(decodeModel(bytes).graph!);
  const states = new Map(info.states.map((s) => [s.input, s]));
  // The time axis: axis 1 of rank-3 sample inputs (streamcell's and tfjs' [batch, time, features]).
  const timeAxes = new Map(inputs.filter((i) => !states.has(i.name) && i.dims.length === 3).map((i) => [i.name, 1]));
  for (const name of timeAxes.keys()) {
    const i = inputs.find((x) => x.name === name)!;
    const t = i.dims[1];
    if (typeof t === 'number' && t > MAX_CHECK_STEPS) {
      throw new InputError(
        `input '${name}' fixes its time dimension at ${t} steps; comparing models runs them on whole sequences of random inputs, and streamcell generates at most ${MAX_CHECK_STEPS} steps`,
        {
          field: name,
          expected: `a time dimension of at most ${MAX_CHECK_STEPS} steps, or a free one`,
        },
      );
    }
  }
  const dims = resolveDims(inputs, choice, timeAxes);
  const rand = rng(seed);
  const normal = normalFrom(rand);
  const feeds: Record<string, TensorData> = {};
  for (const i of inputs) {
    const s = states.get(i.name);
    const d = dims.get(i.name)!;
    feeds[i.name] = s ? { type: 'float32', data: initialStateRows(s, d[0]!), dims: d } : randomInput(i, d, rand, () => normal() * scale);
  }
  return feeds;
}
