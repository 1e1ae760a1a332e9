/**
 * LSTM, GRU, SimpleRNN and Bidirectional.
 *
 * Cells whose activations ONNX's recurrent ops can express become a native LSTM/GRU/RNN node
 * (layout 0: onnxruntime's CPU kernels do not implement layout 1, so we transpose around it).
 * Any other activation (swish, gelu, selu, …) becomes a `Scan` over the cell equations, so
 * "any activation" converts without changing the math.
 *
 * Sequences returned by {@link emitRecurrent} are always aligned with the input's time axis
 * (ONNX's convention); tfjs' `go_backwards` returns the sequence in processing order, so the
 * layer converter flips it explicitly.
 */
import { UnsupportedError } from '../../errors.js';
import { A, type GraphBuilder } from '../onnx/builder.js';
import type { ConvertContext, Converter, ConverterArgs, Tensor } from '../context.js';
import { LayerConfig, type LayerSpec } from '../topology.js';
import { emitActivation, isSupportedActivation, normalizeActivation, SUPPORTED_ACTIVATIONS } from './activations.js';

export type CellKind = 'LSTM' | 'GRU' | 'SimpleRNN';

export interface CellParams {
  kind: CellKind;
  units: number;
  inputDim: number;
  activation: string;
  recurrentActivation: string;
  /** tfjs layout: [inputDim, gates·units]. */
  kernel: Float32Array;
  /** tfjs layout: [units, gates·units]. */
  recurrentKernel: Float32Array;
  /** Input bias [gates·units] (or null without bias). */
  bias: Float32Array | null;
  /** GRU reset_after only: recurrent bias [3·units]. */
  recurrentBias: Float32Array | null;
  /** GRU: apply the reset gate after the recurrent matmul (Keras' default, ONNX linear_before_reset=1). */
  resetAfter: boolean;
}

const GATES: Record<CellKind, number> = { LSTM: 4, GRU: 3, SimpleRNN: 1 };
const STATE_KINDS: Record<CellKind, ('h' | 'c')[]> = { LSTM: ['h', 'c'], GRU: ['h'], SimpleRNN: ['h'] };

/** Activations onnxruntime's CPU LSTM/GRU/RNN kernels implement, with default alpha/beta equal to tfjs'. */
const NATIVE_ACT: Record<string, string> = {
  tanh: 'Tanh',
  sigmoid: 'Sigmoid',
  hard_sigmoid: 'HardSigmoid',
  relu: 'Relu',
  softsign: 'Softsign',
  softplus: 'Softplus',
};

function who(layer: LayerSpec) {
  return { name: layer.name, className: layer.className };
}

/** Reads a recurrent layer's config and weights (`within` selects a Bidirectional half). */
export function readCell(layer: LayerSpec, cfg: LayerConfig, kind: CellKind, inputDim: number, within?: string): CellParams {
  const units = cfg.int('units');
  const G = GATES[kind];
  const activation = normalizeActivation(cfg.str('activation', 'tanh'));
  const recurrentActivation = kind === 'SimpleRNN' ? 'linear' : normalizeActivation(cfg.str('recurrent_activation', 'hard_sigmoid'));
  for (const [field, act] of [
    ['activation', activation],
    ['recurrent_activation', recurrentActivation],
  ] as const) {
    if (!isSupportedActivation(act) || act === 'softmax' || act === 'log_softmax') {
      throw new UnsupportedError(`${field} '${act}' is not supported in a recurrent cell`, {
        layer: who(layer),
        supported: SUPPORTED_ACTIVATIONS.filter((a) => a !== 'softmax' && a !== 'log_softmax'),
        field,
      });
    }
  }
  if (cfg.bool('time_major', false))
    throw new UnsupportedError('time_major=true is not supported', { layer: who(layer), supported: ['time_major=false'], field: 'time_major' });
  if (cfg.has('unit_forget_bias') && kind !== 'LSTM') {
    /* Keras writes it for LSTM only; harmless elsewhere. */
  }
  const resetAfter = kind === 'GRU' && cfg.bool('reset_after', false);
  const kernel = cfg.weightOfShape('kernel', [inputDim, G * units], { within })!;
  const recurrentKernel = cfg.weightOfShape('recurrent_kernel', [units, G * units], { within })!;
  let bias: Float32Array | null = null;
  let recurrentBias: Float32Array | null = null;
  if (cfg.bool('use_bias', true)) {
    if (resetAfter) {
      const b = cfg.weightOfShape('bias', [2, G * units], { within })!;
      bias = (b.data as Float32Array).slice(0, G * units);
      recurrentBias = (b.data as Float32Array).slice(G * units);
    } else {
      bias = cfg.weightOfShape('bias', [G * units], { within })!.data as Float32Array;
    }
  }
  return {
    kind,
    units,
    inputDim,
    activation,
    recurrentActivation,
    resetAfter,
    kernel: kernel.data as Float32Array,
    recurrentKernel: recurrentKernel.data as Float32Array,
    bias,
    recurrentBias,
  };
}

