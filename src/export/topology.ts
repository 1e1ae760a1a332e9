/**
 * In-memory layer graph of a tfjs LayersModel, built from the on-disk topology
 * (`tfjs-format/types.ts`). Sequential models become a chain; functional models keep every
 * call of every layer ("node"), so shared layers, multiple inputs/outputs and merges work.
 */
import { InputError, UnsupportedError } from '../errors.js';
import type { JsonObject, JsonValue, LayerJson, ModelTopologyJson } from './tfjs-format/types.js';
import type { LoadedArtifacts, WeightTensor } from './tfjs-format/load.js';

/** Keras shape: `null` for unknown (batch, free time). */
export type Shape = (number | null)[];

/** One layer of a {@link LayerGraph}: its name, Keras/tfjs class and config, and the inputs it is called on. */
export interface LayerSpec {
  name: string;
  className: string;
  /** The layer's config as on disk (snake_case keys). Read it through {@link LayerConfig}. */
  config: JsonObject;
  /** Weights whose names start with `<layer name>/`, in manifest order. */
  weights: WeightTensor[];
}

/** A reference to output `index` of call `node` of layer `layer` (Keras' "keras_history"). */
export interface TensorKey {
  layer: string;
  node: number;
  index: number;
}

/** One call of a layer on some inputs. */
export interface LayerCall {
  layer: LayerSpec;
  /** Which call of `layer` this is (0 for the first). */
  node: number;
  inputs: TensorKey[];
  /** Keyword arguments of the call (e.g. `initial_state` is refused, `training` ignored). */
  kwargs: JsonObject;
}

/** A model input: name, shape (null for a free dim) and dtype. */
export interface InputSpec {
  name: string;
  /** Keras batch_input_shape, batch included. */
  shape: Shape;
  dtype: 'float32' | 'int32';
}

/** The layer graph of a model: its inputs, the layers in call order, and the outputs. */
export interface LayerGraph {
  name: string;
  inputs: InputSpec[];
  /** Calls in a topological order (inputs before the calls that use them). InputLayers excluded. */
  calls: LayerCall[];
  outputs: TensorKey[];
  layers: Map<string, LayerSpec>;
}

export function keyId(k: TensorKey): string {
  return `${k.layer}#${k.node}#${k.index}`;
}

/** Builds the layer graph from loaded artifacts, assigning weights to layers by name prefix. */
export function buildLayerGraph(art: Pick<LoadedArtifacts, 'topology' | 'weights' | 'modelJsonPath'>): LayerGraph {
  const file = art.modelJsonPath;
  const topo: ModelTopologyJson = art.topology;
  const cls = topo.class_name;
  let graph: Omit<LayerGraph, 'layers'> & { layerList: LayerJson[] };
  if (cls === 'Sequential') graph = sequentialGraph(topo, file);
  else if (cls === 'Model' || cls === 'Functional') graph = functionalGraph(topo.config as JsonObject, file);
  else {
    throw new InputError(`unknown model class '${cls}'`, { file, field: 'modelTopology.class_name', expected: 'Sequential, Model or Functional' });
  }
  const layers = new Map<string, LayerSpec>();
  const used = new Set<string>();
  for (const lj of graph.layerList) {
    const name = layerName(lj, file);
    const prefix = `${name}/`;
    const weights = art.weights.filter((w) => w.name.startsWith(prefix));
    weights.forEach((w) => used.add(w.name));
    layers.set(name, { name, className: lj.class_name, config: (lj.config ?? {}) as JsonObject, weights });
  }
  const orphan = art.weights.filter((w) => !used.has(w.name));
  if (orphan.length > 0) {
    throw new InputError(
      `weights ${orphan
        .slice(0, 5)
        .map((w) => `'${w.name}'`)
        .join(', ')}${orphan.length > 5 ? ', …' : ''} belong to no layer of the topology`,
      { file, field: 'weightsManifest', expected: `weight names of the form '<layer name>/<weight>' for layers ${[...layers.keys()].join(', ')}` },
    );
  }
  const calls = graph.calls.map((c) => ({ ...c, layer: layers.get(c.layer.name)! }));
  return { name: graph.name, inputs: graph.inputs, calls: topoSort(calls, graph.inputs, file), outputs: graph.outputs, layers };
}

