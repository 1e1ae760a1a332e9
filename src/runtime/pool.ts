/**
 * {@link StreamPool}: serves many sensor streams with one step model, one sample at a time.
 *
 * Each stream's recurrent state lives in a per-state table (one Float32Array row per
 * stream). A batch gathers its streams' rows into a reused batch tensor, runs the session
 * once, and scatters `state_out.*` rows back.
 */
import { InputError } from '../errors.js';
import type { TensorData } from './backend.js';
import type { Session } from './backend.js';
import { batchLimit, openModel, PoolCore, type Batch, type Entry, type InputLayout, type RolloutSeed } from './pool-core.js';
import type { PoolOptions, Prediction } from './pool-types.js';
import { fillInitialState, type ModelInfo, type StateSpec } from './step-model.js';

/** Per-sample feed layout of a step model's sample inputs (time axis = 1). */
function stepLayouts(info: ModelInfo, file?: string): InputLayout[] {
  let offset = 0;
  return info.sampleInputs.map((i) => {
    if (i.dtype !== 'float32')
      throw new InputError(`input '${i.name}' is ${i.dtype}; a pool feeds float32 samples`, { file, field: i.name, expected: 'float32' });
    if (i.dims.length < 2)
      throw new InputError(`input '${i.name}' has dims [${i.dims.join(', ')}]; a pool needs [batch, ...] with per-sample dims`, {
        file,
        field: i.name,
        expected: '[batch, 1, features] or [batch, features]',
      });
    const rowDims = i.dims.slice(1).map((d, k) => {
      if (typeof d === 'number') return d;
      // A step model's time axis may stay symbolic ('time'); it is fed one step.
      if (k === 0 && i.dims.length === 3) return 1;
      throw new InputError(`input '${i.name}' has a symbolic dimension ${JSON.stringify(d)} at axis ${k + 1}; a pool needs fixed per-sample dims`, {
        file,
        field: i.name,
        expected: 'numeric dims after batch (time = 1)',
      });
    });
    const sampleSize = rowDims.reduce((a, b) => a * b, 1);
    const l: InputLayout = { name: i.name, sampleSize, rowSize: sampleSize, rowDims, offset };
    offset += sampleSize;
    return l;
  });
}

/**
 * Copies `size`-value rows between a stream table and a batch tensor, row i ↔ slot
 * `slots[i]` (skipped when -1). Long runs of adjacent slots move with one native `set`, which
 * is what makes 256-stream batches cheap; shorter ones are copied by hand (a subarray per run
 * costs an allocation, more than copying a few hundred values in optimised code).
 */
function copyRuns(from: Float32Array, to: Float32Array, slots: Int32Array, n: number, size: number, gather: boolean): void {
  let i = 0;
  while (i < n) {
    const first = slots[i]!;
    if (first < 0) {
      i++;
      continue;
    }
    let j = i + 1;
    while (j < n && slots[j] === slots[j - 1]! + 1) j++;
    const rows = j - i;
    const slotOff = first * size;
    const rowOff = i * size;
    const len = rows * size;
    if (len >= 512) {
      if (gather) to.set(from.subarray(slotOff, slotOff + len), rowOff);
      else to.set(from.subarray(rowOff, rowOff + len), slotOff);
    } else if (gather) {
      for (let k = 0; k < len; k++) to[rowOff + k] = from[slotOff + k]!;
    } else {
      for (let k = 0; k < len; k++) to[slotOff + k] = from[rowOff + k]!;
    }
    i = j;
  }
}

/**
 * Serves many streams with one step model (DESIGN.md "ONNX conventions": `state_in.*` /
 * `state_out.*` with `streamcell.state` metadata; a model without state works too).
 *
 * Batching: pushes from different streams made in the same tick run together in one
 * `session.run`; a batch runs when it holds `maxBatch` rows or `maxWaitMs` after its first
 * push (default 0: on the next microtask), and one batch runs at a time. A second push for a
 * stream already in the forming batch goes into the next one, so each stream's pushes step
 * its state in order.
 *
 * Bad input rejects only its own push: {@link SampleError} (wrong length, missing input,
 * NaN/Infinity under `nonFinite: 'reject'`), {@link StreamRejectedError} (unknown id under
 * `unknownStream: 'reject'`, no room under `maxStreams`, deleted, closed). Under
 * `maxStreams`, opening a stream evicts the least-recently-used idle stream (counted in
 * `stats().evicted`) unless `whenFull: 'reject'`; when every stream has a push pending the
 * push is rejected with reason `max-streams`.
 *
 * Snapshots hold every stream's state and step counter, tied to the model's SHA-256.
 * `hold-last` values are not part of a snapshot: after a restore they start from 0.
 *
 * @example
 * ```ts
 * const pool = await StreamPool.create('models/ecg/step.onnx', { maxStreams: 10_000 });
 * source.on('sample', async ({ id, values }) => {
 *   const p = await pool.push(id, values);       // { id, step, outputs: { y: Float32Array } }
 *   sink.write({ id, t: p.step, y: Array.from(p.outputs.y) });
 * });
 * setInterval(() => pool.snapshot('/var/lib/streamcell/state.snap'), 60_000);
 * ```
 */