function canUseNativeOp(c: CellParams): boolean {
  return c.activation in NATIVE_ACT && (c.kind === 'SimpleRNN' || c.recurrentActivation in NATIVE_ACT);
}

/** [rows, G·u] (tfjs) → [G·u, rows] (ONNX) with the gate blocks put in `order`. */
function toOnnxMatrix(src: Float32Array, rows: number, u: number, order: number[]): Float32Array {
  const G = order.length;
  const cols = G * u;
  const out = new Float32Array(cols * rows);
  for (let gi = 0; gi < G; gi++) {
    const from = order[gi]! * u;
    for (let j = 0; j < u; j++) for (let r = 0; r < rows; r++) out[(gi * u + j) * rows + r] = src[r * cols + from + j]!;
  }
  return out;
}

function reorder(src: Float32Array, u: number, order: number[]): Float32Array {
  const out = new Float32Array(order.length * u);
  order.forEach((from, gi) => out.set(src.subarray(from * u, from * u + u), gi * u));
  return out;
}

/** tfjs gate order → ONNX gate order. LSTM: tfjs (i, f, c, o), ONNX (i, o, f, c). GRU: both (z, r, h). */
const ONNX_ORDER: Record<CellKind, number[]> = { LSTM: [0, 3, 1, 2], GRU: [0, 1, 2], SimpleRNN: [0] };

export interface RecurrentResult {
  /** [batch, time, units] aligned with the input time axis, one per direction (when asked for). */
  seq: string[];
  /** Final states per direction: [h] or [h, c], each [batch, units]. */
  last: string[][];
}

/** Zeros of shape [batch, n], batch read from a [batch, ...] tensor at run time. */
export function dynamicZeros(g: GraphBuilder, like: string, n: number): string {
  const batch = g.op('Slice', [g.op('Shape', [like]), g.i64([0]), g.i64([1])]);
  const shape = g.op('Concat', [batch, g.i64([n])], { axis: A.i(0) });
  return g.op('ConstantOfShape', [shape]);
}

/**
 * Emits one recurrent layer over `x` [batch, time, in]: one cell (forward or reverse) or two
 * cells (bidirectional). `initial` gives per-direction initial states ([batch, units] each).
 */
export function emitRecurrent(
  ctx: ConvertContext,
  name: string,
  cells: CellParams[],
  x: string,
  opts: { reverse: boolean; initial?: (string[] | undefined)[]; needSeq: boolean },
): RecurrentResult {
  if (cells.every(canUseNativeOp)) return emitNative(ctx.g, name, cells, x, opts);
  const res: RecurrentResult = { seq: [], last: [] };
  cells.forEach((cell, d) => {
    const reverse = cells.length === 2 ? d === 1 : opts.reverse;
    const r = emitScan(ctx.g, `${name}${cells.length === 2 ? (d ? '/backward' : '/forward') : ''}`, cell, x, reverse, opts.initial?.[d]);
    res.seq.push(r.seq);
    res.last.push(r.last);
  });
  return res;
}

