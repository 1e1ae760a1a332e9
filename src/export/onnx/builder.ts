/**
 * A small typed builder for ONNX graphs: unique names, typed attributes, constant
 * initializers (deduplicated), nested graphs for control-flow ops, and the final ModelProto.
 */
import {
  AttributeType,
  DataType,
  encodeModel,
  type AttributeProto,
  type GraphProto,
  type ModelProto,
  type NodeProto,
  type TensorProto,
  type ValueInfoProto,
} from '../../onnx/proto.js';

export type Attr =
  | { kind: 'f'; v: number }
  | { kind: 'i'; v: number }
  | { kind: 's'; v: string }
  | { kind: 'fs'; v: number[] }
  | { kind: 'is'; v: number[] }
  | { kind: 'ss'; v: string[] }
  | { kind: 'g'; v: GraphBuilder };

export const A = {
  f: (v: number): Attr => ({ kind: 'f', v }),
  i: (v: number): Attr => ({ kind: 'i', v }),
  s: (v: string): Attr => ({ kind: 's', v }),
  fs: (v: number[]): Attr => ({ kind: 'fs', v }),
  is: (v: number[]): Attr => ({ kind: 'is', v }),
  ss: (v: string[]): Attr => ({ kind: 'ss', v }),
  g: (v: GraphBuilder): Attr => ({ kind: 'g', v }),
};

export type ElemType = 'float32' | 'int32' | 'int64' | 'float16' | 'int8' | 'uint8' | 'bool';
/** A dimension: a number, a symbolic name, or null for unknown. */
export type Dim = number | string | null;

const ELEM: Record<ElemType, number> = {
  float32: DataType.FLOAT,
  int32: DataType.INT32,
  int64: DataType.INT64,
  float16: DataType.FLOAT16,
  int8: DataType.INT8,
  uint8: DataType.UINT8,
  bool: DataType.BOOL,
};

export function elemTypeCode(t: ElemType): number {
  return ELEM[t];
}

export function valueInfo(name: string, type: ElemType, dims: Dim[] | undefined): ValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: ELEM[type],
        shape:
          dims === undefined ? undefined : { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : typeof d === 'string' ? { dimParam: d } : {})) },
      },
    },
  };
}

export function tensorProto(name: string, type: ElemType, dims: number[], data: ArrayLike<number> | BigInt64Array): TensorProto {
  let raw: Uint8Array;
  switch (type) {
    case 'float32':
      raw = new Uint8Array(Float32Array.from(data as ArrayLike<number>).buffer);
      break;
    case 'int32':
      raw = new Uint8Array(Int32Array.from(data as ArrayLike<number>).buffer);
      break;
    case 'int64':
      raw = new Uint8Array(
        (data instanceof BigInt64Array ? data : BigInt64Array.from(Array.from(data as ArrayLike<number>, (x) => BigInt(x)))).buffer.slice(0),
      );
      break;
    case 'int8':
      raw = new Uint8Array(Int8Array.from(data as ArrayLike<number>).buffer);
      break;
    case 'uint8':
    case 'bool':
      raw = Uint8Array.from(data as ArrayLike<number>);
      break;
    case 'float16':
      raw = new Uint8Array(Uint16Array.from(data as ArrayLike<number>).buffer);
      break;
  }
  return { name, dataType: ELEM[type], dims, rawData: raw };
}

export class GraphBuilder {
  readonly nodes: NodeProto[] = [];
  readonly inputs: ValueInfoProto[] = [];
  readonly outputs: ValueInfoProto[] = [];
  readonly initializers: TensorProto[] = [];
  readonly valueInfos: ValueInfoProto[] = [];
  /** Non-standard domains used (e.g. com.microsoft) with their opset versions. */
  readonly domains = new Map<string, number>();
  private readonly names: Set<string>;
  /** Node names live apart from value names, so a node can carry its layer's exact name. */
  private readonly nodeNames: Set<string>;
  private readonly constCache = new Map<string, string>();

  constructor(
    readonly opset: number,
    readonly name = 'main',
    readonly parent?: GraphBuilder,
  ) {
    this.names = parent ? parent.names : new Set();
    this.nodeNames = parent ? parent.nodeNames : new Set();
  }

  private nodeName(base: string): string {
    let n = base;
    for (let i = 1; this.nodeNames.has(n); i++) n = `${base}_${i}`;
    this.nodeNames.add(n);
    return n;
  }

  /** A name not used anywhere in this graph family (subgraphs share the namespace). */
  uniq(base: string): string {
    const clean = base.replace(/[^A-Za-z0-9_.:/-]/g, '_') || 't';
    let n = clean;
    for (let i = 1; this.names.has(n); i++) n = `${clean}_${i}`;
    this.names.add(n);
    return n;
  }

