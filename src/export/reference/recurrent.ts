/**
 * LSTM, GRU, SimpleRNN and Bidirectional, stepped one time step at a time in float64.
 *
 * Kernel columns follow tfjs/Keras gate order: LSTM (i, f, c, o), GRU (z, r, h). A GRU with
 * reset_after=false computes tfjs' cell (reset gate applied to h before the recurrent matmul);
 * reset_after=true computes Keras' cell, with a [2, 3·units] bias (input row, recurrent row).
 * Like tfjs, go_backwards returns the sequence in processing order, i.e. reversed.
 */
import { InputError } from '../../errors.js';
import type { JsonObject } from '../tfjs-format/types.js';
import { LayerConfig, type LayerSpec } from '../topology.js';
import { applyActivation, normalizeActivationName } from './activations.js';
import { addLastInPlace, broadcastBinary, concat, map, matmulLast, reverseAxis, sliceAxis, stackTime, timeStep, zeros, type NDArray } from './ndarray.js';
import { requireRank, unsupported, who, type RefArgs, type RefLayer } from './types.js';

export type CellKind = 'LSTM' | 'GRU' | 'SimpleRNN';

const GATES: Record<CellKind, number> = { LSTM: 4, GRU: 3, SimpleRNN: 1 };
const STATE_KINDS: Record<CellKind, readonly ('h' | 'c')[]> = { LSTM: ['h', 'c'], GRU: ['h'], SimpleRNN: ['h'] };
const WRAPPABLE: Record<string, CellKind> = { LSTM: 'LSTM', GRU: 'GRU', SimpleRNN: 'SimpleRNN' };

interface Cell {
  kind: CellKind;
  units: number;
  inputDim: number;
  activation: (a: NDArray) => NDArray;
  recurrentActivation: (a: NDArray) => NDArray;
  /** [inputDim, G·units], row-major. */
  kernel: ArrayLike<number>;
  /** [units, G·units], row-major. */
  recurrentKernel: ArrayLike<number>;
  /** Input bias [G·units], or null without bias. */
  bias: ArrayLike<number> | null;
  /** GRU reset_after only: recurrent bias [3·units]. */
  recurrentBias: ArrayLike<number> | null;
  resetAfter: boolean;
  /** GRU reset_after=false only: the h-gate block of the recurrent kernel, [units, units]. */
  recurrentKernelH: Float64Array | null;
}

function readCell(layer: LayerSpec, cfg: LayerConfig, kind: CellKind, inputDim: number, within?: string): Cell {
  const units = cfg.int('units');
  const G = GATES[kind];
  if (cfg.bool('time_major', false)) throw unsupported(layer, 'time_major=true is not supported', 'time_major', ['time_major=false']);
  const actName = normalizeActivationName(cfg.str('activation', 'tanh'));
  // tfjs' default recurrent activation; Keras always writes the field, so the default is tfjs'.
  const ractName = normalizeActivationName(cfg.str('recurrent_activation', 'hard_sigmoid'));
  const resetAfter = kind === 'GRU' && cfg.bool('reset_after', false);
  const kernel = cfg.weightOfShape('kernel', [inputDim, G * units], { within })!.data;
  const recurrentKernel = cfg.weightOfShape('recurrent_kernel', [units, G * units], { within })!.data;
  let bias: ArrayLike<number> | null = null;
  let recurrentBias: ArrayLike<number> | null = null;
  if (cfg.bool('use_bias', true)) {
    if (resetAfter) {
      const b = cfg.weightOfShape('bias', [2, G * units], { within })!.data;
      bias = b.slice(0, G * units);
      recurrentBias = b.slice(G * units);
    } else {
      bias = cfg.weightOfShape('bias', [G * units], { within })!.data;
    }
  }
  const w = who(layer);
  return {
    kind,
    units,
    inputDim,
    resetAfter,
    kernel,
    recurrentKernel,
    bias,
    recurrentBias,
    recurrentKernelH: kind === 'GRU' && !resetAfter ? columnBlock(recurrentKernel, units, 3 * units, 2 * units, units) : null,
    activation: (a) => applyActivation(actName, a, w),
    recurrentActivation: (a) => applyActivation(ractName, a, w, 'recurrent_activation'),
  };
}

/** Columns [from, from + width) of a row-major [rows, cols] matrix. */
function columnBlock(m: ArrayLike<number>, rows: number, cols: number, from: number, width: number): Float64Array {
  const out = new Float64Array(rows * width);
  for (let r = 0; r < rows; r++) for (let j = 0; j < width; j++) out[r * width + j] = m[r * cols + from + j]!;
  return out;
}