function emitNative(
  g: GraphBuilder,
  name: string,
  cells: CellParams[],
  x: string,
  opts: { reverse: boolean; initial?: (string[] | undefined)[]; needSeq: boolean },
): RecurrentResult {
  const c0 = cells[0]!;
  const { kind, units: u, inputDim } = c0;
  const G = GATES[kind];
  const D = cells.length;
  const order = ONNX_ORDER[kind];
  const W = new Float32Array(D * G * u * inputDim);
  const R = new Float32Array(D * G * u * u);
  const anyBias = cells.some((c) => c.bias);
  const B = new Float32Array(D * 2 * G * u);
  cells.forEach((c, d) => {
    W.set(toOnnxMatrix(c.kernel, inputDim, u, order), d * G * u * inputDim);
    R.set(toOnnxMatrix(c.recurrentKernel, u, u, order), d * G * u * u);
    if (c.bias) B.set(reorder(c.bias, u, order), d * 2 * G * u);
    if (c.recurrentBias) B.set(reorder(c.recurrentBias, u, order), d * 2 * G * u + G * u);
  });
  const xt = g.op('Transpose', [x], { perm: A.is([1, 0, 2]) }, { name: `${name}/time_major` });
  const inputs = [
    xt,
    g.initializer(`${name}/W`, 'float32', [D, G * u, inputDim], W),
    g.initializer(`${name}/R`, 'float32', [D, G * u, u], R),
    anyBias ? biasInput(g, name, cells, B, D, G * u) : '',
    '', // sequence_lens: every sequence is full length
  ];
  const stateKinds = STATE_KINDS[kind];
  if (opts.initial && opts.initial.some((s) => s)) {
    stateKinds.forEach((_, si) => {
      const per = cells.map((_, d) => opts.initial?.[d]?.[si] ?? dynamicZeros(g, x, u));
      const stacked = per.map((s) => g.op('Unsqueeze', [s, g.i64([0])]));
      inputs.push(D === 1 ? stacked[0]! : g.op('Concat', stacked, { axis: A.i(0) }));
    });
  }
  const acts: string[] = [];
  for (const c of cells) {
    if (kind === 'LSTM') acts.push(NATIVE_ACT[c.recurrentActivation]!, NATIVE_ACT[c.activation]!, NATIVE_ACT[c.activation]!);
    else if (kind === 'GRU') acts.push(NATIVE_ACT[c.recurrentActivation]!, NATIVE_ACT[c.activation]!);
    else acts.push(NATIVE_ACT[c.activation]!);
  }
  const attrs = {
    hidden_size: A.i(u),
    direction: A.s(D === 2 ? 'bidirectional' : opts.reverse ? 'reverse' : 'forward'),
    activations: A.ss(acts),
    ...(kind === 'GRU' ? { linear_before_reset: A.i(c0.resetAfter ? 1 : 0) } : {}),
  };
  // Y (every step) only when a sequence is returned: an unused Y still costs a copy per step.
  const outNames = [opts.needSeq ? g.uniq(name) : '', g.uniq(`${name}_h`), ...(kind === 'LSTM' ? [g.uniq(`${name}_c`)] : [])];
  const outs = g.node(kind === 'SimpleRNN' ? 'RNN' : kind, inputs, attrs, { outputs: outNames, name });
  const [Y, Yh, Yc] = outs as [string, string, string?];
  const res: RecurrentResult = { seq: [], last: [] };
  for (let d = 0; d < D; d++) {
    const pick = (t: string, axis: number) =>
      D === 1 ? g.op('Squeeze', [t, g.i64([axis])]) : g.op('Gather', [t, g.constant('int64', [], [d])], { axis: A.i(axis) });
    if (opts.needSeq) res.seq.push(g.op('Transpose', [pick(Y, 1)], { perm: A.is([1, 0, 2]) }));
    res.last.push(kind === 'LSTM' ? [pick(Yh, 0), pick(Yc!, 0)] : [pick(Yh, 0)]);
  }
  return res;
}

/**
 * ONNX wants B = [Wb, Rb] per direction. tfjs cells have no recurrent bias, so Rb is zero: store
 * Wb only and zero-pad it (onnxruntime folds the Pad when the session loads).
 */