export class StreamPool extends PoolCore<Prediction> {
  /** The step model's state tensors, in metadata order. */
  readonly states: readonly StateSpec[];
  private readonly stateSizes: number[];
  /** One table per state tensor: `capacity` rows of `stateSizes[s]` values. */
  private slabs: Float32Array[];
  /** Reused batch tensors, one per state, `maxBatch` rows. */
  private readonly stateBufs: Float32Array[];
  /** Feeds per state and batch size, built once. */
  private readonly stateFeeds: (TensorData | undefined)[][];
  /** Per state: the last feed of table rows fed in place (reused while the rows and the table are the same). */
  private readonly slabFeeds: (TensorData | undefined)[];
  private readonly slabFeedAt: Int32Array;
  private readonly dimsCache: number[][][];
  /** Per-row table slots of the running batch (-1: do not write back). */
  private readonly rowSlots: Int32Array;
  private readonly sampleTotal: number;
  private readonly holdLast: boolean;
  /** Per stream: its last stepped sample (inputs concatenated) and its last prediction (first prediction output), for rollouts. */
  private lastIn = new Float32Array(0);
  private lastOut = new Float32Array(0);
  /** Values per row of the first prediction output (known after the first batch). */
  private outSize = 0;
  /** Rows of the per-stream tables. */
  private rows = 0;
  private readonly outName: string | undefined;

  private constructor(p: Awaited<ReturnType<typeof openModel>>, layouts: InputLayout[], opts: PoolOptions) {
    super('stream', p.sessions, p.info, p.record, layouts, opts, batchLimit(p.info, Number.MAX_SAFE_INTEGER, p.file));
    this.states = p.info.states;
    this.stateSizes = this.states.map((s) => s.shape.reduce((a, b) => a * b, 1));
    this.slabs = this.states.map(() => new Float32Array(0));
    this.stateBufs = this.stateSizes.map((n) => new Float32Array(n * this.maxBatch));
    this.stateFeeds = this.states.map(() => []);
    this.slabFeeds = this.states.map(() => undefined);
    this.slabFeedAt = new Int32Array(this.states.length);
    this.dimsCache = this.states.map(() => []);
    this.rowSlots = new Int32Array(this.maxBatch);
    this.sampleTotal = layouts.reduce((a, l) => a + l.sampleSize, 0);
    this.holdLast = this.nonFinite === 'hold-last';
    this.outName = p.info.predictionOutputs[0]?.name;
  }

  /**
   * Loads a step model (bytes or a file path), opens a session on the chosen backend and
   * returns an empty pool. Throws {@link InputError} for a sequence model (streamify it, or
   * use {@link WindowPool}) and RangeError for a bad option.
   *
   * @example
   * ```ts
   * const pool = await StreamPool.create(stepBytes, { backend: 'onnxruntime-web', nonFinite: 'hold-last' });
   * ```
   */
  static async create(model: Uint8Array | string, opts: PoolOptions = {}): Promise<StreamPool> {
    const p = await openModel(model, opts);
    try {
      if (p.info.kind !== 'step') {
        throw new InputError(
          'this is a sequence model (a time dimension is not 1 and it has no state tensors); run `streamcell streamify` on it, or serve it with WindowPool',
          {
            file: p.file,
            field: p.info.sampleInputs.map((i) => i.name).join(', '),
            expected: 'a step model',
          },
        );
      }
      return new StreamPool(p, stepLayouts(p.info, p.file), opts);
    } catch (e) {
      await p.release();
      throw e;
    }
  }

