/**
 * Layout fix-ups around the rewrite: batch-major RNN nodes to layout 0 (onnxruntime's CPU
 * kernels lack layout 1), time-major graph inputs/outputs to batch-major step I/O (the pool
 * feeds `[batch, 1, …]`), and outputs that only return final states (PyTorch's `hn`, `cn`).
 */
import { AttributeType, toNum, type decodeModel, type ValueInfoProto } from '../../onnx/proto.js';
import { attrInt, GraphEdit, topoSort } from '../onnx/edit.js';
import type { StreamifyContext } from './context.js';
import { RNN_OPS } from './sequence-inputs.js';

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
  if (changed)
    g.node = topoSort([...(g.node ?? []), ...ed.added], new Set([...(g.input ?? []).map((i) => i.name!), ...(g.initializer ?? []).map((t) => t.name!)]));
  return changed;
}

/**
 * Ops that keep Y_h's [directions or layers, batch, hidden] layout. A Squeeze/Reshape/Transpose of
 * a final state makes it a [batch, …] prediction (an encoder's `h.squeeze(0)`): that one stays.
 */
const PLUMBING = new Set(['Concat', 'Identity', 'Cast']);

/**
 * Removes graph outputs that are recurrences' final states as they are (PyTorch's `hn`, `cn`:
 * Y_h/Y_c, concatenated over layers): in the step model they are exactly the `state_out.*`
 * tensors, and their batch axis is not 0.
 */
export function dropStateOutputs(ctx: StreamifyContext): void {
  const g = ctx.g;
  const finals = ctx.finalStates;
  const stateOnly = (v: string, acc: Set<string>, depth = 0): boolean => {
    if (depth > 32) return false;
    const st = finals.get(v);
    if (st) {
      acc.add(st);
      return true;
    }
    if (ctx.initializer(v)) return true;
    const p = ctx.producer(v);
    if (!p) return false;
    if (p.opType === 'Constant') return true;
    if (!PLUMBING.has(p.opType!)) return false;
    return (p.input ?? []).filter(Boolean).every((i) => stateOnly(i, acc, depth + 1));
  };
  const keep: ValueInfoProto[] = [];
  for (const o of g.output ?? []) {
    const acc = new Set<string>();
    if (!o.name!.startsWith('state_out.') && stateOnly(o.name!, acc) && acc.size > 0) ctx.report.stateOutputs.push({ output: o.name!, states: [...acc] });
    else keep.push(o);
  }
  g.output = keep;
}

/** Swaps axes 0 and 1 of a declared shape. */
function swap01(v: ValueInfoProto): void {
  const dim = v.type?.tensorType?.shape?.dim;
  if (dim && dim.length >= 2) [dim[0], dim[1]] = [dim[1]!, dim[0]!];
}

/**
 * Time-major inputs ([time, batch, …], time axis 0) become `[batch, 1, …]` graph inputs with a
 * transpose inside; outputs that were time-major likewise. With one step the data is the same,
 * only the declared order changes, so every step model is fed the way the pool feeds it.
 */
export function batchMajorIo(ctx: StreamifyContext, timeMajorInputs: string[], timeMajorOutputs: string[]): void {
  const g = ctx.g;
  const perm = (rank: number) => [1, 0, ...Array.from({ length: rank - 2 }, (_, j) => j + 2)];
  for (const name of timeMajorInputs) {
    const vi = (g.input ?? []).find((i) => i.name === name)!;
    const rank = vi.type!.tensorType!.shape!.dim!.length;
    const inner = ctx.ed.uniq(`${name}_time_major`);
    for (const n of g.node ?? []) n.input = (n.input ?? []).map((i) => (i === name ? inner : i));
    ctx.ed.node('Transpose', [name], [{ name: 'perm', type: AttributeType.INTS, ints: perm(rank) }], inner);
    swap01(vi);
    ctx.report.transposed.push(name);
  }
  for (const name of timeMajorOutputs) {
    const vi = (g.output ?? []).find((o) => o.name === name)!;
    const rank = vi.type!.tensorType!.shape!.dim!.length;
    const inner = ctx.ed.uniq(`${name}_time_major`);
    for (const n of [...(g.node ?? []), ...ctx.ed.added]) {
      n.output = (n.output ?? []).map((o) => (o === name ? inner : o));
      n.input = (n.input ?? []).map((i) => (i === name ? inner : i));
    }
    ctx.ed.node('Transpose', [inner], [{ name: 'perm', type: AttributeType.INTS, ints: perm(rank) }], name);
    swap01(vi);
    ctx.report.transposed.push(name);
  }
}
