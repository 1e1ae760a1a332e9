import { resolve } from 'node:path';
import type { Argv } from 'yargs';
import { InputError, isStreamcellError } from '../../errors.js';
import type { StreamifyReport } from '../../export/streamify/index.js';
import { describeStreamify } from './streamify.js';
import { emit, guarded, fmtBytes, reportError, writeOutput, type ArgsOf } from '../output.js';

export const command = 'export <model>';
export const describe = 'Convert a tfjs LayersModel (model.json) to ONNX and check parity against tfjs';

export function builder(y: Argv) {
  return y
    .positional('model', { type: 'string', describe: 'model.json (or its directory)', demandOption: true })
    .option('output', { alias: 'o', type: 'string', describe: 'ONNX file to write', demandOption: true })
    .option('opset', { type: 'number', default: 17, describe: 'ONNX opset (13–21)' })
    .option('verify', { type: 'boolean', default: true, describe: 'run tfjs and onnxruntime on random inputs and compare (--no-verify skips)' })
    .option('tolerance', { type: 'number', default: 1e-4, describe: 'max abs error allowed by the parity check' })
    .option('allow-nan', { type: 'boolean', default: false, describe: 'export even when weights contain NaN/Inf' })
    .option('seed', { type: 'number', default: 1234, describe: 'seed of the random parity inputs' })
    .option('sample-data', {
      type: 'string',
      describe:
        'real inputs for the parity check instead of random ones: .npy ([samples, time, features]), .json (nested arrays) or .csv (windows, normalised with preprocessing.json)',
    })
    .option('streaming', { type: 'boolean', default: false, describe: 'also write the step model (OUT.step.onnx) for one-sample-at-a-time streaming' });
}

export async function handler(args: ArgsOf<typeof builder>): Promise<void> {
  await guarded(args, async () => {
    const { exportModelFile } = await import('../../export/api.js');
    const { streamifyModel } = await import('../../export/streamify/index.js');
    if (!(args.tolerance >= 0)) throw new InputError(`--tolerance is ${args.tolerance}`, { field: '--tolerance', expected: 'a non-negative number' });
    const out = resolve(args.output);
    const r = await exportModelFile(args.model, {
      opset: args.opset,
      allowNonFinite: args.allowNan,
      verify: args.verify,
      tolerance: args.tolerance,
      seed: args.seed,
      sampleData: args.sampleData,
      write: (bytes) => writeOutput(out, bytes),
    });
    let step: { output: string; report: StreamifyReport } | undefined;
    if (args.streaming && (!r.parity || r.parity.passed)) {
      const stepOut = out.replace(/(\.onnx)?$/i, '.step.onnx');
      let s;
      try {
        s = await streamifyModel(r.result.model, { tolerance: args.tolerance, verify: args.verify });
      } catch (e) {
        // The sequence model is written and stays usable (window mode); say which file could not stream.
        if (isStreamcellError(e)) e.context.file ??= out;
        process.stderr.write(`streamcell: wrote ${out}, but not its step model:\n`);
        throw e;
      }
      await writeOutput(stepOut, s.model);
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
      if (r.summary.keras3) lines.push(`  read as a Keras ${r.summary.keras3.kerasVersion} file: ${r.summary.keras3.notes.join('; ') || 'no rewrites needed'}`);
      if (r.parity) {
        const p = r.parity;
        lines.push(
          `parity vs ${p.reference} on ${p.backend}, ${p.inputs}: max abs error ${p.maxAbsError.toExponential(2)} ` +
            `over ${p.cases.length} cases (tolerance ${p.tolerance}) — ${p.passed ? 'OK' : 'FAILED'}`,
        );
        const adj = p.cases.filter((c) => c.adjudication);
        if (adj.length) {
          const o = Math.max(...adj.map((c) => c.adjudication!.onnxVsFloat64));
          const t = Math.max(...adj.map((c) => c.adjudication!.tfjsVsFloat64));
          const b = Math.min(...adj.map((c) => c.adjudication!.float32Budget));
          lines.push(
            `  ${adj.length} case(s) over the tolerance were judged against the float64 reference: ONNX is off by ${o.toExponential(2)}, tfjs by ${t.toExponential(2)}; ` +
              `float32 rounding of this model's inputs and weights alone moves its outputs by up to ${b.toExponential(2)} — ` +
              (p.passed
                ? 'passed: the model amplifies float32 rounding (it does so in tfjs too), the export is right'
                : 'FAILED: ONNX is further from exact math than float32 rounding explains'),
          );
        }
      } else lines.push('parity check skipped (--no-verify)');
      if (step) lines.push(describeStreamify(step.output, step.report));
      return lines.join('\n');
    });
    if (r.parity && !r.parity.passed) {
      // The JSON document above already says ok: false with the parity report: only the message and the status remain.
      try {
        r.assertParity();
      } catch (e) {
        reportError({ ...args, json: false }, e);
      }
    }
  });
}
