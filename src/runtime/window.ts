/**
 * {@link WindowPool}: serves many streams with a sequence model that must see a fixed
 * window of the last W samples (a model that was not, or cannot be, streamified).
 *
 * Each stream keeps a ring of its last W samples. When a prediction is due, the window is
 * unrolled oldest-first straight into the forming batch's row, so the ring can move on at
 * once and a stream may hold several rows of one batch (windows have no state to order).
 */
import { MAX_GENERATED_ELEMENTS, MAX_WINDOW } from '../limits.js';
import { InputError } from '../errors.js';
import type { TensorData } from './backend.js';
import type { Session } from './backend.js';
import { batchLimit, openModel, PoolCore, type Batch, type Entry, type InputLayout, type RolloutSeed } from './pool-core.js';
import type { Prediction, WindowPoolOptions } from './pool-types.js';
import type { ModelInfo } from './step-model.js';
import { META } from '../model-format/index.js';

function windowLayouts(info: ModelInfo, opt: number | undefined, file?: string): { layouts: InputLayout[]; window: number } {
  let window = opt;
  if (window !== undefined && (!Number.isInteger(window) || window < 1)) throw new RangeError(`option 'window' must be an integer >= 1, got ${window}`);
  for (const i of info.sampleInputs) {
    if (i.dims.length < 3)
      throw new InputError(`input '${i.name}' has dims [${i.dims.join(', ')}]; a window model takes [batch, time, features...]`, {
        file,
        field: i.name,
        expected: '[batch, time, features]',
      });
    const t = i.dims[1];
    if (typeof t === 'number') {
      if (window !== undefined && window !== t) {
        throw new InputError(`input '${i.name}' has a fixed time dimension of ${t}, but the window is ${window}`, {
          file,
          field: i.name,
          expected: `window ${t} (or no 'window' option)`,
        });
      }
      window = t;
    }
  }
  if (window === undefined) {
    throw new InputError("the model's time dimension is symbolic; pass the window length as option 'window'", {
      file,
      field: 'window',
      expected: 'an integer window length',
    });
  }
  const w = window;
  let offset = 0;
  const layouts = info.sampleInputs.map((i) => {
    if (i.dtype !== 'float32')
      throw new InputError(`input '${i.name}' is ${i.dtype}; a pool feeds float32 samples`, { file, field: i.name, expected: 'float32' });
    const feat = i.dims.slice(2);
    if (!feat.every((d) => typeof d === 'number'))
      throw new InputError(`input '${i.name}' has symbolic feature dims [${feat.join(', ')}]`, { file, field: i.name, expected: 'numeric feature dims' });
    const sampleSize = (feat as number[]).reduce((a, b) => a * b, 1);
    const l: InputLayout = { name: i.name, sampleSize, rowSize: w * sampleSize, rowDims: [w, ...(feat as number[])], offset };
    offset += sampleSize;
    return l;
  });
  // Each stream keeps its last W samples: a window the size of a declared 10⁹ steps is not servable.
  if (w > MAX_WINDOW || w * offset > MAX_GENERATED_ELEMENTS) {
    const first = info.sampleInputs[0]!;
    throw new InputError(
      `a window of ${w} samples × ${offset} values per sample (input '${first.name}' [${first.dims.join(', ')}]) is over streamcell's limits for a stream's window: ${MAX_WINDOW} samples, 2^26 (${MAX_GENERATED_ELEMENTS}) values`,
      {
        file,
        field: first.name,
        expected: `a window of at most ${Math.min(MAX_WINDOW, Math.floor(MAX_GENERATED_ELEMENTS / Math.max(1, offset)))} samples`,
      },
    );
  }
  return { layouts, window: w };
}

