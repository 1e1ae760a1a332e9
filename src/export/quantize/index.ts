/**
 * `streamcell quantize`: int8 (dynamic), int8-static (QDQ, calibrated) and fp16, on sequence
 * and step models, with a comparison against the float model and an accuracy gate.
 */
import { CheckFailedError, InputError, UnsupportedError } from '../../errors.js';
import type { Dataset, Evaluation } from '../../data/evaluate.js';
import { evaluateModel } from '../../data/evaluate.js';
import { META, readPreprocessing, type PreprocessingJson } from '../../model-format/index.js';
import { decodeModel, decodeUserModel, encodeModel, toNum, type ModelProto } from '../../onnx/proto.js';
import { resolveBackend } from '../../runtime/backend-impl.js';
import type { BackendName } from '../../runtime/backend.js';
import { readModelInfo } from '../../runtime/step-model.js';
import { modelFeeds } from '../onnx/feeds.js';
import { calibrate, type CalibrationOptions } from './calibrate.js';
import { measureLatencies, type MeasureLatencies } from './latency.js';
import { fp16Graph, INT8_KERNELS, quantizeGraph, staticTargets, type Int8Kernels, type PassReport } from './passes.js';

export { INT8_KERNELS, type Int8Kernels };

/** A quantization mode: dynamic `int8`, calibrated `int8-static`, or `fp16` storage. */
export type QuantMode = 'int8' | 'int8-static' | 'fp16';
export const QUANT_MODES: readonly QuantMode[] = ['int8', 'int8-static', 'fp16'];

/** Options of {@link quantizeModel}: the mode, calibration data (int8-static), and the evaluation data and gate. */
export interface QuantizeOptions {
  mode: QuantMode;
  /** int8: onnxruntime's integer kernels (default) or float kernels with int8 weights folded at load (see {@link Int8Kernels}). */
  kernels?: Int8Kernels;
  /** int8-static: calibration data through the model's preprocessing. */
  calibration?: { pre: PreprocessingJson; data: Dataset } & Partial<CalibrationOptions>;
}

/** What {@link quantizeModel} reports: sizes, output error, task metric and latency, float vs quantized, and the nodes quantized or skipped. */
export interface QuantizeReport extends PassReport {
  mode: QuantMode;
  /** int8: which kernels the weights meet. */
  kernels?: Int8Kernels;
  sizeBefore: number;
  sizeAfter: number;
  /** sizeAfter / sizeBefore. */
  ratio: number;
  calibration?: { method: string; tensors: number; samples: number };
}

/** The preprocessing a model carries in its metadata, if any. */
export function modelPreprocessing(bytes: Uint8Array, source = 'the model'): PreprocessingJson | undefined {
  return readPreprocessing(readModelInfo(bytes).metadata, source);
}

/**
 * Quantizes ONNX model bytes.
 *
 * @example
 * const { model, report } = await quantizeModel(bytes, { mode: 'int8' });
 * console.log(`${report.sizeBefore} → ${report.sizeAfter} bytes`);
 */