  /**
   * Steps stream `id` with one sample and resolves to this stream's outputs. The sample is
   * copied before `push` returns, so the caller may reuse its array.
   *
   * @example
   * ```ts
   * const [a, b] = await Promise.all([pool.push('a', [0.1, 0.2, 0.3]), pool.push('b', [1, 2, 3])]); // one session.run
   * ```
   */
  /** Writes the sample into the next batch that does not come before one holding this stream. */
  protected stage(e: Entry): Batch {
    const b = this.batchFor(e, true);
    const row = b.n;
    const ins = this.inputs;
    const srcs = this.srcs;
    const offs = this.srcOffs;
    let repaired = false;
    for (let k = 0; k < ins.length; k++) {
      const l = ins[k]!;
      const dst = b.inputs[k]!;
      const off = row * l.sampleSize;
      if (this.copyIn(srcs[k]!, offs[k]!, dst, off, l.sampleSize, e.held, l.offset)) repaired = true;
      if (this.holdLast) e.held!.set(dst.subarray(off, off + l.sampleSize), l.offset);
    }
    if (repaired) this.noteRepaired();
    this.stagedRow = row;
    // The step is read when the batch runs: earlier pushes of this stream may still be pending.
    this.stagedStep = -1;
    return b;
  }

  protected growSlots(capacity: number): void {
    this.rows = capacity;
    const grow = (old: Float32Array, size: number) => {
      const next = new Float32Array(capacity * size);
      next.set(old.subarray(0, Math.min(old.length, next.length)));
      return next;
    };
    this.slabs = this.slabs.map((old, s) => grow(old, this.stateSizes[s]!));
    this.lastIn = grow(this.lastIn, this.sampleTotal);
    this.lastOut = grow(this.lastOut, this.outSize);
  }

  protected initSlot(e: Entry): void {
    e.primed = false;
    for (let s = 0; s < this.slabs.length; s++) fillInitialState(this.states[s]!, this.slabs[s]!, e.slot, 1);
    if (this.holdLast) {
      if (e.held === null) e.held = new Float32Array(this.sampleTotal);
      else e.held.fill(0);
    }
  }

  protected prepare(b: Batch, feeds: Record<string, TensorData>): void {
    const n = b.n;
    const slots = this.rowSlots;
    let contiguous = true;
    for (let i = 0; i < n; i++) {
      const e = b.entries[i]!;
      b.gens[i] = e.gen;
      b.steps[i] = e.step;
      slots[i] = e.slot;
      if (i > 0 && e.slot !== slots[i - 1]! + 1) contiguous = false;
    }
    for (let s = 0; s < this.slabs.length; s++) {
      const size = this.stateSizes[s]!;
      const slab = this.slabs[s]!;
      const input = this.states[s]!.input;
      if (contiguous) {
        // Streams pushed in the order they were opened (the common case) occupy adjacent rows:
        // feed the table itself, no gather. Safe: only a reset/delete can write those rows
        // before the run reads them, and their results are then discarded by the gen check.
        let f = this.slabFeeds[s];
        const at = slots[0]!;
        if (f === undefined || this.slabFeedAt[s] !== at || f.dims[0] !== n || f.data.buffer !== slab.buffer) {
          f = { type: 'float32', data: slab.subarray(at * size, (at + n) * size), dims: this.stateDims(s, n) };
          this.slabFeeds[s] = f;
          this.slabFeedAt[s] = at;
        }
        feeds[input] = f;
        continue;
      }
      const buf = this.stateBufs[s]!;
      copyRuns(slab, buf, slots, n, size, true);
      let f = this.stateFeeds[s]![n];
      if (f === undefined) {
        f = { type: 'float32', data: buf.subarray(0, n * size), dims: this.stateDims(s, n) };
        this.stateFeeds[s]![n] = f;
      }
      feeds[input] = f;
    }
  }

  private stateDims(s: number, n: number): number[] {
    const cache = this.dimsCache[s]!;
    return (cache[n] ??= [n, ...this.states[s]!.shape]);
  }

  protected scatter(b: Batch, res: Record<string, TensorData>): void {
    const n = b.n;
    const slots = this.rowSlots;
    for (let i = 0; i < n; i++) {
      const e = b.entries[i]!;
      // Reset, deleted or restored while running: this result must not become its state.
      if (e.alive && e.gen === b.gens[i]) {
        slots[i] = e.slot;
        e.step = b.steps[i]! + 1;
        e.primed = true;
      } else {
        slots[i] = -1;
      }
    }
    for (let s = 0; s < this.slabs.length; s++) {
      const out = res[this.states[s]!.output]!.data as Float32Array;
      copyRuns(out, this.slabs[s]!, slots, n, this.stateSizes[s]!, false);
    }
    this.keepLast(b, res, n, slots);
  }

