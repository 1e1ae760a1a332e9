/**
 * The streamify pass: a sequence model → a step model whose recurrent state is explicit.
 *
 * It works on the ONNX graph, so it serves streamcell's exports and ONNX models from other
 * exporters alike. With time = 1:
 * - forward LSTM/GRU/RNN nodes take `state_in.<layer>.h/c` as initial state and return their
 *   final state as `state_out.<layer>.h/c` (layout 1 is rewritten to layout 0: onnxruntime's
 *   CPU kernels lack it);
 * - forward `Scan` recurrences (streamcell's cells with other activations) likewise;
 * - causal Conv (left padding (k−1)·d, stride 1) and causal pooling windows keep their last
 *   (k−1)·d inputs in a `state_in.<layer>.buf` ring;
 * - everything per-time-step (MatMul, activations, normalisation over features) is unchanged.
 * What needs the future (reverse/bidirectional RNNs, non-causal convolution or pooling, time
 * flips) is refused with the reason. A numerical check then runs the sequence model and the step
 * model on the same random sequence; a model that still looks at the whole window (global
 * pooling over time, Flatten, RepeatVector, …) fails it and is refused, pointing at window mode.
 */
import { createHash } from 'node:crypto';
import { CheckFailedError, InputError, UnsupportedError } from '../errors.js';
import { AttributeType, decodeModel, DTYPE_NAMES, encodeModel, toNum, type ModelProto, type NodeProto, type ValueInfoProto } from '../onnx/proto.js';
import { attr, attrInt, attrInts, attrStr, dimsOf, GraphEdit, pruneDead, topoSort } from './onnx/edit.js';
import { resolveBackend } from '../runtime/backend-impl.js';
import type { BackendName, Session, TensorData } from '../runtime/backend.js';
import { META, type StateMeta } from './metadata.js';
import { rng } from './parity.js';

export interface StreamifyOptions {
  /** Time axis of the sequence inputs when it cannot be found from the graph (default: found, else 1). */
  timeAxis?: number;
  /** Run the numerical check (default true); a failed check throws {@link CheckFailedError}. */
  verify?: boolean;
  tolerance?: number;
  steps?: number;
  seed?: number;
  backend?: BackendName;
}

export interface StreamifyReport {
  states: StateMeta[];
  /** Inputs that carry the time axis, with the axis. */
  sequenceInputs: { name: string; axis: number }[];
  rewritten: { node: string; op: string; as: string }[];
  /** Sequence-model inputs that held RNN sequence_lens (dropped in the step model). */
  lengthInputs: string[];
  /** Sequence-model inputs that held initial states (now `state_in.*`, fed zeros when checking). */
  replacedInputs: string[];
  verification?: StepCheck;
}

export interface StepCheck {
  backend: string;
  steps: number;
  batch: number;
  maxAbsError: number;
  perOutput: Record<string, number>;
  tolerance: number;
  passed: boolean;
}

const RNN_OPS = new Set(['LSTM', 'GRU', 'RNN']);
/** Ops that keep every axis of their (first) input: the time axis passes through unchanged. */
const ELEMENTWISE = new Set(['Identity', 'Cast', 'Relu', 'Tanh', 'Sigmoid', 'Add', 'Sub', 'Mul', 'Div', 'MatMul', 'Concat', 'LeakyRelu', 'Elu', 'Clip', 'Softplus',
  'Softsign', 'HardSigmoid', 'Selu', 'Erf', 'Sum', 'Max', 'Min', 'Where', 'PRelu', 'Neg', 'Exp', 'BatchNormalization', 'Dropout', 'Softmax', 'LayerNormalization']);

function layerNameOf(node: NodeProto, index: number): string {
  const n = (node.name ?? '').trim();
  return (n || `${node.opType!.toLowerCase()}_${index}`).replace(/[^A-Za-z0-9_./:-]/g, '_');
}