export async function quantizeModel(bytes: Uint8Array, opts: QuantizeOptions): Promise<{ model: Uint8Array; report: QuantizeReport }> {
  if (!QUANT_MODES.includes(opts.mode)) throw new InputError(`unknown mode '${opts.mode}'`, { option: 'mode', expected: QUANT_MODES.join(' | ') });
  if (opts.kernels !== undefined && !INT8_KERNELS.includes(opts.kernels))
    throw new InputError(`unknown kernels '${opts.kernels}'`, { option: 'kernels', expected: INT8_KERNELS.join(' | ') });
  if (opts.kernels !== undefined && opts.mode !== 'int8')
    throw new InputError(`kernels '${opts.kernels}' applies to mode int8 only, not ${opts.mode}`, {
      option: 'kernels',
      expected: 'mode int8, or no kernels option',
    });
  const m = decodeUserModel(bytes);
  const opset = toNum((m.opsetImport ?? []).find((o) => !o.domain || o.domain === 'ai.onnx')?.version as number) || 13;
  if (opset < 13 && opts.mode !== 'fp16')
    throw new UnsupportedError(`opset ${opset}: per-channel DequantizeLinear needs opset ≥ 13`, { supported: ['opset 13 and later'] });
  let pass: PassReport;
  let calibration: QuantizeReport['calibration'];
  if (opts.mode === 'fp16') pass = fp16Graph(m.graph, opset);
  else if (opts.mode === 'int8') pass = quantizeGraph(m.graph, opset, { mode: 'int8', kernels: opts.kernels });
  else {
    if (!opts.calibration)
      throw new InputError('int8-static needs calibration data', {
        option: 'calibration',
        expected: 'a CSV of real inputs with the columns the model was trained on',
      });
    const targets = staticTargets(m.graph);
    const method = opts.calibration.method ?? 'minmax';
    const { ranges, samples } = await calibrate(bytes, targets, opts.calibration.pre, opts.calibration.data, { ...opts.calibration, method });
    calibration = { method: method === 'percentile' ? `percentile ${opts.calibration.percentile ?? 99.99}` : 'minmax', tensors: ranges.size, samples };
    pass = quantizeGraph(m.graph, opset, { mode: 'int8-static', ranges });
  }
  const total = Object.values(pass.quantized).reduce((a, b) => a + b, 0);
  if (total === 0) {
    const ops = [...new Set((m.graph.node ?? []).map((n) => n.opType))].join(', ');
    throw new UnsupportedError(
      `nothing to quantize in mode ${opts.mode}: no MatMul/Conv/LSTM/GRU/RNN/Gather with constant weights of ≥ 16 values (the model's ops: ${ops})` +
        (pass.skipped.length ? `; skipped: ${pass.skipped.map((s) => `${s.op} '${s.node}' (${s.reason})`).join('; ')}` : ''),
      { supported: ['models with constant MatMul/Conv/recurrent weights'] },
    );
  }
  if ((m.graph.node ?? []).some((n) => n.domain === 'com.microsoft') && !(m.opsetImport ?? []).some((o) => o.domain === 'com.microsoft')) {
    m.opsetImport = [...(m.opsetImport ?? []), { domain: 'com.microsoft', version: 1 }];
  }
  const props = (m.metadataProps ?? []).filter((p) => p.key !== META.quantization);
  const kernels = opts.mode === 'int8' ? (opts.kernels ?? 'integer') : undefined;
  props.push({ key: META.quantization, value: JSON.stringify({ mode: opts.mode, kernels, quantized: pass.quantized, calibration }) });
  m.metadataProps = props;
  const out = encodeModel(m as ModelProto);
  return {
    model: out,
    report: {
      ...pass,
      mode: opts.mode,
      kernels,
      sizeBefore: bytes.byteLength,
      sizeAfter: out.byteLength,
      ratio: out.byteLength / bytes.byteLength,
      calibration,
    },
  };
}

/** What {@link compareModels} measured: the largest output difference and, with data, the task metric of both models. */
export interface Comparison {
  size: { a: number; b: number };
  parameters: { a: number; b: number };
  /** Abs difference of the first output on the evaluation windows (or random inputs). */
  outputError: { max: number; mean: number; histogram: { edges: number[]; counts: number[] } };
  metrics?: { a: Evaluation['metrics']; b: Evaluation['metrics']; drop: number };
  /** p50 of a batch-1 run, µs, both measured in the same interleaved rounds ({@link measureLatencies}). */
  latencyUs: { a: number; b: number };
  /** Median per-round ratio b / a (the number to trust on a loaded machine), the rounds and the CPU. */
  latency: { ratio: number; rounds: number; cpu: string };
  evaluations?: { a: Evaluation; b: Evaluation };
}

function countParams(bytes: Uint8Array): number {
  const g = decodeModel(bytes).graph!;
  return (g.initializer ?? []).reduce((n, t) => n + (t.dims ?? []).reduce((a: number, d) => a * toNum(d as number), 1), 0);
}