function biasInput(g: GraphBuilder, name: string, cells: CellParams[], B: Float32Array, D: number, n: number): string {
  if (cells.some((c) => c.recurrentBias)) return g.initializer(`${name}/B`, 'float32', [D, 2 * n], B);
  const wb = new Float32Array(D * n);
  for (let d = 0; d < D; d++) wb.set(B.subarray(d * 2 * n, d * 2 * n + n), d * n);
  return g.op('Pad', [g.initializer(`${name}/Wb`, 'float32', [D, n], wb), g.i64([0, 0, 0, n])], { mode: A.s('constant') });
}

/** A Scan over the cell equations, exactly as tfjs computes them. */
function emitScan(g: GraphBuilder, name: string, c: CellParams, x: string, reverse: boolean, initial?: string[]): { seq: string; last: string[] } {
  const { kind, units: u } = c;
  const G = GATES[kind];
  const who_ = { name, className: kind };
  const Wk = g.initializer(`${name}/kernel`, 'float32', [c.inputDim, G * u], c.kernel);
  const Rk = g.initializer(`${name}/recurrent_kernel`, 'float32', [u, G * u], c.recurrentKernel);
  const b = c.bias ? g.initializer(`${name}/bias`, 'float32', [G * u], c.bias) : undefined;
  const rb = c.recurrentBias ? g.initializer(`${name}/recurrent_bias`, 'float32', [G * u], c.recurrentBias) : undefined;

  const body = g.subgraph(`${name}_body`);
  const kinds = STATE_KINDS[kind];
  const sIn = kinds.map((k) => body.addInput(`${name}/${k}_prev`, 'float32', [null, u], { fresh: true }));
  const xIn = body.addInput(`${name}/x_t`, 'float32', [null, c.inputDim], { fresh: true });
  const h = sIn[0]!;
  const gate = (t: string, gi: number) => body.op('Slice', [t, body.i64([gi * u]), body.i64([(gi + 1) * u]), body.i64([-1])]);
  let xz = body.op('MatMul', [xIn, Wk]);
  if (b) xz = body.op('Add', [xz, b]);
  const act = (t: string) => emitActivation(body, c.activation, t, who_);
  const ract = (t: string) => emitActivation(body, c.recurrentActivation, t, who_);
  let outs: string[];
  if (kind === 'SimpleRNN') {
    outs = [act(body.op('Add', [xz, body.op('MatMul', [h, Rk])]))];
  } else if (kind === 'LSTM') {
    const z = body.op('Add', [xz, body.op('MatMul', [h, Rk])]);
    const i = ract(gate(z, 0));
    const f = ract(gate(z, 1));
    const cc = act(gate(z, 2));
    const o = ract(gate(z, 3));
    const cNew = body.op('Add', [body.op('Mul', [f, sIn[1]!]), body.op('Mul', [i, cc])]);
    outs = [body.op('Mul', [o, act(cNew)]), cNew];
  } else {
    let hz = body.op('MatMul', [h, Rk]);
    if (rb) hz = body.op('Add', [hz, rb]);
    const zg = ract(body.op('Add', [gate(xz, 0), gate(hz, 0)]));
    const rg = ract(body.op('Add', [gate(xz, 1), gate(hz, 1)]));
    let hh: string;
    if (c.resetAfter) {
      hh = act(body.op('Add', [gate(xz, 2), body.op('Mul', [rg, gate(hz, 2)])]));
    } else {
      const Rh = g.initializer(`${name}/recurrent_kernel_h`, 'float32', [u, u], sliceCols(c.recurrentKernel, u, G * u, 2 * u, 3 * u));
      hh = act(body.op('Add', [gate(xz, 2), body.op('MatMul', [body.op('Mul', [rg, h]), Rh])]));
    }
    // h' = z·h + (1 − z)·hh
    const oneMinusZ = body.op('Sub', [body.scalarF(1), zg]);
    outs = [body.op('Add', [body.op('Mul', [zg, h]), body.op('Mul', [oneMinusZ, hh])])];
  }
  const stateOuts = outs.map((o, k) => body.op('Identity', [o], {}, { name: `${name}/${kinds[k]}_next` }));
  const seqOut = body.op('Identity', [outs[0]!], {}, { name: `${name}/y_t` });
  stateOuts.forEach((s) => body.addOutput(s, 'float32', [null, u]));
  body.addOutput(seqOut, 'float32', [null, u]);

  const init = kinds.map((_, k) => initial?.[k] ?? dynamicZeros(g, x, u));
  const res = g.node(
    'Scan',
    [...init, x],
    {
      body: A.g(body),
      num_scan_inputs: A.i(1),
      scan_input_axes: A.is([1]),
      scan_output_axes: A.is([1]),
      scan_input_directions: A.is([reverse ? 1 : 0]),
      scan_output_directions: A.is([reverse ? 1 : 0]),
    },
    { outputs: kinds.length + 1, name },
  );
  return { seq: res[kinds.length]!, last: res.slice(0, kinds.length) };
}

