import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Argv } from 'yargs';
import { InputError } from '../../errors.js';
import { backendChoice } from '../backend-option.js';
import { emit, guarded, writeOutput, type ArgsOf } from '../output.js';
import { MAX_BENCH_STEPS, MAX_CHECK_STEPS, MAX_STREAMS } from '../../limits.js';

export const command = 'bench <model>';
export const describe = 'Measure per-step latency (pool vs bare onnxruntime), throughput per stream count, memory, window mode';

export function builder(y: Argv) {
  return y
    .positional('model', { type: 'string', describe: 'sequence model (.onnx; streamified on the fly) or step model', demandOption: true })
    .option('streams', { type: 'string', default: '1,16,256,1024', describe: 'stream counts for throughput (comma-separated)' })
    .option('steps', { type: 'number', default: 2000, describe: 'timed steps per series' })
    .option('backend', {
      choices: ['onnxruntime-node', 'onnxruntime-web'] as const,
      describe: 'force an inference backend (also STREAMCELL_BACKEND); default: native after a crash-safe probe, else WASM',
    })
    .option('window', { type: 'number', default: 64, describe: 'window length for window mode when the model has a free time axis' })
    .option('tfjs', { type: 'string', describe: 'the tfjs model.json of the same model: also time tfjs predict on one window' })
    .option('out', { type: 'string', describe: 'write the JSON result to this file' })
    .option('report', { type: 'string', describe: 'write a self-contained HTML report (charts and tables, no scripts)' });
}

export async function handler(args: ArgsOf<typeof builder>): Promise<void> {
  await guarded(args, async () => {
    const { benchModel, benchReportHtml, benchTable } = await import('../bench-model.js');
    const { aboutFile, assertOnnxLoads } = await import('../model-source.js');
    const streams = args.streams.split(',').map((s) => Number(s.trim()));
    if (streams.some((n) => !Number.isInteger(n) || n < 1 || n > MAX_STREAMS))
      throw new InputError(`--streams '${args.streams}'`, {
        field: '--streams',
        expected: `comma-separated integers from 1 to ${MAX_STREAMS} (streamcell's stream limit), e.g. 1,16,256`,
      });
    if (!Number.isInteger(args.steps) || args.steps < 10 || args.steps > MAX_BENCH_STEPS)
      throw new InputError(`--steps ${args.steps}`, { field: '--steps', expected: `an integer from 10 to ${MAX_BENCH_STEPS} (streamcell's benchmark limit)` });
    if (!Number.isInteger(args.window) || args.window < 1 || args.window > MAX_CHECK_STEPS)
      throw new InputError(`--window ${args.window}`, {
        field: '--window',
        expected: `an integer from 1 to ${MAX_CHECK_STEPS} (streamcell's limit for generated sequences)`,
      });
    const file = resolve(args.model);
    let bytes: Uint8Array;
    try {
      bytes = new Uint8Array(await readFile(file));
    } catch (e) {
      throw new InputError(`cannot read '${file}': ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { file, expected: 'an ONNX model' });
    }
    await assertOnnxLoads(bytes, file, { force: backendChoice(args).force });
    const r = await aboutFile(file, () =>
      benchModel(bytes, {
        streams,
        steps: args.steps,
        backend: backendChoice(args).force,
        window: args.window,
        tfjs: args.tfjs ? resolve(args.tfjs) : undefined,
      }),
    );
    if (args.out) await writeOutput(resolve(args.out), JSON.stringify(r, null, 2) + '\n', '--out');
    if (args.report) await writeOutput(resolve(args.report), benchReportHtml(r, `streamcell bench: ${args.model}`), '--report');
    emit(args, r, () => benchTable(r));
  });
}
