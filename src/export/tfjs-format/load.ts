import { readFile, stat } from 'node:fs/promises';
import { dirname, isAbsolute, relative, resolve, sep } from 'node:path';
import { InputError } from '../../errors.js';
import { isKeras3, rewriteKeras3, type Keras3Rewrite } from './keras3.js';
import type { ModelJson, ModelTopologyJson, WeightSpecJson } from './types.js';

/** A weight tensor read from a shard, always widened to a JS typed array. */
export interface WeightTensor {
  name: string;
  shape: number[];
  dtype: 'float32' | 'int32';
  data: Float32Array | Int32Array;
}

/** A tfjs LayersModel as loaded from model.json and its weight files: the JSON, its parsed layer topology and the weights by name. */
export interface LoadedArtifacts {
  /** Absolute path of the model.json that was read. */
  modelJsonPath: string;
  /** Raw bytes of model.json, for the provenance hash. */
  modelJsonBytes: Uint8Array;
  modelJson: ModelJson;
  topology: ModelTopologyJson;
  /** Weights in manifest order. */
  weights: WeightTensor[];
  /** Names of weights that contain NaN or ±Inf. */
  nonFiniteWeights: string[];
  /** Set when the file came from Keras 3 and was rewritten to the Keras 2 wire shape. */
  keras3?: Omit<Keras3Rewrite, 'renamed'>;
}

const BYTES: Record<string, number> = { float32: 4, int32: 4, bool: 1, uint8: 1, uint16: 2, float16: 2 };

/**
 * Reads a tfjs LayersModel from disk: `model.json` and every weight shard it names,
 * checking that the shards exist, are long enough and that each weight spec is consistent.
 *
 * @example
 * const art = await loadTfjsArtifacts('models/co2/model.json');
 * console.log(art.weights.map((w) => w.name));
 */
export async function loadTfjsArtifacts(modelJsonPath: string): Promise<LoadedArtifacts> {
  const path = resolve(modelJsonPath);
  let bytes: Uint8Array;
  try {
    const st = await stat(path);
    if (st.isDirectory()) return loadTfjsArtifacts(resolve(path, 'model.json'));
    bytes = await readFile(path);
  } catch (e) {
    throw new InputError(`cannot read model file: ${(e as Error).message}`, { file: path, expected: 'a tfjs model.json' }, { cause: e });
  }
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch (e) {
    throw new InputError(`model.json is not valid JSON: ${(e as Error).message}`, { file: path, expected: 'a tfjs LayersModel model.json' }, { cause: e });
  }
  const modelJson = checkModelJson(json, path);
  const outer = modelJson.modelTopology as ModelTopologyJson & { model_config?: ModelTopologyJson };
  const topology = 'model_config' in modelJson.modelTopology ? modelJson.modelTopology.model_config : modelJson.modelTopology;
  const { weights, nonFinite } = await readWeights(modelJson, path);
  const version = outer.keras_version ?? topology.keras_version ?? /^keras v(\S+)/.exec(modelJson.generatedBy ?? '')?.[1];
  let keras3: LoadedArtifacts['keras3'];
  if (isKeras3(topology, version)) {
    const r = rewriteKeras3(
      topology,
      weights.map((w) => w.name),
      version ?? '3',
    );
    for (const w of weights) w.name = r.renamed.get(w.name) ?? w.name;
    keras3 = { kerasVersion: r.kerasVersion, notes: r.notes };
  }
  return { modelJsonPath: path, modelJsonBytes: bytes, modelJson, topology, weights, nonFiniteWeights: nonFinite, keras3 };
}

