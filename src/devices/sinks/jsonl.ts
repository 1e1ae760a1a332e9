/**
 * JSON Lines sink: stdout (`jsonl:-`) or a file with size rotation (`jsonl:out.jsonl?maxBytes=…&keep=…`):
 * out.jsonl → out.jsonl.1 → … out.jsonl.N. Writes are coalesced per tick and appended in order.
 */
import { closeSync, existsSync, openSync, renameSync, statSync, writeSync } from 'node:fs';
import type { PredictionRecord, Sink } from '../types.js';

export interface JsonlSinkOptions {
  /** File path, or '-' for stdout. */
  path: string;
  maxBytes?: number;
  keep?: number;
}

export function recordLine(r: PredictionRecord): string {
  return JSON.stringify(r) + '\n';
}

export class JsonlSink implements Sink {
  readonly uri: string;
  private fd: number;
  private size = 0;
  private pending: string[] = [];
  private scheduled = false;

  constructor(private readonly opts: JsonlSinkOptions) {
    if (opts.maxBytes !== undefined && !(opts.maxBytes > 0)) throw new RangeError(`'maxBytes' must be positive, got ${opts.maxBytes}`);
    this.uri = `jsonl:${opts.path}`;
    this.fd = opts.path === '-' ? 1 : openSync(opts.path, 'a');
    if (opts.path !== '-') this.size = statSync(opts.path).size;
  }

  write(rec: PredictionRecord): void {
    this.pending.push(recordLine(rec));
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.drain());
    }
  }

  private drain(): void {
    this.scheduled = false;
    if (this.pending.length === 0) return;
    const text = this.pending.join('');
    this.pending = [];
    const buf = Buffer.from(text);
    let off = 0;
    while (off < buf.length) off += writeSync(this.fd, buf, off);
    this.size += buf.length;
    if (this.opts.maxBytes && this.size >= this.opts.maxBytes && this.opts.path !== '-') this.rotate();
  }

  private rotate(): void {
    closeSync(this.fd);
    const keep = this.opts.keep ?? 5;
    for (let i = keep - 1; i >= 1; i--) if (existsSync(`${this.opts.path}.${i}`)) renameSync(`${this.opts.path}.${i}`, `${this.opts.path}.${i + 1}`);
    renameSync(this.opts.path, `${this.opts.path}.1`);
    this.fd = openSync(this.opts.path, 'a');
    this.size = 0;
  }

  async flush(): Promise<void> {
    this.drain();
  }

  async close(): Promise<void> {
    this.drain();
    if (this.fd !== 1) closeSync(this.fd);
  }
}
