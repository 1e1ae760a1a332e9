/**
 * A durable, bounded FIFO of JSON records on disk, for any sink that must outlive an outage of
 * its destination (the MQTT sink is the first user).
 *
 * Directory layout:
 * - `seg-<first q, 16 digits>.jsonl`: append-only segments, one `{"q":N,"r":{record}}` per line,
 *   `q` a queue-wide sequence number;
 * - `ack.json`: `{"acked":N}`, every q < N acknowledged (or discarded); replaced atomically
 *   (write temp, fsync, rename). Segments wholly below it are deleted.
 *
 * When full (`maxBytes`) the oldest segment's records are discarded and reported through
 * `onOverflow`; unreadable lines found on open (a torn write) through `onCorrupt`.
 */
import {
  closeSync,
  existsSync,
  fsync,
  fsyncSync,
  ftruncateSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { mkdirpSync } from '../../mkdirp.js';
import { InputError } from '../../errors.js';

/** One queued record: its queue number, its JSON (the MQTT payload) and its stream. */
export interface QueueEntry {
  q: number;
  stream: string;
  json: string;
  /** Bytes of its line in a segment file. */
  bytes: number;
}

interface Segment {
  /** q of the first record it was opened for (its file name). */
  firstQ: number;
  path: string;
  bytes: number;
  /** Smallest and largest q it holds; Infinity / -1 while empty. */
  minQ: number;
  lastQ: number;
  fd?: number;
  /** Written since its last fsync. */
  dirty: boolean;
}

/** Options of {@link DiskQueue}: its bounds and its notifications. */
export interface DiskQueueOptions {
  /** Bound on the queue's bytes on disk plus not-yet-written bytes. Default 64 MiB. */
  maxBytes?: number;
  /** Segment size; the discard granularity when full. Default maxBytes/8, within [4 KiB, 4 MiB]. */
  segmentBytes?: number;
  /** Records kept in memory for publishing; older ones are read back from disk. Default 4 MiB. */
  memoryBytes?: number;
  /** `n` records discarded because the queue was full. */
  onOverflow?: (n: number) => void;
  /** `n` records found unreadable in the queue files (torn or corrupted lines) and skipped. */
  onCorrupt?: (n: number) => void;
  /** A background write (the ack offset) failed; it is retried at the next tick. */
  onError?: (err: NodeJS.ErrnoException) => void;
}

const SEG = /^seg-(\d{16})\.jsonl$/;
const segName = (q: number) => `seg-${String(q).padStart(16, '0')}.jsonl`;

/** Parses one segment line; undefined when it is not a queue record. */
function parseLine(line: string): QueueEntry | undefined {
  try {
    const o = JSON.parse(line) as { q?: unknown; r?: { stream?: unknown } };
    if (typeof o.q !== 'number' || !Number.isSafeInteger(o.q) || typeof o.r !== 'object' || o.r === null) return undefined;
    return { q: o.q, stream: String(o.r.stream), json: JSON.stringify(o.r), bytes: Buffer.byteLength(line) + 1 };
  } catch {
    return undefined;
  }
}

function queueDirError(dir: string, e: unknown): InputError {
  const code = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
  return new InputError(`mqtt sink: cannot use the queue directory (${code})`, {
    file: dir,
    field: 'queue',
    expected: 'a directory this user can create and write (mqtt://…?queue=DIR, or STATE_DIRECTORY)',
  });
}

/**
 * The sink's durable FIFO. Records get consecutive queue numbers `q`; [acked, nextQ) are
 * pending. Recent records live in memory; a record reaches disk when {@link writePending}
 * says so (the sink holds records back for one sync interval, as most are acknowledged by
 * then and need never touch the flash); records acknowledged before that are never written.
 * Segment writes are synchronous (page cache), fsyncs asynchronous (they can take tens of ms
 * on SD cards and must not stall the event loop).
 */
export class DiskQueue {
  readonly dir: string;
  private readonly maxBytes: number;
  readonly segmentBytes: number;
  private readonly memoryBytes: number;
  private readonly onOverflow: (n: number) => void;
  private readonly onCorrupt: (n: number) => void;
  private readonly onError: (err: NodeJS.ErrnoException) => void;

  private segs: Segment[] = [];
  private segBytes = 0;
  /** Entries q = memStart … nextQ-1, at mem[memHead + q - memStart]. */
  private mem: QueueEntry[] = [];
  private memHead = 0;
  private memStart: number;
  private memBytes = 0;
  /** Bytes of entries ≥ writtenQ (not yet on disk). */
  private pendingBytes = 0;
  /** Every q < writtenQ is on disk, or was acknowledged before it had to be written. */
  private writtenQ: number;
  private _nextQ: number;
  private _acked: number;
  private ackedAbove = new Set<number>();
  private persistedAck: number;
  /** Records read back from one segment, for q < memStart. */
  private replay: { from: number; to: number; entries: QueueEntry[]; idx: number } | undefined;
  private syncing = new Set<Promise<void>>();
  private ackWrite: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(dir: string, options: DiskQueueOptions = {}) {
    this.dir = dir;
    this.maxBytes = options.maxBytes ?? 64 * 2 ** 20;
    if (!(this.maxBytes >= 1024)) throw new InputError(`maxQueueBytes ${this.maxBytes}`, { field: 'maxQueueBytes', expected: 'at least 1024' });
    const seg = options.segmentBytes ?? Math.min(4 * 2 ** 20, Math.max(4096, Math.floor(this.maxBytes / 8)));
    this.segmentBytes = Math.max(256, Math.min(seg, Math.floor(this.maxBytes / 4)));
    this.memoryBytes = options.memoryBytes ?? 4 * 2 ** 20;
    this.onOverflow = options.onOverflow ?? (() => {});
    this.onCorrupt = options.onCorrupt ?? (() => {});
    this.onError = options.onError ?? (() => {});
    let recovered: { acked: number; nextQ: number };
    try {
      mkdirpSync(dir);
      recovered = this.recover();
    } catch (e) {
      throw queueDirError(dir, e);
    }
    const { acked, nextQ } = recovered;
    this._acked = acked;
    this.persistedAck = acked;
    this._nextQ = nextQ;
    this.memStart = this.writtenQ = nextQ;
    const last = this.segs[this.segs.length - 1];
    try {
      if (last && last.bytes < this.segmentBytes) {
        last.fd = openSync(last.path, 'a');
      } else {
        this.openHead(nextQ);
      }
    } catch (e) {
      throw queueDirError(dir, e);
    }
  }

  get nextQ(): number {
    return this._nextQ;
  }
  /** Every q below this is acknowledged or discarded. */
  get acked(): number {
    return this._acked;
  }
  /** Records not yet acknowledged. */
  get depth(): number {
    return this._nextQ - this._acked - this.ackedAbove.size;
  }
  /** Bytes the queue occupies on disk, plus those waiting to be written. */
  get bytes(): number {
    return this.segBytes + this.pendingBytes;
  }
  isAcked(q: number): boolean {
    return q < this._acked || this.ackedAbove.has(q);
  }

  /** Reads the directory: ack offset, segments (a torn last line is cut off), next q. */
  private recover(): { acked: number; nextQ: number } {
    let acked = 0;
    try {
      const a = JSON.parse(readFileSync(join(this.dir, 'ack.json'), 'utf8')) as { acked?: unknown };
      if (typeof a.acked === 'number' && Number.isSafeInteger(a.acked) && a.acked >= 0) acked = a.acked;
    } catch {
      // No offset yet (or a torn temp never renamed): replay whatever the segments hold.
    }
    rmSync(join(this.dir, 'ack.json.tmp'), { force: true });
    const names = readdirSync(this.dir)
      .filter((n) => SEG.test(n))
      .sort();
    let corrupt = 0;
    let firstPending = Infinity;
    let maxQ = -1;
    for (const name of names) {
      const path = join(this.dir, name);
      const buf = readFileSync(path);
      const seg: Segment = { firstQ: Number(SEG.exec(name)![1]), path, bytes: buf.length, minQ: Infinity, lastQ: -1, dirty: false };
      let pos = 0;
      let good = 0;
      while (pos < buf.length) {
        const nl = buf.indexOf(10, pos);
        if (nl < 0) break; // torn tail: the write never completed
        const e = parseLine(buf.toString('utf8', pos, nl));
        pos = nl + 1;
        if (!e || e.q <= maxQ) {
          corrupt++;
          continue;
        }
        good = pos;
        maxQ = e.q;
        seg.minQ = Math.min(seg.minQ, e.q);
        seg.lastQ = e.q;
        if (e.q >= acked) firstPending = Math.min(firstPending, e.q);
      }
      if (pos < buf.length || good < buf.length) {
        // Cut garbage after the last good record so appends start on a clean line.
        const fd = openSync(path, 'r+');
        ftruncateSync(fd, good);
        fsyncSync(fd);
        closeSync(fd);
        seg.bytes = good;
        if (pos < buf.length) corrupt++;
      }
      this.segs.push(seg);
      this.segBytes += seg.bytes;
    }
    if (corrupt > 0) this.onCorrupt(corrupt);
    const nextQ = Math.max(acked, maxQ + 1);
    // Records below the first one on disk are gone (acknowledged, or compacted before the
    // offset was saved): start there so the depth counts only what exists.
    return { acked: Math.min(nextQ, Math.max(acked, firstPending === Infinity ? nextQ : firstPending)), nextQ };
  }

  private openHead(q: number): void {
    const path = join(this.dir, segName(q));
    this.segs.push({ firstQ: q, path, bytes: 0, minQ: Infinity, lastQ: -1, fd: openSync(path, 'a'), dirty: false });
  }

  private get head(): Segment {
    return this.segs[this.segs.length - 1];
  }

  /** Closes the head segment (fsync first, in the background) and opens a new one. */
  private rotate(): void {
    const old = this.head;
    const fd = old.fd;
    old.fd = undefined;
    if (fd !== undefined) {
      if (old.dirty) {
        old.dirty = false;
        this.track(
          new Promise<void>((resolve) =>
            fsync(fd, () => {
              closeSync(fd);
              resolve();
            }),
          ),
        );
      } else {
        closeSync(fd);
      }
    }
    this.openHead(this.writtenQ);
  }

  private track(p: Promise<void>): void {
    this.syncing.add(p);
    void p.finally(() => this.syncing.delete(p));
  }

  /** Adds a record; returns its q. */
  append(stream: string, json: string): number {
    const q = this._nextQ++;
    const bytes = Buffer.byteLength(json) + Buffer.byteLength(String(q)) + 12; // `{"q":N,"r":` … `}\n`
    this.mem.push({ q, stream, json, bytes });
    this.memBytes += bytes;
    this.pendingBytes += bytes;
    if (this.memBytes > this.memoryBytes) {
      this.writePending(this._nextQ);
      this.trimMem();
    }
    if (this.bytes > this.maxBytes) this.enforceLimit();
    return q;
  }

  /** Marks q acknowledged by the broker (any order). */
  ack(q: number): void {
    if (q < this._acked || q >= this._nextQ) return;
    this.ackedAbove.add(q);
    this.advanceAcked(this._acked);
  }

  private advanceAcked(to: number): void {
    if (to > this._acked) {
      for (const q of this.ackedAbove) if (q < to) this.ackedAbove.delete(q);
      this._acked = to;
    }
    while (this.ackedAbove.delete(this._acked)) this._acked++;
    this.trimMem();
  }

  /** Drops memory entries that are acknowledged, or on disk when memory is over its budget. */
  private trimMem(): void {
    while (this.memHead < this.mem.length) {
      const e = this.mem[this.memHead];
      const done = e.q < this._acked;
      if (!done && !(this.memBytes > this.memoryBytes && e.q < this.writtenQ)) break;
      if (e.q >= this.writtenQ) {
        // Acknowledged before it was written: it never will be.
        this.pendingBytes -= e.bytes;
        this.writtenQ = e.q + 1;
      }
      this.memBytes -= e.bytes;
      this.memHead++;
      this.memStart++;
    }
    if (this.memHead > 1024 && this.memHead * 2 > this.mem.length) {
      this.mem = this.mem.slice(this.memHead);
      this.memHead = 0;
    }
  }

  private memEntry(q: number): QueueEntry {
    return this.mem[this.memHead + q - this.memStart];
  }

  /** Appends the unacknowledged records below `upTo` to the head segment (no fsync). */
  writePending(upTo: number): void {
    upTo = Math.min(upTo, this._nextQ);
    if (upTo <= this.writtenQ) return;
    const lines: string[] = [];
    let first = -1;
    let last = -1;
    let bytes = 0;
    for (let q = this.writtenQ; q < upTo; q++) {
      const e = this.memEntry(q);
      bytes += e.bytes;
      if (q < this._acked) continue; // acknowledged before it had to be written
      lines.push(`{"q":${q},"r":${e.json}}\n`);
      if (first < 0) first = q;
      last = q;
    }
    if (lines.length > 0) {
      // Throws on a full disk: nothing is marked written then, the records stay in memory.
      const head = this.head;
      const data = Buffer.from(lines.join(''));
      // A write that does not fit is first cut short (no error) and only the next one fails:
      // finish it, and on failure cut the segment back to its last whole record.
      let off = 0;
      try {
        while (off < data.length) off += writeSync(head.fd!, data, off, data.length - off);
      } catch (err) {
        if (off > 0) ftruncateSync(head.fd!, head.bytes);
        throw err;
      }
      const n = data.length;
      head.bytes += n;
      this.segBytes += n;
      head.minQ = Math.min(head.minQ, first);
      head.lastQ = last;
      head.dirty = true;
    }
    this.pendingBytes -= bytes;
    this.writtenQ = upTo;
    if (this.head.bytes >= this.segmentBytes) this.rotate();
  }

  /** Discards the oldest records until the queue fits `maxBytes`; counts them. */
  private enforceLimit(): void {
    while (this.bytes > this.maxBytes) {
      if (this.segs.length > 1) {
        this.discard(this.segs[0]);
      } else if (this.head.bytes > 0) {
        this.writePending(this._nextQ);
        this.rotate();
      } else if (this.pendingBytes > 0) {
        // Only unwritten records left (maxBytes smaller than one sync interval of data).
        const e = this.memEntry(this.writtenQ);
        this.pendingBytes -= e.bytes;
        this.writtenQ++;
        if (!this.isAcked(e.q)) {
          this.onOverflow(1);
          this.advanceAcked(e.q + 1);
        }
      } else {
        break;
      }
    }
    this.trimMem();
  }

  private discard(seg: Segment): void {
    let lost = 0;
    for (let q = Math.max(this._acked, seg.minQ); q <= seg.lastQ; q++) if (!this.ackedAbove.has(q)) lost++;
    this.removeSegment(seg);
    if (seg.lastQ >= 0) this.advanceAcked(seg.lastQ + 1);
    if (lost > 0) this.onOverflow(lost);
  }

  private removeSegment(seg: Segment): void {
    if (seg.fd !== undefined) {
      closeSync(seg.fd);
      seg.fd = undefined;
    }
    try {
      unlinkSync(seg.path);
    } catch {
      // already gone
    }
    this.segs.splice(this.segs.indexOf(seg), 1);
    this.segBytes -= seg.bytes;
    if (this.replay && this.replay.to <= seg.lastQ) this.replay = undefined;
  }

  /** Deletes segments that hold only acknowledged records (the head too, once it is wholly acknowledged). */
  private compact(): void {
    while (this.segs.length > 1 && this.segs[0].lastQ < this._acked) this.removeSegment(this.segs[0]);
    const head = this.head;
    if (this.segs.length === 1 && head.bytes > 0 && head.lastQ < this._acked) {
      this.rotate();
      this.removeSegment(head);
    }
  }

  /**
   * Periodic maintenance: writes records that are not acknowledged and older than `upTo`,
   * enforces the bound, compacts, then fsyncs and saves the ack offset in the background.
   */
  tick(upTo: number): void {
    if (this.closed) return;
    this.writePending(upTo);
    this.trimMem();
    this.enforceLimit();
    this.compact();
    this.syncFiles();
  }

  private syncFiles(): Promise<void> {
    for (const seg of this.segs) {
      const fd = seg.fd;
      if (seg.dirty && fd !== undefined) {
        seg.dirty = false;
        this.track(new Promise<void>((resolve) => fsync(fd, () => resolve())));
      }
    }
    this.saveAck();
    return this.settled();
  }

  private async settled(): Promise<void> {
    while (this.syncing.size > 0) await Promise.all([...this.syncing]);
  }

  /** Replaces ack.json atomically: temp file, fsync, rename, fsync of the directory. */
  private saveAck(): void {
    const acked = this._acked;
    if (acked === this.persistedAck) return;
    this.persistedAck = acked;
    const p = this.ackWrite.then(
      () =>
        new Promise<void>((resolve) => {
          // A full disk or an I/O error must not escape (it would end the process): the offset
          // is written again at the next tick; until then a restart replays a little more.
          const failed = (e: unknown) => {
            this.persistedAck = -1;
            this.onError(e as NodeJS.ErrnoException);
            resolve();
          };
          const tmp = join(this.dir, 'ack.json.tmp');
          let fd: number;
          try {
            fd = openSync(tmp, 'w');
            writeSync(fd, JSON.stringify({ acked }) + '\n');
          } catch (e) {
            return failed(e);
          }
          fsync(fd, (err) => {
            try {
              closeSync(fd);
              if (err) throw err;
              renameSync(tmp, join(this.dir, 'ack.json'));
              const dfd = openSync(this.dir, 'r');
              fsync(dfd, () => {
                closeSync(dfd);
                resolve();
              });
            } catch (e) {
              failed(e);
            }
          });
        }),
    );
    this.ackWrite = p;
    this.track(p);
  }

  /** Writes every unacknowledged record to disk and fsyncs; resolves when it is durable. */
  async sync(): Promise<void> {
    if (this.closed) return;
    this.writePending(this._nextQ);
    this.trimMem();
    this.enforceLimit();
    this.compact();
    await this.syncFiles();
  }

  /**
   * The first pending record at or after `from`: `{ entry }` when it is in memory, `{ load }`
   * when it must be read back from disk first, undefined when none is pending.
   */
  next(from: number): { entry: QueueEntry } | { load: number } | undefined {
    let q = Math.max(from, this._acked);
    while (q < this._nextQ) {
      if (this.ackedAbove.has(q)) {
        q++;
        continue;
      }
      if (q >= this.memStart) return { entry: this.memEntry(q) };
      const r = this.replay;
      if (!r || q < r.from || q > r.to) return { load: q };
      if (r.idx > 0 && r.entries[r.idx - 1].q >= q) r.idx = 0; // delivery restarted further back
      while (r.idx < r.entries.length && r.entries[r.idx].q < q) r.idx++;
      const e = r.entries[r.idx];
      if (e && e.q === q) return { entry: e };
      // Missing from its segment: a corrupted line. Count it and move on.
      const to = e ? e.q : Math.min(r.to + 1, this.memStart);
      this.onCorrupt(to - q);
      for (let m = q; m < to; m++) this.ack(m);
      q = to;
    }
    return undefined;
  }

  /** Reads the segment holding q (or the first after it) into the replay buffer. */
  async load(q: number): Promise<void> {
    const seg = this.segs.find((s) => s.lastQ >= q);
    if (!seg) {
      this.lost(q, this.memStart);
      return;
    }
    if (seg.minQ > q) this.lost(q, Math.min(seg.minQ, this.memStart));
    // Records appended while we read may be missing from the text: only trust what was there.
    const to = seg.lastQ;
    let text: string;
    try {
      text = await readFile(seg.path, 'utf8');
    } catch {
      return; // discarded meanwhile; next() re-evaluates from the new state
    }
    const entries: QueueEntry[] = [];
    for (const line of text.split('\n')) {
      const e = line.length > 0 ? parseLine(line) : undefined;
      if (e && e.q >= q && e.q <= to) entries.push(e);
    }
    this.replay = { from: q, to, entries, idx: 0 };
  }

  private lost(from: number, to: number): void {
    let n = 0;
    for (let q = Math.max(from, this._acked); q < to; q++) if (!this.ackedAbove.has(q)) n++;
    if (n > 0) this.onCorrupt(n);
    this.advanceAcked(Math.max(this._acked, to));
  }

  /** Writes and fsyncs everything, saves the offset, closes the files. */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.sync();
    this.closed = true;
    for (const seg of this.segs) {
      if (seg.fd !== undefined) closeSync(seg.fd);
      seg.fd = undefined;
    }
    // An empty head left by compaction is noise for the next process.
    const head = this.head;
    if (head.bytes === 0 && existsSync(head.path)) unlinkSync(head.path);
  }
}
