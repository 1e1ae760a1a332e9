import { writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { ArgumentsCamelCase, Argv } from 'yargs';
import { InputError } from '../../errors.js';
import { exportModelFile } from '../../export/api.js';
import { streamifyModel, type StreamifyReport } from '../../export/streamify/index.js';
import { describeStreamify } from './streamify.js';
import { emit, guarded, fmtBytes, type GlobalArgs } from '../output.js';

export const command = 'export <model>';
export const describe = 'Convert a tfjs LayersModel (model.json) to ONNX and check parity against tfjs';

interface Args extends GlobalArgs {
  model: string;
  output: string;
  opset: number;
  verify: boolean;
  tolerance: number;
  allowNan: boolean;
  seed: number;
  streaming: boolean;
}

export function builder(y: Argv): Argv<Args> {
  return y
    .positional('model', { type: 'string', describe: 'model.json (or its directory)', demandOption: true })
    .option('output', { alias: 'o', type: 'string', describe: 'ONNX file to write', demandOption: true })
    .option('opset', { type: 'number', default: 17, describe: 'ONNX opset (13–21)' })
    .option('verify', { type: 'boolean', default: true, describe: 'run tfjs and onnxruntime on random inputs and compare (--no-verify skips)' })
    .option('tolerance', { type: 'number', default: 1e-4, describe: 'max abs error allowed by the parity check' })
    .option('allow-nan', { type: 'boolean', default: false, describe: 'export even when weights contain NaN/Inf' })
    .option('seed', { type: 'number', default: 1234, describe: 'seed of the random parity inputs' })
    .option('streaming', { type: 'boolean', default: false, describe: 'also write the step model (OUT.step.onnx) for one-sample-at-a-time streaming' }) as unknown as Argv<Args>;
}

export async function handler(args: ArgumentsCamelCase<Args>): Promise<void> {
  await guarded(args, async () => {
    if (!(args.tolerance >= 0)) throw new InputError(`--tolerance is ${args.tolerance}`, { field: '--tolerance', expected: 'a non-negative number' });
    const out = resolve(args.output);
    const r = await exportModelFile(args.model, {
      opset: args.opset, allowNonFinite: args.allowNan, verify: args.verify, tolerance: args.tolerance, seed: args.seed,
      write: (bytes) => writeFile(out, bytes),
    });
    let step: { output: string; report: StreamifyReport } | undefined;
    if (args.streaming && (!r.parity || r.parity.passed)) {
      const stepOut = out.replace(/(\.onnx)?$/i, '.step.onnx');
      const s = await streamifyModel(r.result.model, { tolerance: args.tolerance, verify: args.verify });
      await writeFile(stepOut, s.model);
      step = { output: stepOut, report: s.report };
    }
    emit(args, { ok: r.parity ? r.parity.passed : true, output: out, ...r.summary, parity: r.parity, step }, () => {
      const lines = [
        `wrote ${out} (${fmtBytes(r.summary.sizeBytes)}, opset ${r.summary.opset}, ${r.summary.parameters} parameters, ${r.summary.nodes} nodes)`,
        `  inputs:  ${r.summary.inputs.map((i) => `${i.name} [${i.dims.join(', ')}]`).join('; ')}`,
        `  outputs: ${r.summary.outputs.map((o) => `${o.name} [${o.dims.join(', ')}]`).join('; ')}`,
      ];
      if (r.summary.states.length) lines.push(`  state:   ${r.summary.states.map((s) => `${s.input} → ${s.output} [${s.shape}]`).join('; ')}`);
      for (const w of r.summary.warnings) lines.push(`  warning: ${w}`);
      if (r.parity) {
        lines.push(`parity vs ${r.parity.reference} on ${r.parity.backend}: max abs error ${r.parity.maxAbsError.toExponential(2)} ` +
          `over ${r.parity.cases.length} cases (tolerance ${r.parity.tolerance}) — ${r.parity.passed ? 'OK' : 'FAILED'}`);
      } else lines.push('parity check skipped (--no-verify)');
      if (step) lines.push(describeStreamify(step.output, step.report));
      return lines.join('\n');
    });
    if (r.parity && !r.parity.passed) r.assertParity();
  });
}
