/**
 * MQTT sink with an on-disk queue, for daemons that must outlive broker outages of any length.
 *
 * **Delivery guarantee: at-least-once, in order, per sink.** Every prediction is published as
 * JSON with QoS 1 and counts as delivered only when the broker's PUBACK arrives. Until then it
 * is in the sink's queue; records not acknowledged within one to two `syncIntervalMs` (or
 * written while the broker is away) are appended to the queue directory and fsync'd, so a
 * crash loses at most the last ~2 × syncIntervalMs of unacknowledged records. When the broker
 * comes back (or a new sink opens the same directory after a restart), the queue is replayed
 * oldest first, before newer records. A record may therefore arrive more than once (the broker
 * got it but its PUBACK was lost with the connection, or the acknowledged offset on disk lagged
 * a crash): each message carries `stream` and `seq`, so consumers drop duplicates by
 * (stream, seq), and every retransmission, and every record held back by an outage, carries
 * `"replay": true`. The first copy of a record may be unmarked; a second copy never is.
 *
 * The only loss is deliberate and counted: the queue is bounded (`maxQueueBytes`); when full,
 * the oldest segment's records are discarded and added to
 * `streamcell_queue_overflow_total{sink}`. `streamcell_queue_depth{sink}` is the number of
 * records not yet acknowledged.
 *
 * Queue directory layout (see {@link DiskQueue}):
 * - `seg-<first q, 16 digits>.jsonl`: append-only segments, one `{"q":N,"r":{record}}` per line,
 *   `q` a queue-wide sequence number;
 * - `ack.json`: `{"acked":N}`, every q < N acknowledged (or discarded); replaced atomically
 *   (write temp, fsync, rename). Segments wholly below it are deleted.
 *
 * @example
 * ```ts
 * const sink = new MqttSink({ url: 'mqtt://broker:1883', topic: 'plant/predictions/#',
 *   queueDir: '/var/lib/streamcell/queue', metrics });
 * sink.write(prediction);  // never throws for a dead broker
 * await sink.close();      // delivers what it can within closeTimeoutMs, keeps the rest on disk
 * ```
 */
import {
  closeSync, existsSync, fsync, fsyncSync, ftruncateSync, openSync, readdirSync, readFileSync,
  renameSync, rmSync, unlinkSync, writeSync,
} from 'node:fs';
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { mkdirpSync } from '../../mkdirp.js';
import { Readable } from 'node:stream';
import type { IStore } from 'mqtt';
import { InputError } from '../../errors.js';
import type { DaemonMetrics } from '../metrics.js';
import type { PredictionRecord, Sink } from '../types.js';
import { defaultMqttConnect, reconnectWithBackoff, splitMqttUri, type MqttClientLike, type MqttConnect } from '../sources/mqtt.js';

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

/**
 * The sink's durable FIFO. Records get consecutive queue numbers `q`; [acked, nextQ) are
 * pending. Recent records live in memory; a record reaches disk when {@link writePending}
 * says so (the sink holds records back for one sync interval, as most are acknowledged by
 * then and need never touch the flash); records acknowledged before that are never written.
 * Segment writes are synchronous (page cache), fsyncs asynchronous (they can take tens of ms
 * on SD cards and must not stall the event loop).
 */
function queueDirError(dir: string, e: unknown): InputError {
  const code = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
  return new InputError(`mqtt sink: cannot use the queue directory (${code})`, { file: dir, field: 'queue', expected: 'a directory this user can create and write (mqtt://…?queue=DIR, or STATE_DIRECTORY)' });
}

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
    const names = readdirSync(this.dir).filter((n) => SEG.test(n)).sort();
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
        this.track(new Promise<void>((resolve) => fsync(fd, () => {
          closeSync(fd);
          resolve();
        })));
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
      const data = lines.join('');
      writeSync(head.fd!, data);
      const n = Buffer.byteLength(data);
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

/** An mqtt.js outgoing store that keeps nothing: our disk queue owns retransmission. */
function nullStore(): IStore {
  const store = {
    put(_packet: unknown, cb: () => void) {
      cb();
      return store;
    },
    createStream() {
      return Readable.from([]);
    },
    del(packet: { messageId?: number }, cb: (err?: Error, packet?: unknown) => void) {
      cb(undefined, packet);
      return store;
    },
    get(_packet: unknown, cb: (err?: Error) => void) {
      cb(new Error('packet not stored'));
      return store;
    },
    close(cb: () => void) {
      cb();
    },
  };
  return store as unknown as IStore;
}

