/**
 * The offline fast path of `streamcell run`: a file known in advance goes through the same
 * validation, normalisation and post-processing as the daemon's pipeline (the functions of
 * pipeline.ts), but the model runs once per stream per chunk of readings — the step model's
 * chunked form ({@link ChunkedStepper}), T steps per call with the state carried between
 * chunks — instead of one pool push (one promise, one `session.run`) per reading.
 *
 * Same records, in the same order (the file's), same drops counted by reason; the streaming
 * path stays the reference (tests compare the two at every step). Memory stays bounded: the
 * source is read in chunks and pauses while a chunk runs.
 *
 * Where the streaming path's timing shows through, the fast path follows the file's order:
 * a `reset` (non-finite policy) resets the state after the stream's earlier readings, and at
 * the stream limit the least recently used stream is evicted.
 */
import { readPreprocessing, type PreprocessingJson } from '../model-format/index.js';
import type { BackendName, BackendRecord, SessionOptions } from '../runtime/backend.js';
import { resolveBackend } from '../runtime/backend-impl.js';
import { ChunkedStepper } from '../runtime/chunked.js';
import { readModelInfo } from '../runtime/step-model.js';
import type { TensorData } from '../runtime/backend.js';
import type { Logger } from './daemon.js';
import { DaemonMetrics } from './metrics.js';
import {
  checkReading,
  DEFAULT_MAX_STREAMS,
  normalisation,
  predictionRecord,
  streamPolicy,
  writeToSinks,
  type StreamPolicy,
  type StreamState,
} from './pipeline.js';
import type { DropReason, Reading, Sink, Source, SourceEvents } from './types.js';
import type { SinkFactory } from './uri.js';

/** Options of {@link OfflineRun.create}. */
export interface OfflineRunOptions {
  model: Uint8Array;
  /** A finite source (a file). */
  source: Source;
  sinks: SinkFactory[];
  policy?: Partial<StreamPolicy>;
  backend?: BackendName;
  preferBackends?: readonly BackendName[];
  session?: SessionOptions;
  /** Streams whose state is kept (least recently used evicted); default 10,000 like the daemon. */
  maxStreams?: number;
  /** Readings gathered before the model runs on them (default 4096). */
  chunk?: number;
  /** Records waiting in one sink at which reading pauses (default 16,384, as the pipeline). */
  sinkHighWater?: number;
  log?: Logger;
}

/** One stream's model state: its state tensors, its step count, and this chunk's work (row indexes; -1 = reset). */
interface Entry {
  id: string;
  state: Record<string, TensorData>;
  seq: number;
  ops: number[];
}

/** A stream's rows of this chunk between resets, the state and step count they start from (and reach). */
interface Lane {
  e: Entry;
  rows: number[];
  state: Record<string, TensorData>;
  seq: number;
}

/** An offline run on the fast path: {@link create} says whether the model allows it, {@link run} reads the source to the end. */
export class OfflineRun implements SourceEvents {
  readonly metrics = new DaemonMetrics();
  /** Chunks run, and model calls: one per lane (a stream's rows between resets), or one per step in lockstep. */
  readonly stats = { chunks: 0, laneCalls: 0, lockstepCalls: 0 };
  private readonly policy: StreamPolicy;
  private readonly norm: { mean: number[]; std: number[] };
  private readonly streams = new Map<string, StreamState>();
  /** Model states by stream, in use order (the pool's least-recently-used order). */
  private readonly entries = new Map<string, Entry>();
  private readonly maxStreams: number;
  private readonly cap: number;
  private readonly sinkHighWater: number;
  private sinks: Sink[] = [];
  private disconnected = false;
  // The chunk being gathered: rows in arrival order.
  private n = 0;
  private x: Float32Array;
  private gather: Float32Array;
  private readonly rowStream: string[] = [];
  private readonly rowRaw: number[][] = [];
  private readonly rowT: number[] = [];
  private readonly rowSeq: number[] = [];
  private readonly rowOut: Record<string, Float32Array> = {};
  private readonly outSize: Record<string, number> = {};
  private active: Entry[] = [];
  private samplesIn = new Map<string, number>();
  private running?: Promise<void>;
  private failed?: unknown;