/** Compares two models (float vs quantized, or any two with the same I/O) on the same data. */
export async function compareModels(
  a: Uint8Array,
  b: Uint8Array,
  opts: { pre?: PreprocessingJson; data?: Dataset; backend?: BackendName; measure?: MeasureLatencies } = {},
): Promise<Comparison> {
  let evaluations: Comparison['evaluations'];
  let diffs: Float64Array;
  if (opts.pre && opts.data) {
    const ea = await evaluateModel(a, opts.pre, opts.data, { backend: opts.backend });
    const eb = await evaluateModel(b, opts.pre, opts.data, { backend: opts.backend });
    evaluations = { a: ea, b: eb };
    diffs = Float64Array.from(ea.raw, (v, i) => Math.abs(v - eb.raw[i]!));
  } else {
    diffs = await randomDiffs(a, b, opts.backend);
  }
  let max = 0;
  let sum = 0;
  for (const d of diffs) {
    max = Math.max(max, d);
    sum += d;
  }
  const bins = 20;
  const counts = new Array<number>(bins).fill(0);
  const edges = Array.from({ length: bins + 1 }, (_, i) => (max * i) / bins);
  for (const d of diffs) counts[Math.min(bins - 1, max > 0 ? Math.floor((d / max) * bins) : 0)]!++;
  let metrics: Comparison['metrics'];
  if (evaluations) {
    const ma = evaluations.a.metrics;
    const mb = evaluations.b.metrics;
    const pa = ma.primary.value;
    const pb = mb.primary.value;
    // Relative worsening of the primary metric (negative: the second model is better).
    const drop = ma.primary.higherIsBetter ? (pa - pb) / Math.max(Math.abs(pa), 1e-12) : (pb - pa) / Math.max(Math.abs(pa), 1e-12);
    metrics = { a: ma, b: mb, drop };
  }
  const lat = await (opts.measure ?? ((ms) => measureLatencies(ms, { pre: opts.pre, backend: opts.backend })))([a, b]);
  return {
    size: { a: a.byteLength, b: b.byteLength },
    parameters: { a: countParams(a), b: countParams(b) },
    outputError: { max, mean: diffs.length ? sum / diffs.length : 0, histogram: { edges, counts } },
    metrics,
    latencyUs: { a: lat.us[0]!, b: lat.us[1]! },
    latency: { ratio: lat.ratios[1]!, rounds: lat.rounds, cpu: lat.cpu },
    evaluations,
  };
}

async function randomDiffs(a: Uint8Array, b: Uint8Array, backend?: BackendName): Promise<Float64Array> {
  const info = readModelInfo(a);
  const infoB = readModelInfo(b);
  // Random inputs can only go to models that take the same inputs and give the same output.
  const sig = (i: typeof info) => i.inputs.map((x) => `${x.name}: ${x.dtype}[${x.dims.join(', ')}]`).join('; ');
  if (sig(info) !== sig(infoB)) {
    throw new InputError(`the two models take different inputs — A: ${sig(info)}; B: ${sig(infoB)}`, {
      field: 'B',
      expected: 'two models with the same inputs (a model and its quantized copy; a step model with a step model), or --data F.csv to compare them on the task',
    });
  }
  const name = info.predictionOutputs[0]!.name;
  if (!infoB.predictionOutputs.some((o) => o.name === name)) {
    throw new InputError(`model B has no output '${name}' (it has ${infoB.predictionOutputs.map((o) => `'${o.name}'`).join(', ')})`, {
      field: 'B',
      expected: `an output named '${name}'`,
    });
  }
  const { backend: be } = await resolveBackend(backend ? [backend] : undefined);
  const sa = await be.createSession(a);
  const sb = await be.createSession(b);
  try {
    const feeds = modelFeeds(a, { batch: 8, time: info.kind === 'step' ? 1 : 16 }, 7, 0.6);
    const ra = (await sa.run(feeds))[name]!;
    const rb = (await sb.run(feeds))[name]!;
    if (ra.dims.join() !== rb.dims.join()) {
      throw new InputError(`output '${name}' is [${ra.dims}] in A and [${rb.dims}] in B on the same inputs`, {
        field: 'B',
        expected: 'two models with the same output shape',
      });
    }
    const ya = ra.data as Float32Array;
    const yb = rb.data as Float32Array;
    return Float64Array.from(ya, (v, k) => Math.abs(v - yb[k]!));
  } finally {
    await sa.release();
    await sb.release();
  }
}

/** Throws {@link CheckFailedError} when the relative metric drop exceeds `maxDrop`. */
export function assertGate(c: Comparison, maxDrop: number): void {
  if (!c.metrics) return;
  if (c.metrics.drop > maxDrop) {
    const m = c.metrics;
    throw new CheckFailedError(
      `accuracy gate failed: ${m.a.primary.name} ${m.a.primary.value.toPrecision(5)} → ${m.b.primary.value.toPrecision(5)}, a ${(m.drop * 100).toFixed(2)}% relative drop > --max-drop ${(maxDrop * 100).toFixed(2)}%; nothing was written`,
      { option: 'maxDrop' },
    );
  }
}
