/** Finds which graph inputs carry the time axis, and on which axis, by walking back from the ops over time. */
import { InputError } from '../../errors.js';
import { attrInt, attrInts, dimsOf, type GraphEdit } from '../onnx/edit.js';

export const RNN_OPS = new Set(['LSTM', 'GRU', 'RNN']);
/** Ops that keep every axis of their (first) input: the time axis passes through unchanged. */
const SAME_AXES = new Set([
  'Identity',
  'Cast',
  'Relu',
  'Tanh',
  'Sigmoid',
  'Add',
  'Sub',
  'Mul',
  'Div',
  'MatMul',
  'Concat',
  'LeakyRelu',
  'Elu',
  'Clip',
  'Softplus',
  'Softsign',
  'HardSigmoid',
  'Selu',
  'Erf',
  'Sum',
  'Max',
  'Min',
  'Where',
  'PRelu',
  'Neg',
  'Exp',
  'BatchNormalization',
  'Dropout',
  'Softmax',
  'LayerNormalization',
  'Pad',
]);

export function findSequenceInputs(ed: GraphEdit, explicitAxis?: number): Map<string, number> {
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
    } else if (SAME_AXES.has(op)) {
      const ins = op === 'MatMul' || op === 'Pad' ? [p.input![0]!] : (p.input ?? []).filter((i) => i && !inits.has(i));
      for (const i of ins) trace(i, axis, depth + 1);
    } else if (op === 'Gather' && attrInt(p, 'axis', 0) === 0) {
      trace(p.input![1]!, axis, depth + 1); // embedding lookup: indices keep their axes
    }
    // Outputs of an earlier recurrence or convolution carry the same time axis, traced from there.
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
  if (explicitAxis !== undefined) {
    for (const k of found.keys()) {
      const rank = dimsOf(ed.g.input!.find((i) => i.name === k)!).length;
      if (explicitAxis >= rank)
        throw new InputError(`time axis ${explicitAxis} does not exist: input '${k}' has rank ${rank}`, {
          option: 'timeAxis',
          expected: `an axis from 0 to ${rank - 1}`,
        });
      found.set(k, explicitAxis);
    }
  }
  return found;
}