/**
 * Serves many streams with a fixed-window sequence model: each push appends one sample to
 * the stream's window; once W samples have arrived, every `hop`-th push runs the model on
 * the last W samples (oldest first) and resolves to a {@link Prediction}, the others
 * resolve to `null` at once. Due windows from many streams are batched into one
 * `session.run`, under the same `maxBatch`/`maxWaitMs` rules as {@link StreamPool}, and the
 * same policies for bad samples, unknown ids, `maxStreams` and snapshots apply (a snapshot
 * holds each stream's window and sample counter; `hold-last` repairs from the previous
 * sample in the window).
 *
 * @example
 * ```ts
 * // model input x: [batch, 52, 1]; predict every 4 samples
 * const pool = await WindowPool.create('co2.onnx', { hop: 4 });
 * const p = await pool.push('site-1', [value]);
 * if (p) console.log(p.step, p.outputs.delta[0]);
 * ```
 */
export class WindowPool extends PoolCore<Prediction | null> {
  /** Samples per window (W). */
  readonly window: number;
  /** Samples between predictions once the window is full. */
  readonly hop: number;
  /** One ring table per input: `capacity` streams × W rows × sampleSize. */
  private rings: Float32Array[];
  private readonly holdLast: boolean;

  private constructor(p: Awaited<ReturnType<typeof openModel>>, layouts: InputLayout[], window: number, opts: WindowPoolOptions) {
    super('window', p.sessions, p.info, p.record, layouts, opts, batchLimit(p.info, Number.MAX_SAFE_INTEGER, p.file));
    this.window = window;
    if (opts.hop !== undefined && (!Number.isInteger(opts.hop) || opts.hop < 1)) throw new RangeError(`option 'hop' must be an integer >= 1, got ${opts.hop}`);
    this.hop = opts.hop ?? 1;
    this.rings = layouts.map(() => new Float32Array(0));
    this.holdLast = this.nonFinite === 'hold-last';
  }

  /**
   * Loads a sequence model (bytes or path) and returns an empty pool. The window is the
   * model's fixed time dimension, or `opts.window` when that is symbolic. Throws
   * {@link InputError} for a model with state tensors (use {@link StreamPool}).
   *
   * @example
   * ```ts
   * const pool = await WindowPool.create(seqBytes, { window: 32, hop: 8 });
   * ```
   */
  static async create(model: Uint8Array | string, opts: WindowPoolOptions = {}): Promise<WindowPool> {
    const p = await openModel(model, opts);
    try {
      if (p.info.states.length > 0) {
        throw new InputError('this model has state tensors; serve it with StreamPool', {
          file: p.file,
          field: META.state,
          expected: 'a sequence model without state',
        });
      }
      const { layouts, window } = windowLayouts(p.info, opts.window, p.file);
      return new WindowPool(p, layouts, window, opts);
    } catch (e) {
      await p.release();
      throw e;
    }
  }

  /**
   * Appends the sample to the stream's window. A push resolves to a prediction when one is
   * due (the window is full and `hop` samples have arrived since the last), else to `null`
   * (`pushMany`: step -1 and no error).
   */
  protected stage(e: Entry): Batch | null {
    e.lastUsed = Date.now();
    const W = this.window;
    const ins = this.inputs;
    const row = e.head;
    const prev = row === 0 ? W - 1 : row - 1;
    let repaired = false;
    for (let k = 0; k < ins.length; k++) {
      const l = ins[k]!;
      const f = l.sampleSize;
      const base = e.slot * W * f;
      const ring = this.rings[k]!;
      if (this.copyIn(this.srcs[k]!, this.srcOffs[k]!, ring, base + row * f, f, this.holdLast ? ring : null, base + prev * f)) repaired = true;
    }
    if (repaired) this.noteRepaired();
    e.head = row + 1 === W ? 0 : row + 1;
    const t = e.step++;
    const seen = t + 1;
    if (seen < W || (seen - W) % this.hop !== 0) return null;
    const b = this.batchFor(e, false);
    const r = b.n;
    for (let k = 0; k < ins.length; k++) this.unroll(e, k, b.inputs[k]!, r * ins[k]!.rowSize);
    this.stagedRow = r;
    this.stagedStep = t;
    return b;
  }

