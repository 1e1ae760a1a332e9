import { resolve } from 'node:path';
import type { Argv } from 'yargs';
import { InputError } from '../../errors.js';
import { backendChoice, describeBackend, withBackendOption } from '../backend-option.js';
import { assertWritableFolder, commaList, emit, guarded, type ArgsOf, writeOutput } from '../output.js';
import { preprocessingFor } from './quantize.js';
import type { BackendChoice } from '../../runtime/backend.js';

export const command = 'verify <a> [b]';
export const describe =
  'Compare two models (ONNX, or a tfjs model.json and an ONNX model) on the same inputs: output error, task metric, latency; or, with --rollout, score a forecaster k steps ahead';

export function builder(y: Argv) {
  const withOptions = y
    .positional('a', { type: 'string', describe: 'reference model (.onnx, tfjs model.json or its folder, or a bundle)', demandOption: true })
    .positional('b', { type: 'string', describe: 'model to compare (same kinds); optional with --rollout' })
    .option('data', { type: 'string', describe: "CSV to evaluate both on (uses the models' preprocessing)" })
    .option('preprocessing', { type: 'string', describe: 'preprocessing.json when the model carries none' })
    .option('max-drop', { type: 'number', describe: "exit 1 when b's metric is worse than a's by more than this (relative)" })
    .option('report', { type: 'string', describe: 'write an HTML report' })
    .option('rollout', {
      type: 'string',
      describe: 'score the autoregressive rollout at these horizons (e.g. 1,4,16,64) against the last-value (and --season) baselines',
    })
    .option('season', { type: 'number', describe: "season length in rows for the seasonal-naive baseline (a forecaster's --data or --rollout)" })
    .option('from', { type: 'number', describe: "with --rollout: first forecast origin (row); default the model's window" })
    .option('hold', { type: 'string', describe: 'with --rollout: comma-separated input channels held at their last value' });
  return withBackendOption(withOptions);
}

export async function handler(args: ArgsOf<typeof builder>): Promise<void> {
  await guarded(args, async () => {
    const { loadDataset } = await import('../../data/evaluate.js');
    const { compareModels } = await import('../../export/quantize/index.js');
    const { baselineTable, reportHtml, reportTable } = await import('../../export/quantize/report.js');
    const choice = backendChoice(args);
    if (args.report) assertWritableFolder(resolve(args.report), '--report');
    if (args.season !== undefined && !(Number.isInteger(args.season) && args.season >= 1))
      throw new InputError(`--season is ${args.season}`, { field: '--season', expected: 'a positive integer number of rows' });
    if (args.season !== undefined && !args.data)
      throw new InputError('--season needs --data', { field: '--data', expected: 'a CSV to score the baselines on' });
    if (args.rollout !== undefined) return rolloutHandler(args, choice);
    if (args.b === undefined)
      throw new InputError('name a second model to compare, or score one model with --rollout', { field: 'b', expected: 'a model file' });
    const { anyModelBytes } = await import('../any-model.js');
    const a = await anyModelBytes(args.a, choice);
    const b = await anyModelBytes(args.b, choice);
    const pre = args.data ? ((await preprocessingFor(a, args.preprocessing)) ?? (await preprocessingFor(b, args.preprocessing))) : undefined;
    if (args.data && !pre) throw new InputError('neither model carries preprocessing metadata', { field: '--preprocessing', expected: 'preprocessing.json' });
    if (args.season !== undefined && pre!.task !== 'forecast')
      throw new InputError(`--season is for forecasters; these models are classifiers (task '${pre!.task}')`, {
        field: '--season',
        expected: "no --season, or forecasters (task 'forecast')",
      });
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
          { ...e.context, file: resolve(e.context.field === 'A' ? args.a : args.b!) },
          { cause: e },
        );
      }
      throw e;
    }
    const { verifyBaselines } = await import('../../train/verify-baselines.js');
    const baselines = c.evaluations ? verifyBaselines(pre!, data!, c.evaluations.a, { season: args.season }) : undefined;
    const names = ['A', 'B'];
    if (args.report)
      await writeOutput(resolve(args.report), reportHtml({ title: `streamcell verify: ${args.a} vs ${args.b}`, c, pre, names, baselines }), '--report');
    emit(
      args,
      {
        ok: true,
        size: c.size,
        parameters: c.parameters,
        outputError: { max: c.outputError.max, mean: c.outputError.mean },
        metrics: c.metrics,
        latencyUs: c.latencyUs,
        ...(baselines ? { baselines } : {}),
        backend: record,
      },
      () => [reportTable(undefined, c, names), ...(baselines ? ['', baselineTable(c, baselines, names)] : []), describeBackend(record)].join('\n'),
    );
    if (args.maxDrop !== undefined) {
      if (!c.metrics) throw new InputError('--max-drop needs --data', { field: '--data', expected: 'a CSV' });
      const { assertGate } = await import('../../export/quantize/index.js');
      assertGate(c, args.maxDrop);
    }
  });
}

/** `verify MODEL [B] --data F.csv --rollout 1,4,16,64 [--season S]`: the rollout table per model, and an HTML plot of error against k. */
async function rolloutHandler(args: ArgsOf<typeof builder>, choice: BackendChoice): Promise<void> {
  const { loadDataset } = await import('../../data/evaluate.js');
  const { evaluateRollout, parseHorizons, rolloutTable, rolloutHtml } = await import('../../data/rollout-eval.js');
  const { MAX_ROLLOUT } = await import('../../runtime/forecast.js');
  const horizons = parseHorizons(args.rollout!, '--rollout', MAX_ROLLOUT);
  if (!args.data) throw new InputError('--rollout needs --data', { field: '--data', expected: 'a CSV with the columns the model was trained on' });
  if (args.from !== undefined && !(Number.isInteger(args.from) && args.from >= 0))
    throw new InputError(`--from is ${args.from}`, { field: '--from', expected: 'a row number >= 0' });
  const { resolveBackend } = await import('../../runtime/backend-impl.js');
  const { record } = await resolveBackend(choice.force ? { force: choice.force } : { prefer: choice.prefer });
  const results: (Awaited<ReturnType<typeof evaluateRollout>> & { model: string })[] = [];
  const { forecasterModel, withHoldFlag } = await import('../any-model.js');
  const hold = commaList(args.hold);
  for (const path of args.b === undefined ? [args.a] : [args.a, args.b]) {
    const { bytes, pre } = await forecasterModel(path, choice, args.preprocessing);
    const data = await loadDataset(resolve(args.data), pre);
    results.push({
      model: path,
      ...(await withHoldFlag(() => evaluateRollout(bytes, pre, data, { horizons, season: args.season, from: args.from, hold, backend: record.name }))),
    });
  }
  if (args.report)
    await writeOutput(resolve(args.report), rolloutHtml(`streamcell verify --rollout: ${results.map((r) => r.model).join(' vs ')}`, results), '--report');
  emit(
    args,
    { ok: true, rollout: results, backend: record },
    () => results.map((r) => `${r.model}\n${rolloutTable(r)}`).join('\n\n') + `\n${describeBackend(record)}`,
  );
}
