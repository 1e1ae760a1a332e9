/**
 * The streamify pass: a sequence model → a step model whose recurrent state is explicit.
 *
 * It works on the ONNX graph, so it serves streamcell's exports and ONNX models from other
 * exporters (PyTorch, tf2onnx, ONNX's own tests) alike. With time = 1, each node whose op has a
 * rewriter (`rewriters/registry.ts`) is rewritten to carry its state:
 * - forward LSTM/GRU/RNN nodes take `state_in.<layer>.h/c` as initial state, whatever the
 *   sequence model's spelling of it (absent, constant, built from the input shape, an `h0`
 *   input or a per-layer slice of one), and return `state_out.<layer>.h/c`;
 * - forward `Scan` recurrences likewise;
 * - causal Conv/pooling windows (own left pads or an explicit constant `Pad`) keep their last
 *   (k−1)·d inputs in a `state_in.<layer>.buf` ring;
 * - everything per-time-step is unchanged.
 * What needs the future (reverse/bidirectional RNNs, non-causal windows, time flips) is refused
 * with the reason. A numerical check then runs the sequence model and the step model on the
 * same random sequence at every step; a model that still looks at the whole window is refused.
 */
import { createHash } from 'node:crypto';
import { InputError, UnsupportedError } from '../../errors.js';
import { decodeModel, decodeUserModel, encodeModel, toNum, type ModelProto } from '../../onnx/proto.js';
import { dimsOf, pruneDead, topoSort } from '../onnx/edit.js';
import { META, parseStateMetadata, serializeStateMetadata, type StateSpec as StateMeta } from '../../model-format/index.js';
import { assertStepCheck, checkStepModel } from './check.js';
import { StreamifyContext } from './context.js';
import { batchMajorIo, dropStateOutputs, toLayout0 } from './layout.js';
import { rewriterFor } from './rewriters/registry.js';
import { findSequenceInputs } from './sequence-inputs.js';
import type { StreamifyOptions, StreamifyReport } from './types.js';

export type { Rewriter, StepCheck, StreamifyOptions, StreamifyReport } from './types.js';
export { assertStepCheck, checkStepModel } from './check.js';
export { toLayout0 } from './layout.js';
export { rewrittenOps } from './rewriters/registry.js';

