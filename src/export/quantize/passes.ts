/**
 * Graph rewrites for quantization. Every pass edits a decoded model in place and reports what
 * it changed per op type, and what it left alone and why.
 *
 * int8 (dynamic, weights int8 per output channel):
 * - MatMul with a constant B → DynamicQuantizeLinear(A) + MatMulInteger + scale (the pattern
 *   onnxruntime fuses into MatMulIntegerToFloat); also inside Scan bodies.
 * - LSTM → com.microsoft.DynamicQuantizeLSTM (int8 W/R, transposed as the kernel wants).
 * - GRU / RNN / Conv → int8 weights + Cast·scale, which onnxruntime folds back to float32
 *   when the session loads: the size win at float speed (onnxruntime has no integer GRU/RNN
 *   kernel). Gather tables → int8 rows gathered, then DequantizeLinear on what was gathered.
 * - With `kernels: 'float'`, MatMul and LSTM weights too: the int8 file, float's compute.
 * int8-static: int8 weights everywhere (recurrent ones as int8 + Cast·scale, folded at load), plus
 * QuantizeLinear/DequantizeLinear pairs with calibrated, fixed ranges on the activations
 * entering MatMul and Conv (see calibrate.ts). Fixed scales make a stream's result independent
 * of the other streams in its batch and of the window length, so a quantized step model
 * streams exactly like its quantized sequence model. Dynamic int8 quantizes activations with
 * a scale computed per call over the whole batch (and, in DynamicQuantizeLSTM, over all time
 * steps): results then depend slightly (≈1e-3) on what else is in the call.
 * fp16: float initializers stored as float16 with a Cast back to float32 (compute stays
 * float32: onnxruntime's x86 CPU provider has no float16 LSTM/GRU/MatMul kernels).
 */
import { AttributeType, type GraphProto, type NodeProto, type TensorProto } from '../../onnx/proto.js';
import { attrInt, GraphEdit, pruneDead, topoSort } from '../onnx/edit.js';
import { floatValues, INT8_KERNEL_BITS, quantizeInt8, toFloat16, transposeData } from './weights.js';

export interface PassReport {
  quantized: Record<string, number>;
  skipped: { node: string; op: string; reason: string }[];
  /** fp16: values clamped to ±65504 and non-zero values flushed to zero. */
  clamped?: number;
  flushed?: number;
}

/** Activation range for static quantization, keyed by tensor name. */
export type Ranges = Map<string, { min: number; max: number }>;

/** Weights smaller than this stay float: scales and zero points would cost more than they save. */
const MIN_WEIGHTS = 16;
/**
 * Per-channel scales (a float + a zero point per output column) pay off only when each column
 * has enough rows; a kernel fed by 1–3 sensor channels gets one scale.
 */
const PER_CHANNEL_MIN_ROWS = 16;

class QuantEdit extends GraphEdit {
  readonly inits = new Map<string, TensorProto>();
  readonly report: PassReport = { quantized: {}, skipped: [] };
  /** Scale initializers: they stay float32 (never stored as float16). */
  readonly scales = new Set<string>();
  constructor(
    readonly root: GraphProto,
    opset: number,
  ) {
    super(root, opset);
    for (const t of root.initializer ?? []) this.inits.set(t.name!, t);
  }
  count(op: string): void {
    this.report.quantized[op] = (this.report.quantized[op] ?? 0) + 1;
  }
  skip(n: NodeProto, reason: string): void {
    this.report.skipped.push({ node: n.name || n.output?.[0] || '?', op: n.opType!, reason });
  }
  addInit(base: string, dataType: number, dims: number[], raw: ArrayBufferView): string {
    const name = this.uniq(base);
    const t: TensorProto = { name, dataType, dims, rawData: new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength).slice() };
    this.root.initializer = [...(this.root.initializer ?? []), t];
    this.inits.set(name, t);
    return name;
  }
  int8(base: string, w: { q: Int8Array; scale: Float32Array; dims: number[] }, scaleDims: number[]) {
    return {
      q: this.addInit(`${base}_int8`, 3, w.dims, w.q),
      scale: this.addInit(`${base}_scale`, 1, scaleDims, w.scale),
      zp: this.addInit(`${base}_zero_point`, 3, scaleDims, new Int8Array(w.scale.length)),
    };
  }
  /** Node appended to `target` (the root graph or a subgraph body). */
  emit(target: NodeProto[], op: string, inputs: string[], attrs: { name: string; i?: number; type: number }[] = [], output?: string): string {
    const out = output ?? this.uniq(`${op.toLowerCase()}_q`);
    // Node names are optional in ONNX; generated nodes go without (a few bytes each in small models).
    target.push({ opType: op, input: inputs, output: [out], attribute: attrs });
    return out;
  }
}