  private constructor(
    private readonly opts: OfflineRunOptions,
    private readonly stepper: ChunkedStepper,
    readonly backendRecord: BackendRecord,
    private readonly pre: PreprocessingJson | undefined,
    private readonly channels: number,
  ) {
    this.policy = streamPolicy(opts.policy);
    this.norm = normalisation(pre, channels);
    this.maxStreams = opts.maxStreams ?? DEFAULT_MAX_STREAMS;
    this.cap = opts.chunk ?? 4096;
    this.sinkHighWater = opts.sinkHighWater ?? 16_384;
    this.x = new Float32Array(this.cap * channels);
    this.gather = new Float32Array(this.cap * channels);
  }

  /**
   * Opens the model on the fast path, or says why it cannot be (not a step model with
   * recurrent state, a graph the chunked form does not cover, a mismatch in the numerical
   * check, more than one sample input): the caller then takes the streaming path.
   */
  static async create(opts: OfflineRunOptions): Promise<{ ok: true; run: OfflineRun } | { ok: false; reason: string }> {
    const info = readModelInfo(opts.model);
    if (info.kind !== 'step') return { ok: false, reason: 'a sequence model (windowed), not a step model' };
    const pre = readPreprocessing(info.metadata, `model ${info.sha256.slice(0, 12)}`);
    const channels = pre?.channels.length ?? Number(info.sampleInputs[0]?.dims.at(-1) ?? 1);
    const { backend, record } = await resolveBackend(opts.backend ? { force: opts.backend } : { prefer: opts.preferBackends });
    const step = await backend.createSession(opts.model, opts.session);
    const made = await ChunkedStepper.create(opts.model, info, backend, step, { session: opts.session }).catch((e: unknown) => ({
      ok: false as const,
      reason: (e as Error).message,
    }));
    if (made.ok && made.stepper.sampleSize !== channels) {
      await made.stepper.release();
      await step.release();
      return { ok: false, reason: `the model takes ${made.stepper.sampleSize} values per sample and readings carry ${channels}` };
    }
    // The step session was only needed for the check.
    await step.release();
    if (!made.ok) return made;
    const run = new OfflineRun(opts, made.stepper, record, pre, channels);
    try {
      for (const f of opts.sinks) run.sinks.push(await f({ metrics: run.metrics, health: () => ({ ok: true }), log: opts.log }));
    } catch (e) {
      await run.close();
      throw e;
    }
    return { ok: true, run };
  }

  /** Reads the source to its end, writes every prediction, flushes and closes the sinks. */
  async run(): Promise<void> {
    try {
      await this.opts.source.start(this);
      await this.opts.source.done;
      await this.running;
      if (this.failed) throw this.failed;
      await this.process();
      for (const s of this.sinks) await s.flush().catch((e) => this.opts.log?.error({ sink: s.uri, err: (e as Error).message }, 'flush failed'));
    } finally {
      await this.close();
    }
  }

  private async close(): Promise<void> {
    await this.opts.source.stop().catch(() => undefined);
    for (const s of this.sinks) await s.close().catch(() => undefined);
    this.sinks = [];
    await this.stepper.release();
  }

  // ---- SourceEvents ----

  reading(r: Reading): void {
    const label = this.metrics.streamLabel(r.stream);
    this.samplesIn.set(label, (this.samplesIn.get(label) ?? 0) + 1);
    const v = checkReading(r, this.channels, this.policy, this.streams, this.maxStreams);
    if ('drop' in v) {
      // The pool resets a stream it has; one it never stepped has nothing to reset.
      const e = v.reset ? this.entries.get(r.stream) : undefined;
      if (e) {
        if (e.ops.length === 0) this.active.push(e);
        e.ops.push(-1);
      }
      return this.drop(v.drop, v.detail);
    }
    const C = this.channels;
    // The source hands over a whole read past the chunk's size before it asks for pressure.
    if ((this.n + 1) * C > this.x.length) this.grow();
    const off = this.n * C;
    const { mean, std } = this.norm;
    for (let c = 0; c < C; c++) {
      const x = (v.values[c]! - mean[c]!) / std[c]!;
      // The pool refuses a sample that normalises to a non-finite value.
      if (x - x !== 0) return this.drop('rejected', `stream '${r.stream}': ${v.values.join(',')} normalises to ${x}`);
      this.x[off + c] = x;
    }
    let e = this.entries.get(r.stream);
    if (e) {
      this.entries.delete(r.stream);
    } else {
      if (this.entries.size >= this.maxStreams) this.entries.delete(this.entries.keys().next().value!);
      e = { id: r.stream, state: this.stepper.initialState(), seq: 0, ops: [] };
    }
    this.entries.set(r.stream, e);
    if (e.ops.length === 0) this.active.push(e);
    e.ops.push(this.n);
    this.rowStream[this.n] = r.stream;
    this.rowRaw[this.n] = v.values;
    this.rowT[this.n] = r.t;
    this.n++;
  }

