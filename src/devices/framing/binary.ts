/**
 * Binary sensor frames: sync bytes, a length byte, a payload of little-endian int16 or float32
 * channel values, and a CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF) over length + payload,
 * little-endian. A bad checksum drops the frame ('crc') and the parser hunts for the next sync.
 * Output (object mode): `{ values }` or `{ drop: { reason, detail } }`.
 */
import { Transform, type TransformCallback } from 'node:stream';
import type { DropReason } from '../types.js';

export type FrameChunk = { values: number[] } | { drop: { reason: DropReason; detail: string } };

export interface BinaryFrameOptions {
  sync?: number[];
  dtype: 'int16' | 'float32';
  channels: number;
  /** Multiplier applied to int16 values (e.g. 1/1000 for milli-units). */
  scale?: number;
}

export function crc16(bytes: Uint8Array): number {
  let crc = 0xffff;
  for (const b of bytes) {
    crc ^= b << 8;
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc;
}

/** Builds a frame (for simulators, tests and firmware authors). */
export function encodeFrame(values: number[], opts: BinaryFrameOptions): Buffer {
  const sync = opts.sync ?? [0xaa, 0x55];
  const size = opts.dtype === 'int16' ? 2 : 4;
  const payload = Buffer.alloc(values.length * size);
  values.forEach((v, i) => (opts.dtype === 'int16' ? payload.writeInt16LE(Math.round(v / (opts.scale ?? 1)), i * 2) : payload.writeFloatLE(v, i * 4)));
  const body = Buffer.concat([Buffer.from([payload.length]), payload]);
  const crc = Buffer.alloc(2);
  crc.writeUInt16LE(crc16(body));
  return Buffer.concat([Buffer.from(sync), body, crc]);
}

export class BinaryFrameParser extends Transform {
  private buf: Buffer = Buffer.alloc(0);
  private readonly sync: Buffer;
  private readonly payloadLen: number;

  constructor(private readonly opts: BinaryFrameOptions) {
    super({ readableObjectMode: true });
    if (!Number.isInteger(opts.channels) || opts.channels < 1) throw new RangeError(`'channels' must be a positive integer, got ${opts.channels}`);
    if (opts.dtype !== 'int16' && opts.dtype !== 'float32') throw new RangeError(`'dtype' must be 'int16' or 'float32', got ${String(opts.dtype)}`);
    this.sync = Buffer.from(opts.sync ?? [0xaa, 0x55]);
    if (this.sync.length === 0) throw new RangeError("'sync' needs at least one byte");
    this.payloadLen = opts.channels * (opts.dtype === 'int16' ? 2 : 4);
    if (this.payloadLen > 255) throw new RangeError(`${opts.channels} ${opts.dtype} channels do not fit a one-byte length`);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    const frameLen = this.sync.length + 1 + this.payloadLen + 2;
    let pos = 0;
    while (this.buf.length - pos >= frameLen) {
      const at = this.buf.indexOf(this.sync, pos);
      if (at < 0) {
        pos = Math.max(pos, this.buf.length - this.sync.length + 1);
        break;
      }
      if (at > pos) this.push({ drop: { reason: 'malformed', detail: `${at - pos} bytes before a sync` } } satisfies FrameChunk);
      if (this.buf.length - at < frameLen) {
        pos = at;
        break;
      }
      const body = this.buf.subarray(at + this.sync.length, at + this.sync.length + 1 + this.payloadLen);
      const crc = this.buf.readUInt16LE(at + this.sync.length + 1 + this.payloadLen);
      if (body[0] !== this.payloadLen || crc16(body) !== crc) {
        this.push({
          drop: {
            reason: body[0] !== this.payloadLen ? 'malformed' : 'crc',
            detail: body[0] !== this.payloadLen ? `length byte ${body[0]}, expected ${this.payloadLen}` : 'checksum mismatch',
          },
        } satisfies FrameChunk);
        pos = at + 1; // resynchronise on the next sync pattern
        continue;
      }
      const values: number[] = [];
      for (let c = 0; c < this.opts.channels; c++) {
        values.push(this.opts.dtype === 'int16' ? body.readInt16LE(1 + c * 2) * (this.opts.scale ?? 1) : body.readFloatLE(1 + c * 4));
      }
      this.push({ values } satisfies FrameChunk);
      pos = at + frameLen;
    }
    this.buf = Buffer.from(this.buf.subarray(pos));
    done();
  }

  override _flush(done: TransformCallback): void {
    if (this.buf.length > 0)
      this.push({ drop: { reason: 'malformed', detail: `${this.buf.length} bytes of a partial frame at end of stream` } } satisfies FrameChunk);
    done();
  }
}
