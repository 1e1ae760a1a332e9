/** What every rewriter works on: the graph being edited, its states, and constant evaluation. */
import { MAX_CHECK_STEPS } from '../../limits.js';
import { freeTime } from './check.js';
import { decodeModel, DTYPE_NAMES, encodeModel, type ModelProto, type NodeProto, type ValueInfoProto } from '../../onnx/proto.js';
import type { TensorData } from '../../runtime/backend.js';
import type { StateMeta } from '../metadata.js';
import { rng } from '../../data/random.js';
import { dimsOf, GraphEdit } from '../onnx/edit.js';
import { describeInputs, normalFrom, randomInput, resolveDims } from '../onnx/feeds.js';
import { evaluateValues, provenance, type Provenance } from '../onnx/subgraph.js';
import type { StreamifyOptions, StreamifyReport } from './types.js';

function stateVi(name: string, shape: number[]): ValueInfoProto {
  return { name, type: { tensorType: { elemType: 1, shape: { dim: [{ dimParam: 'batch' }, ...shape.map((d) => ({ dimValue: d }))] } } } };
}

export class StreamifyContext {
  readonly ed: GraphEdit;
  readonly states: StateMeta[];
  readonly report: Omit<StreamifyReport, 'verification' | 'states' | 'sequenceInputs'>;
  /** Values holding a recurrence's final state (Y_h, Y_c) → the state name. */
  readonly finalStates = new Map<string, string>();
  /** The graph inputs of the sequence model, before any rewrite. */
  private readonly originalInputs: Set<string>;
  /** An untouched copy of the sequence model, for evaluating constant subgraphs. */
  private readonly original: ModelProto;

  constructor(
    readonly model: ModelProto,
    original: ModelProto,
    opset: number,
    existing: StateMeta[],
    readonly seqInputs: Map<string, number>,
    readonly opts: StreamifyOptions,
  ) {
    this.ed = new GraphEdit(model.graph!, opset);
    this.states = [...existing];
    this.report = { rewritten: [], lengthInputs: [], replacedInputs: [], stateOutputs: [], transposed: [], initialStates: [] };
    this.originalInputs = new Set((model.graph!.input ?? []).map((i) => i.name!));
    this.original = original;
  }

  get g() {
    return this.ed.g;
  }

  addState(layer: string, kind: string, shape: number[], init: number | number[] = 0): { input: string; output: string } {
    const g = this.g;
    const input = this.ed.uniq(`state_in.${layer}.${kind}`);
    const output = this.ed.uniq(`state_out.${layer}.${kind}`);
    g.input = [...(g.input ?? []), stateVi(input, shape)];
    g.output = [...(g.output ?? []), stateVi(output, shape)];
    this.states.push({ name: `${layer}.${kind}`, input, output, shape, dtype: 'float32', init });
    return { input, output };
  }

  isGraphInput(v: string): boolean {
    return (this.g.input ?? []).some((i) => i.name === v);
  }

  isStateInput(v: string): boolean {
    return v.startsWith('state_in.') && this.isGraphInput(v);
  }

  initializer(name: string) {
    return (this.g.initializer ?? []).find((t) => t.name === name);
  }

  /** Declared dims of a graph input or annotated value. */
  valueShape(v: string): (number | string | null)[] | undefined {
    const vi = [...(this.g.input ?? []), ...(this.g.valueInfo ?? [])].find((x) => x.name === v);
    return vi ? dimsOf(vi) : undefined;
  }

  /** Which graph inputs of the sequence model reach `value` as data. */
  provenance(value: string): Provenance {
    return provenance(value, (v) => this.ed.producer(v), this.originalInputs);
  }

  producer(v: string): NodeProto | undefined {
    return this.ed.producer(v);
  }

  /**
   * Values of the sequence model computed without reading input data (constants, shapes), on
   * random inputs of batch `batch` and 3 steps.
   */
  async evaluate(wanted: Record<string, 'float32' | 'int64'>, batch = 2): Promise<Record<string, TensorData>> {
    let model = this.original;
    // A time axis fixed beyond what streamcell generates (a declared 10⁹ steps) is evaluated
    // with the time freed, on 3 steps like a free one; the step check then compares the result.
    const long = describeInputs(model.graph!).some((i) => {
      const t = this.seqInputs.has(i.name) ? i.dims[this.seqInputs.get(i.name)!] : undefined;
      return typeof t === 'number' && t > MAX_CHECK_STEPS;
    });
    if (long) model = decodeModel(freeTime(encodeModel(model), this.seqInputs));
    const inputs = describeInputs(model.graph!);
    const dims = resolveDims(inputs, { batch, time: 3 }, this.seqInputs);
    const rand = rng(5);
    const feeds = Object.fromEntries(inputs.map((i) => [i.name, randomInput(i, dims.get(i.name)!, rand, normalFrom(rand))]));
    return evaluateValues(model, wanted, feeds, this.opts.backend);
  }

  dtypeOf(v: string): string | undefined {
    const vi = [...(this.g.input ?? []), ...(this.g.valueInfo ?? []), ...(this.g.output ?? [])].find((x) => x.name === v);
    return vi ? DTYPE_NAMES[vi.type?.tensorType?.elemType ?? 0] : undefined;
  }
}