/** int8 weights + DequantizeLinear producing a float tensor under the original name. */
/**
 * Per-channel scales cost 5 bytes per column (a float scale, an int8 zero point). Use them when
 * that is under 5% of the column's int8 weights (≥ 100 rows) and cuts the quantization error
 * by a fifth, or when it halves the error whatever the cost. Recurrent kernels of small models
 * (64 rows, columns of similar range) keep one scale: a 7.8% larger file for little gain.
 */
function perChannelPays(w: Float32Array, dims: number[], bits = 8): boolean {
  const rows = w.length / dims[dims.length - 1]!;
  const ratio = channelErrorRatio(w, dims, bits);
  return ratio < 0.5 || (rows >= 100 && ratio < 0.8);
}

/** Squared quantization error with per-column scales over that with one scale. */
function channelErrorRatio(w: Float32Array, dims: number[], bits: number): number {
  const err = (axis: number | undefined) => {
    const q = quantizeInt8(w, dims, axis, bits);
    const inner = axis === undefined ? 1 : dims.slice(axis + 1).reduce((a, b) => a * b, 1);
    const ch = axis === undefined ? 1 : dims[axis]!;
    let e = 0;
    for (let i = 0; i < w.length; i++) {
      const c = axis === undefined ? 0 : Math.floor(i / inner) % ch;
      e += (w[i]! - q.q[i]! * q.scale[c]!) ** 2;
    }
    return e;
  };
  return err(dims.length - 1) / Math.max(err(undefined), 1e-30);
}

function dequantizedWeight(ed: QuantEdit, target: NodeProto[], name: string, axis: number | undefined, perChannelDims?: number[], bits = 8): boolean {
  const t = ed.inits.get(name);
  const w = t ? floatValues(t) : undefined;
  if (!t || !w || w.length < MIN_WEIGHTS) return false;
  const dims = (t.dims ?? []).map(Number);
  const qw = quantizeInt8(w, dims, axis, bits);
  const sd = axis === undefined ? [] : (perChannelDims ?? [dims[axis]!]);
  const q = ed.int8(name, qw, sd);
  // The float original is replaced by DequantizeLinear's output of the same name.
  ed.root.initializer = (ed.root.initializer ?? []).filter((x) => x.name !== name);
  ed.inits.delete(name);
  ed.emit(target, 'DequantizeLinear', [q.q, q.scale, q.zp], axis === undefined ? [] : [{ name: 'axis', type: AttributeType.INT, i: axis }], name);
  return true;
}

/**
 * int8 weights that a float kernel reads: `Cast(int8 → float) · scale` under the original name.
 * Both inputs are initializers, so onnxruntime folds the two nodes into a float initializer when
 * the session loads (constant folding, any optimization level but 'disabled'): the file keeps
 * int8 weights, a run costs what the float model's does. DequantizeLinear would compute the same
 * values (zero point 0: q·s) but onnxruntime never folds it (it keeps DequantizeLinear for its
 * QDQ fusions), so it would dequantize the weights on every run — what made GRU int8 slower than
 * float. DequantizeLinear stays only where a fusion into an integer kernel wants it.
 */
function foldedWeight(ed: QuantEdit, target: NodeProto[], name: string, axis: number | undefined, bits = 8): boolean {
  const t = ed.inits.get(name);
  const w = t ? floatValues(t) : undefined;
  if (!t || !w || w.length < MIN_WEIGHTS) return false;
  const dims = (t.dims ?? []).map(Number);
  const qw = quantizeInt8(w, dims, axis, bits);
  // The scale broadcasts along `axis`: [1, C, 1] for per-channel weights [D, C, K], a scalar otherwise.
  const sd = axis === undefined ? [] : dims.map((d, i) => (i === axis ? d : 1));
  const q = ed.addInit(`${name}_int8`, 3, dims, qw.q);
  const scale = ed.addInit(`${name}_scale`, 1, sd, qw.scale);
  ed.scales.add(scale);
  ed.root.initializer = (ed.root.initializer ?? []).filter((x) => x.name !== name);
  ed.inits.delete(name);
  const f = ed.emit(target, 'Cast', [q], [{ name: 'to', type: AttributeType.INT, i: 1 }]);
  ed.emit(target, 'Mul', [f, scale], [], name);
  return true;
}

