/**
 * Evaluates intermediate values of a model in onnxruntime: a copy of the graph whose outputs
 * are the wanted values, pruned to what they need. streamify uses it for values that exporters
 * compute from constants and input shapes (PyTorch's zero initial state, its Pad amounts).
 */
import { decodeModel, encodeModel, type ModelProto, type NodeProto } from '../../onnx/proto.js';
import { resolveBackend } from '../../runtime/backend-impl.js';
import type { BackendName, TensorData } from '../../runtime/backend.js';
import { pruneDead } from './edit.js';

const ELEM: Record<string, number> = { float32: 1, uint8: 2, int8: 3, int32: 6, int64: 7, bool: 9 };

/** Runs the part of `model` that computes `wanted` (name → element type) on `feeds`. */
export async function evaluateValues(
  model: ModelProto,
  wanted: Record<string, keyof typeof ELEM>,
  feeds: Record<string, TensorData>,
  backend?: BackendName,
): Promise<Record<string, TensorData>> {
  const m = decodeModel(encodeModel(model));
  const g = m.graph!;
  g.output = Object.entries(wanted).map(([name, t]) => ({ name, type: { tensorType: { elemType: ELEM[t] } } }));
  g.valueInfo = [];
  pruneDead(g);
  const need = new Set((g.input ?? []).map((i) => i.name!));
  const { backend: b } = await resolveBackend(backend ? [backend] : undefined);
  const s = await b.createSession(encodeModel(m));
  try {
    return await s.run(Object.fromEntries(Object.entries(feeds).filter(([k]) => need.has(k))));
  } finally {
    await s.release();
  }
}

/** Where a value comes from: which graph inputs reach it as data (not only through Shape/Size). */
export interface Provenance {
  /** Graph inputs whose values (not just shapes) flow into the value. */
  dataInputs: Set<string>;
  /** Op types on the way. */
  ops: Set<string>;
}

const SHAPE_ONLY = new Set(['Shape', 'Size']);

/** Walks back from `value`: reading only shapes of graph inputs keeps a value constant for a given shape. */
export function provenance(value: string, producer: (v: string) => NodeProto | undefined, graphInputs: Set<string>): Provenance {
  const res: Provenance = { dataInputs: new Set(), ops: new Set() };
  const seen = new Set<string>();
  const walk = (v: string) => {
    if (!v || seen.has(v)) return;
    seen.add(v);
    if (graphInputs.has(v)) {
      res.dataInputs.add(v);
      return;
    }
    const p = producer(v);
    if (!p) return; // initializer
    res.ops.add(p.opType!);
    if (SHAPE_ONLY.has(p.opType!)) return;
    for (const i of p.input ?? []) walk(i);
  };
  walk(value);
  return res;
}
