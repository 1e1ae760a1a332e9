import { resolve } from 'node:path';
import type { ArgumentsCamelCase, Argv } from 'yargs';
import { Daemon } from '../../devices/daemon.js';
import { sinkFromUri, sourceFromUri } from '../../devices/uri.js';
import { readModelInfo } from '../../runtime/step-model.js';
import { resolveModel } from '../model-source.js';
import { guarded, type GlobalArgs } from '../output.js';
import { backendChoice, describeBackend, withBackendOption, type BackendArgs } from '../backend-option.js';

export const command = 'run <model>';
export const describe = 'Offline predictions for a CSV (or JSONL) file as JSON lines, through the same pipeline as the daemon';

interface Args extends GlobalArgs, BackendArgs {
  model: string;
  input: string;
  output: string;
  format: string;
  columns?: string;
  stream?: string;
  publicKey?: string;
  int8: boolean;
}

export function builder(y: Argv): Argv<Args> {
  y = y
    .positional('model', { type: 'string', describe: 'step model (.onnx) or bundle directory', demandOption: true })
    .option('input', { alias: 'i', type: 'string', demandOption: true, describe: 'CSV (or JSONL) file of readings' })
    .option('output', { alias: 'o', type: 'string', default: '-', describe: 'JSONL file to write (- for stdout)' })
    .option('format', { choices: ['csv', 'whitespace', 'kv', 'jsonl'], default: 'csv', describe: 'input line format' })
    .option('columns', { type: 'string', describe: 'channel columns (names or indexes), default: the model\'s channels' })
    .option('stream', { type: 'string', describe: 'column holding the stream id' })
    .option('public-key', { type: 'string', describe: 'verify the bundle\'s signature with this key (or STREAMCELL_PUBLIC_KEY)' })
    .option('int8', { type: 'boolean', default: false, describe: 'use the bundle\'s step-int8 model' });
  return withBackendOption(y) as unknown as Argv<Args>;
}

export async function handler(args: ArgumentsCamelCase<Args>): Promise<void> {
  await guarded(args, async () => {
    const { bytes } = await resolveModel(args.model, { publicKey: args.publicKey, role: args.int8 ? 'step_int8' : 'step' });
    const info = readModelInfo(bytes);
    const preText = info.metadata['streamcell.preprocessing'];
    const channels: string[] | number = preText ? (JSON.parse(preText) as { channels: string[] }).channels : Number(info.sampleInputs[0]?.dims.at(-1) ?? 1);
    const q = new URLSearchParams({ format: args.format, ...(args.columns ? { columns: args.columns } : {}), ...(args.stream ? { stream: args.stream } : {}) });
    const source = await sourceFromUri(`file:${resolve(args.input)}?${q}`, { channels });
    const choice = backendChoice(args);
    const daemon = await Daemon.create({ model: bytes, sources: [source], sinks: [sinkFromUri(`jsonl:${args.output === '-' ? '-' : resolve(args.output)}`)], backend: choice.force, preferBackends: choice.prefer });
    process.stderr.write(`${describeBackend(daemon.backendRecord)}\n`);
    await daemon.start();
    await daemon.finished();
    await daemon.stop();
    const drops = (await daemon.metrics.dropped.get()).values.filter((v) => v.value > 0);
    if (drops.length) process.stderr.write(`dropped: ${drops.map((d) => `${d.labels.reason} ${d.value}`).join(', ')}\n`);
  });
}