  drop(reason: DropReason, _detail: string): void {
    this.metrics.drop(reason);
  }

  status(state: 'connected' | 'disconnected', detail?: string): void {
    if (state === 'disconnected' && !this.disconnected) {
      this.disconnected = true;
      this.opts.log?.warn({ source: this.opts.source.uri, detail }, 'source disconnected');
    }
  }

  /** Pauses the source while a full chunk runs, and while a sink is over its high-water mark. */
  pressure(): Promise<void> | undefined {
    if (this.n < this.cap && !this.sinksBehind(1)) return undefined;
    return (this.running = (async () => {
      if (this.n >= this.cap) await this.process();
      while (this.sinksBehind(0.5)) await new Promise((r) => setTimeout(r, 5));
    })().catch((e: unknown) => {
      // Stops the source (it reports a disconnect); run() rethrows.
      this.failed ??= e;
      throw e;
    }));
  }

  private grow(): void {
    const x = new Float32Array(this.x.length * 2);
    x.set(this.x);
    this.x = x;
    this.gather = new Float32Array(x.length);
    for (const [name, out] of Object.entries(this.rowOut)) {
      const o = new Float32Array(out.length * 2);
      o.set(out);
      this.rowOut[name] = o;
    }
  }

  private sinksBehind(factor: number): boolean {
    for (const s of this.sinks) if ((s.backlog?.() ?? 0) >= this.sinkHighWater * factor) return true;
    return false;
  }

  // ---- the chunk ----

  /**
   * Runs the model over the gathered rows and writes their records in arrival order. Each
   * stream's rows between resets form a lane; lanes run one call each over all their rows, or —
   * when there are more lanes than rows per lane (many streams, few readings each) — in
   * lockstep, one call per step with a row per lane (the step model batched across streams).
   */
  private async process(): Promise<void> {
    const n = this.n;
    const m = this.metrics;
    for (const [label, k] of this.samplesIn) m.samplesIn.inc({ stream: label }, k);
    this.samplesIn.clear();
    const lanes: Lane[] = [];
    const tails: Lane[] = [];
    for (const e of this.active) {
      let cur: Lane = { e, rows: [], state: e.state, seq: e.seq };
      for (const op of e.ops) {
        if (op >= 0) {
          cur.rows.push(op);
          continue;
        }
        if (cur.rows.length) lanes.push(cur);
        cur = { e, rows: [], state: this.stepper.initialState(), seq: 0 };
      }
      if (cur.rows.length) lanes.push(cur);
      tails.push(cur);
      e.ops.length = 0;
    }
    this.active = [];
    const longest = lanes.reduce((a, l) => Math.max(a, l.rows.length), 0);
    if (n > 0) this.stats.chunks++;
    if (this.stepper.batched && lanes.length > longest) await this.lockstep(lanes, longest);
    else for (const l of lanes) await this.runLane(l);
    // A stream's state after the chunk: its last lane's (a fresh one after a final reset).
    for (const t of tails) {
      t.e.state = t.state;
      t.e.seq = t.seq;
    }
    const outs = this.stepper.outputs;
    const predictions = new Map<string, number>();
    for (let i = 0; i < n; i++) {
      const stream = this.rowStream[i]!;
      const o: Record<string, Float32Array> = {};
      for (const name of outs) {
        const size = this.outSize[name]!;
        o[name] = this.rowOut[name]!.subarray(i * size, (i + 1) * size);
      }
      const label = m.streamLabel(stream);
      predictions.set(label, (predictions.get(label) ?? 0) + 1);
      writeToSinks(this.sinks, predictionRecord(stream, this.rowRaw[i]!, this.rowT[i]!, this.rowSeq[i]!, o, this.pre, this.norm), m, this.opts.log);
    }
    for (const [label, k] of predictions) m.predictionsOut.inc({ stream: label }, k);
    this.n = 0;
    this.rowRaw.length = 0;
    this.rowStream.length = 0;
  }

