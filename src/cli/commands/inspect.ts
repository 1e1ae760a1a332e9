import type { ArgumentsCamelCase, Argv } from 'yargs';
import { inspectFile, type InspectReport } from '../../export/inspect.js';
import { emit, fmtBytes, guarded, type GlobalArgs } from '../output.js';

export const command = 'inspect <file>';
export const describe = 'Show inputs, outputs, ops, parameters, state tensors and metadata of an ONNX file or tfjs model.json';

interface Args extends GlobalArgs {
  file: string;
}

export function builder(y: Argv): Argv<Args> {
  return y.positional('file', { type: 'string', describe: '.onnx file, model.json or its directory', demandOption: true }) as unknown as Argv<Args>;
}

export function human(r: InspectReport): string {
  const io = (l: InspectReport['inputs']) => l.map((i) => `    ${i.name}: ${i.dtype} [${i.shape.map((d) => d ?? '?').join(', ')}]`).join('\n');
  const ops = Object.entries(r.ops).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k}×${v}`).join(', ');
  const lines = [
    `${r.file} (${r.format}, ${fmtBytes(r.sizeBytes)})`,
    ...(r.irVersion !== undefined ? [`  ir_version ${r.irVersion}, opsets ${JSON.stringify(r.opset)}, producer ${r.producer}`] : []),
    '  inputs:', io(r.inputs), '  outputs:', io(r.outputs),
    `  ${r.format === 'onnx' ? 'ops' : 'layers'}: ${ops}`,
    `  parameters: ${r.parameters}`,
  ];
  if (r.states.length) lines.push('  state tensors:', ...r.states.map((s) => `    ${s.input} → ${s.output} [${s.shape}] ${s.dtype} init ${typeof s.init === 'number' ? s.init : `per element (${s.init.length} values)`}`));
  const meta = Object.entries(r.metadata);
  if (meta.length) lines.push('  metadata:', ...meta.map(([k, v]) => `    ${k} = ${v.length > 120 ? v.slice(0, 117) + '...' : v}`));
  return lines.join('\n');
}

export async function handler(args: ArgumentsCamelCase<Args>): Promise<void> {
  await guarded(args, async () => {
    const r = await inspectFile(args.file);
    emit(args, r, () => human(r));
  });
}
