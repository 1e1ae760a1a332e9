/**
 * The ONNX protobuf schema, from the `onnx-proto` package (protobufjs static code generated
 * from onnx.proto). The only module that imports it: the rest uses these re-exports and helpers.
 */
import { createRequire } from 'node:module';
import type onnxProto from 'onnx-proto';
import { InputError, UnsupportedError } from '../errors.js';

// require(), not import: imported as an ES module, the 330 kB of generated CommonJS is first
// scanned for its export names, which took 3.6× as long as loading it (p50 127 ms vs 35 ms on
// a 2-core x86 VM, Node 20), on every command that reads a model, the daemon's start included.
export const onnx = (createRequire(import.meta.url)('onnx-proto') as typeof onnxProto).onnx;
export type ModelProto = onnxProto.onnx.IModelProto;
export type GraphProto = onnxProto.onnx.IGraphProto;
export type NodeProto = onnxProto.onnx.INodeProto;
export type TensorProto = onnxProto.onnx.ITensorProto;
export type ValueInfoProto = onnxProto.onnx.IValueInfoProto;
export type AttributeProto = onnxProto.onnx.IAttributeProto;

export const DataType = onnx.TensorProto.DataType;
export const AttributeType = onnx.AttributeProto.AttributeType;

export function encodeModel(m: ModelProto): Uint8Array {
  return onnx.ModelProto.encode(onnx.ModelProto.create(m)).finish();
}

export function decodeModel(bytes: Uint8Array): onnxProto.onnx.ModelProto {
  return onnx.ModelProto.decode(bytes);
}

/** Why bytes that failed to decode are not ONNX, with a hint when they are recognisably something else. */
function notOnnx(bytes: Uint8Array, e: unknown): string {
  let i = 0;
  while (
    i < bytes.length &&
    i < 64 &&
    (bytes[i] === 0x20 || bytes[i] === 0x0a || bytes[i] === 0x0d || bytes[i] === 0x09 || bytes[i] === 0xef || bytes[i] === 0xbb || bytes[i] === 0xbf)
  )
    i++;
  const hint =
    bytes[i] === 0x7b || bytes[i] === 0x5b ? ' (it looks like a JSON file — a tfjs model.json? `streamcell export model.json -o model.onnx` converts it)' : '';
  return `not an ONNX model: ${(e as Error).message}${hint}`;
}

/**
 * The declared dims of a graph's inputs and outputs must be sizes (≥ 0) or names: a negative
 * size is a corrupt or hand-edited file, and would reach array allocations as a length.
 */
export function checkDeclaredDims(g: onnxProto.onnx.IGraphProto, file?: string): void {
  for (const [kind, list] of [
    ['input', g.input],
    ['output', g.output],
  ] as const) {
    for (const v of list ?? []) {
      const dims = v.type?.tensorType?.shape?.dim ?? [];
      dims.forEach((d, k) => {
        if (d.dimValue === null || d.dimValue === undefined || d.dimParam) return;
        const n = toNum(d.dimValue as number);
        if (!Number.isSafeInteger(n) || n < 0) {
          throw new InputError(`${kind} '${v.name}' declares dimension ${k} as ${n}`, {
            file,
            field: `graph.${kind}.${v.name}`,
            expected: 'dims that are non-negative sizes or symbolic names',
          });
        }
      });
    }
  }
}

/**
 * Decodes model bytes a user handed in: not ONNX, no graph, or a negative declared dim is their
 * error (exit 2), naming `file`.
 */
export function decodeUserModel(bytes: Uint8Array, file?: string): onnxProto.onnx.ModelProto & { graph: onnxProto.onnx.GraphProto } {
  let m: onnxProto.onnx.ModelProto;
  try {
    m = decodeModel(bytes);
  } catch (e) {
    throw new InputError(notOnnx(bytes, e), { file, expected: 'an ONNX ModelProto' });
  }
  if (!m.graph)
    throw new InputError(bytes.length === 0 ? 'the file is empty' : 'ONNX model has no graph', { file, expected: 'an ONNX ModelProto with a graph' });
  checkDeclaredDims(m.graph, file);
  return m as onnxProto.onnx.ModelProto & { graph: onnxProto.onnx.GraphProto };
}