function layerName(lj: LayerJson, file: string): string {
  const n = lj.config?.name ?? lj.name;
  if (typeof n !== 'string') throw new InputError(`a ${lj.class_name} layer has no name`, { file, field: 'config.name', expected: 'a string' });
  return n;
}

function inputSpecFrom(lj: LayerJson, file: string, name: string): InputSpec {
  const c = lj.config;
  const shape = (c.batch_input_shape ?? c.batch_shape ?? (Array.isArray(c.input_shape) ? [null, ...(c.input_shape as JsonValue[])] : undefined)) as JsonValue;
  if (!Array.isArray(shape) || !shape.every((d) => d === null || (typeof d === 'number' && Number.isInteger(d)))) {
    throw new InputError(`layer '${name}' has no usable batch_input_shape`, {
      file,
      field: `${name}.config.batch_input_shape`,
      expected: 'an array like [null, time, features]',
    });
  }
  const dt = c.dtype;
  const dtype = dt === 'int32' || dt === 'int64' ? 'int32' : 'float32';
  return { name, shape: shape as Shape, dtype };
}

function sequentialGraph(topo: ModelTopologyJson, file: string) {
  const cfg = topo.config;
  const list: LayerJson[] = Array.isArray(cfg) ? cfg : ((cfg as JsonObject).layers as unknown as LayerJson[]);
  const name = Array.isArray(cfg) ? 'sequential' : String((cfg as JsonObject).name ?? 'sequential');
  if (!Array.isArray(list) || list.length === 0) {
    throw new InputError('Sequential model has no layers', { file, field: 'modelTopology.config.layers', expected: 'a non-empty array of layers' });
  }
  let layerList = list;
  let input: InputSpec;
  if (list[0]!.class_name === 'InputLayer') {
    input = inputSpecFrom(list[0]!, file, layerName(list[0]!, file));
    layerList = list.slice(1);
  } else {
    const first = layerName(list[0]!, file);
    input = inputSpecFrom(list[0]!, file, `${first}_input`);
  }
  const calls: LayerCall[] = [];
  let prev: TensorKey = { layer: input.name, node: 0, index: 0 };
  for (const lj of layerList) {
    if (lj.class_name === 'InputLayer') {
      throw new InputError('InputLayer in the middle of a Sequential model', { file, field: 'modelTopology.config.layers', expected: 'InputLayer only first' });
    }
    const n = layerName(lj, file);
    calls.push({ layer: { name: n, className: lj.class_name, config: lj.config, weights: [] }, node: 0, inputs: [prev], kwargs: {} });
    prev = { layer: n, node: 0, index: 0 };
  }
  return { name, inputs: [input], calls, outputs: [prev], layerList };
}

function parseKeyTriple(v: JsonValue, file: string, field: string): TensorKey {
  if (Array.isArray(v) && typeof v[0] === 'string' && typeof v[1] === 'number' && typeof v[2] === 'number') {
    return { layer: v[0], node: v[1], index: v[2] };
  }
  throw new InputError(`bad tensor reference ${JSON.stringify(v)}`, { file, field, expected: '[layer_name, node_index, tensor_index]' });
}

function parseKeyList(v: JsonValue, file: string, field: string): TensorKey[] {
  if (Array.isArray(v) && typeof v[0] === 'string') return [parseKeyTriple(v, file, field)];
  if (Array.isArray(v)) return v.map((x, i) => parseKeyTriple(x, file, `${field}[${i}]`));
  throw new InputError('bad input/output layer list', { file, field, expected: '[[layer_name, node_index, tensor_index], ...]' });
}

/** Collects keras_history triples from a Keras-3 style `args` structure. */
function collectKerasTensors(v: JsonValue, out: TensorKey[], file: string, field: string): void {
  if (Array.isArray(v)) {
    v.forEach((x, i) => collectKerasTensors(x, out, file, `${field}[${i}]`));
  } else if (v && typeof v === 'object') {
    if (v.class_name === '__keras_tensor__') {
      out.push(parseKeyTriple((v.config as JsonObject).keras_history as JsonValue, file, `${field}.keras_history`));
    }
  }
}

