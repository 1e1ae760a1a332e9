/**
 * A model argument of the evaluation commands (verify, forecast): tfjs, ONNX or a bundle. Its
 * own module: it reaches the exporter, which the daemon commands' model-source.ts must not
 * (test/cli/startup.test.ts).
 */
import { existsSync } from 'node:fs';
import { extname, join, resolve } from 'node:path';
import type { BackendChoice } from '../runtime/backend.js';
import { InputError } from '../errors.js';
import { assertOnnxLoads, resolveModel } from './model-source.js';
/**
 * ONNX bytes of any model a user names: a tfjs model.json (or the folder holding one, as
 * export takes it) is exported in memory; a bundle directory gives its step model (checksums
 * verified); an ONNX file must load in onnxruntime (else exit 2 naming it).
 */
export async function anyModelBytes(path: string, choice: BackendChoice): Promise<Uint8Array> {
  const file = resolve(path);
  const tfjs = extname(file).toLowerCase() === '.json' ? file : existsSync(join(file, 'model.json')) ? join(file, 'model.json') : undefined;
  if (tfjs) {
    const { exportToOnnx } = await import('../export/exporter.js');
    const { loadTfjsArtifacts } = await import('../export/tfjs-format/load.js');
    return (await exportToOnnx(await loadTfjsArtifacts(tfjs))).model;
  }
  const { bytes, bundle } = await resolveModel(file);
  if (!bundle) await assertOnnxLoads(bytes, file, choice);
  return bytes;
}

/** Runs a rollout the user asked for with `--hold`: the library's `hold` option is that flag here. */
export async function withHoldFlag<T>(body: () => Promise<T>): Promise<T> {
  try {
    return await body();
  } catch (e) {
    if (e instanceof InputError && e.context.field === 'hold') throw new InputError(e.message, { ...e.context, field: '--hold' }, { cause: e });
    throw e;
  }
}
