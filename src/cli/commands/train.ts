import { resolve } from 'node:path';
import type { Argv } from 'yargs';
import { InputError } from '../../errors.js';
import type { TrainReport } from '../../train/train.js';
import { assertWritableFolder, commaList, emit, guarded, type ArgsOf } from '../output.js';

export const command = 'train';
export const describe = 'Train a forecaster (--target) or classifier (--label) in tfjs on a CSV; writes model.json, weights.bin and preprocessing.json';

export function builder(y: Argv) {
  return (
    y
      .option('data', { type: 'string', demandOption: true, describe: 'CSV with a header row' })
      .option('target', { type: 'string', describe: 'forecast this column' })
      .option('label', { type: 'string', describe: 'classify by this (text) column; classes are taken from the data, sorted' })
      .option('inputs', { type: 'string', describe: 'comma-separated input columns (forecast: besides the target; classify: required)' })
      .option('window', { type: 'number', demandOption: true, describe: 'samples the model sees per prediction' })
      .option('horizon', { type: 'number', default: 1, describe: 'forecast: predict the target this many steps ahead' })
      .option('arch', {
        type: 'string',
        array: true,
        default: ['lstm:32'],
        describe:
          'layers, e.g. conv1d:16:3,lstm:32,gru:16,dense:16 (conv1d first and causal; rnn:U for SimpleRNN); repeat to train each and pick one (--select)',
      })
      .option('select', {
        choices: ['metric', 'size', 'latency'] as const,
        default: 'metric' as const,
        describe: 'several --arch: pick the best validation metric, or the smallest ONNX / fastest step within --tolerance of it',
      })
      .option('tolerance', { type: 'number', default: 0.02, describe: 'with --select size|latency: relative distance from the best validation metric' })
      .option('report', { type: 'string', describe: 'write a self-contained HTML report: the candidates table and the test-part forecast overlay' })
      .option('split', { type: 'string', default: '0.7,0.15', describe: 'TRAIN,VALIDATION fractions, chronological; the rest is the test part' })
      .option('diff', {
        choices: ['target', 'all', 'none'] as const,
        describe: 'channels a fixed first model layer turns into scaled differences (default: target for forecast, none for classify)',
      })
      .option('epochs', { type: 'number', default: 20 })
      // No yargs default: train's DEFAULT_BATCH_SIZE applies (this module must not load train to print --help).
      .option('batch-size', { type: 'number', describe: 'windows per batch (default 64; 32 learns more per epoch in runs of a few epochs)' })
      .option('lr', { type: 'number', default: 0.005, describe: 'Adam learning rate' })
      .option('patience', { type: 'number', default: 5, describe: 'early stopping on validation loss (best weights kept); 0: off' })
      .option('dropout', { type: 'number', default: 0, describe: 'dropout after each recurrent / dense layer' })
      .option('seed', { type: 'number', default: 42, describe: 'seeds initializers, dropout and shuffling: same seed and tfjs backend, same weights' })
      .option('shuffle', { type: 'boolean', default: true, describe: 'shuffle training windows (seeded); --no-shuffle keeps time order' })
      .option('stride', { type: 'number', describe: 'distance between windows (default 1 forecast, window/2 classify)' })
      .option('tfjs-backend', {
        choices: ['auto', 'cpu', 'wasm'] as const,
        default: 'auto' as const,
        describe: 'auto: tfjs-node when it loads, else WebAssembly (@tensorflow/tfjs-backend-wasm), else the cpu backend',
      })
      .option('sample-rate', { type: 'number', describe: 'samples per second, recorded in preprocessing.json' })
      .option('rollout', {
        type: 'string',
        default: '1,4,16,64',
        describe: 'forecast, horizon 1: score the autoregressive rollout on the test part at these steps ahead (as `verify --rollout`); "none" skips it',
      })
      .option('season', { type: 'number', describe: 'forecast: season length in rows for the seasonal-naive baseline (test table and rollout table)' })
      .option('rollout-loss', {
        type: 'number',
        describe: 'forecast, horizon 1: train on the loss of a K-step rollout (predictions fed back inside the graph) instead of one step',
      })
      .option('output', { alias: 'o', type: 'string', demandOption: true, describe: 'directory to write the model into' })
  );
}

