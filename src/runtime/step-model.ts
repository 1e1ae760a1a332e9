/**
 * Reads what the runtime needs to know about an ONNX model from its bytes alone, without a
 * session: inputs and outputs with their declared dims, `metadata_props`, the recurrent
 * state tensors of a step model (`streamcell.state`), and the model's SHA-256 (snapshots are
 * tied to it).
 *
 * The runtime must not import `src/export`, so the `streamcell.state` entry type is declared
 * here again ({@link StateSpec}); it is the same wire shape as the exporter's `StateMeta`.
 */
import { createHash } from 'node:crypto';
import { InputError } from '../errors.js';
import { decodeUserModel, DTYPE_NAMES, toNum, type ValueInfoProto } from '../onnx/proto.js';

/** The `metadata_props` key that lists a step model's state tensors (DESIGN.md). */
export const STATE_METADATA_KEY = 'streamcell.state';

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

/** One recurrent state tensor of a step model: an entry of `streamcell.state`. */
export interface StateSpec {
  /** `<layer>.<kind>`, kind one of `h`, `c`, `buf`. */
  name: string;
  /** Graph input that receives the state, `state_in.<layer>.<kind>`. */
  input: string;
  /** Graph output that returns the next state, `state_out.<layer>.<kind>`. */
  output: string;
  /** Shape without the batch dimension. */
  shape: number[];
  dtype: 'float32';
  /** Initial value: one number for every element, or one per element of the shape (row-major). */
  init: number | number[];
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

const STATE_NAME = /^(.+)\.(h|c|buf)$/;

function ioOf(v: ValueInfoProto): IoSpec {
  const tt = v.type?.tensorType;
  return {
    name: v.name ?? '',
    dtype: DTYPE_NAMES[tt?.elemType ?? 0] ?? `type${tt?.elemType}`,
    dims: (tt?.shape?.dim ?? []).map((d) => (d.dimParam ? d.dimParam : d.dimValue !== undefined && d.dimValue !== null ? toNum(d.dimValue as number) : null)),
  };
}

function bad(message: string, field: string, expected: string, file?: string): InputError {
  return new InputError(message, { field, expected, file });
}

/** Validates the parsed `streamcell.state` JSON against the graph's inputs and outputs. */
function parseStates(raw: string, inputs: Map<string, IoSpec>, outputs: Map<string, IoSpec>, file?: string): StateSpec[] {
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch (e) {
    throw bad(`metadata ${STATE_METADATA_KEY} is not valid JSON: ${(e as Error).message}`, STATE_METADATA_KEY, 'a JSON array of state entries', file);
  }
  if (!Array.isArray(json)) throw bad(`metadata ${STATE_METADATA_KEY} must be a JSON array`, STATE_METADATA_KEY, 'a JSON array of state entries', file);
  const seen = new Set<string>();
  return json.map((entry: unknown, i): StateSpec => {
    const at = `${STATE_METADATA_KEY}[${i}]`;
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) throw bad(`${at} is not an object`, at, '{name, input, output, shape, dtype, init}', file);
    const e = entry as Record<string, unknown>;
    const str = (k: string): string => {
      if (typeof e[k] !== 'string' || (e[k] as string).length === 0) throw bad(`${at}.${k} must be a non-empty string`, `${at}.${k}`, 'a string', file);
      return e[k] as string;
    };
    const name = str('name');
    if (!STATE_NAME.test(name)) throw bad(`${at}.name '${name}' is not '<layer>.<kind>' with kind h, c or buf`, `${at}.name`, "'<layer>.h', '<layer>.c' or '<layer>.buf'", file);
    if (seen.has(name)) throw bad(`${at}.name '${name}' is listed twice`, `${at}.name`, 'unique state names', file);
    seen.add(name);
    const input = str('input');
    const output = str('output');
    const inSpec = inputs.get(input);
    if (!inSpec) throw bad(`${at}.input '${input}' is not an input of the graph`, `${at}.input`, `one of: ${[...inputs.keys()].join(', ')}`, file);
    if (!outputs.has(output)) throw bad(`${at}.output '${output}' is not an output of the graph`, `${at}.output`, `one of: ${[...outputs.keys()].join(', ')}`, file);
    const shape = e.shape;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && (d as number) >= 0)) {
      throw bad(`${at}.shape must be an array of non-negative integers`, `${at}.shape`, 'e.g. [64]', file);
    }
    if (e.dtype !== 'float32') throw bad(`${at}.dtype is ${JSON.stringify(e.dtype)}`, `${at}.dtype`, "'float32'", file);
    const size = (shape as number[]).reduce((a, b) => a * b, 1);
    const init = e.init;
    const finite = (v: unknown) => typeof v === 'number' && Number.isFinite(v);
    if (!finite(init) && !(Array.isArray(init) && init.length === size && init.every(finite))) {
      throw bad(`${at}.init must be a finite number or ${size} finite numbers (one per element of [${(shape as number[]).join(', ')}])`, `${at}.init`, 'a number, e.g. 0, or an array of the state size', file);
    }
    // The graph's own declaration must agree, or every batch would fail inside onnxruntime.
    const declared = inSpec.dims.slice(1);
    if (inSpec.dims.length > 0 && (declared.length !== shape.length || declared.some((d, k) => typeof d === 'number' && d !== shape[k]))) {
      throw bad(`${at}.shape [${shape.join(', ')}] does not match input '${input}' dims [${inSpec.dims.join(', ')}]`, `${at}.shape`, `[${declared.join(', ')}]`, file);
    }
    return { name, input, output, shape: shape as number[], dtype: 'float32', init: init as number | number[] };
  });
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
    states = parseStates(raw, new Map(inputs.map((i) => [i.name, i])), outMap, file);
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
    inputs, outputs, sampleInputs, predictionOutputs, metadata, states, stateSource,
    sha256: createHash('sha256').update(bytes).digest('hex'),
    kind: states.length > 0 || timeIsOne ? 'step' : 'sequence',
  };
}
