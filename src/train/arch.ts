/**
 * `--arch` strings: a comma-separated list of layers, in order.
 *
 *   conv1d:F:K       causal 1-D convolution, F filters, kernel K, relu (no dilation: tfjs has
 *                    no gradient for dilated convolutions)
 *   lstm:U | gru:U | rnn:U   recurrent layers; all but the last return sequences
 *   dense:U          hidden dense layer (relu) after the last recurrent layer
 *
 * Convolutions come first (causal, so the model still streams one sample at a time), then at
 * least one recurrent layer, then dense layers. The output layer is added by the trainer.
 */
import { InputError } from '../errors.js';

export type RecurrentKind = 'lstm' | 'gru' | 'rnn';

export type ArchLayer = { kind: 'conv1d'; filters: number; kernel: number } | { kind: RecurrentKind; units: number } | { kind: 'dense'; units: number };

const EXPECTED =
  'comma-separated layers: conv1d:FILTERS:KERNEL, then lstm:UNITS / gru:UNITS / rnn:UNITS (at least one), then dense:UNITS — e.g. lstm:32,dense:16';
const RECURRENT = new Set<string>(['lstm', 'gru', 'rnn']);

export function isRecurrent(l: ArchLayer): l is { kind: RecurrentKind; units: number } {
  return RECURRENT.has(l.kind);
}

/**
 * Parses and checks an `--arch` string.
 *
 * @example
 * parseArch('conv1d:16:3,lstm:32,dense:16');
 * // [{kind:'conv1d',filters:16,kernel:3}, {kind:'lstm',units:32}, {kind:'dense',units:16}]
 */
export function parseArch(spec: string): ArchLayer[] {
  const bad = (msg: string): never => {
    throw new InputError(`arch '${spec}': ${msg}`, { option: 'arch', expected: EXPECTED });
  };
  const parts = spec.split(',').map((p) => p.trim());
  if (spec.trim() === '' || parts.some((p) => p === '')) bad('empty layer');
  const int = (part: string, v: string | undefined, what: string, max: number): number => {
    const n = Number(v);
    if (v === undefined || v.trim() === '' || !Number.isInteger(n) || n < 1 || n > max)
      bad(`'${part}': ${what} must be an integer from 1 to ${max}, got ${JSON.stringify(v ?? '')}`);
    return n;
  };
  const layers = parts.map((part): ArchLayer => {
    const [kind, ...args] = part.toLowerCase().split(':');
    if (kind === 'conv1d') {
      if (args.length === 3) bad(`'${part}': dilated convolutions cannot be trained in tfjs (it has no gradient for them)`);
      if (args.length !== 2) bad(`'${part}': conv1d takes FILTERS:KERNEL`);
      return { kind, filters: int(part, args[0], 'filters', 4096), kernel: int(part, args[1], 'kernel', 512) };
    }
    if (kind === 'lstm' || kind === 'gru' || kind === 'rnn' || kind === 'dense') {
      if (args.length !== 1) bad(`'${part}': ${kind} takes UNITS`);
      return { kind, units: int(part, args[0], 'units', 4096) };
    }
    return bad(`unknown layer '${kind}'`);
  });
  const firstRec = layers.findIndex(isRecurrent);
  if (firstRec < 0) bad('needs at least one recurrent layer (lstm, gru or rnn)');
  let lastRec = firstRec;
  layers.forEach((l, i) => {
    if (isRecurrent(l)) lastRec = i;
  });
  layers.forEach((l, i) => {
    if (l.kind === 'conv1d' && i > firstRec) bad(`conv1d ('${parts[i]}') must come before the recurrent layers`);
    if (l.kind === 'dense' && i < lastRec) bad(`dense ('${parts[i]}') must come after the last recurrent layer`);
  });
  return layers;
}

/** The canonical spelling, e.g. "conv1d:16:3,lstm:32,dense:16". */
export function formatArch(layers: ArchLayer[]): string {
  return layers.map((l) => (l.kind === 'conv1d' ? `conv1d:${l.filters}:${l.kernel}` : `${l.kind}:${l.units}`)).join(',');
}
