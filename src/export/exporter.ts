/**
 * tfjs LayersModel → ONNX. Walks the layer graph in topological order, converting each
 * layer call with its registered converter, then names inputs/outputs after the tfjs
 * layers and writes streamcell metadata.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { InputError, StreamcellError, UnsupportedError } from '../errors.js';
import { VERSION } from '../version.js';
import type { ConvertContext, StateTensor, Tensor } from './context.js';
import { converterFor, supportedLayers } from './converters/registry.js';
import { META, serializeStateMetadata, type StateSpec as StateMeta } from '../model-format/index.js';
import { GraphBuilder, type Dim } from './onnx/builder.js';
import { buildLayerGraph, keyId, LayerConfig, type LayerGraph, type Shape } from './topology.js';
import type { LoadedArtifacts } from './tfjs-format/load.js';

/** The ONNX opset an export targets unless told otherwise. */
export const DEFAULT_OPSET = 17;
/** The oldest ONNX opset the exporter can target. */
export const MIN_OPSET = 13;
/** The newest ONNX opset the exporter can target. */
export const MAX_OPSET = 21;
/** IR version 8 is what ONNX 1.12's checker and older onnxruntime builds accept. */
export const IR_VERSION = 8;

/** Options of {@link exportToOnnx}. */
export interface ExportOptions {
  opset?: number;
  /** Extra metadata_props (keys are used as given). */
  metadata?: Record<string, string>;
  /** Refuse (default) or accept weights holding NaN/Inf. */
  allowNonFinite?: boolean;
}

/** A model input or output: name, dtype and shape (strings for symbolic dims). */
export interface IoInfo {
  name: string;
  dtype: 'float32' | 'int32';
  /** ONNX dims: numbers or symbolic names. */
  dims: Dim[];
}

/** What {@link exportToOnnx} produced: the ONNX model (bytes and graph), its inputs, outputs and recurrent states, an op histogram and warnings. */
export interface ExportResult {
  model: Uint8Array;
  graph: LayerGraph;
  inputs: IoInfo[];
  outputs: IoInfo[];
  states: StateMeta[];
  opHistogram: Record<string, number>;
  warnings: string[];
  opset: number;
  sourceSha256: string;
}

function onnxDims(shape: Shape, what: string): Dim[] {
  return shape.map((d, i) => (d !== null ? d : i === 0 ? 'batch' : i === 1 ? 'time' : `${what}_d${i}`));
}

/** SHA-256 over model.json and the weight values: identifies the source model. */
export function sourceHash(art: LoadedArtifacts): string {
  const h = createHash('sha256');
  h.update(art.modelJsonBytes);
  for (const w of art.weights) h.update(new Uint8Array(w.data.buffer, w.data.byteOffset, w.data.byteLength));
  return h.digest('hex');
}

/**
 * Converts loaded tfjs artifacts to an ONNX model.
 *
 * @example
 * const art = await loadTfjsArtifacts('model/model.json');
 * const { model } = await exportToOnnx(art, { opset: 17 });
 * await writeFile('model.onnx', model);
 */