/** Finds the time axis of graph inputs by walking back from recurrences and convolutions. */
function findSequenceInputs(ed: GraphEdit, explicitAxis?: number): Map<string, number> {
  const graphInputs = new Set((ed.g.input ?? []).map((i) => i.name!));
  const inits = new Set((ed.g.initializer ?? []).map((t) => t.name!));
  const found = new Map<string, number>();
  const trace = (value: string, axis: number, depth = 0): void => {
    if (depth > 64) return;
    if (graphInputs.has(value)) {
      found.set(value, axis);
      return;
    }
    const p = ed.producer(value);
    if (!p) return;
    const op = p.opType!;
    if (op === 'Transpose') {
      const perm = attrInts(p, 'perm');
      if (perm) trace(p.input![0]!, perm[axis]!, depth + 1);
    } else if (ELEMENTWISE.has(op)) {
      const ins = op === 'MatMul' ? [p.input![0]!] : (p.input ?? []).filter((i) => i && !inits.has(i));
      for (const i of ins) trace(i, axis, depth + 1);
    } else if (op === 'Gather' && attrInt(p, 'axis', 0) === 0) {
      trace(p.input![1]!, axis, depth + 1); // embedding lookup: indices keep their axes
    } else if (RNN_OPS.has(op) || op === 'Scan' || op === 'Conv') {
      // Outputs of an earlier recurrence carry the same time axis, already traced from there.
    }
  };
  for (const n of ed.g.node ?? []) {
    const op = n.opType!;
    if (RNN_OPS.has(op) || op === 'DynamicQuantizeLSTM') trace(n.input![0]!, attrInt(n, 'layout', 0) === 1 ? 1 : 0);
    else if (op === 'Scan') {
      const k = attrInt(n, 'num_scan_inputs', 1);
      const axes = attrInts(n, 'scan_input_axes') ?? [];
      const ins = n.input!;
      for (let j = 0; j < k; j++) trace(ins[ins.length - k + j]!, axes[j] ?? 0);
    } else if (op === 'Conv' || op === 'MaxPool' || op === 'AveragePool') trace(n.input![0]!, 2);
  }
  if (found.size === 0) {
    // No recurrence or convolution: inputs with a symbolic 'time' dimension, else the given axis.
    for (const i of ed.g.input ?? []) {
      const d = dimsOf(i);
      const axis = explicitAxis ?? d.findIndex((x) => x === 'time');
      if (axis >= 1 && axis < d.length) found.set(i.name!, axis);
    }
  }
  if (explicitAxis !== undefined) for (const k of found.keys()) found.set(k, explicitAxis);
  return found;
}

function stateVi(name: string, shape: number[]): ValueInfoProto {
  return { name, type: { tensorType: { elemType: 1, shape: { dim: [{ dimParam: 'batch' }, ...shape.map((d) => ({ dimValue: d }))] } } } };
}

/**
 * Turns sequence-model ONNX bytes into step-model bytes (see the module comment), then
 * verifies it numerically unless `verify: false`.
 *
 * @example
 * const { model, report } = await streamifyModel(await readFile('m.onnx'));
 * await writeFile('m.step.onnx', model);
 */