function sliceCols(src: Float32Array, rows: number, cols: number, from: number, to: number): Float32Array {
  const w = to - from;
  const out = new Float32Array(rows * w);
  for (let r = 0; r < rows; r++) out.set(src.subarray(r * cols + from, r * cols + to), r * w);
  return out;
}

/** Reverses the time axis (axis 1) of a [batch, time, ...] tensor. */
export function flipTime(g: GraphBuilder, t: string): string {
  return g.op('Slice', [t, g.i64([-1]), g.constant('int64', [1], [Number.MIN_SAFE_INTEGER]), g.i64([1]), g.i64([-1])]);
}

function commonChecks(layer: LayerSpec, cfg: LayerConfig, x: Tensor): number {
  if (x.shape.length !== 3) {
    throw new UnsupportedError(`expects a 3-D input [batch, time, features], got rank ${x.shape.length}`, { layer: who(layer), field: 'input shape' });
  }
  const inputDim = x.shape[2];
  if (typeof inputDim !== 'number') throw new UnsupportedError('the feature dimension of the input must be known', { layer: who(layer), field: 'input shape' });
  if (cfg.bool('unroll', false)) {
    /* unrolling is an execution detail: same math */
  }
  return inputDim;
}

function recurrentLayer(kind: CellKind): Converter {
  return ({ ctx, layer, cfg, inputs }: ConverterArgs) => {
    const g = ctx.g;
    const x = inputs[0]!;
    const inputDim = commonChecks(layer, cfg, x);
    const cell = readCell(layer, cfg, kind, inputDim);
    const u = cell.units;
    const returnSequences = cfg.bool('return_sequences', false);
    const returnState = cfg.bool('return_state', false);
    const goBackwards = cfg.bool('go_backwards', false);
    const stateful = cfg.bool('stateful', false);
    const kinds = STATE_KINDS[kind];
    let initial: string[] | undefined;
    if (inputs.length > 1) {
      // Functional call with initial_state tensors.
      if (inputs.length - 1 !== kinds.length) {
        throw new UnsupportedError(`got ${inputs.length - 1} initial state tensors, expected ${kinds.length}`, { layer: who(layer), field: 'initial_state' });
      }
      if (stateful) throw new UnsupportedError('stateful=true together with initial_state tensors is not supported', { layer: who(layer), field: 'stateful' });
      initial = inputs.slice(1).map((t) => t.name);
    } else if (stateful) {
      initial = kinds.map((k) => ctx.stateInput(layer.name, k, [u]));
    }
    const r = emitRecurrent(ctx, layer.name, [cell], x.name, { reverse: goBackwards, initial: [initial], needSeq: returnSequences });
    const last = r.last[0]!;
    if (stateful) kinds.forEach((k, i) => ctx.stateOutput(layer.name, k, last[i]!));
    let out: Tensor;
    if (returnSequences) {
      const seq = goBackwards ? flipTime(g, r.seq[0]!) : r.seq[0]!;
      out = { name: seq, shape: [x.shape[0]!, x.shape[1]!, u], dtype: 'float32' };
    } else {
      out = { name: last[0]!, shape: [x.shape[0]!, u], dtype: 'float32' };
    }
    if (!returnState) return [out];
    return [out, ...last.map((s) => ({ name: s, shape: [x.shape[0]!, u], dtype: 'float32' as const }))];
  };
}

export const lstm = recurrentLayer('LSTM');
export const gru = recurrentLayer('GRU');
export const simpleRnn = recurrentLayer('SimpleRNN');

