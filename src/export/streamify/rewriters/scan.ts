/** Forward `Scan` recurrences (streamcell's cells with activations ONNX's RNN ops lack). */
import { UnsupportedError } from '../../../errors.js';
import type { NodeProto } from '../../../onnx/proto.js';
import { attr, attrInt, attrInts, dimsOf } from '../../onnx/edit.js';
import type { StreamifyContext } from '../context.js';
import type { Rewriter } from '../types.js';

function rewriteScan(ctx: StreamifyContext, n: NodeProto, layer: string): void {
  const k = attrInt(n, 'num_scan_inputs', 1);
  const dirs = attrInts(n, 'scan_input_directions') ?? [];
  if (dirs.some((d) => d === 1)) {
    throw new UnsupportedError(
      `Scan node '${layer}' iterates backwards over time: it needs the future of the sequence and cannot stream. Use window mode for this model`,
      { supported: ['forward recurrences'] },
    );
  }
  const ins = [...(n.input ?? [])];
  const nState = ins.length - k;
  const kinds = nState === 2 ? ['h', 'c'] : nState === 1 ? ['h'] : Array.from({ length: nState }, (_, i) => `s${i}`);
  const outs = [...(n.output ?? [])];
  const body = attr(n, 'body')!.g!;
  for (let s = 0; s < nState; s++) {
    const init = ins[s]!;
    if (ctx.isStateInput(init)) continue;
    const dims = dimsOf(body.input![s]!)
      .slice(1)
      .map((d) => (typeof d === 'number' ? d : NaN));
    if (dims.some(Number.isNaN))
      throw new UnsupportedError(`Scan node '${layer}': state ${s} has no static shape`, { supported: ['states of static shape [batch, n]'] });
    const st = ctx.addState(layer, kinds[s]!, dims);
    ctx.report.initialStates.push({ state: `${layer}.${kinds[s]}`, from: 'zeros' });
    ins[s] = st.input;
    if (!outs[s]) outs[s] = ctx.ed.uniq(`${layer}_final_${kinds[s]}`);
    ctx.ed.node('Identity', [outs[s]!], [], st.output);
    // A Scan's final state is [batch, n] already: an output of it is a prediction, not a state copy.
  }
  n.input = ins;
  n.output = outs;
  ctx.report.rewritten.push({ node: layer, op: 'Scan', as: `Scan with state_in/state_out.${layer}.${kinds.join('/')}` });
}

export const scan: Rewriter = { ops: ['Scan'], rewrite: rewriteScan };