function checkModelJson(json: unknown, file: string): ModelJson {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new InputError('model.json must hold a JSON object', { file, expected: '{"modelTopology": ..., "weightsManifest": [...]}' });
  }
  const obj = json as Record<string, unknown>;
  if (obj.format === 'graph-model') {
    throw new InputError('this is a tfjs GraphModel (format "graph-model"); streamcell exports LayersModels', {
      file,
      field: 'format',
      expected: '"layers-model" (tf.LayersModel.save or tensorflowjs_converter --output_format=tfjs_layers_model)',
    });
  }
  const topo = obj.modelTopology as Record<string, unknown> | undefined;
  if (typeof topo !== 'object' || topo === null) {
    throw new InputError('missing modelTopology', { file, field: 'modelTopology', expected: 'an object with class_name and config' });
  }
  const inner = (typeof topo.model_config === 'object' && topo.model_config !== null ? topo.model_config : topo) as Record<string, unknown>;
  if (typeof inner.class_name !== 'string' || typeof inner.config !== 'object' || inner.config === null) {
    throw new InputError('modelTopology has no class_name/config', { file, field: 'modelTopology.class_name', expected: 'Sequential, Model or Functional' });
  }
  const manifest = obj.weightsManifest ?? [];
  if (!Array.isArray(manifest)) {
    throw new InputError('weightsManifest must be an array', { file, field: 'weightsManifest', expected: '[{paths: [...], weights: [...]}]' });
  }
  manifest.forEach((g, gi) => {
    const group = g as Record<string, unknown>;
    if (!Array.isArray(group?.paths) || !Array.isArray(group?.weights)) {
      throw new InputError('weight group needs "paths" and "weights" arrays', {
        file,
        field: `weightsManifest[${gi}]`,
        expected: '{paths: string[], weights: WeightSpec[]}',
      });
    }
    (group.paths as unknown[]).forEach((p, pi) => {
      // Shards sit beside model.json (tfjs resolves them as relative URLs): a path out of the
      // folder reads some other file, at best a confusing size error, at worst a leak.
      const rel = typeof p === 'string' ? relative(dirname(file), resolve(dirname(file), p)) : '';
      if (typeof p !== 'string' || p === '' || isAbsolute(p) || rel === '' || rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel)) {
        throw new InputError(`weight shard path ${JSON.stringify(p)} is not a file inside the model's folder`, {
          file,
          field: `weightsManifest[${gi}].paths[${pi}]`,
          expected: 'a relative file name next to model.json, e.g. "group1-shard1of1.bin"',
        });
      }
    });
    (group.weights as unknown[]).forEach((w, wi) => {
      const spec = w as Record<string, unknown>;
      const field = `weightsManifest[${gi}].weights[${wi}]`;
      if (typeof spec?.name !== 'string') throw new InputError('weight spec has no name', { file, field: `${field}.name`, expected: 'a string' });
      if (!Array.isArray(spec.shape) || !spec.shape.every((d) => Number.isInteger(d) && (d as number) >= 0)) {
        throw new InputError(`weight '${spec.name}' has an invalid shape ${JSON.stringify(spec.shape)}`, {
          file,
          field: `${field}.shape`,
          expected: 'an array of non-negative integers',
        });
      }
      if (typeof spec.dtype !== 'string' || !(spec.dtype in BYTES)) {
        throw new InputError(`weight '${spec.name}' has unsupported dtype ${JSON.stringify(spec.dtype)}`, {
          file,
          field: `${field}.dtype`,
          expected: 'float32 or int32',
        });
      }
    });
  });
  return { ...(obj as unknown as ModelJson), weightsManifest: manifest as ModelJson['weightsManifest'] };
}

