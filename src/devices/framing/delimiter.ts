/**
 * Splits a byte stream into text lines (LF or CRLF). A line longer than `maxLength` is
 * dropped whole (counted as 'overlong'), and the parser resynchronises at the next newline.
 * Output (object mode): `{ line }` or `{ drop: { reason, detail } }`.
 */
import { Transform, type TransformCallback } from 'node:stream';
import type { DropReason } from '../types.js';

export type LineChunk = { line: string } | { drop: { reason: DropReason; detail: string } };

export interface DelimiterOptions {
  /** Longest accepted line in bytes (default 4096). */
  maxLength?: number;
}

export class LineParser extends Transform {
  private buf: Buffer = Buffer.alloc(0);
  private skipping = false;
  private readonly maxLength: number;

  constructor(opts: DelimiterOptions = {}) {
    super({ readableObjectMode: true });
    const max = opts.maxLength ?? 4096;
    if (!Number.isInteger(max) || max < 1) throw new RangeError(`'maxLength' must be a positive integer, got ${max}`);
    this.maxLength = max;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    let data = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    let start = 0;
    for (;;) {
      const nl = data.indexOf(0x0a, start);
      if (nl < 0) break;
      this.emitLine(data.subarray(start, nl));
      start = nl + 1;
    }
    data = data.subarray(start);
    if (data.length > this.maxLength) {
      if (!this.skipping) this.push({ drop: { reason: 'overlong', detail: `line longer than ${this.maxLength} bytes` } } satisfies LineChunk);
      this.skipping = true;
      data = Buffer.alloc(0);
    }
    this.buf = Buffer.from(data);
    done();
  }

  override _flush(done: TransformCallback): void {
    // The tail without a newline is a partial line (a cut cable mid-line): count it, do not guess.
    if (this.buf.length > 0 && !this.skipping) this.push({ drop: { reason: 'malformed', detail: 'partial line at end of stream' } } satisfies LineChunk);
    this.buf = Buffer.alloc(0);
    done();
  }

  private emitLine(raw: Buffer): void {
    if (this.skipping) {
      // The rest of an overlong line: already counted.
      this.skipping = false;
      return;
    }
    if (raw.length > this.maxLength) {
      this.push({ drop: { reason: 'overlong', detail: `line of ${raw.length} bytes` } } satisfies LineChunk);
      return;
    }
    let end = raw.length;
    if (end > 0 && raw[end - 1] === 0x0d) end--;
    const text = raw.subarray(0, end).toString('utf8');
    if (text.includes('\uFFFD')) {
      this.push({ drop: { reason: 'malformed', detail: 'line is not valid UTF-8 text' } } satisfies LineChunk);
      return;
    }
    this.push({ line: text } satisfies LineChunk);
  }
}