  /** Copies stream `e`'s window for input `k`, oldest sample first, to `dst` at `off`. */
  private unroll(e: Entry, k: number, dst: Float32Array, off: number): void {
    const f = this.inputs[k]!.sampleSize;
    const W = this.window;
    const ring = this.rings[k]!;
    const base = e.slot * W * f;
    // Oldest is at `head`: rows head..W-1, then 0..head-1.
    const split = e.head * f;
    const total = W * f;
    const tail = total - split;
    for (let i = 0; i < tail; i++) dst[off + i] = ring[base + split + i]!;
    for (let i = 0; i < split; i++) dst[off + tail + i] = ring[base + i]!;
  }

  protected notReady(e: Entry): string | null {
    return e.step >= this.window ? null : `its window holds ${e.step} of ${this.window} samples`;
  }

  /** Copies the rows' windows; each step slides them one sample on, the fed sample last. */
  protected rolloutSeed(rows: readonly Entry[]): RolloutSeed {
    const n = rows.length;
    const ins = this.inputs;
    const S = this.sampleSize;
    const W = this.window;
    const wins = ins.map((l, k) => {
      const w = new Float32Array(n * l.rowSize);
      for (let i = 0; i < n; i++) this.unroll(rows[i]!, k, w, i * l.rowSize);
      return w;
    });
    // Each row's newest sample: the last of its window.
    const x = new Float32Array(n * S);
    for (let i = 0; i < n; i++)
      for (let k = 0; k < ins.length; k++) {
        const l = ins[k]!;
        const end = (i + 1) * l.rowSize;
        x.set(wins[k]!.subarray(end - l.sampleSize, end), i * S + l.offset);
      }
    const outName = this.info.predictionOutputs[0]!.name;
    return {
      n,
      x,
      run: async (session: Session, next: Float32Array | null) => {
        const feeds: Record<string, TensorData> = {};
        for (let k = 0; k < ins.length; k++) {
          const l = ins[k]!;
          const w = wins[k]!;
          if (next !== null) {
            const f = l.sampleSize;
            for (let i = 0; i < n; i++) {
              const base = i * l.rowSize;
              w.copyWithin(base, base + f, base + W * f);
              w.set(next.subarray(i * S + l.offset, i * S + l.offset + f), base + (W - 1) * f);
            }
          }
          feeds[l.name] = { type: 'float32', data: w, dims: [n, ...l.rowDims] };
        }
        const t = (await session.run(feeds))[outName]!;
        return t.data instanceof Float32Array ? t.data : Float32Array.from(t.data as ArrayLike<number>, Number);
      },
    };
  }

  protected growSlots(capacity: number): void {
    this.rings = this.rings.map((old, k) => {
      const next = new Float32Array(capacity * this.window * this.inputs[k]!.sampleSize);
      next.set(old.subarray(0, Math.min(old.length, next.length)));
      return next;
    });
  }

  protected initSlot(e: Entry): void {
    e.head = 0;
    for (let k = 0; k < this.rings.length; k++) {
      const n = this.window * this.inputs[k]!.sampleSize;
      this.rings[k]!.fill(0, e.slot * n, (e.slot + 1) * n);
    }
  }

  protected prepare(_b: Batch, _feeds: Record<string, TensorData>): void {
    // Windows were copied into the batch at push time; nothing to gather.
  }

  protected scatter(_b: Batch, _res: Record<string, TensorData>): void {
    // No recurrent state to write back.
  }

  protected snapshotTensors(): { name: string; shape: number[] }[] {
    return this.inputs.map((l) => ({ name: `window.${l.name}`, shape: [...l.rowDims] }));
  }

  protected saveSlot(e: Entry, data: Float32Array, offset: number): void {
    for (let k = 0; k < this.inputs.length; k++) {
      this.unroll(e, k, data, offset);
      offset += this.inputs[k]!.rowSize;
    }
  }

  protected loadSlot(e: Entry, data: Float32Array, offset: number): void {
    // Saved oldest-first, so the restored ring starts with head 0 (the oldest row).
    e.head = 0;
    for (let k = 0; k < this.inputs.length; k++) {
      const n = this.inputs[k]!.rowSize;
      this.rings[k]!.set(data.subarray(offset, offset + n), e.slot * n);
      offset += n;
    }
  }
}
