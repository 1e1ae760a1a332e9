/**
 * The chunked form of a step model, for offline runs: the same graph fed T steps of one
 * stream per call (sample input `[1, T, C]`), with every step's prediction and the state after
 * the last step. A streamified recurrent model already runs its LSTM/GRU/RNN nodes over any
 * number of steps; only its head reads the last step (`Y_h`). The rewrite feeds the head every
 * step (`Y`, reshaped to `[T·B, H]` rows) instead — the head is per batch row, so it computes
 * the same numbers per step — and frees the declared time dimension.
 *
 * Conservative: anything but the pattern streamify writes (forward LSTM/GRU/RNN whose state
 * outputs are squeezed `Y_h`/`Y_c`, a head fed by `Squeeze(Y_h, 0)` or by `Y`, one float32
 * sample input) is refused with a reason, and the caller checks the result numerically against
 * the step model ({@link ChunkedStepper.create}) before trusting it.
 *
 * Lives in the runtime (not src/export) so `streamcell run` does not load the exporter.
 */
import { decodeUserModel, encodeModel, toNum, type AttributeProto, type NodeProto, type TensorProto } from '../onnx/proto.js';
import type { Backend, Session, SessionOptions, TensorData } from './backend.js';
import { initialStateRows, type ModelInfo } from './step-model.js';

const RECURRENT = new Set(['LSTM', 'GRU', 'RNN']);

/** The rewritten model, or why a model has no chunked form. */
export type ChunkedModel = { ok: true; model: Uint8Array; input: string; sampleSize: number } | { ok: false; reason: string };

function attr(n: NodeProto, name: string): AttributeProto | undefined {
  return (n.attribute ?? []).find((a) => a.name === name);
}

function int64Tensor(name: string, values: number[]): TensorProto {
  return { name, dataType: 7, dims: [values.length], rawData: new Uint8Array(BigInt64Array.from(values.map(BigInt)).buffer) };
}

function tensorInts(t: TensorProto): number[] {
  if (t.rawData && t.rawData.length > 0) {
    const raw = t.rawData;
    const copy = new Uint8Array(raw.length);
    copy.set(raw);
    return Array.from(new BigInt64Array(copy.buffer), Number);
  }
  return (t.int64Data ?? []).map((v) => toNum(v as number));
}

/**
 * Rewrites a step model into its chunked form (see the module comment). Pure: the bytes in,
 * the new bytes (or a reason) out; no session.
 */
