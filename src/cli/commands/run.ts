import { open } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Argv } from 'yargs';
import type { DaemonMetrics } from '../../devices/metrics.js';
import { InputError } from '../../errors.js';
import { guarded, type ArgsOf } from '../output.js';
import { backendChoice, describeBackend, withBackendOption } from '../backend-option.js';

export const command = 'run <model>';
export const describe = 'Offline predictions for a CSV (or JSONL) file as JSON lines, through the same pipeline as the daemon';

export function builder(y: Argv) {
  const withOptions = y
    .positional('model', { type: 'string', describe: 'step model (.onnx) or bundle directory', demandOption: true })
    .option('input', { alias: 'i', type: 'string', demandOption: true, describe: 'CSV (or JSONL) file of readings' })
    .option('output', { alias: 'o', type: 'string', default: '-', describe: 'JSONL file to write (- for stdout)' })
    .option('format', { choices: ['csv', 'whitespace', 'kv', 'jsonl'], default: 'csv', describe: 'input line format' })
    .option('columns', { type: 'string', describe: "channel columns (names or indexes), default: the model's channels" })
    .option('stream', { type: 'string', describe: 'column holding the stream id' })
    .option('public-key', { type: 'string', describe: "verify the bundle's signature with this key (or STREAMCELL_PUBLIC_KEY)" })
    .option('int8', { type: 'boolean', default: false, describe: "use the bundle's step-int8 model (default: the bundle's step_default)" })
    .option('float', { type: 'boolean', default: false, describe: "use the bundle's float step model" })
    .option('fast', {
      type: 'boolean',
      default: true,
      describe: 'offline fast path: the model steps through chunks of readings per call (--no-fast: one call per reading, as the daemon)',
    });
  return withBackendOption(withOptions);
}

