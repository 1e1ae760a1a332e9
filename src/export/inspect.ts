/** `streamcell inspect`: a summary of an ONNX file or a tfjs model.json. */
import { readFile, stat } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { InputError } from '../errors.js';
import { META, type StateMeta } from './metadata.js';
import { decodeUserModel, DTYPE_NAMES, toNum, type GraphProto, type ValueInfoProto } from '../onnx/proto.js';
import { loadTfjsArtifacts } from './tfjs-format/load.js';
import { buildLayerGraph } from './topology.js';

export interface InspectIo {
  name: string;
  dtype: string;
  shape: (number | string | null)[];
}

/** What {@link inspectFile} reports about an ONNX file or a tfjs model.json: inputs, outputs, op or layer histogram, parameters, states and metadata. */
export interface InspectReport {
  file: string;
  format: 'onnx' | 'tfjs-layers-model';
  sizeBytes: number;
  inputs: InspectIo[];
  outputs: InspectIo[];
  /** ONNX: op type → count (subgraphs included). tfjs: layer class → count. */
  ops: Record<string, number>;
  parameters: number;
  metadata: Record<string, string>;
  states: StateMeta[];
  opset?: Record<string, number>;
  irVersion?: number;
  producer?: string;
}

function ioOf(v: ValueInfoProto): InspectIo {
  const tt = v.type?.tensorType;
  return {
    name: v.name ?? '',
    dtype: DTYPE_NAMES[tt?.elemType ?? 0] ?? String(tt?.elemType),
    shape: (tt?.shape?.dim ?? []).map((d) => (d.dimParam ? d.dimParam : d.dimValue !== undefined && d.dimValue !== null ? toNum(d.dimValue as number) : null)),
  };
}

function countOps(g: GraphProto, into: Record<string, number>): void {
  for (const n of g.node ?? []) {
    const key = n.domain ? `${n.domain}.${n.opType}` : n.opType!;
    into[key] = (into[key] ?? 0) + 1;
    for (const a of n.attribute ?? []) {
      if (a.g) countOps(a.g, into);
      for (const sg of a.graphs ?? []) countOps(sg, into);
    }
  }
}

function countParams(g: GraphProto): number {
  let n = 0;
  for (const t of g.initializer ?? []) n += (t.dims ?? []).reduce((a: number, d) => a * toNum(d as number), 1);
  for (const node of g.node ?? []) for (const a of node.attribute ?? []) if (a.g) n += countParams(a.g);
  return n;
}

export async function inspectFile(path: string): Promise<InspectReport> {
  let st;
  try {
    st = await stat(path);
  } catch (e) {
    throw new InputError(`cannot read '${path}': ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { file: path, expected: 'an .onnx file or a tfjs model.json' });
  }
  if (st.isDirectory()) return inspectFile(join(path, 'model.json'));
  if (extname(path).toLowerCase() === '.json') return inspectTfjs(path, st.size);
  return inspectOnnx(path, st.size);
}

async function inspectOnnx(path: string, size: number): Promise<InspectReport> {
  const bytes = await readFile(path);
  const m = decodeUserModel(bytes, path);
  const g = m.graph;
  const inits = new Set((g.initializer ?? []).map((t) => t.name));
  const metadata: Record<string, string> = {};
  for (const p of m.metadataProps ?? []) metadata[p.key ?? ''] = p.value ?? '';
  const ops: Record<string, number> = {};
  countOps(g, ops);
  let states: StateMeta[] = [];
  if (metadata[META.state]) {
    try {
      states = JSON.parse(metadata[META.state]!) as StateMeta[];
    } catch {
      throw new InputError('metadata streamcell.state is not valid JSON', { file: path, field: META.state });
    }
  }
  return {
    file: path, format: 'onnx', sizeBytes: size,
    inputs: (g.input ?? []).filter((i) => !inits.has(i.name)).map(ioOf),
    outputs: (g.output ?? []).map(ioOf),
    ops, parameters: countParams(g), metadata, states,
    opset: Object.fromEntries((m.opsetImport ?? []).map((o) => [o.domain || 'ai.onnx', toNum(o.version as number)])),
    irVersion: toNum(m.irVersion as number),
    producer: `${m.producerName ?? ''} ${m.producerVersion ?? ''}`.trim(),
  };
}

async function inspectTfjs(path: string, size: number): Promise<InspectReport> {
  const art = await loadTfjsArtifacts(path);
  const graph = buildLayerGraph(art);
  const ops: Record<string, number> = {};
  const states: StateMeta[] = [];
  for (const [, l] of graph.layers) {
    ops[l.className] = (ops[l.className] ?? 0) + 1;
    if (l.config.stateful === true) {
      const units = Number(l.config.units);
      for (const kind of l.className === 'LSTM' ? ['h', 'c'] : ['h']) {
        states.push({ name: `${l.name}.${kind}`, input: `state_in.${l.name}.${kind}`, output: `state_out.${l.name}.${kind}`, shape: [units], dtype: 'float32', init: 0 });
      }
    }
  }
  const outShape = (layer: string) => graph.layers.get(layer)?.config.units;
  return {
    file: art.modelJsonPath, format: 'tfjs-layers-model', sizeBytes: size,
    inputs: graph.inputs.map((i) => ({ name: i.name, dtype: i.dtype, shape: i.shape })),
    outputs: graph.outputs.map((o) => ({ name: o.index ? `${o.layer}:${o.node}:${o.index}` : o.layer, dtype: 'float32', shape: typeof outShape(o.layer) === 'number' ? [null, outShape(o.layer) as number] : [] })),
    ops, parameters: art.weights.reduce((n, w) => n + w.data.length, 0),
    metadata: Object.fromEntries(Object.entries({
      generatedBy: art.modelJson.generatedBy, convertedBy: art.modelJson.convertedBy, keras_version: art.topology.keras_version, backend: art.topology.backend,
    }).filter(([, v]) => typeof v === 'string') as [string, string][]),
    states,
  };
}
