/**
 * Real inputs for the export parity check (`export --sample-data F`): random normal inputs are
 * not what a model sees in use, and a model can amplify float32 rounding on inputs it was never
 * trained for (a char-RNN fed standard normals instead of one-hot vectors). Reads `.npy`
 * (NumPy), `.json` (nested arrays) or `.csv` (a sensor log: windows of the model's length,
 * normalised with the model's preprocessing.json when it has one).
 */
import { readFile, stat } from 'node:fs/promises';
import { extname } from 'node:path';
import { InputError } from '../errors.js';
import { readCsv, column, fillGaps } from '../data/csv.js';
import type { PreprocessingJson } from '../data/preprocessing.js';
import type { InputSpec } from './topology.js';

export interface SampleData {
  source: string;
  /** [samples, …input dims without batch]. */
  dims: number[];
  data: Float32Array | Int32Array;
}

/** Files larger than this are refused before reading (parity needs dozens of samples, not gigabytes). */
export const MAX_SAMPLE_BYTES = 256 * 1024 * 1024;
const MAX_WINDOWS = 64;

const NPY_TYPES: Record<string, { bytes: number; read: (v: DataView, o: number, le: boolean) => number }> = {
  f4: { bytes: 4, read: (v, o, le) => v.getFloat32(o, le) },
  f8: { bytes: 8, read: (v, o, le) => v.getFloat64(o, le) },
  i4: { bytes: 4, read: (v, o, le) => v.getInt32(o, le) },
  i8: { bytes: 8, read: (v, o, le) => Number(v.getBigInt64(o, le)) },
  i2: { bytes: 2, read: (v, o, le) => v.getInt16(o, le) },
  u1: { bytes: 1, read: (v, o) => v.getUint8(o) },
  i1: { bytes: 1, read: (v, o) => v.getInt8(o) },
  b1: { bytes: 1, read: (v, o) => v.getUint8(o) },
};

/** Parses a NumPy .npy file (format 1.0–3.0, C order, little- or big-endian numeric dtypes). */
export function parseNpy(buf: Uint8Array, file: string): { dims: number[]; values: Float64Array } {
  const bad = (why: string, expected = 'a NumPy .npy file written by numpy.save'): never => {
    throw new InputError(`${why}`, { file, expected });
  };
  if (buf.length < 10 || buf[0] !== 0x93 || String.fromCharCode(...buf.subarray(1, 6)) !== 'NUMPY') bad('not a .npy file (no \\x93NUMPY magic)');
  const major = buf[6]!;
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const headerLen = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const start = (major === 1 ? 10 : 12) + headerLen;
  if (start > buf.length) bad(`.npy header claims ${headerLen} bytes, the file has ${buf.length}`);
  const header = new TextDecoder().decode(buf.subarray(major === 1 ? 10 : 12, start));
  const descr = /'descr'\s*:\s*'([<>|=])([a-z]\d+)'/.exec(header);
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header);
  const shape = /'shape'\s*:\s*\(([^)]*)\)/.exec(header);
  if (!descr || !fortran || !shape) bad(`.npy header is not understood: ${header.trim()}`);
  if (fortran![1] === 'True') bad('the .npy array is in Fortran order', 'a C-order array (numpy.ascontiguousarray)');
  const type = NPY_TYPES[descr![2]!];
  if (!type) bad(`.npy dtype '${descr![1]}${descr![2]}' is not supported`, `one of ${Object.keys(NPY_TYPES).join(', ')}`);
  const dims = shape![1]!
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map(Number);
  if (!dims.every((d) => Number.isInteger(d) && d >= 0)) bad(`.npy shape (${shape![1]}) is not a list of sizes`);
  const n = dims.reduce((a, b) => a * b, 1);
  // Check the size before allocating: a header may claim anything.
  if (start + n * type!.bytes > buf.length) bad(`.npy shape [${dims}] needs ${n * type!.bytes} bytes of data, the file has ${buf.length - start}`);
  const le = descr![1] !== '>';
  const values = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    values[i] = type!.read(view, start + i * type!.bytes, le);
    if (!Number.isFinite(values[i]!)) bad(`.npy value ${i} is ${values[i]}`, 'finite numbers (the model would only compare NaN with NaN)');
  }
  return { dims, values };
}