function matmulDynamic(ed: QuantEdit, n: NodeProto): NodeProto[] | undefined {
  const [a, b] = n.input as [string, string];
  const t = ed.inits.get(b);
  const w = t ? floatValues(t) : undefined;
  const dims = (t?.dims ?? []).map(Number);
  if (!w || dims.length !== 2) {
    ed.skip(n, t ? 'B is not a 2-D float matrix' : 'B is not a constant');
    return undefined;
  }
  if (w.length < MIN_WEIGHTS) {
    ed.skip(n, `only ${w.length} weights`);
    return undefined;
  }
  const perChannel = dims[0]! >= PER_CHANNEL_MIN_ROWS && perChannelPays(w, dims, INT8_KERNEL_BITS);
  const qw = quantizeInt8(w, dims, perChannel ? 1 : undefined, INT8_KERNEL_BITS);
  const q = ed.int8(b, qw, perChannel ? [dims[1]!] : []);
  const out: NodeProto[] = [];
  const aq = ed.uniq(`${a}_uint8`);
  const as = ed.uniq(`${a}_scale`);
  const az = ed.uniq(`${a}_zero_point`);
  out.push({ opType: 'DynamicQuantizeLinear', input: [a], output: [aq, as, az] });
  const mm = ed.emit(out, 'MatMulInteger', [aq, q.q, az, q.zp]);
  const f = ed.emit(out, 'Cast', [mm], [{ name: 'to', type: AttributeType.INT, i: 1 }]);
  const s = ed.emit(out, 'Mul', [as, q.scale]);
  ed.emit(out, 'Mul', [f, s], [], n.output![0]!);
  ed.count('MatMul');
  return out;
}

function lstmDynamic(ed: QuantEdit, n: NodeProto): NodeProto | undefined {
  const [, wName, rName] = n.input as string[];
  const W = ed.inits.get(wName!);
  const R = ed.inits.get(rName!);
  const w = W ? floatValues(W) : undefined;
  const r = R ? floatValues(R) : undefined;
  if (!w || !r) {
    ed.skip(n, 'W/R are not constant float tensors');
    return undefined;
  }
  if (attrInt(n, 'layout', 0) !== 0) {
    ed.skip(n, 'layout=1');
    return undefined;
  }
  const wd = (W!.dims ?? []).map(Number); // [D, 4H, I]
  const rd = (R!.dims ?? []).map(Number); // [D, 4H, H]
  // The kernel wants [D, I, 4H] / [D, H, 4H], scales per output column [D, 4H].
  const wt = transposeData(w, wd, [0, 2, 1]);
  const rt = transposeData(r, rd, [0, 2, 1]);
  // Per (direction, column) scales: quantize each [I] column separately.
  const perCol = (data: Float32Array, dims: number[]) => {
    const [D, K, N] = dims as [number, number, number];
    if (K < PER_CHANNEL_MIN_ROWS || !perChannelPays(data, [D * K, N], INT8_KERNEL_BITS)) {
      // Few rows (a 1–3 channel sensor input): one scale per direction, as the kernel allows.
      const scale = new Float32Array(D);
      const q = new Int8Array(data.length);
      for (let d = 0; d < D; d++) {
        const part = data.subarray(d * K * N, (d + 1) * K * N);
        const qd = quantizeInt8(part, [K * N], undefined, INT8_KERNEL_BITS);
        scale[d] = qd.scale[0]!;
        q.set(qd.q, d * K * N);
      }
      return { q, scale, dims, perTensor: true };
    }
    const scale = new Float32Array(D * N);
    const q = new Int8Array(data.length);
    for (let d = 0; d < D; d++) {
      for (let c = 0; c < N; c++) {
        let m = 0;
        for (let k = 0; k < K; k++) m = Math.max(m, Math.abs(data[(d * K + k) * N + c]!));
        const qmax = 2 ** (INT8_KERNEL_BITS - 1) - 1;
        const s = m > 0 ? m / qmax : 1;
        scale[d * N + c] = s;
        for (let k = 0; k < K; k++) q[(d * K + k) * N + c] = Math.max(-qmax, Math.min(qmax, Math.round(data[(d * K + k) * N + c]! / s)));
      }
    }
    return { q, scale, dims, perTensor: false };
  };
  const pw = perCol(wt.data, wt.dims);
  const pr = perCol(rt.data, rt.dims);
  const D = wd[0]!;
  const G = wd[1]!;
  const wq = ed.int8(wName!, pw, pw.perTensor ? [D] : [D, G]);
  const rq = ed.int8(rName!, pr, pr.perTensor ? [D] : [D, G]);
  const ins = [...(n.input ?? [])];
  while (ins.length < 8) ins.push('');
  const node: NodeProto = {
    opType: 'DynamicQuantizeLSTM',
    domain: 'com.microsoft',
    name: n.name ? `${n.name}` : ed.uniq('quant_lstm'),
    input: [ins[0]!, wq.q, rq.q, ins[3]!, ins[4]!, ins[5]!, ins[6]!, ins[7]!, wq.scale, wq.zp, rq.scale, rq.zp],
    output: n.output,
    attribute: (n.attribute ?? []).filter((a) => a.name !== 'layout'),
  };
  ed.count('LSTM');
  return node;
}

