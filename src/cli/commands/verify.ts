import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { extname, join, resolve } from 'node:path';
import type { Argv } from 'yargs';
import { InputError } from '../../errors.js';
import { backendChoice, describeBackend, withBackendOption } from '../backend-option.js';
import { emit, guarded, writeOutput, type ArgsOf } from '../output.js';
import { preprocessingFor } from './quantize.js';
import type { BackendChoice } from '../../runtime/backend.js';

export const command = 'verify <a> <b>';
export const describe = 'Compare two models (ONNX, or a tfjs model.json and an ONNX model) on the same inputs: output error, task metric, latency';

export function builder(y: Argv) {
  const withOptions = y
    .positional('a', { type: 'string', describe: 'reference model (.onnx or tfjs model.json)', demandOption: true })
    .positional('b', { type: 'string', describe: 'model to compare (.onnx)', demandOption: true })
    .option('data', { type: 'string', describe: "CSV to evaluate both on (uses the models' preprocessing)" })
    .option('preprocessing', { type: 'string', describe: 'preprocessing.json when the model carries none' })
    .option('max-drop', { type: 'number', describe: "exit 1 when b's metric is worse than a's by more than this (relative)" })
    .option('report', { type: 'string', describe: 'write an HTML report' });
  return withBackendOption(withOptions);
}

async function onnxOf(path: string, choice: BackendChoice): Promise<Uint8Array> {
  const file = resolve(path);
  // A tfjs model.json, or the folder holding one (as export takes it).
  const tfjs = extname(file).toLowerCase() === '.json' ? file : existsSync(join(file, 'model.json')) ? join(file, 'model.json') : undefined;
  if (tfjs) {
    const { exportToOnnx } = await import('../../export/exporter.js');
    const { loadTfjsArtifacts } = await import('../../export/tfjs-format/load.js');
    return (await exportToOnnx(await loadTfjsArtifacts(tfjs))).model;
  }
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(await readFile(file));
  } catch (e) {
    throw new InputError(`cannot read '${file}': ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, {
      file,
      expected: 'an ONNX model or a tfjs model.json',
    });
  }
  const { assertOnnxLoads } = await import('../model-source.js');
  await assertOnnxLoads(bytes, file, choice);
  return bytes;
}

export async function handler(args: ArgsOf<typeof builder>): Promise<void> {
  await guarded(args, async () => {
    const { loadDataset } = await import('../../data/evaluate.js');
    const { compareModels } = await import('../../export/quantize/index.js');
    const { reportHtml, reportTable } = await import('../../export/quantize/report.js');
    const choice = backendChoice(args);
    const a = await onnxOf(args.a, choice);
    const b = await onnxOf(args.b, choice);
    const pre = args.data ? ((await preprocessingFor(a, args.preprocessing)) ?? (await preprocessingFor(b, args.preprocessing))) : undefined;
    if (args.data && !pre) throw new InputError('neither model carries preprocessing metadata', { field: '--preprocessing', expected: 'preprocessing.json' });
    const data = args.data ? await loadDataset(resolve(args.data), pre!) : undefined;
    const { resolveBackend } = await import('../../runtime/backend-impl.js');
    const { record } = await resolveBackend(choice.force ? { force: choice.force } : { prefer: choice.prefer });
    let c;
    try {
      c = await compareModels(a, b, { pre, data, backend: record.name });
    } catch (e) {
      // compareModels calls the models 'A' and 'B': the CLI names their files.
      if (e instanceof InputError && !e.context.file && (e.context.field === 'A' || e.context.field === 'B')) {
        throw new InputError(
          `${e.message} (A is ${resolve(args.a)}, B is ${resolve(args.b)})`,
          { ...e.context, file: resolve(e.context.field === 'A' ? args.a : args.b) },
          { cause: e },
        );
      }
      throw e;
    }
    if (args.report) await writeOutput(resolve(args.report), reportHtml({ title: `streamcell verify: ${args.a} vs ${args.b}`, c, pre, names: ['A', 'B'] }));
    emit(
      args,
      {
        ok: true,
        size: c.size,
        parameters: c.parameters,
        outputError: { max: c.outputError.max, mean: c.outputError.mean },
        metrics: c.metrics,
        latencyUs: c.latencyUs,
        backend: record,
      },
      () => `${reportTable(undefined, c, ['A', 'B'])}\n${describeBackend(record)}`,
    );
    if (args.maxDrop !== undefined) {
      if (!c.metrics) throw new InputError('--max-drop needs --data', { field: '--data', expected: 'a CSV' });
      const { assertGate } = await import('../../export/quantize/index.js');
      assertGate(c, args.maxDrop);
    }
  });
}
