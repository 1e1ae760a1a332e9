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

/** Where {@link LineParser.feed} sends its lines and drops (the synchronous path, no stream). */
export interface LineEvents {
  line(text: string): void;
  drop(reason: DropReason, detail: string): void;
}

const EMPTY = Buffer.alloc(0);

export class LineParser extends Transform {
  private buf: Buffer = EMPTY;
  private skipping = false;
  private readonly maxLength: number;
  /** The stream path: lines and drops become pushed chunks. */
  private readonly pushing: LineEvents = {
    line: (line) => void this.push({ line } satisfies LineChunk),
    drop: (reason, detail) => void this.push({ drop: { reason, detail } } satisfies LineChunk),
  };

  constructor(opts: DelimiterOptions = {}) {
    super({ readableObjectMode: true });
    const max = opts.maxLength ?? 4096;
    if (!Number.isInteger(max) || max < 1) throw new RangeError(`'maxLength' must be a positive integer, got ${max}`);
    this.maxLength = max;
  }

  /**
   * Splits a chunk synchronously: each complete line (or its drop) goes to `out` before this
   * returns; the tail waits for the next chunk. The stream interface uses it too.
   */
  feed(chunk: Buffer, out: LineEvents): void {
    const data = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    let start = 0;
    for (;;) {
      const nl = data.indexOf(0x0a, start);
      if (nl < 0) break;
      this.emitLine(data, start, nl, out);
      start = nl + 1;
    }
    let rest = data.length - start;
    if (rest > this.maxLength) {
      if (!this.skipping) out.drop('overlong', `line longer than ${this.maxLength} bytes`);
      this.skipping = true;
      rest = 0;
    }
    this.buf = rest ? Buffer.from(data.subarray(start)) : EMPTY;
  }

  /** End of input: the tail without a newline is a partial line (a cut cable mid-line): counted, not guessed. */
  finish(out: LineEvents): void {
    if (this.buf.length > 0 && !this.skipping) out.drop('malformed', 'partial line at end of stream');
    this.buf = EMPTY;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.feed(chunk, this.pushing);
    done();
  }

  override _flush(done: TransformCallback): void {
    this.finish(this.pushing);
    done();
  }

  private emitLine(data: Buffer, start: number, nl: number, out: LineEvents): void {
    if (this.skipping) {
      // The rest of an overlong line: already counted.
      this.skipping = false;
      return;
    }
    if (nl - start > this.maxLength) {
      out.drop('overlong', `line of ${nl - start} bytes`);
      return;
    }
    let end = nl;
    if (end > start && data[end - 1] === 0x0d) end--;
    const text = data.toString('utf8', start, end);
    if (text.includes('\uFFFD')) {
      out.drop('malformed', 'line is not valid UTF-8 text');
      return;
    }
    out.line(text);
  }
}