export async function streamifyModel(bytes: Uint8Array, opts: StreamifyOptions = {}): Promise<{ model: Uint8Array; report: StreamifyReport }> {
  let m: ReturnType<typeof decodeModel>;
  try {
    m = decodeModel(bytes);
  } catch (e) {
    throw new InputError(`not an ONNX model: ${(e as Error).message}`, { expected: 'an ONNX ModelProto' });
  }
  if (!m.graph) throw new InputError('ONNX model has no graph', { expected: 'a ModelProto with a graph' });
  // Batch-major (layout 1) recurrences first become layout 0 + transposes: onnxruntime's CPU
  // kernels implement layout 0 only, so the check below could not even run the original.
  const seqBytes = toLayout0(m) ? encodeModel(m as ModelProto) : bytes;
  const g = m.graph;
  const opset = toNum((m.opsetImport ?? []).find((o) => !o.domain || o.domain === 'ai.onnx')?.version as number) || 13;
  const ed = new GraphEdit(g, opset);
  const meta = new Map((m.metadataProps ?? []).map((p) => [p.key!, p.value!]));
  const existing: StateMeta[] = meta.get(META.state) ? (JSON.parse(meta.get(META.state)!) as StateMeta[]) : [];
  if (meta.get('streamcell.step') === 'true') throw new InputError('this is already a step model', { field: 'metadata streamcell.step', expected: 'a sequence model' });
  const states: StateMeta[] = [...existing];
  const rewritten: StreamifyReport['rewritten'] = [];
  const lengthInputs: string[] = [];
  const replacedInputs: string[] = [];
  const seqInputs = findSequenceInputs(ed, opts.timeAxis);
  if (seqInputs.size === 0) throw new UnsupportedError('found no input with a time axis; pass --time-axis', { supported: ['models with LSTM/GRU/RNN/Scan/Conv over time, or an input with a symbolic "time" dimension'] });

  const addState = (layer: string, kind: string, shape: number[], init = 0) => {
    const input = ed.uniq(`state_in.${layer}.${kind}`);
    const output = ed.uniq(`state_out.${layer}.${kind}`);
    g.input = [...(g.input ?? []), stateVi(input, shape)];
    g.output = [...(g.output ?? []), stateVi(output, shape)];
    states.push({ name: `${layer}.${kind}`, input, output, shape, dtype: 'float32', init });
    return { input, output };
  };
  const isStateInput = (v: string) => v.startsWith('state_in.') && (g.input ?? []).some((i) => i.name === v);
  const valueShape = (v: string): (number | string | null)[] | undefined => {
    const vi = [...(g.input ?? []), ...(g.valueInfo ?? [])].find((x) => x.name === v);
    return vi ? dimsOf(vi) : undefined;
  };

  const nodes = [...(g.node ?? [])];
  for (const [idx, n] of nodes.entries()) {
    const op = n.opType!;
    const layer = layerNameOf(n, idx);
    const msLstm = op === 'DynamicQuantizeLSTM' && n.domain === 'com.microsoft';
    if (n.domain && n.domain !== 'ai.onnx' && !msLstm) continue;
    if (RNN_OPS.has(op) || msLstm) {
      const dir = attrStr(n, 'direction', 'forward');
      if (dir !== 'forward') {
        throw new UnsupportedError(`${op} node '${layer}' runs in direction '${dir}': it needs the future of the sequence and cannot stream. Use window mode (WindowPool / --window) for this model`, { supported: ['forward LSTM/GRU/RNN'] });
      }
      const hidden = attrInt(n, 'hidden_size', 0);
      if (!hidden) throw new InputError(`${op} node '${layer}' has no hidden_size`, { field: `${layer}.hidden_size`, expected: 'a positive integer' });
      const ins = [...(n.input ?? [])];
      while (ins.length < 8) ins.push('');
      const outs = [...(n.output ?? [])];
      const kinds: ('h' | 'c')[] = op === 'GRU' || op === 'RNN' ? ['h'] : ['h', 'c'];
      while (outs.length < kinds.length + 1) outs.push('');
      if (ins[4]) lengthInputs.push(ins[4]);
      ins[4] = ''; // sequence_lens: a step is always length 1
      kinds.forEach((kind, k) => {
        const slot = 5 + k;
        const init = ins[slot]!;
        const initProducer = init ? ed.producer(init) : undefined;
        const alreadyState = initProducer?.opType === 'Unsqueeze' && isStateInput(initProducer.input![0]!);
        if (alreadyState) return; // a stateful export: state_in/state_out are wired already
        if (init && !(g.input ?? []).some((i) => i.name === init)) {
          throw new UnsupportedError(`${op} node '${layer}' computes its initial ${kind} state from other tensors; a step model needs it as carried state`, { supported: ['no initial state, or a graph input as initial state'] });
        }
        const st = addState(layer, kind, [hidden]);
        if (init) {
          // The sequence model's initial-state input becomes the step model's carried state.
          replacedInputs.push(init);
          if (ed.consumers(init).length === 1) g.input = (g.input ?? []).filter((i) => i.name !== init);
        }
        ins[slot] = ed.unsqueeze(st.input, 0);
        const fin = outs[1 + k] || ed.uniq(`${layer}_Y_${kind}`);
        outs[1 + k] = fin;
        ed.squeeze(fin, 0, st.output);
      });
      while (ins.length > 0 && ins[ins.length - 1] === '') ins.pop();
      n.input = ins;
      n.output = outs;
      rewritten.push({ node: layer, op, as: `${op} with state_in/state_out.${layer}.${kinds.join('/')}` });
    } else if (op === 'Scan') {
      const k = attrInt(n, 'num_scan_inputs', 1);
      const dirs = attrInts(n, 'scan_input_directions') ?? [];
      if (dirs.some((d) => d === 1)) {
        throw new UnsupportedError(`Scan node '${layer}' iterates backwards over time: it needs the future of the sequence and cannot stream. Use window mode for this model`, { supported: ['forward recurrences'] });
      }
      const ins = [...(n.input ?? [])];
      const nState = ins.length - k;
      const kinds = nState === 2 ? ['h', 'c'] : nState === 1 ? ['h'] : Array.from({ length: nState }, (_, i) => `s${i}`);
      const outs = [...(n.output ?? [])];
      const body = attr(n, 'body')!.g!;
      for (let s = 0; s < nState; s++) {
        const init = ins[s]!;
        if (isStateInput(init)) continue;
        const dims = dimsOf(body.input![s]!).slice(1).map((d) => (typeof d === 'number' ? d : NaN));
        if (dims.some(Number.isNaN)) throw new UnsupportedError(`Scan node '${layer}': state ${s} has no static shape`, { supported: ['states of static shape [batch, n]'] });
        const st = addState(layer, kinds[s] as 'h', dims);
        ins[s] = st.input;
        if (!outs[s]) outs[s] = ed.uniq(`${layer}_final_${kinds[s]}`);
        ed.node('Identity', [outs[s]!], [], st.output);
      }
      n.input = ins;
      n.output = outs;
      rewritten.push({ node: layer, op, as: `Scan with state_in/state_out.${layer}.${kinds.join('/')}` });
    } else if (op === 'Conv' || op === 'MaxPool' || op === 'AveragePool') {
      const w = op === 'Conv' ? (g.initializer ?? []).find((t) => t.name === n.input![1]) : undefined;
      const kernel = attrInts(n, 'kernel_shape') ?? (w ? [(w.dims ?? []).map((d) => toNum(d as number))[2]!] : undefined);
      if (!kernel || kernel.length !== 1) throw new UnsupportedError(`${op} node '${layer}' is not a 1-D operation over time`, { supported: ['1-D Conv/MaxPool/AveragePool'] });
      const k = kernel[0]!;
      const d = (attrInts(n, 'dilations') ?? [1])[0]!;
      const s = (attrInts(n, 'strides') ?? [1])[0]!;
      const pads = attrInts(n, 'pads') ?? [0, 0];
      const autoPad = attrStr(n, 'auto_pad', 'NOTSET');
      const span = (k - 1) * d;
      if (span === 0 && s === 1 && pads.every((p) => p === 0)) continue; // pointwise
      if (autoPad !== 'NOTSET' && autoPad !== 'VALID') {
        throw new UnsupportedError(`${op} node '${layer}' uses ${autoPad} padding: output t needs inputs after t. Only causal windows (left padding (k−1)·d, stride 1) can stream; use window mode for this model`, { supported: ['causal Conv1D / pooling'] });
      }
      if (s !== 1) throw new UnsupportedError(`${op} node '${layer}' has stride ${s}: it emits one output per ${s} inputs, so it cannot give an output at every step`, { supported: ['stride 1'] });
      if (pads[0] !== span || pads[1] !== 0) {
        const why = pads[1]! > 0 ? `its right padding ${pads[1]} makes output t depend on the next ${pads[1]} inputs (not causal)` : `'valid' padding drops the first ${span} steps, so its outputs are shifted against the input`;
        throw new UnsupportedError(`${op} node '${layer}' pads [${pads}] with a window of ${span + 1}: ${why}. Use padding='causal' or window mode`, { supported: ['causal Conv1D (padding=causal)', 'causal pooling (left padding k−1)'] });
      }
      if (op === 'AveragePool' && attrInt(n, 'count_include_pad', 0) === 0) {
        throw new UnsupportedError(`AveragePool node '${layer}' excludes padding from its average; a ring buffer cannot tell padding from data`, { supported: ['AveragePool with count_include_pad=1'] });
      }
      let channels: number | undefined;
      if (w) channels = toNum(w.dims![1] as number) * attrInt(n, 'group', 1);
      else {
        const shape = valueShape(n.input![0]!);
        channels = typeof shape?.[1] === 'number' ? shape[1] : undefined;
        if (channels === undefined) {
          // Pool after a Conv: its channel count is that Conv's filters.
          const prod = ed.producer(n.input![0]!);
          const convW = prod?.opType === 'Conv' ? (g.initializer ?? []).find((t) => t.name === prod.input![1]) : undefined;
          if (convW) channels = toNum(convW.dims![0] as number);
        }
      }
      if (!channels) throw new UnsupportedError(`${op} node '${layer}': cannot tell its channel count`, { supported: ['Conv with an initializer kernel'] });
      const st = addState(layer, 'buf', [channels, span], op === 'MaxPool' ? -3.4028234663852886e38 : 0);
      const x = n.input![0]!;
      const window = ed.node('Concat', [st.input, x], [{ name: 'axis', type: AttributeType.INT, i: 2 }]);
      ed.node('Slice', [window, ed.i64([1]), ed.i64([span + 1]), ed.i64([2])], [], st.output);
      n.input = [window, ...n.input!.slice(1)];
      n.attribute = [...(n.attribute ?? []).filter((a) => a.name !== 'pads'), { name: 'pads', type: AttributeType.INTS, ints: [0, 0] }];
      rewritten.push({ node: layer, op, as: `${op} over a ring buffer state_in/state_out.${layer}.buf [${channels}, ${span}]` });
    } else if (op === 'Slice') {
      const stepsIn = n.input![4];
      const t = stepsIn ? (g.initializer ?? []).find((x) => x.name === stepsIn) : undefined;
      if (t?.rawData && new BigInt64Array(Uint8Array.from(t.rawData).buffer).some((v) => v < 0n)) {
        throw new UnsupportedError(`Slice node '${layer}' reverses an axis (go_backwards?): a reversed sequence needs its future and cannot stream`, { supported: ['forward-only models'] });
      }
    }
  }

  // Insert new nodes before their first consumer: simplest valid order is a topological sort.
  g.node = topoSort([...(g.node ?? []), ...ed.added], new Set([...(g.input ?? []).map((i) => i.name!), ...(g.initializer ?? []).map((t) => t.name!)]));
  pruneDead(g);

  // Time dimension 1 on sequence inputs; intermediate shapes are re-inferred by runtimes.
  const sequenceInputs: StreamifyReport['sequenceInputs'] = [];
  const symbolicTime = (g.input ?? []).some((i) => seqInputs.has(i.name!) && dimsOf(i)[seqInputs.get(i.name!)!] === 'time');
  for (const i of g.input ?? []) {
    const axis = seqInputs.get(i.name!);
    if (axis === undefined) continue;
    const dim = i.type!.tensorType!.shape!.dim!;
    dim[axis] = { dimValue: 1 };
    sequenceInputs.push({ name: i.name!, axis });
  }
  g.valueInfo = [];
  for (const o of g.output ?? []) {
    if (o.name!.startsWith('state_out.')) continue;
    const dims = o.type?.tensorType?.shape?.dim ?? [];
    // A symbolic 'time' becomes 1. With a fixed-length input, a fixed size may be the old length:
    // such sizes become unknown (rank kept; runtimes infer them) rather than left wrong.
    if (dims.some((d) => d.dimParam === 'time')) dims.forEach((d, j) => (d.dimParam === 'time' ? (dims[j] = { dimValue: 1 }) : undefined));
    else if (!symbolicTime) dims.forEach((d, j) => (d.dimParam ? undefined : (dims[j] = {})));
  }
  if (states.length === existing.length && rewritten.length === 0) {
    throw new UnsupportedError('found nothing to carry between steps (no LSTM/GRU/RNN/Scan/causal Conv): the model has no recurrent state', { supported: ['models with recurrent layers or causal convolutions'] });
  }
  const sourceSha = createHash('sha256').update(bytes).digest('hex');
  const props = (m.metadataProps ?? []).filter((p) => p.key !== META.state && p.key !== 'streamcell.step');
  props.push({ key: META.state, value: JSON.stringify(states) }, { key: 'streamcell.step', value: 'true' }, { key: 'streamcell.sequence_sha256', value: sourceSha });
  m.metadataProps = props;
  const out = encodeModel(m as ModelProto);
  const report: StreamifyReport = { states, sequenceInputs, rewritten, lengthInputs, replacedInputs };
  if (opts.verify !== false) {
    report.verification = await checkStepModel(seqBytes, out, report, opts);
    // Never hand out a step model that computes something else than the sequence model.
    assertStepCheck(report.verification);
  }
  return { model: out, report };
}

