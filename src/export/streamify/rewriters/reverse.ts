/** A `Slice` with negative steps reverses time (tfjs' go_backwards): it needs the future. */
import { UnsupportedError } from '../../../errors.js';
import type { NodeProto } from '../../../onnx/proto.js';
import type { StreamifyContext } from '../context.js';
import type { Rewriter } from '../types.js';

function refuseReversal(ctx: StreamifyContext, n: NodeProto, layer: string): void {
  const stepsIn = n.input![4];
  const t = stepsIn ? ctx.initializer(stepsIn) : undefined;
  if (t?.rawData && new BigInt64Array(Uint8Array.from(t.rawData).buffer).some((v) => v < 0n)) {
    throw new UnsupportedError(`Slice node '${layer}' reverses an axis (go_backwards?): a reversed sequence needs its future and cannot stream`, {
      supported: ['forward-only models'],
    });
  }
}

export const reverseSlice: Rewriter = { ops: ['Slice'], rewrite: refuseReversal };
