/** Opset-aware helpers for ops whose signature changed between opsets 13 and 18+. */
import { A, type GraphBuilder } from './builder.js';

/** ReduceMean/ReduceMax/ReduceSum over `axes`: attribute before opset 18 (13 for ReduceSum), input after. */
export function reduce(g: GraphBuilder, op: 'ReduceMean' | 'ReduceMax' | 'ReduceMin' | 'ReduceSum', x: string, axes: number[], keepdims: boolean): string {
  const axesAsInput = op === 'ReduceSum' ? g.opset >= 13 : g.opset >= 18;
  if (axesAsInput) return g.op(op, [x, g.i64(axes)], { keepdims: A.i(keepdims ? 1 : 0) });
  return g.op(op, [x], { axes: A.is(axes), keepdims: A.i(keepdims ? 1 : 0) });
}
