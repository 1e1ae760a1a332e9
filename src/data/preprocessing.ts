/**
 * `preprocessing.json` (written by training, carried in ONNX metadata `streamcell.preprocessing`):
 * what the model's inputs are made of and what its outputs mean. Wire keys are snake_case.
 */
import { InputError } from '../errors.js';

export interface PreprocessingJson {
  task: 'forecast' | 'classify';
  /** Input columns, in the model's feature order. */
  channels: string[];
  window: number;
  /** forecast: steps ahead (default 1) and the target column (default channels[0]). */
  horizon?: number;
  target?: string;
  /** forecast: how the output maps back to target units. */
  output?: { kind: 'delta' | 'value'; mean: number; std: number };
  /** classify: the label column and class names in output order. */
  label?: string;
  classes?: string[];
  normalization: Record<string, { mean: number; std: number }>;
  sample_rate?: number;
}

export function checkPreprocessing(p: unknown, source: string): PreprocessingJson {
  const o = p as Record<string, unknown>;
  const bad = (field: string, expected: string): never => {
    throw new InputError(`preprocessing field '${field}' is ${JSON.stringify(o?.[field])}`, { file: source, field, expected });
  };
  if (typeof o !== 'object' || o === null) throw new InputError('preprocessing is not an object', { file: source, expected: 'the JSON written by streamcell train' });
  if (o.task !== 'forecast' && o.task !== 'classify') bad('task', '"forecast" or "classify"');
  if (!Array.isArray(o.channels) || o.channels.length === 0 || !o.channels.every((c) => typeof c === 'string')) bad('channels', 'a non-empty list of column names');
  if (!Number.isInteger(o.window) || (o.window as number) < 1) bad('window', 'a positive integer');
  const norm = o.normalization as Record<string, { mean: number; std: number }> | undefined;
  if (typeof norm !== 'object' || norm === null) bad('normalization', '{column: {mean, std}}');
  for (const c of o.channels as string[]) {
    const s = norm![c];
    if (!s || !Number.isFinite(s.mean) || !Number.isFinite(s.std) || s.std <= 0) bad('normalization', `finite mean and positive std for '${c}'`);
  }
  if (o.task === 'classify' && (typeof o.label !== 'string' || !Array.isArray(o.classes) || o.classes.length < 2)) bad('classes', 'a label column and at least two class names');
  return o as unknown as PreprocessingJson;
}
