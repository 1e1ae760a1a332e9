/**
 * JSON Lines sink: stdout (`jsonl:-`) or a file with size rotation (`jsonl:out.jsonl?maxBytes=…&keep=…`):
 * out.jsonl → out.jsonl.1 → … out.jsonl.N. Writes are coalesced per tick and appended in order.
 *
 * A write that fails (a full disk, an I/O error, a removed mount) never throws into the
 * pipeline: the sink turns unhealthy (`health()`), counts the error by code, keeps the records
 * in a bounded queue (`maxQueueBytes`, oldest discarded and counted when full) and retries with
 * a backoff from 250 ms to 30 s; the first write that succeeds empties the queue in order.
 */
import { closeSync, existsSync, openSync, renameSync, statSync, writeSync } from 'node:fs';
import { InputError } from '../../errors.js';
import type { DaemonMetrics } from '../metrics.js';
import type { PredictionRecord, Sink } from '../types.js';

export interface JsonlSinkOptions {
  /** File path, or '-' for stdout. */
  path: string;
  maxBytes?: number;
  keep?: number;
  /** Bytes of records kept while the file cannot be written; default 8 MiB. */
  maxQueueBytes?: number;
  metrics?: DaemonMetrics;
  /** Error and recovery notices (for logs). */
  onError?: (err: NodeJS.ErrnoException, queued: number) => void;
  onRecover?: (afterMs: number) => void;
}

export function recordLine(r: PredictionRecord): string {
  return JSON.stringify(r) + '\n';
}

const RETRY_MIN_MS = 250;
const RETRY_MAX_MS = 30_000;

export class JsonlSink implements Sink {
  readonly uri: string;
  private fd: number;
  private size = 0;
  private pending: string[] = [];
  private pendingBytes = 0;
  private readonly maxQueueBytes: number;
  /** Bytes of the first pending line already written (a partial write). */
  private headOffset = 0;
  private scheduled = false;
  private retryTimer?: NodeJS.Timeout;
  private retryMs = RETRY_MIN_MS;
  private failing?: { code: string; since: number };
  private closed = false;

  constructor(private readonly opts: JsonlSinkOptions) {
    if (opts.maxBytes !== undefined && !(opts.maxBytes > 0))
      throw new InputError(`jsonl sink: maxBytes is ${opts.maxBytes}`, { field: 'maxBytes', expected: 'a positive number of bytes' });
    if (opts.keep !== undefined && !(Number.isInteger(opts.keep) && opts.keep >= 1 && opts.keep <= 1000))
      throw new InputError(`jsonl sink: keep is ${opts.keep}`, { field: 'keep', expected: 'an integer in [1, 1000]' });
    this.maxQueueBytes = opts.maxQueueBytes ?? 8 << 20;
    this.uri = `jsonl:${opts.path}`;
    if (opts.path === '-') this.fd = 1;
    else {
      try {
        this.fd = openSync(opts.path, 'a');
        this.size = statSync(opts.path).size;
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code ?? 'error';
        throw new InputError(`jsonl sink: cannot open the output file for appending (${code})`, {
          file: opts.path,
          expected: 'a writable file path in an existing directory',
        });
      }
    }
    opts.metrics?.sinkHealthy.set({ sink: this.uri }, 1);
  }

  write(rec: PredictionRecord): void {
    if (this.closed) return;
    let line: string;
    try {
      line = recordLine(rec);
    } catch {
      this.opts.metrics?.sinkErrors.inc({ sink: this.uri, code: 'unserialisable' });
      return;
    }
    this.pending.push(line);
    this.pendingBytes += line.length;
    if (this.pendingBytes > this.maxQueueBytes) this.discardOldest();
    if (!this.scheduled && !this.retryTimer) {
      this.scheduled = true;
      setImmediate(() => this.drain());
    }
  }

  /** Records waiting to be written. */
  backlog(): number {
    return this.failing ? 0 : this.pending.length;
  }

  health(): { ok: boolean; detail?: string } {
    return this.failing
      ? { ok: false, detail: `${this.failing.code} since ${new Date(this.failing.since).toISOString()}, ${this.pending.length} records queued` }
      : { ok: true };
  }

