import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { ArgumentsCamelCase, Argv } from 'yargs';
import { InputError } from '../../errors.js';
import type { BackendName } from '../../runtime/backend.js';
import { benchModel, benchTable } from '../bench-model.js';
import { backendChoice } from '../backend-option.js';
import { emit, guarded, writeOutput, type GlobalArgs } from '../output.js';

export const command = 'bench <model>';
export const describe = 'Measure per-step latency (pool vs bare onnxruntime), throughput per stream count, memory, window mode';

interface Args extends GlobalArgs {
  model: string;
  streams: string;
  steps: number;
  backend?: BackendName;
  window: number;
  tfjs?: string;
  out?: string;
}

export function builder(y: Argv): Argv<Args> {
  return y
    .positional('model', { type: 'string', describe: 'sequence model (.onnx; streamified on the fly) or step model', demandOption: true })
    .option('streams', { type: 'string', default: '1,16,256,1024', describe: 'stream counts for throughput (comma-separated)' })
    .option('steps', { type: 'number', default: 2000, describe: 'timed steps per series' })
    .option('backend', { choices: ['onnxruntime-node', 'onnxruntime-web'] as const, describe: 'force an inference backend (also STREAMCELL_BACKEND); default: native after a crash-safe probe, else WASM' })
    .option('window', { type: 'number', default: 64, describe: 'window length for window mode when the model has a free time axis' })
    .option('tfjs', { type: 'string', describe: 'the tfjs model.json of the same model: also time tfjs predict on one window' })
    .option('out', { type: 'string', describe: 'write the JSON result to this file' }) as unknown as Argv<Args>;
}

export async function handler(args: ArgumentsCamelCase<Args>): Promise<void> {
  await guarded(args, async () => {
    const streams = args.streams.split(',').map((s) => Number(s.trim()));
    if (streams.some((n) => !Number.isInteger(n) || n < 1)) throw new InputError(`--streams '${args.streams}'`, { field: '--streams', expected: 'comma-separated positive integers, e.g. 1,16,256' });
    if (!Number.isInteger(args.steps) || args.steps < 10) throw new InputError(`--steps ${args.steps}`, { field: '--steps', expected: 'an integer ≥ 10' });
    const file = resolve(args.model);
    let bytes: Uint8Array;
    try {
      bytes = new Uint8Array(await readFile(file));
    } catch (e) {
      throw new InputError(`cannot read '${file}': ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { file, expected: 'an ONNX model' });
    }
    const r = await benchModel(bytes, { streams, steps: args.steps, backend: backendChoice(args).force, window: args.window, tfjs: args.tfjs ? resolve(args.tfjs) : undefined });
    if (args.out) await writeOutput(resolve(args.out), JSON.stringify(r, null, 2) + '\n', '--out');
    emit(args, r, () => benchTable(r));
  });
}
