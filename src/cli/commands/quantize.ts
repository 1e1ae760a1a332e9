import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Argv } from 'yargs';
import { InputError } from '../../errors.js';
import type { PreprocessingJson } from '../../data/preprocessing.js';
import { emit, guarded, writeOutput, type ArgsOf } from '../output.js';

export const command = 'quantize <model>';
export const describe = 'Quantize an ONNX model (int8 dynamic, int8 static, fp16) with an accuracy gate and a report';

// Async: the modes come from the quantizer, which only this command loads.
export async function builder(y: Argv) {
  const { INT8_KERNELS, QUANT_MODES } = await import('../../export/quantize/index.js');
  return y
    .positional('model', { type: 'string', describe: 'ONNX model (sequence or step model)', demandOption: true })
    .option('output', { alias: 'o', type: 'string', describe: 'quantized model to write', demandOption: true })
    .option('mode', { choices: QUANT_MODES, demandOption: true, describe: 'int8 (dynamic), int8-static (calibrated QDQ) or fp16' })
    .option('kernels', {
      choices: INT8_KERNELS,
      describe: 'int8: integer (dynamic int8 MatMul/LSTM kernels, default) or float (int8 weights folded to float at load: int8 size, float speed)',
    })
    .option('calibration', { type: 'string', describe: 'CSV of real inputs for int8-static' })
    .option('method', { choices: ['minmax', 'percentile'] as const, default: 'minmax' as const, describe: 'calibration method' })
    .option('percentile', { type: 'number', default: 99.99, describe: 'coverage for --method percentile' })
    .option('eval', { type: 'string', describe: 'CSV to compute the task metric on (float vs quantized)' })
    .option('max-drop', { type: 'number', describe: 'refuse to write when the metric drops by more than this (relative, e.g. 0.01)' })
    .option('preprocessing', { type: 'string', describe: 'preprocessing.json, when the model does not carry it in its metadata' })
    .option('report', { type: 'string', describe: 'write a self-contained HTML report with plots' });
}

async function readModel(path: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(await readFile(path));
  } catch (e) {
    throw new InputError(`cannot read '${path}': ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { file: path, expected: 'an ONNX model' });
  }
}

/** Preprocessing from --preprocessing, else from the model's metadata. */
export async function preprocessingFor(model: Uint8Array, file: string | undefined): Promise<PreprocessingJson | undefined> {
  if (!file) return (await import('../../export/quantize/index.js')).modelPreprocessing(model);
  const { checkPreprocessing } = await import('../../data/preprocessing.js');
  let text: string;
  try {
    text = await readFile(resolve(file), 'utf8');
  } catch (e) {
    throw new InputError(`cannot read '${file}': ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { file, expected: 'preprocessing.json' });
  }
  try {
    return checkPreprocessing(JSON.parse(text), resolve(file));
  } catch (e) {
    if (e instanceof SyntaxError) throw new InputError(`not valid JSON: ${e.message}`, { file: resolve(file), expected: 'preprocessing.json' });
    throw e;
  }
}

export async function handler(args: ArgsOf<typeof builder>): Promise<void> {
  await guarded(args, async () => {
    const { loadDataset } = await import('../../data/evaluate.js');
    const { assertGate, compareModels, quantizeModel } = await import('../../export/quantize/index.js');
    const { reportHtml, reportTable } = await import('../../export/quantize/report.js');
    const { noSlower, speedVerdict } = await import('../../export/quantize/latency.js');
    const { aboutFile, assertOnnxLoads } = await import('../model-source.js');
    const file = resolve(args.model);
    const bytes = await readModel(file);
    await assertOnnxLoads(bytes, file);
    if (args.maxDrop !== undefined && !(args.maxDrop >= 0))
      throw new InputError(`--max-drop ${args.maxDrop}`, { field: '--max-drop', expected: 'a non-negative fraction, e.g. 0.01 for 1%' });
    if (args.maxDrop !== undefined && !args.eval)
      throw new InputError('--max-drop needs --eval F.csv to measure the drop on', { field: '--eval', expected: "a CSV with the model's columns" });
    const needsPre = args.mode === 'int8-static' || args.eval;
    const pre = needsPre ? await preprocessingFor(bytes, args.preprocessing) : undefined;
    if (needsPre && !pre)
      throw new InputError('the model carries no preprocessing metadata', {
        field: '--preprocessing',
        expected: 'the preprocessing.json the model was trained with',
      });
    if (args.mode === 'int8-static' && !args.calibration)
      throw new InputError('int8-static needs --calibration F.csv', { field: '--calibration', expected: 'a CSV of real inputs' });
    const calibration = args.calibration
      ? { pre: pre!, data: await loadDataset(resolve(args.calibration), pre!), method: args.method, percentile: args.percentile }
      : undefined;
    let q;
    try {
      q = await quantizeModel(bytes, { mode: args.mode, kernels: args.kernels, calibration });
    } catch (e) {
      if (e instanceof Error && 'context' in e) (e as { context: { file?: string } }).context.file ??= file;
      throw e;
    }
    const evalData = args.eval ? await loadDataset(resolve(args.eval), pre!) : undefined;
    const c = await aboutFile(file, () => compareModels(bytes, q.model, { pre, data: evalData }));
    const out = resolve(args.output);
    const summary = {
      ok: true,
      output: out,
      report: q.report,
      comparison: {
        size: c.size,
        parameters: c.parameters,
        outputError: { max: c.outputError.max, mean: c.outputError.mean },
        metrics: c.metrics,
        latencyUs: c.latencyUs,
      },
      latency: {
        floatUs: c.latencyUs.a,
        quantizedUs: c.latencyUs.b,
        ratio: c.latency.ratio,
        slower: !noSlower(c.latency.ratio),
        rounds: c.latency.rounds,
        cpu: c.latency.cpu,
        verdict: speedVerdict(q.report, c.latency.ratio),
      },
    };
    if (args.report)
      await writeOutput(
        resolve(args.report),
        reportHtml({ title: `streamcell quantize ${args.mode}: ${file}`, q: q.report, c, pre, verdict: summary.latency.verdict }),
      );
    if (args.maxDrop !== undefined) {
      try {
        assertGate(c, args.maxDrop);
      } catch (e) {
        emit(
          args,
          { ...summary, ok: false, output: null, gate: { maxDrop: args.maxDrop, passed: false } },
          () => `${reportTable(q.report, c)}\n${summary.latency.verdict}`,
        );
        throw e;
      }
    }
    await writeOutput(out, q.model);
    emit(args, summary, () => `wrote ${out}\n${reportTable(q.report, c)}\n${summary.latency.verdict} (${c.latency.cpu})`);
  });
}