function layerNameOf(name: string | null | undefined, op: string, index: number): string {
  const n = (name ?? '').trim();
  return (n.replace(/^\/+/, '') || `${op.toLowerCase()}_${index}`).replace(/[^A-Za-z0-9_./:-]/g, '_');
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
  const m = decodeUserModel(bytes);
  // Batch-major (layout 1) recurrences first become layout 0 + transposes: onnxruntime's CPU
  // kernels implement layout 0 only, so the check below could not even run the original.
  const seqBytes = toLayout0(m) ? encodeModel(m as ModelProto) : bytes;
  const g = m.graph;
  const opset = toNum((m.opsetImport ?? []).find((o) => !o.domain || o.domain === 'ai.onnx')?.version as number) || 13;
  const meta = new Map((m.metadataProps ?? []).map((p) => [p.key!, p.value!]));
  if (meta.get(META.step) === 'true') throw new InputError('this is already a step model', { field: `metadata ${META.step}`, expected: 'a sequence model' });
  const existing: StateMeta[] = meta.get(META.state) ? parseStateMetadata(meta.get(META.state)!) : [];
  const original = decodeModel(seqBytes);
  const tmp = new StreamifyContext(m, original, opset, existing, new Map(), opts);
  const seqInputs = findSequenceInputs(tmp.ed, opts.timeAxis);
  if (seqInputs.size === 0)
    throw new UnsupportedError('found no input with a time axis; pass --time-axis', {
      supported: ['models with LSTM/GRU/RNN/Scan/Conv over time, or an input with a symbolic "time" dimension'],
    });
  const ctx = new StreamifyContext(m, original, opset, existing, seqInputs, opts);

  // Time-major I/O, read before any dims change: the input's time and batch dims, found again on outputs.
  const timeMajorInputs = [...seqInputs]
    .filter(([, ax]) => ax === 0)
    .map(([n]) => n)
    .filter((n) => dimsOf(g.input!.find((i) => i.name === n)!).length >= 2);
  const tmDims = timeMajorInputs.length ? dimsOf(g.input!.find((i) => i.name === timeMajorInputs[0])!) : undefined;
  const timeMajorOutputs = tmDims
    ? (g.output ?? [])
        .filter((o) => {
          const d = dimsOf(o);
          return d.length >= 2 && d[0] === tmDims[0] && d[1] === tmDims[1] && d[0] !== null;
        })
        .map((o) => o.name!)
    : [];

  for (const [idx, n] of [...(g.node ?? [])].entries()) {
    const r = rewriterFor(n.opType!, n.domain);
    if (r) await r.rewrite(ctx, n, layerNameOf(n.name, n.opType!, idx));
  }
  dropStateOutputs(ctx);

  // Time dimension 1 on sequence inputs; intermediate shapes are re-inferred by runtimes.
  const sequenceInputs: StreamifyReport['sequenceInputs'] = [];
  const timeNames = new Set<string>();
  for (const i of g.input ?? []) {
    const axis = seqInputs.get(i.name!);
    if (axis === undefined) continue;
    const dim = i.type!.tensorType!.shape!.dim!;
    if (dim[axis]?.dimParam) timeNames.add(dim[axis]!.dimParam!);
    dim[axis] = { dimValue: 1 };
    // A fixed batch (a statically shaped export) becomes symbolic: the state inputs are per row.
    const bAxis = axis === 0 ? 1 : 0;
    if (dim[bAxis] && !dim[bAxis]!.dimParam) dim[bAxis] = { dimParam: 'batch' };
    sequenceInputs.push({ name: i.name!, axis });
  }
  g.valueInfo = [];
  for (const o of g.output ?? []) {
    if (o.name!.startsWith('state_out.')) continue;
    const dims = o.type?.tensorType?.shape?.dim ?? [];
    // A symbolic time becomes 1. With a fixed-length input, a fixed size may be the old length:
    // such sizes become unknown (rank kept; runtimes infer them) rather than left wrong.
    if (dims.some((d) => d.dimParam && timeNames.has(d.dimParam)))
      dims.forEach((d, j) => (d.dimParam && timeNames.has(d.dimParam) ? (dims[j] = { dimValue: 1 }) : undefined));
    else if (timeNames.size === 0) dims.forEach((d, j) => (d.dimParam ? undefined : (dims[j] = {})));
  }
  batchMajorIo(
    ctx,
    timeMajorInputs,
    timeMajorOutputs.filter((o) => (g.output ?? []).some((x) => x.name === o)),
  );

  // Insert new nodes before their first consumer: simplest valid order is a topological sort.
  g.node = topoSort([...(g.node ?? []), ...ctx.ed.added], new Set([...(g.input ?? []).map((i) => i.name!), ...(g.initializer ?? []).map((t) => t.name!)]));
  pruneDead(g);

  const states = ctx.states;
  if (states.length === existing.length && ctx.report.rewritten.length === 0) {
    throw new UnsupportedError('found nothing to carry between steps (no LSTM/GRU/RNN/Scan/causal Conv): the model has no recurrent state', {
      supported: ['models with recurrent layers or causal convolutions'],
    });
  }
  const sourceSha = createHash('sha256').update(bytes).digest('hex');
  const props = (m.metadataProps ?? []).filter((p) => p.key !== META.state && p.key !== META.step);
  props.push({ key: META.state, value: serializeStateMetadata(states) }, { key: META.step, value: 'true' }, { key: META.sequenceSha256, value: sourceSha });
  m.metadataProps = props;
  const out = encodeModel(m as ModelProto);
  const report: StreamifyReport = { states, sequenceInputs, ...ctx.report };
  if (opts.verify !== false) {
    report.verification = await checkStepModel(seqBytes, out, report, opts);
    // Never hand out a step model that computes something else than the sequence model.
    assertStepCheck(report.verification);
  }
  return { model: out, report };
}