const gate = (a: NDArray, i: number, u: number) => sliceAxis(a, 1, i * u, u);
const add = (a: NDArray, b: NDArray) => broadcastBinary(a, b, (x, y) => x + y);
const mul = (a: NDArray, b: NDArray) => broadcastBinary(a, b, (x, y) => x * y);

/** One time step: x [batch, in], states [h] or [h, c] → new states (h first). */
function step(c: Cell, x: NDArray, states: NDArray[]): NDArray[] {
  const u = c.units;
  const G = GATES[c.kind];
  const h = states[0]!;
  const xz = matmulLast(x, c.kernel, c.inputDim, G * u);
  if (c.bias) addLastInPlace(xz, c.bias);
  if (c.kind === 'SimpleRNN') return [c.activation(add(xz, matmulLast(h, c.recurrentKernel, u, u)))];
  if (c.kind === 'LSTM') {
    const z = add(xz, matmulLast(h, c.recurrentKernel, u, G * u));
    const i = c.recurrentActivation(gate(z, 0, u));
    const f = c.recurrentActivation(gate(z, 1, u));
    const cNew = add(mul(f, states[1]!), mul(i, c.activation(gate(z, 2, u))));
    const o = c.recurrentActivation(gate(z, 3, u));
    return [mul(o, c.activation(cNew)), cNew];
  }
  return [gruStep(c, xz, h)];
}

function gruStep(c: Cell, xz: NDArray, h: NDArray): NDArray {
  const u = c.units;
  const hz = matmulLast(h, c.recurrentKernel, u, 3 * u);
  if (c.recurrentBias) addLastInPlace(hz, c.recurrentBias);
  const z = c.recurrentActivation(add(gate(xz, 0, u), gate(hz, 0, u)));
  const r = c.recurrentActivation(add(gate(xz, 1, u), gate(hz, 1, u)));
  let recurrentH: NDArray;
  if (c.resetAfter) {
    recurrentH = mul(r, gate(hz, 2, u));
  } else {
    // tfjs: the reset gate scales the state before it meets the h block of the kernel.
    recurrentH = matmulLast(mul(r, h), c.recurrentKernelH!, u, u);
  }
  const hh = c.activation(add(gate(xz, 2, u), recurrentH));
  // h' = z ⊙ h + (1 − z) ⊙ hh
  return add(
    mul(z, h),
    mul(
      map(z, (v) => 1 - v),
      hh,
    ),
  );
}

/** Runs a cell over x [batch, time, in]; the sequence is in processing order. */
function run(c: Cell, x: NDArray, initial: NDArray[], goBackwards: boolean): { seq: NDArray; last: NDArray[] } {
  const T = x.shape[1]!;
  let states = initial;
  const outs: NDArray[] = [];
  for (let s = 0; s < T; s++) {
    states = step(c, timeStep(x, goBackwards ? T - 1 - s : s), states);
    outs.push(states[0]!);
  }
  return { seq: stackTime(outs), last: states };
}

function inputDimOf(args: RefArgs, x: NDArray): number {
  requireRank(args, x, 3, '[batch, time, features]');
  if (x.shape[1] === 0) {
    throw new InputError(`layer '${args.layer.name}' (${args.layer.className}): the input has no time steps`, {
      field: `${args.layer.name} input`,
      expected: 'at least one time step',
    });
  }
  return x.shape[2]!;
}

function checkState(layer: LayerSpec, s: NDArray, batch: number, units: number, what: string): NDArray {
  if (s.shape.length !== 2 || s.shape[0] !== batch || s.shape[1] !== units) {
    throw new InputError(`layer '${layer.name}': ${what} has shape [${s.shape}]`, { field: `${layer.name} ${what}`, expected: `[${batch}, ${units}]` });
  }
  return s;
}

/** Keras 3 passes initial_state as a call keyword; only the positional form reaches us as inputs. */
function refuseKeywordState(layer: LayerSpec, kwargs: JsonObject, positional: number): void {
  const kw = kwargs.initial_state;
  if (positional === 0 && kw !== undefined && kw !== null) {
    throw unsupported(layer, 'initial_state given as a call keyword is not supported; pass the states as extra inputs', 'initial_state');
  }
}