/** The first line of `file` (BOM and CR removed), whether the file has more, and its size; reads at most 1 MiB. */
async function firstLine(file: string): Promise<{ line: string; more: boolean; size: number; complete: boolean }> {
  let fh;
  try {
    fh = await open(file, 'r');
  } catch (e) {
    throw new InputError(`cannot read '${file}': ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, {
      file,
      field: '--input',
      expected: 'a CSV (or JSONL) file of readings',
    });
  }
  try {
    const size = (await fh.stat()).size;
    const buf = Buffer.alloc(Math.min(size, 1024 * 1024));
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    const text = buf
      .subarray(0, bytesRead)
      .toString('utf8')
      .replace(/^\ufeff/, '');
    const lines = text.split('\n');
    // Leading blank lines are skipped by the parser too.
    while (lines.length > 1 && lines[0]!.trim() === '') lines.shift();
    const complete = lines.length > 1 || bytesRead === size;
    return { line: lines[0]!.replace(/\r$/, ''), more: lines.slice(1).some((l) => l.trim() !== ''), size, complete };
  } finally {
    await fh.close();
  }
}

/**
 * What the daemon's pipeline would only count as drops, said up front naming the file: an
 * empty file, a first line over 1 MiB, a header without the columns the model reads, or a
 * header and no readings.
 */
async function checkInput(file: string, args: ArgsOf<typeof builder>, channels: string[] | number): Promise<void> {
  const { line, more, size, complete } = await firstLine(file);
  if (line.trim() === '') throw new InputError('the input file is empty', { file, field: '--input', expected: 'a CSV (or JSONL) file of readings' });
  if (!complete) throw new InputError(`the first line is over 1 MiB (the file is ${size} bytes)`, { file, field: '--input', expected: 'one reading per line' });
  if (args.format !== 'csv' && args.format !== 'whitespace') return;
  const wanted = (args.columns ? args.columns.split(',').map((c) => c.trim()) : Array.isArray(channels) ? channels : []).filter((c) => !/^\d+$/.test(c));
  if (args.stream && !/^\d+$/.test(args.stream)) wanted.push(args.stream);
  if (wanted.length === 0) return;
  const cells = line.split(args.format === 'whitespace' ? /\s+/ : ',').map((c) => c.trim());
  const missing = wanted.filter((c) => !cells.includes(c));
  const shown = cells.length > 20 ? `${cells.slice(0, 20).join(', ')}, … (${cells.length} columns)` : cells.join(', ');
  if (missing.length) {
    throw new InputError(
      `the header line lacks column${missing.length > 1 ? 's' : ''} ${missing.map((m) => `'${m}'`).join(', ')} (it has: ${shown.slice(0, 400)})`,
      {
        file,
        field: '--input',
        expected: `a header naming ${wanted.join(', ')}${args.columns ? '' : " (the model's channels; --columns maps others)"}`,
      },
    );
  }
  if (!more) throw new InputError('the file has a header line but no readings', { file, field: '--input', expected: 'readings after the header' });
}

export async function handler(args: ArgsOf<typeof builder>): Promise<void> {
  await guarded(args, async () => {
    if (args.int8 && args.float)
      throw new InputError('--int8 and --float name different step models', { field: '--float', expected: 'one of --int8, --float' });
    // Loaded here, not at the top: every command module is imported by main.ts to register it.
    const { Daemon } = await import('../../devices/daemon.js');
    const { OfflineRun } = await import('../../devices/offline.js');
    const { sinkFromUri, sourceFromUri } = await import('../../devices/uri.js');
    const { readModelInfo } = await import('../../runtime/step-model.js');
    const { aboutFile, assertOnnxLoads, channelsOf, resolveModel } = await import('../model-source.js');
    const { file, bytes } = await resolveModel(args.model, { publicKey: args.publicKey, role: args.int8 ? 'step_int8' : args.float ? 'step' : undefined });
    const info = readModelInfo(bytes, file);
    const channels = channelsOf(info, file);
    const choice = backendChoice(args);
    await assertOnnxLoads(bytes, file, choice);
    const input = resolve(args.input);
    await checkInput(input, args, channels);
    const q = new URLSearchParams({ format: args.format, ...(args.columns ? { columns: args.columns } : {}), ...(args.stream ? { stream: args.stream } : {}) });
    const source = await sourceFromUri(`file:${input}?${q}`, { channels });
    const sinks = [sinkFromUri(`jsonl:${args.output === '-' ? '-' : resolve(args.output)}`)];
    let metrics: DaemonMetrics;
    const fast = args.fast
      ? await aboutFile(file, () => OfflineRun.create({ model: bytes, source, sinks, backend: choice.force, preferBackends: choice.prefer }))
      : ({ ok: false, reason: '--no-fast' } as const);
    if (fast.ok) {
      process.stderr.write(`${describeBackend(fast.run.backendRecord)}\noffline fast path: chunks of readings per stream, state carried\n`);
      metrics = fast.run.metrics;
      await fast.run.run();
    } else {
      const daemon = await aboutFile(file, () =>
        Daemon.create({ model: bytes, sources: [source], sinks, backend: choice.force, preferBackends: choice.prefer }),
      );
      process.stderr.write(`${describeBackend(daemon.backendRecord)}\nstreaming path (one step per reading): ${fast.reason}\n`);
      metrics = daemon.metrics;
      await daemon.start();
      await daemon.finished();
      await daemon.stop();
    }
    const drops = (await metrics.dropped.get()).values.filter((v) => v.value > 0);
    const dropText = drops.map((d) => `${d.labels.reason} ${d.value}`).join(', ');
    const predictions = (await metrics.predictionsOut.get()).values.reduce((n, v) => n + v.value, 0);
    if (predictions === 0) {
      const readings = (await metrics.samplesIn.get()).values.reduce((n, v) => n + v.value, 0);
      throw new InputError(`no predictions: ${readings} reading${readings === 1 ? '' : 's'} accepted${drops.length ? `, lines dropped: ${dropText}` : ''}`, {
        file: input,
        field: '--input',
        expected: `readings of the model's channels (${Array.isArray(channels) ? channels.join(', ') : `${channels} numeric columns`}), enough to fill its window`,
      });
    }
    if (drops.length) process.stderr.write(`dropped: ${dropText}\n`);
    // The output could not take everything (a full disk, an I/O error): say so, not exit 0.
    const lost = (await metrics.queueOverflow.get()).values.reduce((n, v) => n + v.value, 0);
    if (lost > 0) {
      const codes = (await metrics.sinkErrors.get()).values
        .filter((v) => v.value > 0)
        .map((v) => v.labels.code)
        .join(', ');
      throw new InputError(`${lost} of ${predictions} predictions could not be written (${codes || 'write error'})`, {
        file: args.output,
        field: '--output',
        expected: 'a writable output file on a disk with room',
      });
    }
  });
}