export interface MqttSinkOptions {
  /** Broker URL `mqtt://host:1883`; may carry the topic as its path when `topic` is not given. */
  url: string;
  /** Topic to publish to; `base/#` means one topic per stream, `base/<stream>`. */
  topic?: string;
  /** Publish to `{topic}/{stream}` even without a trailing `/#`. */
  perStream?: boolean;
  /** Queue directory. Default `$STATE_DIRECTORY` (systemd) or `~/.local/state/streamcell`, under `mqtt-queue/<broker and topic>`. */
  queueDir?: string;
  /** Bound of the on-disk queue (bytes); when full the oldest records are discarded and counted. Default 64 MiB. */
  maxQueueBytes?: number;
  /** Segment file size; also the granularity of discards. Default maxQueueBytes/8 within [4 KiB, 4 MiB]. */
  segmentBytes?: number;
  /** Interval of queue writes, fsyncs and offset saves. Default 250 ms. */
  syncIntervalMs?: number;
  /** Publishes awaiting PUBACK at once. Default 100. */
  maxInflight?: number;
  /** Memory for records awaiting publication; the rest is read back from disk. Default 4 MiB. */
  memoryBytes?: number;
  clientId?: string;
  /** First reconnect delay; doubles per failed attempt. Default 1000. */
  reconnectPeriodMs?: number;
  /** Upper bound of the reconnect delay. Default 30000. */
  maxReconnectPeriodMs?: number;
  /** How long close() waits for acknowledgements before leaving the rest on disk. Default 5000. */
  closeTimeoutMs?: number;
  metrics?: DaemonMetrics;
  /** The `sink` label of the metrics. Default the sink's URI. */
  label?: string;
  /** Broker up/down notifications (for logs). */
  onStatus?: (state: 'connected' | 'disconnected', detail?: string) => void;
  /** Client factory; defaults to mqtt.js `connect`. */
  connect?: MqttConnect;
}

/** Default queue directory for a sink URI. */
export function defaultQueueDir(url: string, topic: string): string {
  const base = process.env.STATE_DIRECTORY?.split(':')[0] ?? join(process.env.XDG_STATE_HOME ?? join(homedir(), '.local', 'state'), 'streamcell');
  const name = `${url.replace(/^[a-z]+:\/\//, '')}_${topic}`.replace(/[^A-Za-z0-9._-]+/g, '_');
  return join(base, 'mqtt-queue', name);
}