async function readWeights(model: ModelJson, file: string): Promise<{ weights: WeightTensor[]; nonFinite: string[] }> {
  const dir = dirname(file);
  const weights: WeightTensor[] = [];
  const nonFinite: string[] = [];
  for (const [gi, group] of model.weightsManifest.entries()) {
    const chunks: Buffer[] = [];
    for (const p of group.paths) {
      const shard = resolve(dir, p);
      try {
        chunks.push(await readFile(shard));
      } catch (e) {
        throw new InputError(
          `weight shard '${p}' named in weightsManifest[${gi}] cannot be read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
          {
            file: shard,
            field: `weightsManifest[${gi}].paths`,
            expected: 'the shard file next to model.json',
          },
          { cause: e },
        );
      }
    }
    const buf = Buffer.concat(chunks);
    const needed = group.weights.reduce((n, w) => n + specBytes(w), 0);
    if (buf.length < needed) {
      throw new InputError(
        `weight shards of group ${gi} (${group.paths.join(', ')}) hold ${buf.length} bytes but the manifest's weights need ${needed}: the file is truncated or the manifest's shapes are wrong`,
        { file: resolve(dir, group.paths[group.paths.length - 1] ?? ''), field: `weightsManifest[${gi}]`, expected: `${needed} bytes` },
      );
    }
    if (buf.length > needed) {
      throw new InputError(
        `weight shards of group ${gi} (${group.paths.join(', ')}) hold ${buf.length} bytes but the manifest's weights need only ${needed}: a shape in the manifest is wrong or the shards belong to another model`,
        { file, field: `weightsManifest[${gi}].weights`, expected: `${buf.length} bytes of weights` },
      );
    }
    let offset = 0;
    for (const spec of group.weights) {
      const n = specBytes(spec);
      const t = decodeWeight(spec, buf.subarray(offset, offset + n), file);
      offset += n;
      if (t.data instanceof Float32Array && !t.data.every(Number.isFinite)) nonFinite.push(t.name);
      weights.push(t);
    }
  }
  return { weights, nonFinite };
}

function count(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function specBytes(spec: WeightSpecJson): number {
  const dtype = spec.quantization?.dtype ?? spec.dtype;
  return count(spec.shape) * (BYTES[dtype] ?? 4);
}

function decodeWeight(spec: WeightSpecJson, bytes: Buffer, file: string): WeightTensor {
  const n = count(spec.shape);
  const copy = new Uint8Array(bytes); // aligned copy
  const q = spec.quantization;
  if (q) {
    const out = new Float32Array(n);
    if (q.dtype === 'float16') {
      const u16 = new Uint16Array(copy.buffer, 0, n);
      for (let i = 0; i < n; i++) out[i] = halfToFloat(u16[i]!);
    } else {
      const src = q.dtype === 'uint8' ? copy : new Uint16Array(copy.buffer, 0, n);
      if (q.scale === undefined || q.min === undefined) {
        throw new InputError(`quantized weight '${spec.name}' lacks scale/min`, {
          file,
          field: 'weightsManifest.weights.quantization',
          expected: '{dtype, scale, min}',
        });
      }
      for (let i = 0; i < n; i++) out[i] = (src[i] as number) * q.scale + q.min;
    }
    if ((q.original_dtype ?? spec.dtype) === 'int32') return { name: spec.name, shape: spec.shape, dtype: 'int32', data: Int32Array.from(out, Math.round) };
    return { name: spec.name, shape: spec.shape, dtype: 'float32', data: out };
  }
  switch (spec.dtype) {
    case 'float32':
      return { name: spec.name, shape: spec.shape, dtype: 'float32', data: new Float32Array(copy.buffer, 0, n) };
    case 'int32':
      return { name: spec.name, shape: spec.shape, dtype: 'int32', data: new Int32Array(copy.buffer, 0, n) };
    case 'bool':
    case 'uint8':
      return { name: spec.name, shape: spec.shape, dtype: 'int32', data: Int32Array.from(copy) };
    default:
      throw new InputError(`weight '${spec.name}' has unsupported dtype '${spec.dtype}'`, {
        file,
        field: 'weightsManifest.weights.dtype',
        expected: 'float32 or int32',
      });
  }
}

function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * 2 ** -14 * (f / 1024);
  if (e === 31) return f ? NaN : s * Infinity;
  return s * 2 ** (e - 15) * (1 + f / 1024);
}
