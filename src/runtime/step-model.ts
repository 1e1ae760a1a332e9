/**
 * Reads what the runtime needs to know about an ONNX model from its bytes alone, without a
 * session: inputs and outputs with their declared dims, `metadata_props`, the recurrent
 * state tensors of a step model (`streamcell.state`), and the model's SHA-256 (snapshots are
 * tied to it).
 *
 * The `streamcell.state` entry type and its parser belong to `src/model-format`.
 */
import { createHash } from 'node:crypto';
import { STATE_METADATA_KEY, STATE_NAME, parseStateMetadata, type StateSpec } from '../model-format/index.js';
import { decodeUserModel, DTYPE_NAMES, toNum, type ValueInfoProto } from '../onnx/proto.js';

export { STATE_METADATA_KEY };
export type { StateSpec };

/** A declared dimension: a number, a symbolic name (`batch`, `time`), or null when unknown. */
export type DimSpec = number | string | null;

/** A graph input or output as declared in the model. */
export interface IoSpec {
  name: string;
  /** Element type, e.g. `float32`. */
  dtype: string;
  /** Declared dims; empty when the model declares no shape. */
  dims: DimSpec[];
}

/** `rows` batch rows of a state's initial value, e.g. a fresh stream's state or a check's start. */
export function initialStateRows(s: Pick<StateSpec, 'shape' | 'init'>, rows: number): Float32Array {
  const size = s.shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(rows * size);
  fillInitialState(s, out, 0, rows);
  return out;
}

/** Writes the initial value of `rows` rows into `target` from row `firstRow` on. */
export function fillInitialState(s: Pick<StateSpec, 'shape' | 'init'>, target: Float32Array, firstRow: number, rows: number): void {
  const size = s.shape.reduce((a, b) => a * b, 1);
  if (typeof s.init === 'number') target.fill(s.init, firstRow * size, (firstRow + rows) * size);
  else for (let r = 0; r < rows; r++) target.set(s.init, (firstRow + r) * size);
}

/** Everything the runtime reads from a model's bytes. */
export interface ModelInfo {
  inputs: IoSpec[];
  outputs: IoSpec[];
  /** Inputs that carry samples (every input that is not a state input). */
  sampleInputs: IoSpec[];
  /** Outputs that carry predictions (every output that is not a state output). */
  predictionOutputs: IoSpec[];
  metadata: Record<string, string>;
  /** State tensors, in declaration order; empty for a model without state. */
  states: StateSpec[];
  /**
   * Where {@link states} came from: the `streamcell.state` metadata, inferred from
   * `state_in.*`/`state_out.*` name pairs (initial value 0) when a model has no metadata,
   * or none.
   */
  stateSource: 'metadata' | 'names' | 'none';
  /** Lower-case hex SHA-256 of the model bytes. */
  sha256: string;
  /**
   * `step` when the model has state tensors or every time dimension (axis 1 of a rank-3
   * sample input) is 1; `sequence` otherwise.
   */
  kind: 'step' | 'sequence';
}

function ioOf(v: ValueInfoProto): IoSpec {
  const tt = v.type?.tensorType;
  return {
    name: v.name ?? '',
    dtype: DTYPE_NAMES[tt?.elemType ?? 0] ?? `type${tt?.elemType}`,
    dims: (tt?.shape?.dim ?? []).map((d) => (d.dimParam ? d.dimParam : d.dimValue !== undefined && d.dimValue !== null ? toNum(d.dimValue as number) : null)),
  };
}

/** Pairs `state_in.X` with `state_out.X` for models written without `streamcell.state`. */
function inferStates(inputs: IoSpec[], outputs: Map<string, IoSpec>): StateSpec[] {
  const out: StateSpec[] = [];
  for (const i of inputs) {
    if (!i.name.startsWith('state_in.')) continue;
    const name = i.name.slice('state_in.'.length);
    const o = `state_out.${name}`;
    const shape = i.dims.slice(1);
    if (!STATE_NAME.test(name) || !outputs.has(o) || i.dtype !== 'float32' || !shape.every((d) => typeof d === 'number')) continue;
    out.push({ name, input: i.name, output: o, shape: shape as number[], dtype: 'float32', init: 0 });
  }
  return out;
}

/**
 * Reads a model's inputs, outputs, metadata and state tensors from its bytes, and classifies
 * it as a step or a sequence model. Throws {@link InputError} naming the field when the
 * bytes are not an ONNX model or `streamcell.state` is malformed.
 *
 * @param file - only used to name the file in errors.
 * @example
 * ```ts
 * const info = readModelInfo(await readFile('step.onnx'));
 * if (info.kind !== 'step') throw new Error('run `streamcell streamify` first');
 * console.log(info.states.map((s) => `${s.name} [${s.shape}]`), info.sha256);
 * ```
 */
export function readModelInfo(bytes: Uint8Array, file?: string): ModelInfo {
  const m = decodeUserModel(bytes, file);
  const g = m.graph;
  // IR < 4 lists initializers among the inputs; they are not fed.
  const inits = new Set((g.initializer ?? []).map((t) => t.name));
  const inputs = (g.input ?? []).filter((i) => !inits.has(i.name)).map(ioOf);
  const outputs = (g.output ?? []).map(ioOf);
  const metadata: Record<string, string> = {};
  for (const p of m.metadataProps ?? []) metadata[p.key ?? ''] = p.value ?? '';

  const outMap = new Map(outputs.map((o) => [o.name, o]));
  let states: StateSpec[];
  let stateSource: ModelInfo['stateSource'];
  const raw = metadata[STATE_METADATA_KEY];
  if (raw !== undefined) {
    states = parseStateMetadata(raw, { inputs: new Map(inputs.map((i) => [i.name, i])), outputs: outMap }, file);
    stateSource = 'metadata';
  } else {
    states = inferStates(inputs, outMap);
    stateSource = states.length > 0 ? 'names' : 'none';
  }
  const stateIn = new Set(states.map((s) => s.input));
  const stateOut = new Set(states.map((s) => s.output));
  const sampleInputs = inputs.filter((i) => !stateIn.has(i.name));
  const predictionOutputs = outputs.filter((o) => !stateOut.has(o.name));
  const timeIsOne = sampleInputs.every((i) => i.dims.length !== 3 || i.dims[1] === 1);
  return {
    inputs,
    outputs,
    sampleInputs,
    predictionOutputs,
    metadata,
    states,
    stateSource,
    sha256: createHash('sha256').update(bytes).digest('hex'),
    kind: states.length > 0 || timeIsOne ? 'step' : 'sequence',
  };
}