export async function exportToOnnx(art: LoadedArtifacts, opts: ExportOptions = {}): Promise<ExportResult> {
  const opset = opts.opset ?? DEFAULT_OPSET;
  if (!Number.isInteger(opset) || opset < MIN_OPSET || opset > MAX_OPSET) {
    throw new InputError(`opset ${opset} is not supported`, {
      option: 'opset',
      expected: `an integer from ${MIN_OPSET} to ${MAX_OPSET} (default ${DEFAULT_OPSET})`,
    });
  }
  if (art.nonFiniteWeights.length > 0 && !opts.allowNonFinite) {
    throw new InputError(
      `weights ${art.nonFiniteWeights
        .slice(0, 5)
        .map((n) => `'${n}'`)
        .join(', ')} contain NaN or Infinity: the model would predict NaN. ` + 'Refusing to export (retrain, or pass --allow-nan to export anyway)',
      { file: art.modelJsonPath, field: 'weightsManifest', expected: 'finite weights' },
    );
  }
  const graph = buildLayerGraph(art);
  const g = new GraphBuilder(opset, graph.name);
  const warnings: string[] = [];
  const states: StateTensor[] = [];
  const tensors = new Map<string, Tensor>();

  for (const inp of graph.inputs) {
    const dims = onnxDims(inp.shape, inp.name);
    g.addInput(inp.name, inp.dtype, dims);
    tensors.set(keyId({ layer: inp.name, node: 0, index: 0 }), { name: inp.name, shape: inp.shape, dtype: inp.dtype });
  }

  const ctx: ConvertContext = {
    g,
    opset,
    stateInput(layer, kind, shape) {
      const name = `state_in.${layer}.${kind}`;
      g.addInput(name, 'float32', ['batch', ...shape]);
      states.push({ layer, kind, shape, input: name, output: g.reserve(`state_out.${layer}.${kind}`) });
      return name;
    },
    stateOutput(layer, kind, value) {
      const st = states.find((s) => s.layer === layer && s.kind === kind);
      if (!st) throw new Error(`state_out for ${layer}.${kind} without state_in`);
      g.op('Identity', [value], {}, { output: st.output });
      g.addOutput(st.output, 'float32', ['batch', ...st.shape]);
    },
    warn: (m) => warnings.push(m),
  };

  // Output names are the tfjs layer names: reserve them before any node can take them.
  const usedOut = new Map<string, number>();
  for (const k of graph.outputs) usedOut.set(k.layer, (usedOut.get(k.layer) ?? 0) + 1);
  const outputNames = graph.outputs.map((k) =>
    g.reserve(usedOut.get(k.layer) === 1 && k.index === 0 && k.node === 0 ? k.layer : `${k.layer}:${k.node}:${k.index}`),
  );

  for (const call of graph.calls) {
    const conv = converterFor(call.layer.className);
    if (!conv) {
      throw new UnsupportedError(`layer class '${call.layer.className}' is not supported`, {
        layer: { name: call.layer.name, className: call.layer.className },
        supported: supportedLayers(),
        file: art.modelJsonPath,
      });
    }
    const inputs = call.inputs.map((k) => {
      const t = tensors.get(keyId(k));
      if (!t)
        throw new InputError(`layer '${call.layer.name}' uses output ${k.index} of '${k.layer}', which does not exist`, {
          file: art.modelJsonPath,
          field: `${call.layer.name}.inbound_nodes`,
        });
      return t;
    });
    let outs: Tensor[];
    try {
      outs = conv({ ctx, layer: call.layer, cfg: new LayerConfig(call.layer), inputs, call });
    } catch (e) {
      // Converters know the layer, not the file: add it so every message names both.
      if (e instanceof StreamcellError && !e.context.file) (e.context as { file?: string }).file = art.modelJsonPath;
      throw e;
    }
    outs.forEach((t, i) => tensors.set(keyId({ layer: call.layer.name, node: call.node, index: i }), t));
  }

  const outputs: IoInfo[] = [];
  for (const [oi, k] of graph.outputs.entries()) {
    const t = tensors.get(keyId(k));
    if (!t)
      throw new InputError(`model output refers to missing tensor ${k.layer}[${k.node}][${k.index}]`, { file: art.modelJsonPath, field: 'output_layers' });
    const name = outputNames[oi]!;
    g.op('Identity', [t.name], {}, { output: name });
    const dims = onnxDims(t.shape, name);
    g.addOutput(name, t.dtype, dims);
    outputs.push({ name, dtype: t.dtype, dims });
  }
  // State outputs come after the model's own outputs, as DESIGN.md's step models do.
  const stateOutputs = g.outputs.filter((o) => o.name?.startsWith('state_out.'));
  g.outputs.splice(0, g.outputs.length, ...g.outputs.filter((o) => !o.name?.startsWith('state_out.')), ...stateOutputs);

  const stateMeta: StateMeta[] = states.map((s) => ({
    name: `${s.layer}.${s.kind}`,
    input: s.input,
    output: s.output,
    shape: s.shape,
    dtype: 'float32',
    init: 0,
  }));
  const sha = sourceHash(art);
  const metadata: Record<string, string> = {
    [META.version]: VERSION,
    [META.sourceSha256]: sha,
    [META.sourceFormat]: 'tfjs-layers-model',
    [META.sourceName]: graph.name,
    [META.opset]: String(opset),
    ...(stateMeta.length ? { [META.state]: serializeStateMetadata(stateMeta) } : {}),
    ...(await preprocessingMeta(art.modelJsonPath)),
    ...(opts.metadata ?? {}),
  };
  const model = g.encode({ irVersion: IR_VERSION, producerVersion: VERSION, metadata, docString: `Exported by streamcell ${VERSION} from ${graph.name}` });
  const opHistogram: Record<string, number> = {};
  const count = (nodes: GraphBuilder['nodes']) => {
    for (const n of nodes) {
      opHistogram[n.opType!] = (opHistogram[n.opType!] ?? 0) + 1;
      for (const a of n.attribute ?? []) if (a.g) count(a.g.node ?? []);
    }
  };
  count(g.nodes);
  return {
    model,
    graph,
    opset,
    warnings,
    opHistogram,
    states: stateMeta,
    sourceSha256: sha,
    inputs: graph.inputs.map((i) => ({ name: i.name, dtype: i.dtype, dims: onnxDims(i.shape, i.name) })),
    outputs,
  };
}

/** preprocessing.json next to model.json (written by `streamcell train`) travels in the metadata. */
async function preprocessingMeta(modelJsonPath: string): Promise<Record<string, string>> {
  const p = join(dirname(modelJsonPath), 'preprocessing.json');
  let text: string;
  try {
    text = await readFile(p, 'utf8');
  } catch {
    return {};
  }
  let pre: Record<string, unknown>;
  try {
    pre = JSON.parse(text) as Record<string, unknown>;
  } catch (e) {
    throw new InputError(`preprocessing.json is not valid JSON: ${(e as Error).message}`, { file: p, expected: 'the JSON written by streamcell train' });
  }
  // Only what inference needs travels in the model; training provenance (data split, metrics)
  // stays in preprocessing.json and the bundle manifest.
  const { data: _data, metrics: _metrics, ...inference } = pre;
  void _data;
  void _metrics;
  const out: Record<string, string> = { [META.preprocessing]: JSON.stringify(inference) };
  if (pre.channels !== undefined) out[META.channels] = JSON.stringify(pre.channels);
  if (pre.sample_rate !== undefined) out[META.sampleRate] = String(pre.sample_rate);
  if (pre.window !== undefined) out[META.window] = String(pre.window);
  return out;
}