/** Which kernels int8 weights meet: onnxruntime's integer kernels, or float kernels (weights folded at load). */
export type Int8Kernels = 'integer' | 'float';
export const INT8_KERNELS: readonly Int8Kernels[] = ['integer', 'float'];

export interface QuantizeGraphOptions {
  mode: 'int8' | 'int8-static';
  /**
   * int8: `integer` (default) turns MatMul and LSTM into onnxruntime's dynamic-int8 kernels;
   * `float` stores every weight int8 and lets onnxruntime fold it back to float32 when the
   * session loads: the int8 file size at exactly the float model's speed (at batch 1 on a small
   * model the integer kernels' per-call activation quantization can cost more than they save).
   */
  kernels?: Int8Kernels;
  /** int8-static: calibrated ranges of the activations entering MatMul/Conv. */
  ranges?: Ranges;
}

/** The activation tensors int8-static calibrates: A of MatMul(A, const B) and X of Conv(X, const W). */
export function staticTargets(g: GraphProto): string[] {
  const inits = new Set((g.initializer ?? []).map((t) => t.name));
  const out = new Set<string>();
  for (const n of g.node ?? []) {
    if ((n.opType === 'MatMul' || n.opType === 'Conv') && inits.has(n.input![1]!)) out.add(n.input![0]!);
  }
  return [...out];
}

/** int8 dynamic or static (QDQ) quantization of a model graph, in place. */
/** What the rewriting of one graph (and its subgraphs) shares. */
interface QuantContext {
  ed: QuantEdit;
  opts: QuantizeGraphOptions;
  /** Whether a tensor has more than one consumer (its weights are then left alone). */
  shared: (name: string) => boolean;
  /** activation → its fake-quantized copy (int8-static). */
  qdq: Map<string, string>;
}

export function quantizeGraph(g: GraphProto, opset: number, opts: QuantizeGraphOptions): PassReport {
  const ed = new QuantEdit(g, opset);
  const consumers = countConsumers(g);
  const ctx: QuantContext = { ed, opts, shared: (name) => (consumers.get(name) ?? 0) > 1, qdq: new Map() };
  rewriteGraph(ctx, g);
  storeFloatLeftoversAsHalf(g, ed);
  // DequantizeLinear nodes feeding subgraph bodies were appended to the body; outer-scope
  // weights must exist before the node that reads them: re-sort the root graph.
  g.node = topoSort(g.node ?? [], new Set([...(g.input ?? []).map((i) => i.name!), ...(g.initializer ?? []).map((t) => t.name!)]));
  pruneDead(g);
  return ed.report;
}

/** How many nodes (subgraphs included) read each tensor. */
function countConsumers(g: GraphProto): Map<string, number> {
  const consumers = new Map<string, number>();
  const countUses = (graph: GraphProto) => {
    for (const n of graph.node ?? []) {
      for (const i of n.input ?? []) consumers.set(i, (consumers.get(i) ?? 0) + 1);
      for (const a of n.attribute ?? []) if (a.g) countUses(a.g);
    }
  };
  countUses(g);
  return consumers;
}

/**
 * Rewrites the nodes of `graph` (and of its subgraphs) in order. Weights live in the root
 * graph; their DequantizeLinear must too (a subgraph may not define a name of its outer scope),
 * placed before the node whose body reads them: `rootNext` is the root's node list.
 */
