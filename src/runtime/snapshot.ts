/**
 * The pool snapshot file format, version 1. The wire header uses snake_case keys and is
 * converted to the in-memory {@link SnapshotArgs} only here, at the boundary.
 *
 * Layout (little-endian):
 * ```
 * 8 bytes   magic "SCSNAP\r\n" (the CR LF catches text-mode mangling, as PNG's does)
 * uint32    header length H in bytes
 * H bytes   UTF-8 JSON header (SnapshotHeaderWire)
 * 0-3 bytes zero padding to a multiple of 4
 * float32[] stream-major data: for each stream in header order, each tensor in header
 *           order, prod(shape) values
 * ```
 */
import { endianness } from 'node:os';
import { InputError } from '../errors.js';

/** Version of the pool snapshot (checkpoint) file format this build writes and reads. */
export const SNAPSHOT_VERSION = 1;
const MAGIC = 'SCSNAP\r\n';
const FORMAT = 'streamcell-pool-snapshot';

/** The header as written in the file. */
interface SnapshotHeaderWire {
  format: typeof FORMAT;
  version: number;
  pool: 'stream' | 'window';
  model_sha256: string;
  created_at: string;
  tensors: { name: string; shape: number[] }[];
  stream_ids: string[];
  /** Per-stream counter (StreamPool: steps taken; WindowPool: samples pushed). */
  steps: number[];
  float_count: number;
}

/** A snapshot in memory. */
export interface SnapshotArgs {
  pool: 'stream' | 'window';
  modelSha256: string;
  createdAt?: string;
  tensors: { name: string; shape: number[] }[];
  ids: string[];
  steps: number[];
  /** Stream-major float32 data, `ids.length * floatsPerStream(tensors)` values. */
  data: Float32Array;
}

const LE = endianness() === 'LE';

export function floatsPerStream(tensors: readonly { shape: readonly number[] }[]): number {
  let n = 0;
  for (const t of tensors) n += t.shape.reduce((a, b) => a * b, 1);
  return n;
}

/**
 * Encodes a snapshot. `fill` writes the stream-major data into the array it is given (a view
 * into the output on little-endian hosts, so large pools are not copied twice).
 */
export function encodeSnapshot(meta: Omit<SnapshotArgs, 'data'>, fill: (data: Float32Array) => void): Uint8Array {
  const floatCount = meta.ids.length * floatsPerStream(meta.tensors);
  const wire: SnapshotHeaderWire = {
    format: FORMAT,
    version: SNAPSHOT_VERSION,
    pool: meta.pool,
    model_sha256: meta.modelSha256,
    created_at: meta.createdAt ?? new Date().toISOString(),
    tensors: meta.tensors,
    stream_ids: meta.ids,
    steps: meta.steps,
    float_count: floatCount,
  };
  const header = new TextEncoder().encode(JSON.stringify(wire));
  const dataOffset = align4(8 + 4 + header.length);
  const out = new Uint8Array(dataOffset + floatCount * 4);
  for (let i = 0; i < 8; i++) out[i] = MAGIC.charCodeAt(i);
  new DataView(out.buffer).setUint32(8, header.length, true);
  out.set(header, 12);
  if (LE) {
    fill(new Float32Array(out.buffer, dataOffset, floatCount));
  } else {
    const tmp = new Float32Array(floatCount);
    fill(tmp);
    const dv = new DataView(out.buffer, dataOffset);
    for (let i = 0; i < floatCount; i++) dv.setFloat32(i * 4, tmp[i]!, true);
  }
  return out;
}

function align4(n: number): number {
  return (n + 3) & ~3;
}

/** Decodes a snapshot; throws {@link InputError} naming `source` and the bad field. */
export function decodeSnapshot(bytes: Uint8Array, source: string): SnapshotArgs {
  const fail = (msg: string, field?: string, expected?: string) => new InputError(`snapshot ${source}: ${msg}`, { file: source, field, expected });
  if (bytes.length < 12 || String.fromCharCode(...bytes.subarray(0, 8)) !== MAGIC) {
    throw fail('not a streamcell pool snapshot (bad magic)', undefined, `a file starting with ${JSON.stringify(MAGIC)}`);
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen = dv.getUint32(8, true);
  if (12 + headerLen > bytes.length) throw fail(`truncated header (${headerLen} bytes declared, ${bytes.length - 12} present)`);
  let w: SnapshotHeaderWire;
  try {
    w = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(12, 12 + headerLen))) as SnapshotHeaderWire;
  } catch (e) {
    throw fail(`header is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof w !== 'object' || w === null || w.format !== FORMAT) throw fail('header format is not ' + FORMAT, 'format', FORMAT);
  if (w.version !== SNAPSHOT_VERSION) throw fail(`format version ${w.version} is not supported`, 'version', String(SNAPSHOT_VERSION));
  if (w.pool !== 'stream' && w.pool !== 'window') throw fail(`pool ${JSON.stringify(w.pool)}`, 'pool', "'stream' or 'window'");
  if (typeof w.model_sha256 !== 'string') throw fail('model_sha256 is missing', 'model_sha256', 'a hex SHA-256');
  if (
    !Array.isArray(w.tensors) ||
    !w.tensors.every((t) => t && typeof t.name === 'string' && Array.isArray(t.shape) && t.shape.every((d) => Number.isInteger(d) && d >= 0))
  ) {
    throw fail('tensors must be [{name, shape}]', 'tensors', '[{name: string, shape: number[]}]');
  }
  if (!Array.isArray(w.stream_ids) || !w.stream_ids.every((s) => typeof s === 'string')) throw fail('stream_ids must be strings', 'stream_ids', 'string[]');
  if (new Set(w.stream_ids).size !== w.stream_ids.length) throw fail('stream_ids has duplicates', 'stream_ids', 'unique ids');
  if (!Array.isArray(w.steps) || w.steps.length !== w.stream_ids.length || !w.steps.every((s) => Number.isInteger(s) && s >= 0)) {
    throw fail('steps must be one non-negative integer per stream', 'steps', `${w.stream_ids.length} integers`);
  }
  const floatCount = w.stream_ids.length * floatsPerStream(w.tensors);
  if (w.float_count !== floatCount) throw fail(`float_count ${w.float_count} does not match the layout (${floatCount})`, 'float_count', String(floatCount));
  const dataOffset = align4(12 + headerLen);
  if (bytes.length !== dataOffset + floatCount * 4) {
    throw fail(`data is ${bytes.length - dataOffset} bytes, the header declares ${floatCount * 4}`, 'float_count', `${floatCount * 4} bytes of data`);
  }
  const data = new Float32Array(floatCount);
  if (LE && (bytes.byteOffset + dataOffset) % 4 === 0) {
    data.set(new Float32Array(bytes.buffer, bytes.byteOffset + dataOffset, floatCount));
  } else {
    for (let i = 0; i < floatCount; i++) data[i] = dv.getFloat32(dataOffset + i * 4, true);
  }
  return { pool: w.pool, modelSha256: w.model_sha256, createdAt: w.created_at, tensors: w.tensors, ids: w.stream_ids, steps: w.steps, data };
}
