import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Argv } from 'yargs';
import { InputError } from '../../errors.js';
import type { StreamifyReport } from '../../export/streamify/index.js';
import { emit, guarded, writeOutput, type ArgsOf } from '../output.js';
import type { ModelProto } from '../../onnx/proto.js';

export const command = 'streamify <model>';
export const describe = 'Turn a sequence ONNX model into a step model with explicit state (one sample per call)';

export function builder(y: Argv) {
  return y
    .positional('model', { type: 'string', describe: 'sequence model (.onnx), ours or from another exporter', demandOption: true })
    .option('output', { alias: 'o', type: 'string', describe: 'step model to write', demandOption: true })
    .option('verify', { type: 'boolean', default: true, describe: 'step a random sequence and compare with the sequence model at every step' })
    .option('tolerance', { type: 'number', default: 1e-4, describe: 'max abs error allowed by the check' })
    .option('steps', { type: 'number', default: 8, describe: 'length of the check sequence when time is free' })
    .option('time-axis', { type: 'number', describe: 'time axis of the sequence inputs, when the graph does not tell' });
}

/** Human summary of a streamify report, shared with `export --streaming`. */
export function describeStreamify(out: string, r: StreamifyReport): string {
  const lines = [`wrote step model ${out}`];
  lines.push(`  sequence inputs: ${r.sequenceInputs.map((s) => `${s.name} (time axis ${s.axis} → 1)`).join(', ')}`);
  const from = new Map(r.initialStates.map((i) => [i.state, i.from]));
  for (const s of r.states) {
    const init =
      typeof s.init === 'number'
        ? s.init
        : `per element [${s.init
            .slice(0, 3)
            .map((v) => v.toPrecision(3))
            .join(', ')}, …]`;
    lines.push(`  state ${s.input} → ${s.output} [batch, ${s.shape.join(', ')}] init ${init}${from.has(s.name) ? ` (from ${from.get(s.name)})` : ''}`);
  }
  for (const o of r.stateOutputs) lines.push(`  output '${o.output}' only returned final states: it is the step model's state_out of ${o.states.join(', ')}`);
  if (r.transposed.length) lines.push(`  time-major ${r.transposed.join(', ')} made batch-major: [batch, 1, …]`);
  if (r.verification) {
    const v = r.verification;
    lines.push(
      `step vs sequence model over ${v.steps} steps (${v.comparisons} comparisons), batch ${v.batch}, on ${v.backend}: max abs error ${v.maxAbsError.toExponential(2)} (tolerance ${v.tolerance}) — ${v.passed ? 'OK' : 'FAILED'}`,
    );
    if (v.note) lines.push(`  note: ${v.note}`);
  } else lines.push('check skipped (--no-verify)');
  return lines.join('\n');
}

export async function handler(args: ArgsOf<typeof builder>): Promise<void> {
  await guarded(args, async () => {
    const { streamifyModel } = await import('../../export/streamify/index.js');
    const { toLayout0 } = await import('../../export/streamify/layout.js');
    const { decodeUserModel, encodeModel } = await import('../../onnx/proto.js');
    const { assertOnnxLoads } = await import('../model-source.js');
    if (!(args.tolerance >= 0)) throw new InputError(`--tolerance is ${args.tolerance}`, { field: '--tolerance', expected: 'a non-negative number' });
    // One step cannot tell a recurrence from a model that averages the whole window.
    if (!Number.isInteger(args.steps) || args.steps < 2 || args.steps > 10_000)
      throw new InputError(`--steps is ${args.steps}`, { field: '--steps', expected: 'one integer from 2 to 10000 (default 8)' });
    if (args.timeAxis !== undefined && (!Number.isInteger(args.timeAxis) || args.timeAxis < 0))
      throw new InputError(`--time-axis is ${args.timeAxis}`, {
        field: '--time-axis',
        expected: 'one non-negative integer, the axis of time in the sequence inputs (1 for [batch, time, features])',
      });
    const input = resolve(args.model);
    let bytes: Uint8Array;
    try {
      bytes = new Uint8Array(await readFile(input));
    } catch (e) {
      throw new InputError(`cannot read '${input}': ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, {
        file: input,
        expected: 'an ONNX sequence model',
      });
    }
    // What onnxruntime must load is the model after its batch-major recurrences become layout 0
    // (streamify's first step): onnxruntime's CPU kernels refuse layout 1, streamify does not.
    const m = decodeUserModel(bytes, input);
    await assertOnnxLoads(toLayout0(m) ? encodeModel(m as ModelProto) : bytes, input);
    let result;
    try {
      result = await streamifyModel(bytes, { verify: args.verify, tolerance: args.tolerance, steps: args.steps, timeAxis: args.timeAxis });
    } catch (e) {
      if (e instanceof Error && 'context' in e) (e as { context: { file?: string } }).context.file ??= input;
      throw e;
    }
    const out = resolve(args.output);
    await writeOutput(out, result.model);
    emit(args, { ok: true, output: out, ...result.report }, () => describeStreamify(out, result.report));
  });
}
