/** Library entry points of the exporter, used by the CLI and by tests. */
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { assertParity, checkParity, checkParityInputs, type ParityOptions, type ParityReport } from './parity.js';
import { exportToOnnx, type ExportOptions, type ExportResult, type IoInfo } from './exporter.js';
import type { StateMeta } from './metadata.js';
import { loadTfjsArtifacts } from './tfjs-format/load.js';
import { readSampleData } from './sample-data.js';
import { checkPreprocessing, type PreprocessingJson } from '../data/preprocessing.js';

/** preprocessing.json next to model.json, when there is one (to normalise CSV sample data). */
async function siblingPreprocessing(modelJsonPath: string): Promise<PreprocessingJson | undefined> {
  const p = join(dirname(modelJsonPath), 'preprocessing.json');
  let text: string;
  try {
    text = await readFile(p, 'utf8');
  } catch {
    return undefined;
  }
  return checkPreprocessing(JSON.parse(text), p);
}

/** Options of {@link exportModelFile}: the export options plus the parity check (on by default) and its tolerance. */
export interface ExportFileOptions extends ExportOptions, Omit<ParityOptions, 'tolerance'> {
  verify?: boolean;
  tolerance?: number;
  /** Called with the ONNX bytes before the parity check runs. */
  write?: (bytes: Uint8Array) => Promise<void>;
  /** A .npy/.json/.csv file of real inputs for the parity check (instead of random ones). */
  sampleData?: string;
}

/** What {@link exportModelFile} reports: source, size, opset, parameter and node counts, inputs, outputs, states, ops, warnings and timing. */
export interface ExportSummary {
  source: string;
  sizeBytes: number;
  opset: number;
  parameters: number;
  nodes: number;
  inputs: IoInfo[];
  outputs: IoInfo[];
  states: StateMeta[];
  ops: Record<string, number>;
  warnings: string[];
  /** Set when model.json came from Keras 3 (rewritten to the Keras 2 wire shape on reading). */
  keras3?: { kerasVersion: string; notes: string[] };
  sourceSha256: string;
  elapsedMs: number;
}

/**
 * Loads `model.json`, exports it, writes it via `opts.write`, then (unless `verify: false`)
 * checks parity against tfjs or the float64 reference.
 *
 * @example
 * const r = await exportModelFile('model/model.json', { write: (b) => writeFile('m.onnx', b) });
 * r.assertParity(); // throws CheckFailedError over tolerance
 */
export async function exportModelFile(
  modelJson: string,
  opts: ExportFileOptions = {},
): Promise<{
  result: ExportResult;
  summary: ExportSummary;
  parity?: ParityReport;
  assertParity: () => void;
}> {
  const t0 = performance.now();
  const art = await loadTfjsArtifacts(modelJson);
  const result = await exportToOnnx(art, opts);
  const elapsedMs = performance.now() - t0;
  if (opts.verify !== false && !opts.sampleData) checkParityInputs(result.graph, art.modelJsonPath, opts);
  await opts.write?.(result.model);
  const samples =
    opts.sampleData && opts.verify !== false
      ? await readSampleData(opts.sampleData, result.graph.inputs[0]!, await siblingPreprocessing(art.modelJsonPath))
      : undefined;
  const parity = opts.verify === false ? undefined : await checkParity(art, result, { ...opts, samples });
  const summary: ExportSummary = {
    source: art.modelJsonPath,
    sizeBytes: result.model.byteLength,
    opset: result.opset,
    parameters: art.weights.reduce((n, w) => n + w.data.length, 0),
    nodes: Object.values(result.opHistogram).reduce((a, b) => a + b, 0),
    inputs: result.inputs,
    outputs: result.outputs,
    states: result.states,
    ops: result.opHistogram,
    warnings: result.warnings,
    keras3: art.keras3,
    sourceSha256: result.sourceSha256,
    elapsedMs,
  };
  return { result, summary, parity, assertParity: () => parity && assertParity(parity, art.modelJsonPath) };
}