export function chunkedStepModel(bytes: Uint8Array, info: ModelInfo): ChunkedModel {
  const no = (reason: string): ChunkedModel => ({ ok: false, reason });
  if (info.kind !== 'step' || info.states.length === 0) return no('the model has no recurrent state');
  if (info.sampleInputs.length !== 1) return no(`the model has ${info.sampleInputs.length} sample inputs (one is chunked)`);
  const input = info.sampleInputs[0]!;
  const d = input.dims;
  if (input.dtype !== 'float32' || d.length !== 3 || !(d[1] === 1 || typeof d[1] === 'string') || typeof d[2] !== 'number') {
    return no(`sample input '${input.name}' is ${input.dtype} [${d.join(', ')}], not float32 [batch, time, features]`);
  }
  const m = decodeUserModel(bytes);
  const g = m.graph;
  const nodes = g.node ?? [];
  const opset = toNum((m.opsetImport ?? []).find((o) => !o.domain || o.domain === 'ai.onnx')?.version as number) || 13;
  const inits = new Map((g.initializer ?? []).map((t) => [t.name!, t]));
  const producer = new Map<string, NodeProto>();
  const consumers = new Map<string, NodeProto[]>();
  for (const n of nodes) {
    for (const o of n.output ?? []) if (o) producer.set(o, n);
    for (const i of n.input ?? []) if (i) (consumers.get(i) ?? consumers.set(i, []).get(i)!).push(n);
  }
  const squeezeAxes = (n: NodeProto): number[] | undefined => {
    const a = attr(n, 'axes');
    if (a) return (a.ints ?? []).map((v) => toNum(v as number));
    const t = n.input?.[1] ? inits.get(n.input[1]) : undefined;
    return t ? tensorInts(t) : undefined;
  };
  // Every recurrent node: forward, time-major (layout 0).
  for (const n of nodes) {
    if (!RECURRENT.has(n.opType ?? '')) continue;
    const dir = attr(n, 'direction');
    const dirText = dir?.s ? new TextDecoder().decode(dir.s) : 'forward';
    if (dirText !== 'forward') return no(`${n.opType} '${n.name}' runs ${dirText}`);
    if (toNum(attr(n, 'layout')?.i as number) === 1) return no(`${n.opType} '${n.name}' is batch-major`);
  }
  // Every state output: a squeezed Y_h/Y_c of a recurrent node (through Identity nodes).
  const stateSqueezes = new Set<NodeProto>();
  for (const s of info.states) {
    let p = producer.get(s.output);
    const chain: NodeProto[] = [];
    while (p?.opType === 'Identity') {
      chain.push(p);
      p = producer.get(p.input![0]!);
    }
    const src = p?.opType === 'Squeeze' ? producer.get(p.input![0]!) : undefined;
    const which = src?.output?.indexOf(p!.input![0]!) ?? -1;
    if (!src || !RECURRENT.has(src.opType ?? '') || which < 1 || JSON.stringify(squeezeAxes(p!)) !== '[0]') {
      return no(`state '${s.name}' is not a recurrent layer's last hidden or cell state`);
    }
    stateSqueezes.add(p!);
    for (const c of chain) stateSqueezes.add(c);
  }
  // Heads fed by Squeeze(Y_h, 0): feed them every step instead.
  const replace = new Map<NodeProto, NodeProto[]>();
  const added: TensorProto[] = [];
  for (const n of nodes) {
    if (!RECURRENT.has(n.opType ?? '')) continue;
    const outs = n.output ?? [];
    if (n.opType === 'LSTM' && outs[2] && (consumers.get(outs[2]) ?? []).some((c) => !stateSqueezes.has(c))) {
      return no(`the cell state of LSTM '${n.name}' feeds more than the state output`);
    }
    const heads = (outs[1] ? (consumers.get(outs[1]) ?? []) : []).filter((c) => !stateSqueezes.has(c));
    if (heads.length === 0) continue;
    const hidden = toNum(attr(n, 'hidden_size')?.i as number);
    if (!(hidden > 0)) return no(`${n.opType} '${n.name}' has no hidden_size`);
    if (g.output?.some((o) => o.name === outs[1])) return no(`the last hidden state of '${n.name}' is a model output`);
    let y = outs[0];
    if (!y) {
      y = `${outs[1]}__chunk_y`;
      const o = [...outs];
      o[0] = y;
      n.output = o;
    }
    for (const h of heads) {
      if (h.opType !== 'Squeeze' || JSON.stringify(squeezeAxes(h)) !== '[0]') return no(`the last hidden state of '${n.name}' feeds a ${h.opType} node`);
      const out = h.output![0]!;
      const axes = `${out}__chunk_axes`;
      const shape = `${out}__chunk_shape`;
      const tbh = `${out}__chunk_tbh`;
      added.push(int64Tensor(shape, [-1, hidden]));
      const squeeze: NodeProto =
        opset >= 13
          ? { opType: 'Squeeze', name: `${out}__chunk_squeeze`, input: [y, axes], output: [tbh] }
          : { opType: 'Squeeze', name: `${out}__chunk_squeeze`, input: [y], output: [tbh], attribute: [{ name: 'axes', type: 7, ints: [1] }] };
      if (opset >= 13) added.push(int64Tensor(axes, [1]));
      replace.set(h, [squeeze, { opType: 'Reshape', name: `${out}__chunk_reshape`, input: [tbh, shape], output: [out] }]);
    }
  }
  g.node = nodes.flatMap((n) => replace.get(n) ?? [n]);
  // The squeezes' axes the rewrite replaced would be left unused (onnxruntime warns about them).
  const used = new Set(g.node.flatMap((n) => n.input ?? []));
  g.initializer = [...(g.initializer ?? []).filter((t) => used.has(t.name!) || !(replace.size > 0)), ...added];
  // Shapes recorded for one step no longer hold; onnxruntime infers them again.
  g.valueInfo = [];
  const gi = (g.input ?? []).find((i) => i.name === input.name)!;
  gi.type!.tensorType!.shape!.dim![1] = { dimParam: 'streamcell_chunk' };
  const stateOut = new Set(info.states.map((s) => s.output));
  for (const o of g.output ?? []) {
    if (stateOut.has(o.name!)) continue;
    const dims = o.type?.tensorType?.shape?.dim;
    if (dims?.length) dims[0] = { dimParam: 'streamcell_rows' };
  }
  return { ok: true, model: encodeModel(m), input: input.name, sampleSize: d[2] };
}

/** Options of {@link ChunkedStepper.create}. */
export interface ChunkedStepperOptions {
  session?: SessionOptions;
  /** Steps of the numerical check against the step model (default 9). */
  checkSteps?: number;
  /** Max abs difference the check allows (default 1e-5). */
  tolerance?: number;
}

