/** `streamcell inspect`: a summary of an ONNX file, a tfjs model.json or a bundle directory. */
import type { KeyObject } from 'node:crypto';
import { lstat, readFile, stat } from 'node:fs/promises';
import { extname, join, resolve } from 'node:path';
import { verifyBundle } from '../bundle/bundle.js';
import { MANIFEST, SIGNATURE, type ManifestJson, type ModelRole } from '../bundle/manifest.js';
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
    throw new InputError(`cannot read '${path}': ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, {
      file: path,
      expected: 'an .onnx file or a tfjs model.json',
    });
  }
  if (st.isDirectory()) return inspectFile(join(path, 'model.json'));
  if (extname(path).toLowerCase() === '.json') return inspectTfjs(path, st.size);
  return inspectOnnx(path, st.size);
}

async function inspectOnnx(path: string, size: number, given?: Uint8Array): Promise<InspectReport> {
  const bytes = given ?? (await readFile(path));
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
    file: path,
    format: 'onnx',
    sizeBytes: size,
    inputs: (g.input ?? []).filter((i) => !inits.has(i.name)).map(ioOf),
    outputs: (g.output ?? []).map(ioOf),
    ops,
    parameters: countParams(g),
    metadata,
    states,
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
        states.push({
          name: `${l.name}.${kind}`,
          input: `state_in.${l.name}.${kind}`,
          output: `state_out.${l.name}.${kind}`,
          shape: [units],
          dtype: 'float32',
          init: 0,
        });
      }
    }
  }
  const outShape = (layer: string) => graph.layers.get(layer)?.config.units;
  return {
    file: art.modelJsonPath,
    format: 'tfjs-layers-model',
    sizeBytes: size,
    inputs: graph.inputs.map((i) => ({ name: i.name, dtype: i.dtype, shape: i.shape })),
    outputs: graph.outputs.map((o) => ({
      name: o.index ? `${o.layer}:${o.node}:${o.index}` : o.layer,
      dtype: 'float32',
      shape: typeof outShape(o.layer) === 'number' ? [null, outShape(o.layer) as number] : [],
    })),
    ops,
    parameters: art.weights.reduce((n, w) => n + w.data.length, 0),
    metadata: Object.fromEntries(
      Object.entries({
        generatedBy: art.modelJson.generatedBy,
        convertedBy: art.modelJson.convertedBy,
        keras_version: art.topology.keras_version,
        backend: art.topology.backend,
      }).filter(([, v]) => typeof v === 'string') as [string, string][],
    ),
    states,
  };
}

/** A bundle directory's manifest, signature state and the summary of each of its models. */
export interface BundleInspectReport {
  format: 'bundle';
  dir: string;
  name: string;
  version: string;
  created: string;
  task: ManifestJson['task'];
  channels: string[];
  window: number;
  minStreamcellVersion: string;
  /** Every file the manifest lists, by role, with its size and SHA-256 (all verified). */
  files: { role: string; path: string; bytes: number; sha256: string }[];
  signature: {
    /** manifest.sig is there. */
    present: boolean;
    /** true: checked against the given public key; false: no key was given (not checked). */
    verified: boolean;
  };
  /** Every listed file matched its size and SHA-256 (inspect fails otherwise). */
  checksumsVerified: true;
  /** The ONNX summary of each model, by role (float, int8, step, step_int8). */
  models: (InspectReport & { role: ModelRole })[];
  /** The step model runtimes load by default (`step` for bundles older than the field), and how it was chosen. */
  stepDefault: NonNullable<ManifestJson['step_default']>;
  stepChoice?: ManifestJson['step_choice'];
}

const MODEL_ROLES: ModelRole[] = ['float', 'int8', 'step', 'step_int8'];

/** Whether `path` is a directory holding a bundle manifest (and so a bundle, not a tfjs model). */
export async function isBundleDir(path: string): Promise<boolean> {
  const st = await stat(path).catch(() => undefined);
  if (!st?.isDirectory()) return false;
  return lstat(join(path, MANIFEST)).then(
    () => true,
    () => false,
  );
}

/**
 * Verifies a bundle (checksums always; the signature when `publicKey` is given, through
 * src/bundle's verifyBundle: a mismatch is the same InputError `run` gives) and summarises it.
 */
export async function inspectBundle(dir: string, opts: { publicKey?: KeyObject } = {}): Promise<BundleInspectReport> {
  const b = await verifyBundle(dir, { publicKey: opts.publicKey });
  const m = b.manifest;
  const present = await lstat(join(b.dir, SIGNATURE)).then(
    () => true,
    () => false,
  );
  const files = Object.entries(m.files).map(([role, f]) => ({ role, path: f!.path, bytes: f!.bytes, sha256: f!.sha256 }));
  const models: BundleInspectReport['models'] = [];
  for (const role of MODEL_ROLES) {
    const bytes = b.model(role);
    const f = m.files[role];
    if (!bytes || !f) continue;
    models.push({ role, ...(await inspectOnnx(resolve(b.dir, f.path), bytes.length, bytes)) });
  }
  return {
    format: 'bundle',
    dir: b.dir,
    name: m.name,
    version: m.version,
    created: m.created,
    task: m.task,
    channels: m.channels,
    window: m.window,
    minStreamcellVersion: m.min_streamcell_version,
    files,
    signature: { present, verified: b.signed },
    checksumsVerified: true,
    models,
    stepDefault: m.step_default ?? 'step',
    ...(m.step_choice ? { stepChoice: m.step_choice } : {}),
  };
}