function functionalGraph(cfg: JsonObject, file: string) {
  const list = cfg.layers as unknown as LayerJson[];
  if (!Array.isArray(list)) throw new InputError('functional model has no layers', { file, field: 'modelTopology.config.layers', expected: 'an array' });
  const inputs: InputSpec[] = [];
  const calls: LayerCall[] = [];
  const layerList: LayerJson[] = [];
  for (const lj of list) {
    const name = layerName(lj, file);
    if (lj.class_name === 'InputLayer') {
      inputs.push(inputSpecFrom(lj, file, name));
      continue;
    }
    if (lj.class_name === 'Sequential' || lj.class_name === 'Model' || lj.class_name === 'Functional') {
      throw new UnsupportedError('nested models are not supported; flatten the model before export', { layer: { name, className: lj.class_name } });
    }
    layerList.push(lj);
    const nodes = (lj.inbound_nodes ?? []) as JsonValue[];
    nodes.forEach((node, ni) => {
      const field = `${name}.inbound_nodes[${ni}]`;
      const keys: TensorKey[] = [];
      let kwargs: JsonObject = {};
      if (Array.isArray(node)) {
        for (const [ti, t] of node.entries()) {
          keys.push(parseKeyTriple(t, file, `${field}[${ti}]`));
          const kw = Array.isArray(t) ? t[3] : undefined;
          if (kw && typeof kw === 'object' && !Array.isArray(kw)) kwargs = { ...kwargs, ...kw };
        }
      } else if (node && typeof node === 'object') {
        collectKerasTensors((node as JsonObject).args ?? [], keys, file, `${field}.args`);
        const kw = (node as JsonObject).kwargs;
        if (kw && typeof kw === 'object' && !Array.isArray(kw)) kwargs = kw;
      } else {
        throw new InputError('bad inbound node', { file, field, expected: 'a list of [layer, node, tensor, kwargs] or {args, kwargs}' });
      }
      calls.push({ layer: { name, className: lj.class_name, config: lj.config, weights: [] }, node: ni, inputs: keys, kwargs });
    });
  }
  const inputKeys = parseKeyList(cfg.input_layers as JsonValue, file, 'modelTopology.config.input_layers');
  const ordered = inputKeys.map((k) => {
    const spec = inputs.find((i) => i.name === k.layer);
    if (!spec)
      throw new InputError(`input '${k.layer}' is not an InputLayer`, { file, field: 'modelTopology.config.input_layers', expected: 'names of InputLayers' });
    return spec;
  });
  const outputs = parseKeyList(cfg.output_layers as JsonValue, file, 'modelTopology.config.output_layers');
  return { name: String(cfg.name ?? 'model'), inputs: ordered, calls, outputs, layerList };
}

function topoSort(calls: LayerCall[], inputs: InputSpec[], file: string): LayerCall[] {
  const ready = new Set(inputs.map((i) => i.name + '#0'));
  const done: LayerCall[] = [];
  let pending = calls;
  while (pending.length > 0) {
    const next: LayerCall[] = [];
    for (const c of pending) {
      if (c.inputs.every((k) => ready.has(`${k.layer}#${k.node}`))) {
        done.push(c);
        ready.add(`${c.layer.name}#${c.node}`);
      } else next.push(c);
    }
    if (next.length === pending.length) {
      const c = next[0]!;
      const missing = c.inputs.find((k) => !ready.has(`${k.layer}#${k.node}`))!;
      throw new InputError(`layer '${c.layer.name}' takes input from '${missing.layer}' (node ${missing.node}), which no layer produces`, {
        file,
        field: `${c.layer.name}.inbound_nodes`,
        expected: 'references to layers of this model',
      });
    }
    pending = next;
  }
  return done;
}

/**
 * Typed reader of a layer's snake_case config. Every accessor names the layer and field in
 * its error, so a malformed Keras config reports where it is wrong.
 */
export class LayerConfig {
  constructor(readonly layer: LayerSpec) {}

  private fail(field: string, expected: string, got: unknown): never {
    throw new InputError(`layer '${this.layer.name}' (${this.layer.className}): config field '${field}' is ${JSON.stringify(got)}`, {
      field: `${this.layer.name}.config.${field}`,
      expected,
    });
  }

  has(field: string): boolean {
    return this.layer.config[field] !== undefined && this.layer.config[field] !== null;
  }

  raw(field: string): JsonValue | undefined {
    return this.layer.config[field];
  }