function rewriteGraph(ctx: QuantContext, graph: GraphProto, rootNext?: NodeProto[]): void {
  const { ed, opts, shared } = ctx;
  const next: NodeProto[] = [];
  const isRoot = rootNext === undefined;
  const wsink = rootNext ?? next;
  for (const n of graph.node ?? []) {
    for (const a of n.attribute ?? []) if (a.g) rewriteGraph(ctx, a.g, wsink);
    const op = n.opType!;
    if (op === 'MatMul' || op === 'Conv') weightedNode(ctx, n, next, wsink, isRoot);
    else if (op === 'LSTM' && opts.mode === 'int8' && opts.kernels !== 'float') {
      const q = shared(n.input![1]!) ? undefined : lstmDynamic(ed, n);
      next.push(q ?? n);
    } else if (op === 'GRU' || op === 'RNN' || op === 'LSTM') {
      // int8-static keeps recurrences batch- and time-independent: int8 weights, float compute
      // (DynamicQuantizeLSTM's activation scales depend on the whole call's input).
      const [, w, r] = n.input as string[];
      const okW = !shared(w!) && foldedWeight(ed, wsink, w!, 1);
      const okR = !shared(r!) && foldedWeight(ed, wsink, r!, 1);
      if (okW || okR) ed.count(op);
      else ed.skip(n, 'W/R are not constant float tensors');
      next.push(n);
    } else if (op === 'Gather' && ed.inits.has(n.input![0]!) && attrInt(n, 'axis', 0) === 0) gatherNode(ctx, n, next);
    else next.push(n);
  }
  graph.node = next;
}

/** MatMul / Conv: int8 weights (dynamic MatMul in int8 mode), and a calibrated QDQ input in int8-static. */
function weightedNode(ctx: QuantContext, n: NodeProto, next: NodeProto[], wsink: NodeProto[], isRoot: boolean): void {
  const { ed, opts, shared } = ctx;
  const op = n.opType!;
  const b = n.input![1]!;
  if (!ed.inits.has(b)) {
    ed.skip(n, 'weights are not a constant');
    next.push(n);
    return;
  }
  if (shared(b)) {
    ed.skip(n, 'weights shared with another node');
    next.push(n);
    return;
  }
  if (opts.mode === 'int8' && op === 'MatMul' && opts.kernels !== 'float') {
    const repl = matmulDynamic(ed, n);
    next.push(...(repl ?? [n]));
    return;
  }
  // Conv (both modes), MatMul in static mode and with float kernels: int8 weights. Behind a
  // calibrated QDQ input onnxruntime fuses DequantizeLinear into an integer kernel (7-bit
  // weights there); anywhere else the weights feed a float kernel and are folded at load.
  const t = ed.inits.get(b)!;
  const dims = (t.dims ?? []).map(Number);
  const integerKernel = opts.mode === 'int8-static' && isRoot && opts.ranges?.has(n.input![0]!) === true;
  let ok: boolean;
  if (integerKernel) ok = dequantizedWeight(ed, wsink, b, op === 'Conv' ? 0 : dims.length === 2 ? 1 : undefined, undefined, INT8_KERNEL_BITS);
  else {
    const w = floatValues(t);
    const perColumn = op === 'MatMul' && dims.length === 2 && w !== undefined && dims[0]! >= PER_CHANNEL_MIN_ROWS && perChannelPays(w, dims);
    ok = foldedWeight(ed, wsink, b, op === 'Conv' ? 0 : perColumn ? 1 : undefined);
  }
  if (!ok) {
    ed.skip(n, 'too few weights or not float');
    next.push(n);
    return;
  }
  ed.count(op);
  if (opts.mode === 'int8-static' && isRoot) {
    const a = n.input![0]!;
    const range = opts.ranges?.get(a);
    if (range) n.input = [fakeQuantized(ctx, a, range, next), ...n.input!.slice(1)];
    else ed.skip(n, `no calibrated range for its input '${a}'`);
  }
  next.push(n);
}