function recurrentLayer(kind: CellKind): RefLayer {
  return (args) => {
    const { layer, cfg, inputs, state } = args;
    const x = inputs[0]!;
    const cell = readCell(layer, cfg, kind, inputDimOf(args, x), undefined);
    const batch = x.shape[0]!;
    const kinds = STATE_KINDS[kind];
    const stateful = cfg.bool('stateful', false);
    const given = inputs.slice(1);
    refuseKeywordState(layer, args.kwargs, given.length);
    if (given.length > 0 && given.length !== kinds.length) {
      throw unsupported(layer, `got ${given.length} initial state tensors, expected ${kinds.length}`, 'initial_state');
    }
    if (given.length > 0 && stateful) throw unsupported(layer, 'stateful=true together with initial_state tensors is not supported', 'stateful');
    const initial = kinds.map((k, i) => {
      const s = given[i] ?? (stateful ? state.get(`${layer.name}.${k}`) : undefined);
      return s ? checkState(layer, s, batch, cell.units, `initial state ${k}`) : zeros([batch, cell.units]);
    });
    const r = run(cell, x, initial, cfg.bool('go_backwards', false));
    if (stateful) kinds.forEach((k, i) => state.set(`${layer.name}.${k}`, r.last[i]!));
    const out = cfg.bool('return_sequences', false) ? r.seq : r.last[0]!;
    return cfg.bool('return_state', false) ? [out, ...r.last] : [out];
  };
}

export const lstm = recurrentLayer('LSTM');
export const gru = recurrentLayer('GRU');
export const simpleRnn = recurrentLayer('SimpleRNN');

type InnerJson = { class_name?: string; config?: JsonObject };

function merge(mode: string, a: NDArray, b: NDArray): NDArray[] {
  switch (mode) {
    case 'concat':
      return [concat([a, b], a.shape.length - 1)];
    case 'sum':
      return [add(a, b)];
    case 'mul':
      return [mul(a, b)];
    case 'ave':
      return [map(add(a, b), (v) => v / 2)];
    default:
      return [a, b];
  }
}

/**
 * Bidirectional: the backward copy runs with go_backwards flipped and its sequence is
 * reversed again so both halves line up with the input's time axis, as tfjs does. Outputs are
 * [merged (or fwd, bwd when merge_mode is null), fwd states…, bwd states…].
 */
export const bidirectional: RefLayer = (args) => {
  const { layer, cfg, inputs } = args;
  const x = inputs[0]!;
  const inner = cfg.raw('layer') as InnerJson | undefined;
  const kind = inner?.class_name ? WRAPPABLE[inner.class_name] : undefined;
  if (!inner || !kind) {
    throw unsupported(
      layer,
      `Bidirectional(${inner?.class_name ?? '?'}) is not supported`,
      'layer',
      Object.keys(WRAPPABLE).map((k) => `Bidirectional(${k})`),
    );
  }
  const mergeMode = cfg.raw('merge_mode') === null ? 'none' : cfg.oneOf('merge_mode', ['concat', 'sum', 'mul', 'ave'] as const, 'concat');
  const fwdSpec: LayerSpec = { name: layer.name, className: kind, config: inner.config ?? {}, weights: layer.weights };
  const backJson = cfg.raw('backward_layer') as InnerJson | undefined | null;
  const bwdSpec: LayerSpec = { ...fwdSpec, config: backJson?.config ?? fwdSpec.config };
  const fcfg = new LayerConfig(fwdSpec);
  const bcfg = new LayerConfig(bwdSpec);
  if (fcfg.bool('stateful', false)) throw unsupported(layer, 'a stateful layer inside Bidirectional is not supported', 'layer.stateful');
  const inputDim = inputDimOf(args, x);
  const fwd = readCell(fwdSpec, fcfg, kind, inputDim, 'forward_');
  const bwd = readCell(bwdSpec, bcfg, kind, inputDim, 'backward_');
  const given = inputs.slice(1);
  refuseKeywordState(layer, args.kwargs, given.length);
  const nStates = STATE_KINDS[kind].length;
  if (given.length > 0 && given.length !== 2 * nStates) {
    throw unsupported(layer, `got ${given.length} initial state tensors, expected ${2 * nStates} (forward then backward)`, 'initial_state');
  }
  const init = (c: Cell, from: number) =>
    STATE_KINDS[kind].map((k, i) =>
      given[from + i] ? checkState(layer, given[from + i]!, x.shape[0]!, c.units, `initial state ${k}`) : zeros([x.shape[0]!, c.units]),
    );
  const goBackwards = fcfg.bool('go_backwards', false);
  const f = run(fwd, x, init(fwd, 0), goBackwards);
  const b = run(bwd, x, init(bwd, nStates), !goBackwards);
  const returnSequences = fcfg.bool('return_sequences', false);
  const outs = returnSequences ? merge(mergeMode, f.seq, reverseAxis(b.seq, 1)) : merge(mergeMode, f.last[0]!, b.last[0]!);
  return fcfg.bool('return_state', false) ? [...outs, ...f.last, ...b.last] : outs;
};