function jsonArray(v: unknown, file: string): { dims: number[]; values: Float64Array } {
  const dims: number[] = [];
  for (let x = v; Array.isArray(x); x = x[0]) dims.push(x.length);
  const n = dims.reduce((a, b) => a * b, 1);
  const values = new Float64Array(n);
  let k = 0;
  const walk = (x: unknown, depth: number, path: string): void => {
    if (depth === dims.length) {
      if (typeof x !== 'number' || !Number.isFinite(x))
        throw new InputError(`sample data${path} is ${JSON.stringify(x)}`, { file, field: path || '(root)', expected: 'a finite number' });
      values[k++] = x;
      return;
    }
    if (!Array.isArray(x) || x.length !== dims[depth])
      throw new InputError(`sample data${path} is not an array of ${dims[depth]}`, {
        file,
        field: path || '(root)',
        expected: `a rectangular nested array of shape [${dims}]`,
      });
    x.forEach((y, i) => walk(y, depth + 1, `${path}[${i}]`));
  };
  walk(v, 0, '');
  return { dims, values };
}

async function csvWindows(file: string, input: InputSpec, pre: PreprocessingJson | undefined): Promise<{ dims: number[]; values: Float64Array }> {
  const table = await readCsv(file, { textColumns: pre?.task === 'classify' && pre.label ? [pre.label] : [] });
  const C = input.shape[input.shape.length - 1];
  const channels = pre?.channels ?? table.columns.filter((c) => table.numeric.has(c));
  if (typeof C === 'number' && channels.length !== C) {
    throw new InputError(`the CSV has ${channels.length} numeric columns (${channels.join(', ')}) but the model's input '${input.name}' has ${C} channels`, {
      file,
      expected: `${C} columns, or a preprocessing.json next to model.json naming the model's channels`,
    });
  }
  const T = typeof input.shape[1] === 'number' ? input.shape[1] : (pre?.window ?? 32);
  const cols = channels.map((c) => {
    const v = Float64Array.from(column(table, c));
    fillGaps(v);
    const s = pre?.normalization[c];
    return s ? v.map((x) => (x - s.mean) / s.std) : v;
  });
  if (table.rows < T) throw new InputError(`the CSV has ${table.rows} rows; the model's window is ${T}`, { file, expected: `at least ${T} rows` });
  const count = Math.min(MAX_WINDOWS, table.rows - T + 1);
  const stride = Math.max(1, Math.floor((table.rows - T) / Math.max(1, count - 1)));
  const values = new Float64Array(count * T * channels.length);
  for (let w = 0; w < count; w++)
    for (let t = 0; t < T; t++) for (let c = 0; c < channels.length; c++) values[(w * T + t) * channels.length + c] = cols[c]![w * stride + t]!;
  return { dims: [count, T, channels.length], values };
}

/**
 * Reads sample inputs for `input` from `file` and checks them against its shape: one sample
 * (the input's rank without batch) or many (with a leading sample axis).
 */
export async function readSampleData(file: string, input: InputSpec, pre?: PreprocessingJson): Promise<SampleData> {
  let size: number;
  try {
    size = (await stat(file)).size;
  } catch (e) {
    throw new InputError(`cannot read sample data: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, {
      file,
      option: 'sampleData',
      expected: 'a .npy, .json or .csv file',
    });
  }
  if (size > MAX_SAMPLE_BYTES)
    throw new InputError(`sample data is ${size} bytes; parity needs a few dozen samples`, {
      file,
      option: 'sampleData',
      expected: `at most ${MAX_SAMPLE_BYTES} bytes`,
    });
  const ext = extname(file).toLowerCase();
  let arr: { dims: number[]; values: Float64Array };
  if (ext === '.npy') arr = parseNpy(new Uint8Array(await readFile(file)), file);
  else if (ext === '.json') {
    let v: unknown;
    try {
      v = JSON.parse(await readFile(file, 'utf8'));
    } catch (e) {
      throw new InputError(`sample data is not valid JSON: ${(e as Error).message}`, { file, expected: 'a nested array of numbers' });
    }
    arr = jsonArray(v, file);
  } else if (ext === '.csv') arr = await csvWindows(file, input, pre);
  else throw new InputError(`sample data '${ext || file}' is of an unknown kind`, { file, option: 'sampleData', expected: 'a .npy, .json or .csv file' });

  const want = input.shape.slice(1);
  let dims = arr.dims;
  if (dims.length === want.length) dims = [1, ...dims];
  const fixed = (d: number | null, j: number) => d === null || d === dims[j + 1];
  if (dims.length !== want.length + 1 || !want.every(fixed) || dims[0] === 0) {
    throw new InputError(`sample data has shape [${arr.dims}]; the model's input '${input.name}' is [${input.shape.map((d) => d ?? '?')}]`, {
      file,
      option: 'sampleData',
      expected: `[samples, ${want.map((d) => d ?? '?').join(', ')}] or one sample [${want.map((d) => d ?? '?').join(', ')}]`,
    });
  }
  const data = input.dtype === 'int32' ? Int32Array.from(arr.values, Math.round) : Float32Array.from(arr.values);
  return { source: file, dims, data };
}