const WRAPPABLE: Record<string, CellKind> = { LSTM: 'LSTM', GRU: 'GRU', SimpleRNN: 'SimpleRNN' };

export const bidirectional: Converter = ({ ctx, layer, cfg, inputs }) => {
  const g = ctx.g;
  const x = inputs[0]!;
  const inner = cfg.raw('layer') as { class_name?: string; config?: Record<string, unknown> } | undefined;
  const kind = inner?.class_name ? WRAPPABLE[inner.class_name] : undefined;
  if (!inner || !kind) {
    throw new UnsupportedError(`Bidirectional(${inner?.class_name ?? '?'}) is not supported`, {
      layer: who(layer),
      supported: Object.keys(WRAPPABLE).map((k) => `Bidirectional(${k})`),
      field: 'layer',
    });
  }
  if (inputs.length > 1) throw new UnsupportedError('initial_state for Bidirectional is not supported', { layer: who(layer), field: 'initial_state' });
  const innerSpec: LayerSpec = { name: layer.name, className: inner.class_name!, config: inner.config as LayerSpec['config'], weights: layer.weights };
  const icfg = new LayerConfig(innerSpec);
  const inputDim = commonChecks(layer, icfg, x);
  if (icfg.bool('stateful', false))
    throw new UnsupportedError('a stateful layer inside Bidirectional is not supported', { layer: who(layer), field: 'layer.stateful' });
  if (icfg.bool('go_backwards', false))
    throw new UnsupportedError('go_backwards=true inside Bidirectional is not supported', { layer: who(layer), field: 'layer.go_backwards' });
  if (cfg.has('backward_layer')) {
    const bl = cfg.raw('backward_layer') as { config?: Record<string, unknown> };
    const f = inner.config ?? {};
    const b = bl.config ?? {};
    for (const k of ['units', 'activation', 'recurrent_activation', 'use_bias', 'reset_after', 'return_sequences', 'return_state']) {
      if (JSON.stringify(f[k]) !== JSON.stringify(b[k]))
        throw new UnsupportedError(`a backward_layer that differs from the forward layer in '${k}' is not supported`, {
          layer: who(layer),
          field: `backward_layer.${k}`,
        });
    }
  }
  const mergeMode = cfg.raw('merge_mode') === null ? 'none' : cfg.oneOf('merge_mode', ['concat', 'sum', 'mul', 'ave'] as const, 'concat');
  const fwd = readCell(innerSpec, icfg, kind, inputDim, 'forward_');
  const bwd = readCell(innerSpec, icfg, kind, inputDim, 'backward_');
  const returnSequences = icfg.bool('return_sequences', false);
  const returnState = icfg.bool('return_state', false);
  const u = fwd.units;
  const r = emitRecurrent(ctx, layer.name, [fwd, bwd], x.name, { reverse: false, needSeq: returnSequences });
  // tfjs re-reverses the backward layer's sequence, so both halves are aligned with the input.
  const [a, b] = returnSequences ? [r.seq[0]!, r.seq[1]!] : [r.last[0]![0]!, r.last[1]![0]!];
  const base = returnSequences ? [x.shape[0]!, x.shape[1]!] : [x.shape[0]!];
  let outs: Tensor[];
  switch (mergeMode) {
    case 'concat':
      outs = [{ name: g.op('Concat', [a, b], { axis: A.i(-1) }), shape: [...base, 2 * u], dtype: 'float32' }];
      break;
    case 'sum':
      outs = [{ name: g.op('Add', [a, b]), shape: [...base, u], dtype: 'float32' }];
      break;
    case 'mul':
      outs = [{ name: g.op('Mul', [a, b]), shape: [...base, u], dtype: 'float32' }];
      break;
    case 'ave':
      outs = [{ name: g.op('Mul', [g.op('Add', [a, b]), g.scalarF(0.5)]), shape: [...base, u], dtype: 'float32' }];
      break;
    default:
      outs = [a, b].map((n) => ({ name: n, shape: [...base, u], dtype: 'float32' as const }));
  }
  if (returnState) {
    for (const states of r.last) for (const s of states) outs.push({ name: s, shape: [x.shape[0]!, u], dtype: 'float32' });
  }
  return outs;
};