function parseSplit(s: string): [number, number] {
  const parts = s.split(',').map((p) => Number(p.trim()));
  if (parts.length !== 2 || parts.some((p) => !Number.isFinite(p))) {
    throw new InputError(`--split '${s}'`, { field: '--split', expected: 'TRAIN,VALIDATION fractions, e.g. 0.7,0.15' });
  }
  return [parts[0]!, parts[1]!];
}

const pct = (a: number, b: number) => (a / b < 10 ? `${(Math.abs(1 - a / b) * 100).toFixed(1)}%` : `${(a / b).toPrecision(3)}×`);

export function describeReport(r: TrainReport): string {
  const d = r.data;
  const gaps = Object.values(d.gapsFilled).reduce((a, b) => a + b, 0);
  const fix = r.task === 'forecast' ? `${gaps} gaps interpolated` : `${d.rowsDropped} rows with gaps dropped`;
  const lines = [
    `trained ${r.model.arch} (${r.task}, inputs ${r.model.inputs.join(', ')}${r.model.diff.length ? `; differenced in-model: ${r.model.diff.join(', ')}` : ''}, ${r.model.parameters} parameters)`,
    `  data: ${d.file}, ${d.rows} rows, ${fix}; windows ${d.windows.train} train / ${d.windows.validation} validation / ${d.windows.test} test`,
    `  ${r.training.epochs} epoch${r.training.epochs === 1 ? '' : 's'}${r.training.stoppedEarly ? ' (stopped early)' : ''}, best ${r.training.bestEpoch}, batch ${r.training.batchSize},${r.training.rolloutLoss > 1 ? ` loss over a ${r.training.rolloutLoss}-step rollout,` : ''} ${r.meanEpochSeconds.toFixed(2)} s/epoch (${Math.round(r.windowsPerSecond)} windows/s)`,
  ];
  const p = r.primary;
  if (r.task === 'forecast') {
    lines.push(
      `  test RMSE ${r.test.rmse!.toPrecision(4)} (MAE ${r.test.mae!.toPrecision(4)}) vs ${r.baseline.name} RMSE ${r.baseline.rmse!.toPrecision(4)} (MAE ${r.baseline.mae!.toPrecision(4)}) on ${r.test.n} windows: ` +
        (p.beatsBaseline ? `${pct(p.model, p.baseline)} lower` : `NOT better than the baseline (${pct(p.model, p.baseline)} higher)`),
    );
  } else {
    lines.push(
      `  test accuracy ${r.test.accuracy!.toFixed(3)} (F1 ${r.test.f1!.toFixed(3)}) vs ${r.baseline.name} ${r.baseline.accuracy!.toFixed(3)} (F1 ${r.baseline.f1!.toFixed(3)}) on ${r.test.n} windows` +
        (p.beatsBaseline ? '' : ': NOT better than the baseline'),
    );
  }
  if (r.baselines.length > 1) {
    const metric = (b: { rmse?: number; mae?: number; accuracy?: number; f1?: number }) =>
      r.task === 'forecast' ? `RMSE ${b.rmse!.toPrecision(4)} (MAE ${b.mae!.toPrecision(4)})` : `accuracy ${b.accuracy!.toFixed(3)} (F1 ${b.f1!.toFixed(3)})`;
    lines.push(`  model ${metric(r.test)}, ${r.model.parameters} parameters; baselines on the same test windows:`);
    for (const b of r.baselines)
      lines.push(
        `    ${b.name.padEnd(22)} ${metric(b.test)}, ${b.parameters} parameters${b.lambda !== undefined ? `, ridge ${b.lambda}` : ''}${b.modelJson ? `; deployable: ${b.modelJson}` : ''}`,
      );
  }
  lines.push(`  tfjs backend: ${r.backend}${r.fallbackReason ? ` (${r.fallbackReason})` : ''}; ${r.seconds.toFixed(1)} s in all`);
  if (r.files) lines.push(`wrote ${r.files.modelJson}, weights.bin, preprocessing.json, training-report.json`);
  return lines.join('\n');
}

