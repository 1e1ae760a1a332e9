/**
 * 1-D Conv / MaxPool / AveragePool over time. A causal window (left padding (k−1)·d, none on
 * the right, stride 1) streams: its last (k−1)·d inputs are kept in a ring buffer
 * `state_in.<layer>.buf` that starts at the padding value. The left padding may be the op's own
 * `pads` (streamcell, Keras `causal`) or an explicit constant `Pad` before it (PyTorch's
 * `F.pad(x, ((k−1)·d, 0))`, Keras `ZeroPadding1D`), also across transposes.
 */
import { UnsupportedError } from '../../../errors.js';
import { AttributeType, tensorValues, toNum, type NodeProto } from '../../../onnx/proto.js';
import { attrInt, attrInts, attrStr } from '../../onnx/edit.js';
import type { StreamifyContext } from '../context.js';
import type { Rewriter } from '../types.js';

const NEG_MAX = -3.4028234663852886e38;

interface ExplicitPad {
  node: NodeProto;
  left: number;
  right: number;
  value: number;
  /** Transposes between the Pad and the window op, nearest the Pad first. */
  perms: number[][];
}

async function constInts(ctx: StreamifyContext, name: string): Promise<number[]> {
  const t = ctx.initializer(name);
  if (t) return Array.from(tensorValues(t).data as ArrayLike<number | bigint>, (v) => Number(v));
  const r = (await ctx.evaluate({ [name]: 'int64' }))[name]!;
  return Array.from(r.data as BigInt64Array, Number);
}

async function constFloat(ctx: StreamifyContext, name: string): Promise<number> {
  const t = ctx.initializer(name);
  if (t) return Number((tensorValues(t).data as ArrayLike<number>)[0] ?? 0);
  return ((await ctx.evaluate({ [name]: 'float32' }))[name]!.data as Float32Array)[0] ?? 0;
}

/** One constant-mode Pad node's amounts on `ax` (undefined: not a pure time padding). */
async function padAmounts(ctx: StreamifyContext, p: NodeProto, ax: number, layer: string): Promise<{ left: number; right: number; value: number } | undefined> {
  const mode = attrStr(p, 'mode', 'constant');
  if ((p.input ?? []).slice(1).some((i) => i && ctx.provenance(i).dataInputs.size > 0)) return undefined; // amounts computed from data
  const pads = ctx.ed.opset >= 11 ? (p.input![1] ? await constInts(ctx, p.input![1]) : []) : (attrInts(p, 'pads') ?? []);
  let rank = pads.length / 2;
  let full = pads;
  if (ctx.ed.opset >= 18 && p.input![3]) {
    // Pad-18 `axes`: the pads list only those axes.
    const axes = await constInts(ctx, p.input![3]);
    rank = Math.max(rank, ...axes.map((a) => (a < 0 ? -a : a + 1)), ax + 1);
    full = new Array(2 * rank).fill(0);
    axes.forEach((a, j) => {
      const at = a < 0 ? rank + a : a;
      full[at] = pads[j]!;
      full[at + rank] = pads[j + axes.length]!;
    });
  }
  if (full.some((q, j) => q !== 0 && j !== ax && j !== ax + rank)) return undefined; // pads other axes: not a time padding
  const left = full[ax] ?? 0;
  const right = full[ax + rank] ?? 0;
  if (mode !== 'constant' && (left > 0 || right > 0)) {
    throw new UnsupportedError(`Pad node before '${layer}' uses mode '${mode}': only constant padding can be replaced by a ring buffer`, {
      supported: ["Pad mode 'constant'"],
    });
  }
  const value =
    ctx.ed.opset >= 11 ? (p.input![2] ? await constFloat(ctx, p.input![2]) : 0) : toNum((p.attribute ?? []).find((a) => a.name === 'value')?.f ?? 0);
  return { left, right, value };
}

/**
 * The constant-mode Pads that feed `x` on `axis` (through transposes; PyTorch's avg_pool1d adds
 * an all-zero Pad of its own after the user's), summed. The window then reads the first Pad's input.
 */
async function explicitPad(ctx: StreamifyContext, x: string, axis: number, layer: string): Promise<ExplicitPad | undefined> {
  const perms: number[][] = [];
  let v = x;
  let ax = axis;
  let found: ExplicitPad | undefined;
  for (let depth = 0; depth < 12; depth++) {
    const p = ctx.producer(v);
    if (!p) break;
    if (p.opType === 'Transpose') {
      // No perm: the axes reversed (ONNX default); the rank is that of the Conv input, 3.
      const perm = attrInts(p, 'perm') ?? [2, 1, 0];
      perms.unshift(perm);
      ax = perm[ax]!;
      v = p.input![0]!;
      continue;
    }
    if (p.opType !== 'Pad') break;
    const amt = await padAmounts(ctx, p, ax, layer);
    if (!amt) break;
    if (found && amt.left + amt.right > 0 && found.left + found.right > 0 && amt.value !== found.value) break;
    found = {
      node: p,
      left: (found?.left ?? 0) + amt.left,
      right: (found?.right ?? 0) + amt.right,
      value: found && found.left + found.right > 0 ? found.value : amt.value,
      perms: [...perms],
    };
    v = p.input![0]!;
  }
  return found;
}

async function channelsOf(ctx: StreamifyContext, n: NodeProto, x: string): Promise<number | undefined> {
  if (n.opType === 'Conv') {
    const w = ctx.initializer(n.input![1]!);
    if (w) return toNum(w.dims![1] as number) * attrInt(n, 'group', 1);
  }
  const shape = ctx.valueShape(x);
  if (typeof shape?.[1] === 'number') return shape[1];
  // Not annotated: compute the input once (channels do not depend on batch or time).
  const r = (await ctx.evaluate({ [x]: 'float32' }))[x];
  return r && r.dims.length === 3 ? r.dims[1] : undefined;
}