  /** Reserves an exact name (graph inputs/outputs); throws when taken. */
  reserve(name: string): string {
    if (this.names.has(name)) throw new Error(`ONNX name '${name}' is already used`);
    this.names.add(name);
    return name;
  }

  /** Declares a graph input. `fresh` makes a unique name from `name` instead of requiring it exactly. */
  addInput(name: string, type: ElemType, dims: Dim[] | undefined, opts: { fresh?: boolean } = {}): string {
    name = opts.fresh ? this.uniq(name) : this.reserve(name);
    this.inputs.push(valueInfo(name, type, dims));
    return name;
  }

  addOutput(name: string, type: ElemType, dims: Dim[] | undefined): void {
    this.outputs.push(valueInfo(name, type, dims));
  }

  initializer(base: string, type: ElemType, dims: number[], data: ArrayLike<number> | BigInt64Array): string {
    const name = this.uniq(base);
    this.initializers.push(tensorProto(name, type, dims, data));
    return name;
  }

  /** A small constant, shared when the same value is asked for again (axes, shapes, scalars). */
  constant(type: ElemType, dims: number[], values: number[]): string {
    const key = `${type}|${dims.join(',')}|${values.join(',')}`;
    const hit = this.constCache.get(key);
    if (hit) return hit;
    const name = this.initializer(`const_${type}_${values.slice(0, 4).join('_').replace(/[-.]/g, 'm')}`, type, dims, values);
    this.constCache.set(key, name);
    return name;
  }

  i64(values: number[]): string {
    return this.constant('int64', [values.length], values);
  }

  scalarF(v: number): string {
    return this.constant('float32', [], [v]);
  }

  /** Adds a node; returns its output names (fresh unless given). */
  node(op: string, inputs: string[], attrs: Record<string, Attr> = {}, opts: { outputs?: number | string[]; name?: string; domain?: string } = {}): string[] {
    const base = opts.name ?? op;
    const outs = Array.isArray(opts.outputs) ? opts.outputs : Array.from({ length: opts.outputs ?? 1 }, (_, i) => this.uniq(`${base}${i ? `_out${i}` : ''}`));
    const attribute: AttributeProto[] = Object.entries(attrs).map(([name, a]) => toAttr(name, a));
    this.nodes.push({ opType: op, input: inputs, output: outs, name: this.nodeName(opts.name ?? op), attribute, domain: opts.domain ?? '' });
    if (opts.domain) this.root().domains.set(opts.domain, 1);
    return outs;
  }

  /** Single-output node. */
  op(op: string, inputs: string[], attrs: Record<string, Attr> = {}, opts: { output?: string; name?: string; domain?: string } = {}): string {
    return this.node(op, inputs, attrs, { outputs: opts.output ? [opts.output] : 1, name: opts.name, domain: opts.domain })[0]!;
  }

  /** A subgraph (Scan/Loop/If body) sharing this graph's name space. */
  subgraph(name: string): GraphBuilder {
    return new GraphBuilder(this.opset, name, this);
  }

  root(): GraphBuilder {
    return this.parent ? this.parent.root() : this;
  }

  toGraphProto(): GraphProto {
    return {
      name: this.name,
      node: this.nodes,
      input: this.inputs,
      output: this.outputs,
      initializer: this.initializers,
      valueInfo: this.valueInfos,
    };
  }

  toModelProto(opts: { irVersion: number; producerVersion: string; metadata: Record<string, string>; docString?: string }): ModelProto {
    return {
      irVersion: opts.irVersion,
      producerName: 'streamcell',
      producerVersion: opts.producerVersion,
      docString: opts.docString,
      opsetImport: [{ domain: '', version: this.opset }, ...[...this.domains].map(([domain, version]) => ({ domain, version }))],
      graph: this.toGraphProto(),
      metadataProps: Object.entries(opts.metadata).map(([key, value]) => ({ key, value })),
    };
  }

  encode(opts: Parameters<GraphBuilder['toModelProto']>[0]): Uint8Array {
    return encodeModel(this.toModelProto(opts));
  }
}

function toAttr(name: string, a: Attr): AttributeProto {
  switch (a.kind) {
    case 'f':
      return { name, type: AttributeType.FLOAT, f: a.v };
    case 'i':
      return { name, type: AttributeType.INT, i: a.v };
    case 's':
      return { name, type: AttributeType.STRING, s: new TextEncoder().encode(a.v) };
    case 'fs':
      return { name, type: AttributeType.FLOATS, floats: a.v };
    case 'is':
      return { name, type: AttributeType.INTS, ints: a.v };
    case 'ss':
      return { name, type: AttributeType.STRINGS, strings: a.v.map((s) => new TextEncoder().encode(s)) };
    case 'g':
      return { name, type: AttributeType.GRAPH, g: a.v.toGraphProto() };
  }
}