export async function handler(args: ArgsOf<typeof builder>): Promise<void> {
  await guarded(args, async () => {
    const { progressReporter } = await import('../../train/progress.js');
    const { trainModel } = await import('../../train/train.js');
    const inputs = commaList(args.inputs);
    const progress = progressReporter(process.stderr);
    try {
      const options = {
        data: args.data,
        target: args.target,
        label: args.label,
        inputs,
        window: args.window,
        horizon: args.horizon,
        split: parseSplit(args.split),
        diff: args.diff,
        epochs: args.epochs,
        batchSize: args.batchSize,
        lr: args.lr,
        patience: args.patience,
        dropout: args.dropout,
        seed: args.seed,
        shuffle: args.shuffle,
        stride: args.stride,
        sampleRate: args.sampleRate,
        rolloutLoss: args.rolloutLoss,
        season: args.season,
        backend: args.tfjsBackend,
        outDir: resolve(args.output),
        onProgress: progress.update,
      };
      if (args.report) assertWritableFolder(resolve(args.report), '--report');
      // One --arch without --report: a plain training, as before selection existed.
      const chosen =
        args.arch.length > 1 || args.report !== undefined
          ? await (
              await import('../../train/select.js')
            ).trainCandidates(options, args.arch, {
              select: args.select,
              tolerance: args.tolerance,
              onCandidate: (arch, i, n) => {
                progress.done();
                process.stderr.write(`candidate ${i}/${n}: ${arch}\n`);
              },
            })
          : { result: await trainModel({ ...options, arch: args.arch[0]! }), selection: undefined };
      progress.done();
      const { report } = chosen.result;
      const selection = chosen.selection;
      const rollout = await rolloutOnTest(report, args.rollout, args.season);
      const { candidatesTable } = await import('../../train/select.js');
      if (args.report) {
        const { writeSelectionReport } = await import('../../train/select-report.js');
        await writeSelectionReport(resolve(args.report), report, selection!);
      }
      emit(
        args,
        { ...report, ...selection, ...(rollout ? { rollout } : {}) },
        () =>
          describeReport(report) +
          (selection ? `\n${candidatesTable(selection)}` : '') +
          (rollout ? `\n${rollout.table}` : '') +
          (args.report ? `\nwrote ${resolve(args.report)}` : ''),
      );
    } finally {
      progress.done();
    }
  });
}

/**
 * The rollout table of a freshly trained one-step forecaster on its test part (origins from
 * the row before the first test row), also stored in training-report.json. Horizons longer
 * than the test part allows are left out (said in the table).
 */
async function rolloutOnTest(report: TrainReport, horizonsText: string, season: number | undefined) {
  if (horizonsText === 'none' || report.task !== 'forecast' || !report.files) return undefined;
  const { evaluateRollout, parseHorizons, rolloutTable } = await import('../../data/rollout-eval.js');
  const { MAX_ROLLOUT } = await import('../../runtime/forecast.js');
  const horizons = parseHorizons(horizonsText, '--rollout', MAX_ROLLOUT);
  const { readFile, writeFile } = await import('node:fs/promises');
  const pre = JSON.parse(await readFile(report.files.preprocessing, 'utf8')) as import('../../data/preprocessing.js').PreprocessingJson;
  if ((pre.horizon ?? 1) !== 1) return undefined;
  const from = report.data.split.valEnd - 1;
  const first = Math.max(from, pre.window, season ?? 0);
  const fits = horizons.filter((k) => first + k <= report.data.rows - 1);
  if (fits.length === 0) return undefined;
  const { exportToOnnx } = await import('../../export/exporter.js');
  const { loadTfjsArtifacts } = await import('../../export/tfjs-format/load.js');
  const { loadDataset } = await import('../../data/evaluate.js');
  const bytes = (await exportToOnnx(await loadTfjsArtifacts(report.files.modelJson))).model;
  const hold = pre.channels.filter((c) => c !== (pre.target ?? pre.channels[0]));
  const e = await evaluateRollout(bytes, pre, await loadDataset(report.data.file, pre), { horizons: fits, season, from, hold });
  const left = horizons.filter((k) => !fits.includes(k));
  const table =
    rolloutTable(e) +
    (hold.length ? `\n(inputs ${hold.join(', ')} held at their last value)` : '') +
    (left.length ? `\n(k = ${left.join(', ')} left out: the test part has ${report.data.rows - 1 - first} rows ahead of its first origin)` : '');
  const saved = JSON.parse(await readFile(report.files.report, 'utf8')) as Record<string, unknown>;
  await writeFile(report.files.report, JSON.stringify({ ...saved, rollout: e }, null, 2) + '\n');
  return { ...e, table };
}