  /** Keeps each stepped stream's sample and first prediction output: where a rollout starts. */
  private keepLast(b: Batch, res: Record<string, TensorData>, n: number, slots: Int32Array): void {
    if (this.outName === undefined) return;
    const ins = this.inputs;
    if (ins.length === 1) copyRuns(b.inputs[0]!, this.lastIn, slots, n, this.sampleTotal, false);
    else {
      const S = this.sampleTotal;
      for (let i = 0; i < n; i++) {
        const slot = slots[i]!;
        if (slot < 0) continue;
        for (let k = 0; k < ins.length; k++) {
          const l = ins[k]!;
          this.lastIn.set(b.inputs[k]!.subarray(i * l.sampleSize, (i + 1) * l.sampleSize), slot * S + l.offset);
        }
      }
    }
    const t = res[this.outName]!;
    const y = t.data instanceof Float32Array ? t.data : Float32Array.from(t.data as ArrayLike<number>, Number);
    const size = y.length / n;
    if (size !== this.outSize) {
      // First batch (or an output whose size is not declared changed): size the table.
      this.outSize = size;
      this.lastOut = new Float32Array(this.rows * size);
      for (const e of this.entries.values()) e.primed = false;
      for (let i = 0; i < n; i++) if (slots[i]! >= 0) b.entries[i]!.primed = true;
    }
    copyRuns(y, this.lastOut, slots, n, size, false);
  }

  protected notReady(e: Entry): string | null {
    return e.primed ? null : 'no prediction yet (it has not been stepped since it was opened, reset or restored)';
  }

  protected rolloutSeed(rows: readonly Entry[]): RolloutSeed {
    const n = rows.length;
    const S = this.sampleTotal;
    const O = this.outSize;
    const x = new Float32Array(n * S);
    const y = new Float32Array(n * O);
    let state: Float32Array[] = this.states.map((_, s) => new Float32Array(n * this.stateSizes[s]!));
    for (let i = 0; i < n; i++) {
      const slot = rows[i]!.slot;
      x.set(this.lastIn.subarray(slot * S, (slot + 1) * S), i * S);
      y.set(this.lastOut.subarray(slot * O, (slot + 1) * O), i * O);
      for (let s = 0; s < state.length; s++) {
        const size = this.stateSizes[s]!;
        state[s]!.set(this.slabs[s]!.subarray(slot * size, (slot + 1) * size), i * size);
      }
    }
    const ins = this.inputs;
    const parts = ins.length === 1 ? [] : ins.map((l) => new Float32Array(n * l.sampleSize));
    const outName = this.outName!;
    return {
      n,
      x,
      y,
      run: async (session: Session, next: Float32Array | null) => {
        const feeds: Record<string, TensorData> = {};
        const xs = next ?? x;
        for (let k = 0; k < ins.length; k++) {
          const l = ins[k]!;
          let data = xs;
          if (ins.length > 1) {
            data = parts[k]!;
            for (let i = 0; i < n; i++) data.set(xs.subarray(i * S + l.offset, i * S + l.offset + l.sampleSize), i * l.sampleSize);
          }
          feeds[l.name] = { type: 'float32', data, dims: [n, ...l.rowDims] };
        }
        for (let s = 0; s < state.length; s++) feeds[this.states[s]!.input] = { type: 'float32', data: state[s]!, dims: [n, ...this.states[s]!.shape] };
        const res = await session.run(feeds);
        const f32 = (t: TensorData) => (t.data instanceof Float32Array ? t.data : Float32Array.from(t.data as ArrayLike<number>, Number));
        state = this.states.map((st) => f32(res[st.output]!));
        return f32(res[outName]!);
      },
    };
  }

  protected snapshotTensors(): { name: string; shape: number[] }[] {
    return this.states.map((s) => ({ name: s.name, shape: [...s.shape] }));
  }

  protected saveSlot(e: Entry, data: Float32Array, offset: number): void {
    for (let s = 0; s < this.slabs.length; s++) {
      const size = this.stateSizes[s]!;
      data.set(this.slabs[s]!.subarray(e.slot * size, (e.slot + 1) * size), offset);
      offset += size;
    }
  }

  protected loadSlot(e: Entry, data: Float32Array, offset: number): void {
    for (let s = 0; s < this.slabs.length; s++) {
      const size = this.stateSizes[s]!;
      this.slabs[s]!.set(data.subarray(offset, offset + size), e.slot * size);
      offset += size;
    }
  }
}
