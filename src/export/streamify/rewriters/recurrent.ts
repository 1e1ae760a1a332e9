/**
 * Forward LSTM/GRU/RNN (and com.microsoft DynamicQuantizeLSTM): the initial state, whatever
 * its spelling, becomes `state_in.<layer>.h/c`, the final state `state_out.<layer>.h/c`.
 */
import { InputError, UnsupportedError } from '../../../errors.js';
import type { NodeProto } from '../../../onnx/proto.js';
import { attrInt, attrStr } from '../../onnx/edit.js';
import type { StreamifyContext } from '../context.js';
import { classifyInitialState } from '../initial-state.js';
import type { Rewriter } from '../types.js';

async function rewriteRecurrence(ctx: StreamifyContext, n: NodeProto, layer: string): Promise<void> {
  const op = n.opType!;
  const dir = attrStr(n, 'direction', 'forward');
  if (dir !== 'forward') {
    throw new UnsupportedError(
      `${op} node '${layer}' runs in direction '${dir}': it needs the future of the sequence and cannot stream. Serve the sequence model in window mode instead (WindowPool; streamcell stream --model SEQ.onnx --window N)`,
      { supported: ['forward LSTM/GRU/RNN'] },
    );
  }
  const hidden = attrInt(n, 'hidden_size', 0);
  if (!hidden) throw new InputError(`${op} node '${layer}' has no hidden_size`, { field: `${layer}.hidden_size`, expected: 'a positive integer' });
  const ins = [...(n.input ?? [])];
  while (ins.length < 8) ins.push('');
  const outs = [...(n.output ?? [])];
  const kinds: ('h' | 'c')[] = op === 'GRU' || op === 'RNN' ? ['h'] : ['h', 'c'];
  while (outs.length < kinds.length + 1) outs.push('');
  if (ins[4]) ctx.report.lengthInputs.push(ins[4]);
  ins[4] = ''; // sequence_lens: a step is always length 1
  for (const [k, kind] of kinds.entries()) {
    const slot = 5 + k;
    const init = ins[slot]!;
    const initProducer = init ? ctx.producer(init) : undefined;
    if (initProducer?.opType === 'Unsqueeze' && ctx.isStateInput(initProducer.input![0]!)) continue; // a stateful export: wired already
    const found = await classifyInitialState(ctx, init, layer, kind, hidden);
    const st = ctx.addState(layer, kind, [hidden], found.kind === 'constant' ? found.value : 0);
    const state = `${layer}.${kind}`;
    if (found.kind === 'input' || found.kind === 'selection') {
      // The sequence model's initial-state input becomes the step model's carried state.
      if (!ctx.report.replacedInputs.includes(found.input)) ctx.report.replacedInputs.push(found.input);
      ctx.report.initialStates.push({
        state,
        from: found.kind === 'input' ? `input '${found.input}'` : `input '${found.input}' through ${found.ops.join(' → ')}`,
      });
    } else if (found.kind === 'constant') {
      const v = found.value;
      ctx.report.initialStates.push({ state, from: typeof v === 'number' ? `constant ${v}` : `constant per element [${v.length}]` });
    } else ctx.report.initialStates.push({ state, from: 'absent (zeros)' });
    ins[slot] = ctx.ed.unsqueeze(st.input, 0);
    const fin = outs[1 + k] || ctx.ed.uniq(`${layer}_Y_${kind}`);
    outs[1 + k] = fin;
    ctx.finalStates.set(fin, state);
    ctx.ed.squeeze(fin, 0, st.output);
  }
  while (ins.length > 0 && ins[ins.length - 1] === '') ins.pop();
  n.input = ins;
  n.output = outs;
  ctx.report.rewritten.push({ node: layer, op, as: `${op} with state_in/state_out.${layer}.${kinds.join('/')}` });
}

export const recurrence: Rewriter = { ops: ['LSTM', 'GRU', 'RNN'], rewrite: rewriteRecurrence };
export const quantizedLstm: Rewriter = { ops: ['DynamicQuantizeLSTM'], domain: 'com.microsoft', rewrite: rewriteRecurrence };