/**
 * Rewrites every LSTM/GRU/RNN node with layout=1 (batch-major) to layout 0 with transposes
 * around it, in place. Returns whether anything changed.
 */
export function toLayout0(m: ReturnType<typeof decodeModel>): boolean {
  const g = m.graph!;
  const opset = toNum((m.opsetImport ?? []).find((o) => !o.domain || o.domain === 'ai.onnx')?.version as number) || 13;
  const ed = new GraphEdit(g, opset);
  let changed = false;
  for (const n of g.node ?? []) {
    if (!RNN_OPS.has(n.opType!) || attrInt(n, 'layout', 0) !== 1) continue;
    changed = true;
    n.attribute = (n.attribute ?? []).filter((a) => a.name !== 'layout');
    const ins = [...(n.input ?? [])];
    ins[0] = ed.transpose(ins[0]!, [1, 0, 2]);
    for (const slot of [5, 6]) if (ins[slot]) ins[slot] = ed.transpose(ins[slot]!, [1, 0, 2]);
    const outs = [...(n.output ?? [])];
    outs.forEach((o, j) => {
      if (!o) return;
      const tm = ed.uniq(`${o}_time_major`);
      ed.transpose(tm, j === 0 ? [2, 0, 1, 3] : [1, 0, 2], o);
      outs[j] = tm;
    });
    n.input = ins;
    n.output = outs;
  }
  if (changed) g.node = topoSort([...(g.node ?? []), ...ed.added], new Set([...(g.input ?? []).map((i) => i.name!), ...(g.initializer ?? []).map((t) => t.name!)]));
  return changed;
}