  num(field: string, dflt?: number): number {
    const v = this.layer.config[field];
    if (v === undefined || v === null) {
      if (dflt !== undefined) return dflt;
      return this.fail(field, 'a number', v);
    }
    if (typeof v !== 'number' || !Number.isFinite(v)) return this.fail(field, 'a finite number', v);
    return v;
  }

  int(field: string, dflt?: number): number {
    const v = this.num(field, dflt);
    if (!Number.isInteger(v)) return this.fail(field, 'an integer', v);
    return v;
  }

  /** An int or a one-element int list (Keras writes `kernel_size: [3]`). */
  int1(field: string, dflt?: number): number {
    const v = this.layer.config[field];
    if (Array.isArray(v)) {
      if (v.length !== 1 || typeof v[0] !== 'number' || !Number.isInteger(v[0])) return this.fail(field, 'an integer or [integer]', v);
      return v[0];
    }
    return this.int(field, dflt);
  }

  ints(field: string, dflt?: number[]): number[] {
    const v = this.layer.config[field];
    if (v === undefined || v === null) {
      if (dflt !== undefined) return dflt;
      return this.fail(field, 'a list of integers', v);
    }
    if (typeof v === 'number' && Number.isInteger(v)) return [v];
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'number' && Number.isInteger(x))) return this.fail(field, 'a list of integers', v);
    return v as number[];
  }

  str(field: string, dflt?: string): string {
    const v = this.layer.config[field];
    if (v === undefined || v === null) {
      if (dflt !== undefined) return dflt;
      return this.fail(field, 'a string', v);
    }
    if (typeof v !== 'string') return this.fail(field, 'a string', v);
    return v;
  }

  bool(field: string, dflt?: boolean): boolean {
    const v = this.layer.config[field];
    if (v === undefined || v === null) {
      if (dflt !== undefined) return dflt;
      return this.fail(field, 'true or false', v);
    }
    if (typeof v !== 'boolean') return this.fail(field, 'true or false', v);
    return v;
  }

  oneOf<T extends string>(field: string, allowed: readonly T[], dflt?: T): T {
    const v = this.str(field, dflt);
    if (!(allowed as readonly string[]).includes(v)) {
      throw new UnsupportedError(`option ${field}=${JSON.stringify(v)} is not supported`, {
        layer: { name: this.layer.name, className: this.layer.className },
        supported: allowed.map((a) => `${field}=${a}`),
        field,
      });
    }
    return v as T;
  }

  /** Finds a weight by its last name component (`kernel`, `bias`, ...), optionally inside a sub-path. */
  weight(suffix: string, opts: { within?: string; optional?: boolean } = {}): WeightTensor | undefined {
    const cands = this.layer.weights.filter(
      (w) => (w.name.endsWith(`/${suffix}`) || w.name.endsWith(`/${suffix}:0`)) && (!opts.within || w.name.includes(`/${opts.within}`)),
    );
    if (cands.length === 1) return cands[0];
    if (cands.length === 0 && opts.optional) return undefined;
    throw new InputError(
      cands.length === 0
        ? `layer '${this.layer.name}' (${this.layer.className}) has no weight '${suffix}'${opts.within ? ` under '${opts.within}'` : ''}`
        : `layer '${this.layer.name}' has ${cands.length} weights matching '${suffix}': ${cands.map((c) => c.name).join(', ')}`,
      {
        field: `weightsManifest: ${this.layer.name}/${suffix}`,
        expected: `one weight named '${this.layer.name}/…/${suffix}' (found: ${this.layer.weights.map((w) => w.name).join(', ') || 'none'})`,
      },
    );
  }

  /** Like {@link weight} but checks the shape. */
  weightOfShape(suffix: string, shape: number[], opts: { within?: string; optional?: boolean } = {}): WeightTensor | undefined {
    const w = this.weight(suffix, opts);
    if (w && (w.shape.length !== shape.length || w.shape.some((d, i) => d !== shape[i]))) {
      throw new InputError(`weight '${w.name}' has shape [${w.shape}]`, {
        field: `weightsManifest: ${w.name}.shape`,
        expected: `[${shape}] for layer '${this.layer.name}' (${this.layer.className})`,
      });
    }
    return w;
  }
}