/**
 * Runs a step model's chunked form: {@link run} steps one stream's state over T samples in
 * one call. Created only when the chunked form matches the step model step by step on a
 * seeded check sequence from a non-initial state; otherwise {@link create} says why not.
 */
export class ChunkedStepper {
  private constructor(
    private readonly session: Session,
    private readonly info: ModelInfo,
    readonly input: string,
    readonly sampleSize: number,
  ) {}

  /** The model's state tensors. */
  get states(): ModelInfo['states'] {
    return this.info.states;
  }

  /** Prediction outputs, in model order. */
  get outputs(): string[] {
    return this.info.predictionOutputs.map((o) => o.name);
  }

  /** A fresh state (every tensor at its initial value) for one stream. */
  initialState(): Record<string, TensorData> {
    const out: Record<string, TensorData> = {};
    for (const s of this.info.states) out[s.input] = { type: 'float32', data: initialStateRows(s, 1), dims: [1, ...s.shape] };
    return out;
  }

  /**
   * Steps `state` over `steps` samples (`x`: steps × sampleSize values, normalised). Returns
   * each prediction output as steps × its per-step size, and the new state.
   */
  async run(
    x: Float32Array,
    steps: number,
    state: Record<string, TensorData>,
  ): Promise<{ outputs: Record<string, Float32Array>; state: Record<string, TensorData> }> {
    return this.runRows(x, 1, steps, state);
  }

  /**
   * One step of `rows` streams at once (x: rows × sampleSize; each state tensor `rows` rows,
   * in the same order): the step model batched across streams. Outputs: rows × per-step
   * size, row r for stream r. Only when {@link batched}.
   */
  async step(
    x: Float32Array,
    rows: number,
    state: Record<string, TensorData>,
  ): Promise<{ outputs: Record<string, Float32Array>; state: Record<string, TensorData> }> {
    return this.runRows(x, rows, 1, state);
  }

  /** Whether {@link step} with several rows passed the check (rows not mixed up). */
  batched = false;

  private async runRows(
    x: Float32Array,
    rows: number,
    steps: number,
    state: Record<string, TensorData>,
  ): Promise<{ outputs: Record<string, Float32Array>; state: Record<string, TensorData> }> {
    const feeds: Record<string, TensorData> = { ...state, [this.input]: { type: 'float32', data: x, dims: [rows, steps, this.sampleSize] } };
    const r = await this.session.run(feeds);
    const next: Record<string, TensorData> = {};
    for (const s of this.info.states) next[s.input] = r[s.output]!;
    const outputs: Record<string, Float32Array> = {};
    for (const o of this.info.predictionOutputs) {
      const t = r[o.name]!;
      if (t.type !== 'float32' || t.data.length % (steps * rows) !== 0)
        throw new Error(`chunked output '${o.name}': ${t.data.length} ${t.type} values for ${steps} steps`);
      outputs[o.name] = t.data as Float32Array;
    }
    return { outputs, state: next };
  }

  async release(): Promise<void> {
    await this.session.release();
  }

  /**
   * Rewrites `bytes`, opens the chunked session on `backend`, and checks it against `step` (a
   * session of the step model itself): a seeded sequence stepped one call per sample versus
   * chunks of uneven lengths, every prediction and the final state within `tolerance`.
   */
  static async create(
    bytes: Uint8Array,
    info: ModelInfo,
    backend: Backend,
    step: Session,
    opts: ChunkedStepperOptions = {},
  ): Promise<{ ok: true; stepper: ChunkedStepper } | { ok: false; reason: string }> {
    const plan = chunkedStepModel(bytes, info);
    if (!plan.ok) return plan;
    let session: Session;
    try {
      session = await backend.createSession(plan.model, opts.session);
    } catch (e) {
      return { ok: false, reason: `the chunked form does not load: ${(e as Error).message.split('\n')[0]}` };
    }
    const stepper = new ChunkedStepper(session, info, plan.input, plan.sampleSize);
    try {
      const reason = await stepper.check(step, opts.checkSteps ?? 9, opts.tolerance ?? 1e-5);
      if (reason) {
        await session.release();
        return { ok: false, reason };
      }
    } catch (e) {
      await session.release();
      return { ok: false, reason: `the chunked form fails: ${(e as Error).message.split('\n')[0]}` };
    }
    return { ok: true, stepper };
  }