// ---------------------------------------------------------------------------------------------
// Numerical check: step model vs sequence model on the same random sequence.

interface IoDesc {
  name: string;
  dims: (number | string | null)[];
  dtype: string;
}

function ioDescs(bytes: Uint8Array): { inputs: IoDesc[]; outputs: IoDesc[] } {
  const m = decodeModel(bytes);
  const inits = new Set((m.graph!.initializer ?? []).map((t) => t.name));
  const d = (v: ValueInfoProto): IoDesc => ({ name: v.name!, dims: dimsOf(v), dtype: DTYPE_NAMES[v.type?.tensorType?.elemType ?? 1] ?? 'float32' });
  return { inputs: (m.graph!.input ?? []).filter((i) => !inits.has(i.name)).map(d), outputs: (m.graph!.output ?? []).map(d) };
}

function sliceAxis(t: TensorData, axis: number, from: number, len: number): TensorData {
  const dims = [...t.dims];
  const outer = dims.slice(0, axis).reduce((a, b) => a * b, 1);
  const inner = dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const src = t.data as Float32Array;
  const out = new (src.constructor as Float32ArrayConstructor)(outer * len * inner);
  for (let o = 0; o < outer; o++) out.set(src.subarray((o * dims[axis]! + from) * inner, (o * dims[axis]! + from + len) * inner), o * len * inner);
  dims[axis] = len;
  return { type: t.type, data: out, dims };
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    m = Number.isNaN(d) ? Infinity : Math.max(m, d);
  }
  return m;
}

