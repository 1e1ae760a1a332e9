import type { Argv } from 'yargs';
import type { BundleInspectReport, InspectReport } from '../../export/inspect.js';
import { emit, fmtBytes, guarded, type ArgsOf } from '../output.js';

export const command = 'inspect <file>';
export const describe =
  'Show inputs, outputs, ops, parameters, state tensors and metadata of an ONNX file or tfjs model.json; of a bundle directory, its manifest, signature state and each model';

export function builder(y: Argv) {
  return y
    .positional('file', { type: 'string', describe: '.onnx file, model.json or its directory, or a bundle directory', demandOption: true })
    .option('public-key', { type: 'string', describe: 'bundle: verify its signature with this key (or STREAMCELL_PUBLIC_KEY)' });
}

export function human(r: InspectReport): string {
  const io = (l: InspectReport['inputs']) => l.map((i) => `    ${i.name}: ${i.dtype} [${i.shape.map((d) => d ?? '?').join(', ')}]`).join('\n');
  const ops = Object.entries(r.ops)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k}×${v}`)
    .join(', ');
  const lines = [
    `${r.file} (${r.format}, ${fmtBytes(r.sizeBytes)})`,
    ...(r.irVersion !== undefined ? [`  ir_version ${r.irVersion}, opsets ${JSON.stringify(r.opset)}, producer ${r.producer}`] : []),
    '  inputs:',
    io(r.inputs),
    '  outputs:',
    io(r.outputs),
    `  ${r.format === 'onnx' ? 'ops' : 'layers'}: ${ops}`,
    `  parameters: ${r.parameters}`,
  ];
  if (r.states.length)
    lines.push(
      '  state tensors:',
      ...r.states.map(
        (s) => `    ${s.input} → ${s.output} [${s.shape}] ${s.dtype} init ${typeof s.init === 'number' ? s.init : `per element (${s.init.length} values)`}`,
      ),
    );
  const meta = Object.entries(r.metadata);
  if (meta.length) lines.push('  metadata:', ...meta.map(([k, v]) => `    ${k} = ${v.length > 120 ? v.slice(0, 117) + '...' : v}`));
  return lines.join('\n');
}

export function humanBundle(r: BundleInspectReport): string {
  const sig = r.signature.verified
    ? 'signed, signature verified with the given public key'
    : r.signature.present
      ? 'signed, signature NOT checked (give --public-key or STREAMCELL_PUBLIC_KEY)'
      : 'not signed';
  const lines = [
    `${r.dir} (bundle ${r.name} ${r.version}, created ${r.created})`,
    `  task ${r.task}, channels ${r.channels.join(', ')}, window ${r.window}, needs streamcell ≥ ${r.minStreamcellVersion}`,
    `  signature: ${sig}`,
    `  checksums: all ${r.files.length} files verified`,
    `  default step model: ${r.stepDefault}${r.stepChoice ? ` (${r.stepChoice.reason})` : ''}`,
    '  files:',
    ...r.files.map((f) => `    ${f.role.padEnd(13)} ${f.path.padEnd(20)} ${fmtBytes(f.bytes).padStart(10)}  sha256 ${f.sha256.slice(0, 16)}…`),
  ];
  for (const m of r.models)
    lines.push(
      '',
      `model ${m.role}:`,
      human(m)
        .split('\n')
        .map((l) => `  ${l}`)
        .join('\n'),
    );
  return lines.join('\n');
}

export async function handler(args: ArgsOf<typeof builder>): Promise<void> {
  await guarded(args, async () => {
    const { inspectBundle, inspectFile, isBundleDir } = await import('../../export/inspect.js');
    const { publicKeyFrom } = await import('../model-source.js');
    if (await isBundleDir(args.file)) {
      const r = await inspectBundle(args.file, { publicKey: await publicKeyFrom(args.publicKey) });
      emit(args, r, () => humanBundle(r));
      return;
    }
    const r = await inspectFile(args.file);
    emit(args, r, () => human(r));
  });
}