  /** Where a call's outputs go: `rows[k]` gets step k (rows × per-step size values). */
  private scatter(outputs: Record<string, Float32Array>, count: number, rowAt: (k: number) => number): void {
    for (const [name, data] of Object.entries(outputs)) {
      const size = data.length / count;
      const dst = this.outputBuffer(name, size);
      for (let k = 0; k < count; k++) dst.set(data.subarray(k * size, (k + 1) * size), rowAt(k) * size);
    }
  }

  /** One lane in one call: T steps of its stream. */
  private async runLane(l: Lane): Promise<void> {
    const C = this.channels;
    const rows = l.rows;
    const T = rows.length;
    // Rows of one stream are adjacent in a single-stream file: no copy then.
    let x: Float32Array;
    if (rows[T - 1]! - rows[0]! === T - 1) {
      x = this.x.subarray(rows[0]! * C, (rows[T - 1]! + 1) * C);
    } else {
      for (let k = 0; k < T; k++) this.gather.set(this.x.subarray(rows[k]! * C, (rows[k]! + 1) * C), k * C);
      x = this.gather.subarray(0, T * C);
    }
    const r = await this.stepper.run(x, T, l.state);
    this.stats.laneCalls++;
    l.state = r.state;
    this.scatter(r.outputs, T, (k) => rows[k]!);
    for (const row of rows) this.rowSeq[row] = l.seq++;
  }

  /** All lanes together, one call per step, a batch row per lane still running (longest first: the running lanes are a prefix). */
  private async lockstep(lanes: Lane[], longest: number): Promise<void> {
    const C = this.channels;
    const states = this.stepper.states;
    const sizes = states.map((s) => s.shape.reduce((a, c) => a * c, 1));
    lanes.sort((a, b) => b.rows.length - a.rows.length);
    const L = lanes.length;
    // Every lane's state as one row of a table per state tensor, fed and updated in place.
    const slabs = states.map((s, i) => {
      const slab = new Float32Array(L * sizes[i]!);
      for (let b = 0; b < L; b++) slab.set(lanes[b]!.state[s.input]!.data as Float32Array, b * sizes[i]!);
      return slab;
    });
    let B = L;
    for (let k = 0; k < longest; k++) {
      while (lanes[B - 1]!.rows.length <= k) B--;
      const x = this.gather.subarray(0, B * C);
      for (let b = 0; b < B; b++) {
        const row = lanes[b]!.rows[k]!;
        x.set(this.x.subarray(row * C, (row + 1) * C), b * C);
      }
      const feeds: Record<string, TensorData> = {};
      states.forEach((s, i) => (feeds[s.input] = { type: 'float32', data: slabs[i]!.subarray(0, B * sizes[i]!), dims: [B, ...s.shape] }));
      const r = await this.stepper.step(x, B, feeds);
      this.stats.lockstepCalls++;
      states.forEach((s, i) => slabs[i]!.set(r.state[s.input]!.data as Float32Array));
      for (const [name, data] of Object.entries(r.outputs)) {
        const size = data.length / B;
        const dst = this.outputBuffer(name, size);
        for (let b = 0; b < B; b++) dst.set(data.subarray(b * size, (b + 1) * size), lanes[b]!.rows[k]! * size);
      }
      for (let b = 0; b < B; b++) {
        const l = lanes[b]!;
        this.rowSeq[l.rows[k]!] = l.seq++;
      }
    }
    for (let b = 0; b < L; b++) {
      const next: Record<string, TensorData> = {};
      states.forEach((s, i) => (next[s.input] = { type: 'float32', data: slabs[i]!.slice(b * sizes[i]!, (b + 1) * sizes[i]!), dims: [1, ...s.shape] }));
      lanes[b]!.state = next;
    }
  }

  /** The per-row output table of `name` (allocated on first use). */
  private outputBuffer(name: string, size: number): Float32Array {
    if (this.outSize[name] === undefined) {
      this.outSize[name] = size;
      this.rowOut[name] = new Float32Array((this.x.length / this.channels) * size);
    }
    return this.rowOut[name]!;
  }
}