  private discardOldest(): void {
    // Down to 3/4 of the bound in one splice (not one line per write). A head line partly
    // written stays: its rest completes that line in the file.
    const keep = this.headOffset > 0 ? 1 : 0;
    const target = this.maxQueueBytes * 0.75;
    let n = 0;
    let bytes = this.pendingBytes;
    while (bytes > target && keep + n < this.pending.length - 1) bytes -= this.pending[keep + n++]!.length;
    this.pending.splice(keep, n);
    this.pendingBytes = bytes;
    if (n) this.opts.metrics?.queueOverflow.inc({ sink: this.uri }, n);
  }

  /** Writes what is pending; returns false when a write failed (the rest stays queued). */
  private drain(): boolean {
    this.scheduled = false;
    if (this.pending.length === 0) return true;
    const buf = Buffer.from(this.pending.join(''));
    let off = this.headOffset;
    try {
      while (off < buf.length) off += writeSync(this.fd, buf, off);
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      // Keep what was not written: drop whole lines already out, remember the partial one.
      this.consume(off);
      if (err.code === 'EAGAIN') {
        // A non-blocking stdout pipe is full: not an error, try again shortly.
        this.retryTimer ??= setTimeout(() => this.retry(), 5);
        return false;
      }
      this.fail(err);
      return false;
    }
    this.size += buf.length - this.headOffset;
    this.pending = [];
    this.pendingBytes = 0;
    this.headOffset = 0;
    if (this.failing) this.recover();
    if (this.opts.maxBytes && this.size >= this.opts.maxBytes && this.opts.path !== '-') {
      try {
        this.rotate();
      } catch (e) {
        this.fail(e as NodeJS.ErrnoException);
        return false;
      }
    }
    return true;
  }

  /** After a failed write that got `off` bytes of the joined pending lines out: keeps the unwritten lines. */
  private consume(off: number): void {
    this.size += off - this.headOffset;
    let done = off;
    while (this.pending.length > 0) {
      const n = Buffer.byteLength(this.pending[0]!);
      if (done < n) break;
      done -= n;
      this.pendingBytes -= this.pending.shift()!.length;
    }
    this.headOffset = done;
  }

  private fail(err: NodeJS.ErrnoException): void {
    const code = err.code ?? 'error';
    this.opts.metrics?.sinkErrors.inc({ sink: this.uri, code });
    if (!this.failing) {
      this.failing = { code, since: Date.now() };
      this.opts.metrics?.sinkHealthy.set({ sink: this.uri }, 0);
      this.opts.onError?.(err, this.pending.length);
    }
    if (!this.closed) {
      this.retryTimer = setTimeout(() => this.retry(), this.retryMs);
      this.retryTimer.unref();
      this.retryMs = Math.min(this.retryMs * 2, RETRY_MAX_MS);
    }
  }

  private retry(): void {
    this.retryTimer = undefined;
    this.drain();
  }

  private recover(): void {
    const since = this.failing!.since;
    this.failing = undefined;
    this.retryMs = RETRY_MIN_MS;
    this.opts.metrics?.sinkHealthy.set({ sink: this.uri }, 1);
    this.opts.onRecover?.(Date.now() - since);
  }

  private rotate(): void {
    closeSync(this.fd);
    const keep = this.opts.keep ?? 5;
    for (let i = keep - 1; i >= 1; i--) if (existsSync(`${this.opts.path}.${i}`)) renameSync(`${this.opts.path}.${i}`, `${this.opts.path}.${i + 1}`);
    renameSync(this.opts.path, `${this.opts.path}.1`);
    this.fd = openSync(this.opts.path, 'a');
    this.size = 0;
  }

  /** Writes what is queued now; rejects (naming the error) when the file cannot take it. */
  async flush(): Promise<void> {
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    if (!this.drain() && this.failing) throw new Error(`${this.uri}: ${this.pending.length} records not written (${this.failing.code})`);
  }

  /** Flushes once more; records that still cannot be written are counted as discarded. */
  async close(): Promise<void> {
    if (this.closed) return;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.drain();
    this.closed = true;
    clearTimeout(this.retryTimer);
    if (this.pending.length) this.opts.metrics?.queueOverflow.inc({ sink: this.uri }, this.pending.length);
    this.pending = [];
    if (this.fd !== 1) {
      try {
        closeSync(this.fd);
      } catch {
        // close(2) can report a deferred write error; the records were already counted.
      }
    }
  }
}