async function rewriteWindow(ctx: StreamifyContext, n: NodeProto, layer: string): Promise<void> {
  const op = n.opType!;
  const w = op === 'Conv' ? ctx.initializer(n.input![1]!) : undefined;
  const kernel = attrInts(n, 'kernel_shape') ?? (w ? [(w.dims ?? []).map((d) => toNum(d as number))[2]!] : undefined);
  if (!kernel || kernel.length !== 1)
    throw new UnsupportedError(`${op} node '${layer}' is not a 1-D operation over time`, { supported: ['1-D Conv/MaxPool/AveragePool'] });
  const k = kernel[0]!;
  const d = (attrInts(n, 'dilations') ?? [1])[0]!;
  const s = (attrInts(n, 'strides') ?? [1])[0]!;
  const own = attrInts(n, 'pads') ?? [0, 0];
  const autoPad = attrStr(n, 'auto_pad', 'NOTSET');
  const span = (k - 1) * d;
  const x = n.input![0]!;
  if (span === 0 && s === 1 && own.every((p) => p === 0)) return; // pointwise
  if (autoPad !== 'NOTSET' && autoPad !== 'VALID') {
    throw new UnsupportedError(
      `${op} node '${layer}' uses ${autoPad} padding: output t needs inputs after t. Only causal windows (left padding (k−1)·d, stride 1) can stream; use window mode for this model`,
      { supported: ['causal Conv1D / pooling'] },
    );
  }
  if (s !== 1)
    throw new UnsupportedError(`${op} node '${layer}' has stride ${s}: it emits one output per ${s} inputs, so it cannot give an output at every step`, {
      supported: ['stride 1'],
    });
  const pad = await explicitPad(ctx, x, 2, layer);
  const left = own[0]! + (pad?.left ?? 0);
  const right = own[1]! + (pad?.right ?? 0);
  if (left !== span || right !== 0) {
    const padded = pad ? ` (its own pads [${own}] plus a Pad of [${pad.left}, ${pad.right}] on time)` : ` [${own}]`;
    const why =
      right > 0
        ? `its right padding ${right} makes output t depend on the next ${right} inputs (not causal)`
        : left < span
          ? `'valid' padding drops the first ${span - left} steps, so its outputs are shifted against the input`
          : `it pads ${left} steps on the left, more than its window needs (${span})`;
    throw new UnsupportedError(
      `${op} node '${layer}' pads${padded} with a window of ${span + 1}: ${why}. Causal means ${span} on the left, 0 on the right (padding='causal', or F.pad(x, (${span}, 0))); else use window mode`,
      { supported: ['causal Conv1D (padding=causal)', 'an explicit left Pad of (k−1)·d before Conv/pooling', 'causal pooling (left padding k−1)'] },
    );
  }
  if (op === 'AveragePool' && own[0]! > 0 && attrInt(n, 'count_include_pad', 0) === 0) {
    throw new UnsupportedError(`AveragePool node '${layer}' excludes padding from its average; a ring buffer cannot tell padding from data`, {
      supported: ['AveragePool with count_include_pad=1'],
    });
  }
  // The ring starts as the padding the sequence model sees before the first step.
  const ownValue = op === 'MaxPool' ? NEG_MAX : 0;
  if (pad && own[0]! > 0 && pad.left > 0 && pad.value !== ownValue) {
    throw new UnsupportedError(
      `${op} node '${layer}' is padded twice with different values (${pad.value} by a Pad, ${ownValue} by the op): the first steps cannot be reproduced by one ring buffer`,
      { supported: ['one padding value'] },
    );
  }
  const init = pad && pad.left > 0 ? pad.value : ownValue;
  let source = x;
  if (pad) {
    // Bypass the Pad: the window reads the Pad's input (through the same transposes).
    source = pad.node.input![0]!;
    for (const perm of pad.perms) source = ctx.ed.transpose(source, perm);
  }
  const channels = await channelsOf(ctx, n, x);
  if (!channels)
    throw new UnsupportedError(`${op} node '${layer}': cannot tell its channel count`, {
      supported: ['Conv with an initializer kernel, or an input of known shape'],
    });
  const st = ctx.addState(layer, 'buf', [channels, span], init);
  ctx.report.initialStates.push({
    state: `${layer}.buf`,
    from: pad ? `explicit Pad value ${pad.value}` : `padding value ${init === NEG_MAX ? '-FLT_MAX' : init}`,
  });
  const window = ctx.ed.node('Concat', [st.input, source], [{ name: 'axis', type: AttributeType.INT, i: 2 }]);
  ctx.ed.node('Slice', [window, ctx.ed.i64([1]), ctx.ed.i64([span + 1]), ctx.ed.i64([2])], [], st.output);
  n.input = [window, ...n.input!.slice(1)];
  n.attribute = [...(n.attribute ?? []).filter((a) => a.name !== 'pads' && a.name !== 'auto_pad'), { name: 'pads', type: AttributeType.INTS, ints: [0, 0] }];
  ctx.report.rewritten.push({
    node: layer,
    op,
    as: `${op} over a ring buffer state_in/state_out.${layer}.buf [${channels}, ${span}]${pad ? ' (explicit Pad folded in)' : ''}`,
  });
}

export const causalWindow: Rewriter = { ops: ['Conv', 'MaxPool', 'AveragePool'], rewrite: rewriteWindow };