/** Turns a stream id into one topic level. */
const topicLevel = (stream: string) => stream.replace(/[/+#\u0000]/g, '_') || '_';

/** A {@link Sink} publishing predictions to MQTT, at least once, through a disk queue. */
export class MqttSink implements Sink {
  readonly uri: string;
  /** The queue directory in use. */
  readonly queueDir: string;
  private readonly url: string;
  private readonly baseTopic: string;
  private readonly perStream: boolean;
  private readonly queue: DiskQueue;
  private readonly client: MqttClientLike;
  private readonly label: string;
  private readonly metrics?: DaemonMetrics;
  private readonly maxInflight: number;
  private readonly closeTimeoutMs: number;
  private readonly onStatus?: (state: 'connected' | 'disconnected', detail?: string) => void;
  private readonly timer: NodeJS.Timeout;
  /** Next q to publish. */
  private sentQ: number;
  /** Records with q below this were held back or may have been sent before: marked replay. */
  private replayBelow: number;
  /** Bumped on every (re)connect: acks of an older connection are ignored, its records resent. */
  private epoch = 0;
  private inflight = 0;
  private loading = false;
  private pumping = false;
  private wasConnected = false;
  private lastError?: string;
  private closing = false;
  private closed?: Promise<void>;
  private queueError?: string;
  private graceQ: number;
  private waiters: Array<() => void> = [];

  /** From a URI: `mqtt://host:1883/topic?queue=DIR&maxQueueBytes=N&perStream=1&client=ID`. */
  static fromUri(uri: string, options: Partial<MqttSinkOptions> = {}): MqttSink {
    const { url, topic, params } = splitMqttUri(uri);
    const max = params.get('maxQueueBytes');
    return new MqttSink({
      url,
      topic,
      queueDir: params.get('queue') ?? undefined,
      maxQueueBytes: max === null ? undefined : Number(max),
      perStream: params.get('perStream') === '1' || params.get('perStream') === 'true' || undefined,
      clientId: params.get('client') ?? undefined,
      ...options,
    });
  }

  constructor(options: MqttSinkOptions) {
    const split = options.topic === undefined ? splitMqttUri(options.url) : undefined;
    this.url = split ? split.url : options.url.replace(/\/+$/, '');
    if (!/^(mqtts?|wss?|tcp|ssl):\/\//.test(this.url)) {
      throw new InputError(`broker URL '${options.url}' has no MQTT scheme`, { field: 'url', expected: 'mqtt://host:1883' });
    }
    const topic = options.topic ?? split?.topic ?? '';
    this.perStream = options.perStream === true || topic.endsWith('/#');
    this.baseTopic = topic.endsWith('/#') ? topic.slice(0, -2) : topic;
    if (this.baseTopic.length === 0 || /[+#\u0000]/.test(this.baseTopic)) {
      throw new InputError(`invalid MQTT publish topic '${topic}'`, {
        field: 'topic',
        expected: "a topic without wildcards, or 'base/#' for one topic per stream",
      });
    }
    this.uri = `${this.url}/${topic}`;
    this.label = options.label ?? this.uri;
    this.metrics = options.metrics;
    this.maxInflight = Math.max(1, options.maxInflight ?? 100);
    this.closeTimeoutMs = options.closeTimeoutMs ?? 5000;
    this.onStatus = options.onStatus;
    this.queueDir = options.queueDir ?? defaultQueueDir(this.url, topic);
    this.queue = new DiskQueue(this.queueDir, {
      maxBytes: options.maxQueueBytes,
      segmentBytes: options.segmentBytes,
      memoryBytes: options.memoryBytes,
      onOverflow: (n) => this.metrics?.queueOverflow.inc({ sink: this.label }, n),
      onCorrupt: (n) => this.metrics?.sinkErrors.inc({ sink: this.label, code: 'corrupt-queue-record' }, n),
      onError: (e) => this.queueFailed(e),
    });
    this.sentQ = this.queue.acked;
    // Whatever a previous process left is a replay.
    this.replayBelow = this.queue.nextQ;
    this.graceQ = this.queue.nextQ;
    this.updateDepth();

    const reconnectMs = options.reconnectPeriodMs ?? 1000;
    this.client = (options.connect ?? defaultMqttConnect)(this.url, {
      clientId: options.clientId ?? `streamcell-sink-${Math.random().toString(16).slice(2, 10)}`,
      clean: true,
      reconnectPeriod: reconnectMs,
      connectTimeout: 10_000,
      outgoingStore: nullStore(),
      queueQoSZero: false,
    });
    reconnectWithBackoff(this.client, reconnectMs, Math.max(reconnectMs, options.maxReconnectPeriodMs ?? 30_000));
    this.client.on('connect', () => {
      this.restartDelivery(this.queue.nextQ);
      this.wasConnected = true;
      this.lastError = undefined;
      this.metrics?.sinkHealthy.set({ sink: this.label }, 1);
      this.onStatus?.('connected');
      this.pump();
    });
    this.client.on('close', () => {
      if (this.wasConnected) {
        this.wasConnected = false;
        this.restartDelivery(this.sentQ);
        this.metrics?.sinkErrors.inc({ sink: this.label, code: 'disconnected' });
        this.metrics?.sinkHealthy.set({ sink: this.label }, 0);
        this.onStatus?.('disconnected', this.lastError ?? 'connection closed');
      }
    });
    this.client.on('error', (err) => {
      this.lastError = err.message;
    });

    const syncMs = options.syncIntervalMs ?? 250;
    this.timer = setInterval(() => this.tick(), syncMs);
    this.timer.unref();
  }

  /**
   * Forgets what is in flight (its acks may never come) and resends from the oldest
   * unacknowledged record; records below `replayFrom` are marked replay.
   */
  private restartDelivery(replayFrom: number): void {
    this.epoch++;
    this.inflight = 0;
    this.sentQ = this.queue.acked;
    this.replayBelow = Math.max(this.replayBelow, replayFrom);
  }

  private tick(): void {
    // Connected: give the broker one interval to acknowledge before writing to disk.
    // Disconnected: nothing will be acknowledged, write everything now.
    const upTo = this.client.connected ? this.graceQ : this.queue.nextQ;
    this.graceQ = this.queue.nextQ;
    try {
      this.queue.tick(upTo);
      this.queueError = undefined;
    } catch (err) {
      this.queueFailed(err);
    }
    this.updateDepth();
    this.pump();
  }

  /** A queue write failed (full disk, I/O error): counted by code; the records stay in memory and the next tick retries. */
  private queueFailed(err: unknown): void {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    this.metrics?.sinkErrors.inc({ sink: this.label, code });
    this.lastError = `queue: ${(err as Error).message}`;
    this.queueError = code;
  }

  /** Unhealthy while the broker is unreachable or the queue directory cannot be written. */
  health(): { ok: boolean; detail?: string } {
    if (this.queueError) return { ok: false, detail: `queue directory ${this.queueDir}: ${this.queueError}; ${this.queue.depth} records held` };
    if (!this.client.connected) return { ok: false, detail: `broker not connected (${this.lastError ?? 'connecting'}); ${this.queue.depth} records queued` };
    return { ok: true };
  }

  private updateDepth(): void {
    this.metrics?.queueDepth.set({ sink: this.label }, this.queue.depth);
    if (this.queue.depth === 0 && this.waiters.length > 0) {
      for (const w of this.waiters.splice(0)) w();
    }
  }

  write(rec: PredictionRecord): void {
    if (this.closing) throw new Error(`MqttSink.write() after close() (${this.uri})`);
    let json: string;
    try {
      json = JSON.stringify(rec);
    } catch (err) {
      this.metrics?.sinkErrors.inc({ sink: this.label, code: 'unserialisable' });
      this.lastError = `unserialisable record: ${(err as Error).message}`;
      return;
    }
    try {
      this.queue.append(rec.stream, json);
    } catch (err) {
      // Disk full or similar: the record stays in memory and is retried by the next tick.
      this.queueFailed(err);
    }
    this.updateDepth();
    this.pump();
  }

  /** Publishes pending records in q order while connected and the in-flight window has room. */
  private pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.client.connected && !this.loading && this.inflight < this.maxInflight) {
        const next = this.queue.next(this.sentQ);
        if (!next) break;
        if ('load' in next) {
          this.loading = true;
          void this.queue.load(next.load).finally(() => {
            this.loading = false;
            this.updateDepth();
            this.pump();
          });
          break;
        }
        this.publish(next.entry);
        this.sentQ = next.entry.q + 1;
      }
    } finally {
      this.pumping = false;
    }
  }

  private publish(e: QueueEntry): void {
    const topic = this.perStream ? `${this.baseTopic}/${topicLevel(e.stream)}` : this.baseTopic;
    const payload = e.q < this.replayBelow ? `${e.json.slice(0, -1)},"replay":true}` : e.json;
    const epoch = this.epoch;
    this.inflight++;
    this.client.publish(topic, payload, { qos: 1 }, (err) => {
      if (epoch !== this.epoch) return; // that connection is gone; the record was or will be resent
      this.inflight--;
      if (err) {
        // With MQTT 3.1.1 this only happens while the client is shutting down. Resend
        // everything unacknowledged, in order, rather than this one record out of order.
        this.metrics?.sinkErrors.inc({ sink: this.label, code: 'publish' });
        this.lastError = err.message;
        this.restartDelivery(this.sentQ);
        setTimeout(() => this.pump(), 1000).unref();
        return;
      }
      this.queue.ack(e.q);
      this.updateDepth();
      this.pump();
    });
  }

  /** Resolves when every record written so far is acknowledged by the broker or fsync'd in the queue. */
  async flush(): Promise<void> {
    if (this.closed) return this.closed;
    await this.queue.sync();
    this.updateDepth();
  }

  /**
   * Waits up to `closeTimeoutMs` for the broker to acknowledge everything (when connected),
   * keeps the rest on disk for the next process, and disconnects.
   */
  close(): Promise<void> {
    this.closed ??= (async () => {
      this.closing = true;
      if (this.client.connected && this.queue.depth > 0) {
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, this.closeTimeoutMs);
          this.waiters.push(() => {
            clearTimeout(t);
            resolve();
          });
        });
      }
      clearInterval(this.timer);
      await this.queue.close();
      this.updateDepth();
      this.epoch++; // late acks must not touch the closed queue
      await new Promise<void>((resolve) => this.client.end(true, {}, () => resolve()));
    })();
    return this.closed;
  }
}
