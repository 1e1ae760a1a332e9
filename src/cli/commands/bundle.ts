import { resolve } from 'node:path';
import type { Argv } from 'yargs';
import { STEP_PREFERENCES } from '../../bundle/preference.js';
import { emit, fmtBytes, guarded, type ArgsOf } from '../output.js';

export const command = 'bundle';
export const describe = 'Package a trained model as a bundle: float, int8, step and step-int8 ONNX, preprocessing, signed manifest';

export function builder(y: Argv) {
  return y
    .option('model', { type: 'string', demandOption: true, describe: 'trained model directory (model.json, weights, preprocessing.json)' })
    .option('output', { alias: 'o', type: 'string', demandOption: true, describe: 'bundle directory to write' })
    .option('sign', { type: 'string', describe: 'Ed25519 private key (streamcell keygen) to sign the manifest' })
    .option('name', { type: 'string', describe: 'bundle name (default: the model name)' })
    .option('bundle-version', { type: 'string', describe: 'bundle version (default 1.0.0)' })
    .option('calibration', { type: 'string', describe: 'CSV for int8-static calibration of the step model' })
    .option('prefer', {
      choices: STEP_PREFERENCES,
      default: 'speed' as const,
      describe: 'default step model: speed (int8 if measured no slower than float here), size (int8), float, int8',
    });
}

export async function handler(args: ArgsOf<typeof builder>): Promise<void> {
  await guarded(args, async () => {
    const { buildBundle } = await import('../../bundle/build.js');
    const out = resolve(args.output);
    const r = await buildBundle({
      modelDir: args.model,
      out,
      name: args.name,
      version: args.bundleVersion,
      calibration: args.calibration,
      signKey: args.sign,
      prefer: args.prefer,
    });
    emit(args, { ok: true, output: out, ...r }, () =>
      [
        `wrote bundle ${out}: ${r.manifest.name} ${r.manifest.version}${args.sign ? ', signed' : ''}`,
        ...Object.entries(r.manifest.files).map(
          ([role, f]) => `  ${role.padEnd(13)} ${f!.path.padEnd(20)} ${fmtBytes(f!.bytes).padStart(10)}  sha256 ${f!.sha256.slice(0, 16)}…`,
        ),
        `  parity vs tfjs: max abs error ${r.parityMaxAbsError.toExponential(2)}`,
        ...(r.stepChoice
          ? [
              `  step latency (p50, batch 1, µs, same run): ${Object.entries(r.stepChoice.latency_us)
                .map(([k, v]) => `${k} ${v.toFixed(1)}`)
                .join(', ')}`,
            ]
          : []),
        ...r.notes.map((n) => `  note: ${n}`),
      ].join('\n'),
    );
  });
}