  /** The numerical check of {@link create}; returns a reason on mismatch. */
  private async check(step: Session, steps: number, tol: number): Promise<string | undefined> {
    const C = this.sampleSize;
    const x = new Float32Array(steps * C);
    let a = 12345;
    for (let i = 0; i < x.length; i++) {
      a = (Math.imul(a, 1103515245) + 12345) >>> 0;
      x[i] = (a / 2 ** 32) * 4 - 2;
    }
    // Reference: one step per call.
    let state = this.initialState();
    const want: Record<string, number[]> = {};
    for (let t = 0; t < steps; t++) {
      const r = await step.run({ ...state, [this.input]: { type: 'float32', data: x.slice(t * C, (t + 1) * C), dims: [1, 1, C] } });
      state = {};
      for (const s of this.info.states) state[s.input] = r[s.output]!;
      for (const o of this.outputs) (want[o] ??= []).push(...Array.from(r[o]!.data as Float32Array));
    }
    // Chunks of 1, 3 and the rest: state carried between chunks, and a chunk of one step.
    let cs = this.initialState();
    const got: Record<string, number[]> = {};
    for (const [from, to] of [
      [0, 1],
      [1, 4],
      [4, steps],
    ] as const) {
      const r = await this.run(x.slice(from * C, to * C), to - from, cs);
      cs = r.state;
      for (const o of this.outputs) (got[o] ??= []).push(...Array.from(r.outputs[o]!));
    }
    for (const o of this.outputs) {
      if (got[o]!.length !== want[o]!.length) return `chunked output '${o}' has ${got[o]!.length} values for ${want[o]!.length} stepped`;
      const err = Math.max(0, ...got[o]!.map((v, i) => Math.abs(v - want[o]![i]!)));
      if (!(err <= tol)) return `chunked output '${o}' differs from stepping by ${err}`;
    }
    for (const s of this.info.states) {
      const w = state[s.input]!.data as Float32Array;
      const gt = cs[s.input]!.data as Float32Array;
      const err = Math.max(0, ...Array.from(w, (v, i) => Math.abs(v - gt[i]!)));
      if (!(err <= tol)) return `chunked state '${s.name}' differs from stepping by ${err}`;
    }
    this.batched = await this.checkBatched(step, x, steps, want, state, tol);
    return undefined;
  }

  /**
   * Two streams stepped together (rows 0 and 1 of each call): the sequence `x` and `x` with
   * its steps reversed, against each stepped alone. False (no batching) on any difference.
   */
  private async checkBatched(
    step: Session,
    x: Float32Array,
    steps: number,
    want: Record<string, number[]>,
    finalState: Record<string, TensorData>,
    tol: number,
  ): Promise<boolean> {
    const C = this.sampleSize;
    const rev = new Float32Array(x.length);
    for (let t = 0; t < steps; t++) rev.set(x.subarray((steps - 1 - t) * C, (steps - t) * C), t * C);
    let st = this.initialState();
    const want2: Record<string, number[]> = {};
    for (let t = 0; t < steps; t++) {
      const r = await step.run({ ...st, [this.input]: { type: 'float32', data: rev.slice(t * C, (t + 1) * C), dims: [1, 1, C] } });
      st = {};
      for (const s of this.info.states) st[s.input] = r[s.output]!;
      for (const o of this.outputs) (want2[o] ??= []).push(...Array.from(r[o]!.data as Float32Array));
    }
    let both: Record<string, TensorData> = {};
    for (const s of this.info.states) both[s.input] = { type: 'float32', data: initialStateRows(s, 2), dims: [2, ...s.shape] };
    let err = 0;
    for (let t = 0; t < steps; t++) {
      const xx = new Float32Array(2 * C);
      xx.set(x.subarray(t * C, (t + 1) * C), 0);
      xx.set(rev.subarray(t * C, (t + 1) * C), C);
      const r = await this.step(xx, 2, both);
      both = r.state;
      for (const o of this.outputs) {
        const out = r.outputs[o]!;
        const k = out.length / 2;
        for (let j = 0; j < k; j++) err = Math.max(err, Math.abs(out[j]! - want[o]![t * k + j]!), Math.abs(out[k + j]! - want2[o]![t * k + j]!));
      }
    }
    for (const s of this.info.states) {
      const got = both[s.input]!.data as Float32Array;
      const a = finalState[s.input]!.data as Float32Array;
      const b = st[s.input]!.data as Float32Array;
      for (let i = 0; i < a.length; i++) err = Math.max(err, Math.abs(got[i]! - a[i]!), Math.abs(got[a.length + i]! - b[i]!));
    }
    return err <= tol;
  }
}
