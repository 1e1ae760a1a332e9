/**
 * `preprocessing.json` (written by training, carried in ONNX metadata `streamcell.preprocessing`):
 * what the model's inputs are made of and what its outputs mean. Wire keys are snake_case.
 */
import { InputError } from '../errors.js';
import { META } from './keys.js';

/** The preprocessing a model was trained with: its task, channels, window and normalisation. */
export interface PreprocessingJson {
  /** What the model does. */
  task: 'forecast' | 'classify';
  /** Input columns, in the model's feature order. */
  channels: string[];
  /** Window length in samples. */
  window: number;
  /** forecast: steps ahead (default 1) and the target column (default channels[0]). */
  horizon?: number;
  /** forecast: the target column (default channels[0]). */
  target?: string;
  /** forecast: how the output maps back to target units. */
  output?: { kind: 'delta' | 'value'; mean: number; std: number };
  /** classify: the label column and class names in output order. */
  label?: string;
  /** classify: class names in output order. */
  classes?: string[];
  /** Per input column: the mean and std the model's inputs were normalised with. */
  normalization: Record<string, { mean: number; std: number }>;
  /** Samples per second. */
  sample_rate?: number;
}

/**
 * Validates parsed preprocessing JSON. Throws {@link InputError} with `file: source` and the
 * offending field (prefixed with `fieldPrefix`, e.g. `streamcell.preprocessing.`).
 *
 * @param source - the file (or other source) the JSON came from, named in errors.
 */
export function checkPreprocessing(p: unknown, source: string, fieldPrefix = ''): PreprocessingJson {
  const o = p as Record<string, unknown>;
  const what = fieldPrefix ? `metadata ${fieldPrefix.replace(/\.$/, '')}` : 'preprocessing';
  const bad = (field: string, expected: string): never => {
    throw new InputError(`${what} field '${field}' is ${JSON.stringify(o?.[field])}`, { file: source, field: fieldPrefix + field, expected });
  };
  if (typeof o !== 'object' || o === null)
    throw new InputError(`${what} is not an object`, {
      file: source,
      ...(fieldPrefix ? { field: fieldPrefix.replace(/\.$/, '') } : {}),
      expected: 'the JSON written by streamcell train',
    });
  if (o.task !== 'forecast' && o.task !== 'classify') bad('task', '"forecast" or "classify"');
  if (!Array.isArray(o.channels) || o.channels.length === 0 || !o.channels.every((c) => typeof c === 'string'))
    bad('channels', 'a non-empty list of column names');
  if (!Number.isInteger(o.window) || (o.window as number) < 1) bad('window', 'a positive integer');
  const norm = o.normalization as Record<string, { mean: number; std: number }> | undefined;
  if (typeof norm !== 'object' || norm === null) bad('normalization', '{column: {mean, std}}');
  for (const c of o.channels as string[]) {
    const s = norm![c];
    if (!s || !Number.isFinite(s.mean) || !Number.isFinite(s.std) || s.std <= 0) bad('normalization', `finite mean and positive std for '${c}'`);
  }
  if (o.task === 'classify' && (typeof o.label !== 'string' || !Array.isArray(o.classes) || o.classes.length < 2))
    bad('classes', 'a label column and at least two class names');
  return o as unknown as PreprocessingJson;
}

/**
 * The preprocessing a model carries in its `streamcell.preprocessing` metadata, validated;
 * undefined when it carries none. Throws {@link InputError} naming `source` and the field
 * (`streamcell.preprocessing` for JSON that does not parse, `streamcell.preprocessing.<field>`
 * for a bad field).
 *
 * @param metadata - the model's metadata_props as a record (e.g. `readModelInfo(bytes).metadata`).
 * @param source - the model file (or what the model came from), named in errors.
 * @example
 * ```ts
 * const pre = readPreprocessing(readModelInfo(bytes).metadata, 'model.onnx');
 * if (pre) console.log(pre.channels, pre.window);
 * ```
 */
export function readPreprocessing(metadata: Readonly<Record<string, string>>, source: string): PreprocessingJson | undefined {
  const text = metadata[META.preprocessing];
  if (text === undefined || text === '') return undefined;
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new InputError(`metadata ${META.preprocessing} is not valid JSON: ${(e as Error).message}`, {
      file: source,
      field: META.preprocessing,
      expected: 'the preprocessing.json streamcell embeds',
    });
  }
  return checkPreprocessing(json, source, `${META.preprocessing}.`);
}
