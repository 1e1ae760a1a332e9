/**
 * In-place editing of decoded ONNX graphs (used by streamify and the quantizers): attribute
 * readers, a name allocator with node helpers, topological re-ordering and dead-code removal.
 */
import { AttributeType, onnx, toNum, type AttributeProto, type GraphProto, type NodeProto, type ValueInfoProto } from '../../onnx/proto.js';

export function attr(node: NodeProto, name: string): AttributeProto | undefined {
  return (node.attribute ?? []).find((a) => a.name === name);
}
export function attrInt(node: NodeProto, name: string, dflt: number): number {
  const a = attr(node, name);
  return a ? toNum(a.i as number) : dflt;
}
export function attrInts(node: NodeProto, name: string): number[] | undefined {
  const a = attr(node, name);
  return a ? (a.ints ?? []).map((v) => toNum(v as number)) : undefined;
}
export function attrStr(node: NodeProto, name: string, dflt: string): string {
  const a = attr(node, name);
  return a?.s ? new TextDecoder().decode(a.s) : dflt;
}

/** Mutable view of a graph with name allocation and producer lookup. */
export class GraphEdit {
  readonly names = new Set<string>();
  readonly added: NodeProto[] = [];
  constructor(
    readonly g: GraphProto,
    readonly opset: number,
  ) {
    for (const v of [...(g.input ?? []), ...(g.output ?? []), ...(g.valueInfo ?? [])]) this.names.add(v.name!);
    for (const t of g.initializer ?? []) this.names.add(t.name!);
    for (const n of g.node ?? []) {
      for (const o of n.output ?? []) this.names.add(o);
      if (n.name) this.names.add(n.name);
    }
  }
  uniq(base: string): string {
    let n = base;
    for (let i = 1; this.names.has(n); i++) n = `${base}_${i}`;
    this.names.add(n);
    return n;
  }
  producer(value: string): NodeProto | undefined {
    return (this.g.node ?? []).find((n) => (n.output ?? []).includes(value));
  }
  consumers(value: string): NodeProto[] {
    return (this.g.node ?? []).filter((n) => (n.input ?? []).includes(value));
  }
  node(op: string, inputs: string[], attrs: AttributeProto[] = [], output?: string): string {
    const out = output ?? this.uniq(`${op.toLowerCase()}_out`);
    this.added.push(onnx.NodeProto.create({ opType: op, input: inputs, output: [out], name: this.uniq(`streamify_${op}`), attribute: attrs }));
    return out;
  }
  i64(values: number[]): string {
    const name = this.uniq('streamify_const');
    this.g.initializer = [
      ...(this.g.initializer ?? []),
      { name, dataType: 7, dims: [values.length], rawData: new Uint8Array(BigInt64Array.from(values.map(BigInt)).buffer) },
    ];
    return name;
  }
  unsqueeze(x: string, axis: number, output?: string): string {
    return this.opset >= 13
      ? this.node('Unsqueeze', [x, this.i64([axis])], [], output)
      : this.node('Unsqueeze', [x], [{ name: 'axes', type: AttributeType.INTS, ints: [axis] }], output);
  }
  squeeze(x: string, axis: number, output?: string): string {
    return this.opset >= 13
      ? this.node('Squeeze', [x, this.i64([axis])], [], output)
      : this.node('Squeeze', [x], [{ name: 'axes', type: AttributeType.INTS, ints: [axis] }], output);
  }
  transpose(x: string, perm: number[], output?: string): string {
    return this.node('Transpose', [x], [{ name: 'perm', type: AttributeType.INTS, ints: perm }], output);
  }
}

export function dimsOf(v: ValueInfoProto): (number | string | null)[] {
  return (v.type?.tensorType?.shape?.dim ?? []).map((d) =>
    d.dimParam ? d.dimParam : d.dimValue !== null && d.dimValue !== undefined ? toNum(d.dimValue as number) : null,
  );
}

export function topoSort(nodes: NodeProto[], available: Set<string>): NodeProto[] {
  const done: NodeProto[] = [];
  let pending = nodes;
  const ready = new Set(available);
  ready.add('');
  const outerRefs = (n: NodeProto): string[] => {
    // Subgraph bodies may read outer values: they must exist before the node too.
    const refs: string[] = [];
    for (const a of n.attribute ?? []) {
      if (!a.g) continue;
      const local = new Set([
        ...(a.g.input ?? []).map((i) => i.name!),
        ...(a.g.initializer ?? []).map((t) => t.name!),
        ...(a.g.node ?? []).flatMap((x) => x.output ?? []),
      ]);
      for (const x of a.g.node ?? []) for (const i of x.input ?? []) if (i && !local.has(i)) refs.push(i);
    }
    return refs;
  };
  while (pending.length) {
    const next: NodeProto[] = [];
    for (const n of pending) {
      if ([...(n.input ?? []), ...outerRefs(n)].every((i) => ready.has(i))) {
        done.push(n);
        for (const o of n.output ?? []) ready.add(o);
      } else next.push(n);
    }
    if (next.length === pending.length) {
      const stuck = next[0]!;
      throw new Error(
        `streamify produced a cycle or a dangling input at node '${stuck.name}' (${stuck.opType}): ${(stuck.input ?? []).filter((i) => !ready.has(i)).join(', ')}`,
      );
    }
    pending = next;
  }
  return done;
}

/** Removes nodes whose outputs nobody uses, and inputs/initializers nobody reads. */
export function pruneDead(g: GraphProto): void {
  const outputs = new Set((g.output ?? []).map((o) => o.name!));
  for (;;) {
    const used = new Set<string>(outputs);
    for (const n of g.node ?? []) {
      for (const i of n.input ?? []) used.add(i);
      for (const a of n.attribute ?? []) if (a.g) for (const x of a.g.node ?? []) for (const i of x.input ?? []) used.add(i);
    }
    const keep = (g.node ?? []).filter((n) => (n.output ?? []).some((o) => o && used.has(o)));
    const changed = keep.length !== (g.node ?? []).length;
    g.node = keep;
    if (!changed) {
      g.initializer = (g.initializer ?? []).filter((t) => used.has(t.name!));
      g.input = (g.input ?? []).filter((i) => used.has(i.name!) || (g.initializer ?? []).some((t) => t.name === i.name));
      return;
    }
  }
}