/** The activation `a` through QuantizeLinear → DequantizeLinear with its calibrated range (once per activation). */
function fakeQuantized(ctx: QuantContext, a: string, range: { min: number; max: number }, next: NodeProto[]): string {
  const { ed, qdq } = ctx;
  let fake = qdq.get(a);
  if (!fake) {
    // uint8, asymmetric, 0 exactly representable (ONNX requires the range to include 0).
    const lo = Math.min(0, range.min);
    const hi = Math.max(0, range.max, lo + 1e-8);
    const scale = (hi - lo) / 255;
    const zp = Math.max(0, Math.min(255, Math.round(-lo / scale)));
    const s = ed.addInit(`${a}_scale`, 1, [], new Float32Array([scale]));
    const z = ed.addInit(`${a}_zero_point`, 2, [], new Uint8Array([zp]));
    const q = ed.emit(next, 'QuantizeLinear', [a, s, z]);
    fake = ed.emit(next, 'DequantizeLinear', [q, s, z]);
    qdq.set(a, fake);
    ed.count('activation QDQ');
  }
  return fake;
}

/** Gather from a constant table (an embedding): gather int8 rows first, then dequantize only what was gathered. */
function gatherNode(ctx: QuantContext, n: NodeProto, next: NodeProto[]): void {
  const { ed, shared } = ctx;
  const table = n.input![0]!;
  const t = ed.inits.get(table)!;
  const w = floatValues(t);
  if (!w || w.length < MIN_WEIGHTS || shared(table)) {
    next.push(n);
    return;
  }
  const qw = quantizeInt8(w, (t.dims ?? []).map(Number), undefined);
  const q = ed.int8(table, qw, []);
  const g8 = ed.uniq(`${n.output![0]}_int8`);
  next.push({ ...n, input: [q.q, n.input![1]!], output: [g8] });
  ed.emit(next, 'DequantizeLinear', [g8, q.scale, q.zp], [], n.output![0]!);
  ed.root.initializer = (ed.root.initializer ?? []).filter((x) => x.name !== table);
  ed.count('Gather');
}

/**
 * What stays float (biases, mostly) is stored as float16: its precision (≈5e-4 relative) is far
 * finer than the int8 weights', and onnxruntime folds the Cast when the session loads.
 */
function storeFloatLeftoversAsHalf(g: GraphProto, ed: QuantEdit): void {
  const scales = new Set<string>(ed.scales);
  for (const n of g.node ?? []) {
    if (n.opType === 'DequantizeLinear' || n.opType === 'QuantizeLinear') scales.add(n.input![1]!);
    if (n.opType === 'DynamicQuantizeLSTM') [8, 10].forEach((i) => scales.add(n.input![i]!));
    if (n.opType === 'Mul' && n.input!.some((i) => i.endsWith('_scale'))) n.input!.forEach((i) => scales.add(i));
  }
  const halfPre: NodeProto[] = [];
  g.initializer = (g.initializer ?? []).map((t) => {
    const w = floatValues(t);
    if (!w || w.length < 64 || scales.has(t.name!)) return t;
    const h = toFloat16(w);
    const name = ed.uniq(`${t.name}_fp16`);
    ed.emit(halfPre, 'Cast', [name], [{ name: 'to', type: AttributeType.INT, i: 1 }], t.name!);
    ed.count('float16 bias');
    return { name, dataType: 10, dims: t.dims, rawData: new Uint8Array(h.bits.buffer) };
  });
  g.node = [...halfPre, ...(g.node ?? [])];
}

/** fp16 storage: float initializers → float16 + Cast to float32 under the original name. */
export function fp16Graph(g: GraphProto, opset: number): PassReport {
  const ed = new QuantEdit(g, opset);
  const casts: NodeProto[] = [];
  let clamped = 0;
  let flushed = 0;
  const keep: TensorProto[] = [];
  for (const t of g.initializer ?? []) {
    const w = floatValues(t);
    if (!w || w.length < MIN_WEIGHTS) {
      keep.push(t);
      continue;
    }
    const h = toFloat16(w);
    clamped += h.clamped;
    flushed += h.flushed;
    const name = ed.uniq(`${t.name}_fp16`);
    keep.push({ name, dataType: 10, dims: t.dims, rawData: new Uint8Array(h.bits.buffer) });
    ed.emit(casts, 'Cast', [name], [{ name: 'to', type: AttributeType.INT, i: 1 }], t.name!);
    ed.count('initializer');
  }
  g.initializer = keep;
  g.node = topoSort([...casts, ...(g.node ?? [])], new Set([...(g.input ?? []).map((i) => i.name!), ...keep.map((t) => t.name!)]));
  ed.report.clamped = clamped;
  ed.report.flushed = flushed;
  return ed.report;
}
