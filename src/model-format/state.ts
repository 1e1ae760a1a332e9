/**
 * `streamcell.state`: the JSON array that lists a step model's recurrent state tensors, its
 * entry type, and its parser and serialiser.
 */
import { InputError } from '../errors.js';
import { STATE_METADATA_KEY } from './keys.js';

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
  /** Element type; always `float32`. */
  dtype: 'float32';
  /** Initial value: one number for every element, or one per element of the shape (row-major). */
  init: number | number[];
}

/** A state name, `<layer>.<kind>` with kind `h`, `c` or `buf`; group 1 is the layer. */
export const STATE_NAME = /^(.+)\.(h|c|buf)$/;

/**
 * What {@link parseStateMetadata} checks the entries against when it is given a graph: its
 * inputs with their declared dims (batch first; empty when undeclared) and its output names.
 */
export interface StateGraphView {
  /** Graph inputs by name, with their declared dims. */
  inputs: ReadonlyMap<string, { dims: readonly (number | string | null)[] }>;
  /** Graph outputs by name. */
  outputs: { has(name: string): boolean; keys(): IterableIterator<string> };
}

function bad(message: string, field: string, expected: string, file?: string): InputError {
  return new InputError(message, { field, expected, file });
}

/**
 * Parses and validates the text of `streamcell.state`. With `graph`, every entry's input and
 * output must exist and its shape agree with the input's declared dims. Throws
 * {@link InputError} naming the field (e.g. `streamcell.state[0].shape`) and `file`.
 *
 * @param raw - the metadata value.
 * @param file - only used to name the file in errors.
 * @example
 * ```ts
 * const states = parseStateMetadata(metadata[META.state], undefined, 'step.onnx');
 * ```
 */
export function parseStateMetadata(raw: string, graph?: StateGraphView, file?: string): StateSpec[] {
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
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry))
      throw bad(`${at} is not an object`, at, '{name, input, output, shape, dtype, init}', file);
    const e = entry as Record<string, unknown>;
    const str = (k: string): string => {
      if (typeof e[k] !== 'string' || (e[k] as string).length === 0) throw bad(`${at}.${k} must be a non-empty string`, `${at}.${k}`, 'a string', file);
      return e[k] as string;
    };
    const name = str('name');
    if (!STATE_NAME.test(name))
      throw bad(`${at}.name '${name}' is not '<layer>.<kind>' with kind h, c or buf`, `${at}.name`, "'<layer>.h', '<layer>.c' or '<layer>.buf'", file);
    if (seen.has(name)) throw bad(`${at}.name '${name}' is listed twice`, `${at}.name`, 'unique state names', file);
    seen.add(name);
    const input = str('input');
    const output = str('output');
    const inSpec = graph?.inputs.get(input);
    if (graph && !inSpec)
      throw bad(`${at}.input '${input}' is not an input of the graph`, `${at}.input`, `one of: ${[...graph.inputs.keys()].join(', ')}`, file);
    if (graph && !graph.outputs.has(output))
      throw bad(`${at}.output '${output}' is not an output of the graph`, `${at}.output`, `one of: ${[...graph.outputs.keys()].join(', ')}`, file);
    const shape = e.shape;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && (d as number) >= 0)) {
      throw bad(`${at}.shape must be an array of non-negative integers`, `${at}.shape`, 'e.g. [64]', file);
    }
    if (e.dtype !== 'float32') throw bad(`${at}.dtype is ${JSON.stringify(e.dtype)}`, `${at}.dtype`, "'float32'", file);
    const size = (shape as number[]).reduce((a, b) => a * b, 1);
    const init = e.init;
    const finite = (v: unknown) => typeof v === 'number' && Number.isFinite(v);
    if (!finite(init) && !(Array.isArray(init) && init.length === size && init.every(finite))) {
      throw bad(
        `${at}.init must be a finite number or ${size} finite numbers (one per element of [${(shape as number[]).join(', ')}])`,
        `${at}.init`,
        'a number, e.g. 0, or an array of the state size',
        file,
      );
    }
    // The graph's own declaration must agree, or every batch would fail inside onnxruntime.
    if (inSpec && inSpec.dims.length > 0) {
      const declared = inSpec.dims.slice(1);
      if (declared.length !== shape.length || declared.some((d, k) => typeof d === 'number' && d !== shape[k])) {
        throw bad(
          `${at}.shape [${shape.join(', ')}] does not match input '${input}' dims [${inSpec.dims.join(', ')}]`,
          `${at}.shape`,
          `[${declared.join(', ')}]`,
          file,
        );
      }
    }
    return { name, input, output, shape: shape as number[], dtype: 'float32', init: init as number | number[] };
  });
}

/** The `streamcell.state` metadata value for `states` (what {@link parseStateMetadata} reads back). */
export function serializeStateMetadata(states: readonly StateSpec[]): string {
  return JSON.stringify(states);
}