export function decodeTensor(bytes: Uint8Array): onnxProto.onnx.TensorProto {
  return onnx.TensorProto.decode(bytes);
}

/** int64 fields decode as Long objects; this makes them plain numbers. */
export function toNum(v: number | { toNumber(): number } | null | undefined): number {
  if (v === null || v === undefined) return 0;
  return typeof v === 'number' ? v : v.toNumber();
}

export const DTYPE_NAMES: Record<number, string> = {
  1: 'float32',
  2: 'uint8',
  3: 'int8',
  4: 'uint16',
  5: 'int16',
  6: 'int32',
  7: 'int64',
  8: 'string',
  9: 'bool',
  10: 'float16',
  11: 'float64',
  12: 'uint32',
  13: 'uint64',
};

/** A decoded tensor as a flat JS array of the matching kind. */
export interface DecodedTensor {
  name: string;
  dims: number[];
  dtype: string;
  data: Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array | Int8Array | Uint16Array | Int16Array;
}

/** Reads a TensorProto's values whether they are in raw_data or in the typed repeated fields. */
export function tensorValues(t: TensorProto): DecodedTensor {
  const dims = (t.dims ?? []).map((d) => toNum(d as number));
  const n = dims.reduce((a, b) => a * b, 1);
  const dtype = DTYPE_NAMES[t.dataType ?? 0] ?? `type${t.dataType}`;
  const raw = t.rawData && t.rawData.length > 0 ? new Uint8Array(t.rawData) : undefined;
  const name = t.name ?? '';
  if (raw) {
    const buf = raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength);
    switch (t.dataType) {
      case DataType.FLOAT:
        return { name, dims, dtype, data: new Float32Array(buf) };
      case DataType.DOUBLE:
        return { name, dims, dtype, data: new Float64Array(buf) };
      case DataType.INT32:
        return { name, dims, dtype, data: new Int32Array(buf) };
      case DataType.INT64:
        return { name, dims, dtype, data: new BigInt64Array(buf) };
      case DataType.UINT8:
      case DataType.BOOL:
        return { name, dims, dtype, data: new Uint8Array(buf) };
      case DataType.INT8:
        return { name, dims, dtype, data: new Int8Array(buf) };
      case DataType.FLOAT16:
      case DataType.UINT16:
        return { name, dims, dtype, data: new Uint16Array(buf) };
      case DataType.INT16:
        return { name, dims, dtype, data: new Int16Array(buf) };
      default:
        throw new UnsupportedError(`tensor '${name}': data type ${dtype} is not supported`, {
          field: name,
          supported: ['float', 'double', 'int8', 'uint8', 'bool', 'int16', 'uint16', 'float16', 'int32', 'int64'],
        });
    }
  }
  switch (t.dataType) {
    case DataType.FLOAT:
      return { name, dims, dtype, data: Float32Array.from(t.floatData ?? []) };
    case DataType.DOUBLE:
      return { name, dims, dtype, data: Float64Array.from(t.doubleData ?? []) };
    case DataType.INT64:
      return { name, dims, dtype, data: BigInt64Array.from((t.int64Data ?? []).map((v) => BigInt(toNum(v as number)))) };
    case DataType.INT32:
      return { name, dims, dtype, data: Int32Array.from(t.int32Data ?? []) };
    case DataType.INT8:
      return { name, dims, dtype, data: Int8Array.from(t.int32Data ?? []) };
    case DataType.UINT8:
    case DataType.BOOL:
      return { name, dims, dtype, data: Uint8Array.from(t.int32Data ?? []) };
    case DataType.FLOAT16:
    case DataType.UINT16:
      return { name, dims, dtype, data: Uint16Array.from(t.int32Data ?? []) };
    default:
      if (n === 0) return { name, dims, dtype, data: new Float32Array(0) };
      throw new UnsupportedError(`tensor '${name}': data type ${dtype} is not supported`, {
        field: name,
        supported: ['float', 'double', 'int8', 'uint8', 'bool', 'int16', 'uint16', 'float16', 'int32', 'int64'],
      });
  }
}
