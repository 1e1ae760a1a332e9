/** `streamcell bundle`: tfjs model directory → verified, quantized, signed bundle. */
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { InputError, isStreamcellError } from '../errors.js';
import { checkPreprocessing } from '../data/preprocessing.js';
import { loadDataset } from '../data/evaluate.js';
import { exportModelFile } from '../export/api.js';
import { quantizeModel } from '../export/quantize/index.js';
import { streamifyModel } from '../export/streamify/index.js';
import { loadPrivateKey, writeBundle } from './bundle.js';
import { badBundleName, checkBundleName, type ManifestJson, type ModelRole, type StepChoiceJson } from './manifest.js';
import { chooseStep, type StepCandidate, type StepPreference } from './choose.js';
import type { MeasureLatencies } from '../export/quantize/latency.js';

/** Options of {@link buildBundle}: the trained model folder, output folder, name and version, signing key and calibration data. */
export interface BuildBundleOptions {
  /** tfjs model directory with model.json, weights and preprocessing.json. */
  modelDir: string;
  out: string;
  name?: string;
  version?: string;
  /** CSV for int8-static calibration of the step model (else dynamic int8). */
  calibration?: string;
  /** PEM private key file (streamcell keygen). */
  signKey?: string;
  /** Which step model runtimes load by default (default `speed`: measured on this machine). */
  prefer?: StepPreference;
  /** Latency measurement for the choice (tests inject a fixed one). */
  measure?: MeasureLatencies;
}

/** What {@link buildBundle} wrote: the bundle folder, its manifest and the quantization reports. */
export interface BuildBundleResult {
  manifest: ManifestJson;
  notes: string[];
  parityMaxAbsError: number;
  /** How the default step model was chosen (absent without a step model). */
  stepChoice?: StepChoiceJson;
}

export async function buildBundle(opts: BuildBundleOptions): Promise<BuildBundleResult> {
  // The name and version name a folder on every device: refuse a bad one before any work.
  if (opts.name !== undefined) checkBundleName(opts.name, '--name');
  if (opts.version !== undefined) checkBundleName(opts.version, '--bundle-version');
  const dir = resolve(opts.modelDir);
  const prePath = join(dir, 'preprocessing.json');
  let preRaw: unknown;
  try {
    preRaw = JSON.parse(await readFile(prePath, 'utf8'));
  } catch (e) {
    throw new InputError(`cannot read preprocessing.json: ${(e as Error).message}`, {
      file: prePath,
      expected: 'the preprocessing.json written by streamcell train',
    });
  }
  const pre = checkPreprocessing(preRaw, prePath);
  const key = opts.signKey
    ? loadPrivateKey(
        await readFile(resolve(opts.signKey), 'utf8').catch(() => {
          throw new InputError('cannot read the signing key', { file: resolve(opts.signKey!), expected: 'a PEM private key (streamcell keygen)' });
        }),
        resolve(opts.signKey),
      )
    : undefined;
  const exp = await exportModelFile(join(dir, 'model.json'), { tolerance: 1e-4 });
  exp.assertParity();
  const float = exp.result.model;
  const models: Partial<Record<ModelRole, Uint8Array>> = { float };
  const notes: string[] = [];
  models.int8 = (await quantizeModel(float, { mode: 'int8' })).model;
  try {
    models.step = (await streamifyModel(float, { tolerance: 1e-4 })).model;
  } catch (e) {
    if (!isStreamcellError(e)) throw e;
    notes.push(`no step model: ${e.message.split('\n')[0]}`);
  }
  let stepChoice: StepChoiceJson | undefined;
  let stepDefault: ManifestJson['step_default'];
  if (models.step) {
    const calibration = opts.calibration ? { pre, data: await loadDataset(resolve(opts.calibration), pre), method: 'minmax' as const } : undefined;
    // The int8 candidates, the one to ship on a tie first. Without calibration: int8 weights on
    // float kernels (folded at load: float's speed, float activations, so a stream's result does
    // not depend on its batch) and dynamic int8 on integer kernels (faster where they pay).
    const candidates: StepCandidate[] = calibration
      ? [{ name: 'int8_static', label: 'int8-static', bytes: (await quantizeModel(models.step, { mode: 'int8-static', calibration })).model }]
      : [
          {
            name: 'int8_float_kernels',
            label: 'int8, float kernels (weights folded at load)',
            bytes: (await quantizeModel(models.step, { mode: 'int8', kernels: 'float' })).model,
          },
          {
            name: 'int8_integer_kernels',
            label: 'int8, integer kernels (dynamic int8)',
            bytes: (await quantizeModel(models.step, { mode: 'int8', kernels: 'integer' })).model,
          },
        ];
    const c = await chooseStep(models.step, candidates, opts.prefer ?? 'speed', opts.measure);
    models.step_int8 = c.int8.bytes;
    stepChoice = { prefer: c.prefer, step_int8: c.int8.label, latency_us: c.latencyUs, ratio_vs_float: c.ratio, cpu: c.cpu, reason: c.reason };
    notes.push(`default step model: ${c.defaultRole === 'step' ? 'step (float)' : 'step-int8'}: ${c.reason}`);
    if (c.int8.name === 'int8_integer_kernels')
      notes.push("step-int8 uses dynamic int8: a stream's result depends slightly on the other streams in its batch (pass --calibration for int8-static)");
    stepDefault = c.defaultRole;
  }
  const { data: _d, metrics: _m, ...inference } = preRaw as Record<string, unknown>;
  void _d;
  void _m;
  const name = opts.name ?? exp.result.graph.name;
  if (opts.name === undefined && badBundleName(name)) {
    throw new InputError(`the model's name ${JSON.stringify(name.slice(0, 60))} ${badBundleName(name)}, so it cannot name the bundle`, {
      option: 'name',
      expected: "a name (option 'name'): 1–100 characters, not starting with '.' or '-', without '/', '..' or whitespace",
    });
  }
  const manifest = await writeBundle(
    opts.out,
    {
      name,
      version: opts.version ?? '1.0.0',
      preprocessing: { ...(inference as typeof pre & Record<string, unknown>) },
      models,
      sourceSha256: exp.result.sourceSha256,
      stepDefault,
      stepChoice,
    },
    key,
  );
  if (!key) notes.push('unsigned: devices that pin a public key will refuse it (streamcell keygen; bundle --sign KEY)');
  return { manifest, notes, parityMaxAbsError: exp.parity?.maxAbsError ?? 0, stepChoice };
}
