/**
 * A model argument of the evaluation commands (verify, forecast): tfjs, ONNX or a bundle. Its
 * own module: it reaches the exporter, which the daemon commands' model-source.ts must not
 * (test/cli/startup.test.ts).
 */
import { existsSync } from 'node:fs';
import { extname, join, resolve } from 'node:path';
import type { PreprocessingJson } from '../model-format/preprocessing.js';
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

/**
 * A forecaster a rollout command names: its ONNX bytes ({@link anyModelBytes}) and its
 * preprocessing (`preprocessingFile`, else the model's metadata). Exit 2 naming the file when it
 * has none or is a classifier.
 */
export async function forecasterModel(path: string, choice: BackendChoice, preprocessingFile?: string): Promise<{ bytes: Uint8Array; pre: PreprocessingJson }> {
  const file = resolve(path);
  const bytes = await anyModelBytes(path, choice);
  const { preprocessingFor } = await import('./commands/quantize.js');
  const pre = await preprocessingFor(bytes, preprocessingFile);
  if (!pre)
    throw new InputError('the model carries no preprocessing metadata', {
      file,
      field: '--preprocessing',
      expected: 'the preprocessing.json it was trained with',
    });
  if (pre.task !== 'forecast')
    throw new InputError(`the model is a classifier (task '${pre.task}'); a rollout feeds a forecaster's predictions back as its next input`, {
      file,
      field: 'streamcell.preprocessing.task',
      expected: "a forecaster (task 'forecast')",
    });
  return { bytes, pre };
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