/**
 * Runs the sequence model on a random sequence (and on each prefix, for outputs without a time
 * axis) and the step model one step at a time from the initial state; compares every step.
 */
export async function checkStepModel(seqBytes: Uint8Array, stepBytes: Uint8Array, report: Pick<StreamifyReport, 'states' | 'sequenceInputs' | 'lengthInputs' | 'replacedInputs'>, opts: StreamifyOptions = {}): Promise<StepCheck> {
  const tolerance = opts.tolerance ?? 1e-4;
  const { backend, record } = await resolveBackend(opts.backend ? [opts.backend] : undefined);
  const seq: Session = await backend.createSession(seqBytes);
  const step: Session = await backend.createSession(stepBytes);
  const seqIo = ioDescs(seqBytes);
  const stepIo = ioDescs(stepBytes);
  const rand = rng(opts.seed ?? 99);
  const normal = () => Math.sqrt(-2 * Math.log(rand() + 1e-12)) * Math.cos(2 * Math.PI * rand());
  const axisOf = new Map(report.sequenceInputs.map((s) => [s.name, s.axis]));
  const firstSeq = seqIo.inputs.find((i) => axisOf.has(i.name));
  const fixedT = firstSeq ? firstSeq.dims[axisOf.get(firstSeq.name)!] : undefined;
  const T = typeof fixedT === 'number' ? fixedT : (opts.steps ?? 6);
  const fixedB = firstSeq?.dims[firstSeq.dims.findIndex((_, j) => j !== axisOf.get(firstSeq.name))];
  const B = typeof fixedB === 'number' && fixedB > 0 && firstSeq?.dims[0] === fixedB ? fixedB : 2;
  const stateNames = new Set(report.states.map((s) => s.input));
  const lengths = new Set(report.lengthInputs);
  try {
    // Full-length random inputs (sequence inputs get T steps; others, e.g. weights fed as inputs, fixed).
    const full: Record<string, TensorData> = {};
    for (const i of seqIo.inputs) {
      if (stateNames.has(i.name)) continue;
      const axis = axisOf.get(i.name);
      const dims = i.dims.map((d, j) => (j === axis ? T : typeof d === 'number' ? d : j === 0 ? B : 3));
      if (axis !== undefined && axis !== 0 && typeof i.dims[0] !== 'number') dims[0] = B;
      const n = dims.reduce((a, b) => a * b, 1);
      const isInt = i.dtype.startsWith('int');
      if (report.replacedInputs.includes(i.name)) continue; // fed zeros below, like the step model's initial state
      if (lengths.has(i.name)) {
        full[i.name] = { type: i.dtype as TensorData['type'], data: Int32Array.from({ length: n }, () => T), dims };
        continue;
      }
      const data = isInt ? (i.dtype === 'int64' ? BigInt64Array.from({ length: n }, () => BigInt(Math.floor(rand() * 5))) : Int32Array.from({ length: n }, () => Math.floor(rand() * 5))) : Float32Array.from({ length: n }, () => normal() * 0.8);
      full[i.name] = { type: i.dtype as TensorData['type'], data, dims };
    }
    const zeroState = (s: StateMeta, batch: number): TensorData => ({ type: 'float32', data: new Float32Array(batch * s.shape.reduce((a, b) => a * b, 1)).fill(s.init), dims: [batch, ...s.shape] });
    const batchOf = (() => {
      const t = Object.entries(full).find(([k]) => axisOf.has(k));
      if (!t) return B;
      const [name, td] = t;
      const ax = axisOf.get(name)!;
      return td.dims[ax === 0 ? 1 : 0]!;
    })();
    const existingStates = report.states.filter((s) => seqIo.inputs.some((i) => i.name === s.input));
    const runSeq = async (len: number) => {
      const feeds: Record<string, TensorData> = {};
      for (const [k, v] of Object.entries(full)) feeds[k] = axisOf.has(k) ? sliceAxis(v, axisOf.get(k)!, 0, len) : v;
      for (const s of existingStates) feeds[s.input] = zeroState(s, batchOf);
      // A foreign model's initial-state inputs became carried state: feed the same initial value.
      for (const i of seqIo.inputs) if (!(i.name in feeds) && !stateNames.has(i.name)) feeds[i.name] = { type: 'float32', data: new Float32Array(i.dims.reduce((a: number, d) => a * (typeof d === 'number' ? d : batchOf), 1)), dims: i.dims.map((d) => (typeof d === 'number' ? d : batchOf)) };
      return seq.run(feeds);
    };
    const whole = await runSeq(T);
    const outputs = seqIo.outputs.filter((o) => !o.name.startsWith('state_out.'));
    // An output's time axis is where the full run has T and a step has 1 (found after step 0).
    let timeAxis: Map<string, number | undefined> | undefined;
    const prefixes = new Map<number, Record<string, TensorData>>([[T, whole]]);
    const prefix = async (len: number) => {
      if (!prefixes.has(len)) prefixes.set(len, await runSeq(len));
      return prefixes.get(len)!;
    };

    let state: Record<string, TensorData> = {};
    for (const s of report.states) state[s.input] = zeroState(s, batchOf);
    const perOutput: Record<string, number> = {};
    for (let t = 0; t < T; t++) {
      const feeds: Record<string, TensorData> = { ...state };
      for (const i of stepIo.inputs) {
        if (stateNames.has(i.name)) continue;
        const v = full[i.name];
        if (!v) throw new Error(`step model input '${i.name}' has no counterpart in the sequence model`);
        feeds[i.name] = axisOf.has(i.name) ? sliceAxis(v, axisOf.get(i.name)!, t, 1) : v;
      }
      const got = await step.run(feeds);
      timeAxis ??= new Map(outputs.map((o) => {
        const w = whole[o.name]!.dims;
        const st = got[o.name]!.dims;
        const ax = w.length === st.length ? w.findIndex((d, j) => d === T && st[j] === 1 && T !== 1) : -1;
        return [o.name, ax >= 0 ? ax : undefined];
      }));
      state = {};
      for (const s of report.states) state[s.input] = got[s.output]!;
      for (const o of outputs) {
        const ax = timeAxis.get(o.name);
        let want: TensorData | undefined;
        if (ax !== undefined) want = sliceAxis(whole[o.name]!, ax, t, 1);
        // Without a time axis, step t answers for the prefix of length t+1 (comparable only when the input length is free).
        else if (typeof fixedT !== 'number' || t === T - 1) want = (await prefix(t + 1))[o.name];
        if (!want) continue;
        const d = maxAbsDiff(got[o.name]!.data as Float32Array, want.data as Float32Array);
        perOutput[o.name] = Math.max(perOutput[o.name] ?? 0, d);
      }
    }
    const maxAbsError = Math.max(0, ...Object.values(perOutput));
    return { backend: `${record.name} ${record.version}`, steps: T, batch: batchOf, maxAbsError, perOutput, tolerance, passed: maxAbsError <= tolerance };
  } finally {
    await seq.release();
    await step.release();
  }
}

export function assertStepCheck(c: StepCheck, file?: string): void {
  if (!c.passed) {
    const worst = Object.entries(c.perOutput).reduce((a, b) => (b[1] > a[1] ? b : a));
    throw new CheckFailedError(
      `the step model differs from the sequence model (output '${worst[0]}', max abs error ${worst[1].toExponential(3)} > ${c.tolerance} over ${c.steps} steps): ` +
        'some layer looks at the whole window (global pooling over time, Flatten, RepeatVector, a fixed-length Reshape, …). Serve this model in window mode instead',
      { file },
    );
  }
}
