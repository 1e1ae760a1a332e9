/**
 * Parity check of an exported ONNX model against its source: tfjs `predict` when tfjs can
 * run the model, otherwise streamcell's float64 reference interpreter (for Keras-origin layers
 * tfjs 4.22 lacks or cannot run). Same random inputs on both sides.
 */
import { CheckFailedError, InputError } from '../errors.js';
import { rng } from '../data/random.js';
import { checkGeneratedSize, MAX_CHECK_STEPS } from '../limits.js';
import { resolveBackend } from '../runtime/backend-impl.js';
import type { BackendName, Session, TensorData } from '../runtime/backend.js';
import { StateCarry } from '../runtime/step-sequence.js';
import type { ExportResult } from './exporter.js';
import type { ReferenceState } from './reference/evaluate.js';
import type { LoadedArtifacts } from './tfjs-format/load.js';
import type { SampleData } from './sample-data.js';
import { loadTfjs } from './tfjs-backend.js';
import { LayerConfig, type InputSpec, type LayerGraph, type LayerSpec } from './topology.js';

/** Options of {@link checkParity}: batch sizes, seed, inference backend, tolerance and optional real sample data. */
export interface ParityOptions {
  batchSizes?: number[];
  /** Lengths used for a free time axis. */
  timeLengths?: number[];
  seed?: number;
  /** Max abs error allowed (default 1e-4). */
  tolerance?: number;
  /** Force the float64 reference even when tfjs could run the model. */
  reference?: 'auto' | 'tfjs' | 'float64';
  backend?: BackendName;
  /** Consecutive calls for stateful models (state carried over). */
  statefulCalls?: number;
  /** Real inputs (`export --sample-data`) instead of random ones: [samples, …input dims] for the first input. */
  samples?: SampleData;
  /** Judge failing cases against the float64 reference (default true): pass when ONNX is no further from it than tfjs is. */
  adjudicate?: boolean;
}

/** One parity case: batch size and sequence length, and the largest absolute difference per output. */
export interface ParityCase {
  batch: number;
  time: number | null;
  call: number;
  maxAbsError: number;
  /** max |a − b| / max(1, |b|): the error relative to the value once values exceed 1. */
  maxScaledError: number;
  perOutput: Record<string, number>;
  /**
   * When this case exceeded the tolerance against tfjs: both compared with the float64
   * reference on the same inputs. Passed when ONNX is no further from it than tfjs is.
   */
  adjudication?: { onnxVsFloat64: number; tfjsVsFloat64: number; float32Budget: number; passed: boolean };
}

/** The outcome of {@link checkParity}: every case run, the largest difference, and the verdict (judged against the float64 reference when the float32 budget is exceeded). */
export interface ParityReport {
  reference: string;
  backend: string;
  /** 'random' normal inputs, or the sample data file. */
  inputs: string;
  /** Cases that exceeded the tolerance against tfjs but passed against float64. */
  adjudicated: number;
  cases: ParityCase[];
  maxAbsError: number;
  maxScaledError: number;
  tolerance: number;
  passed: boolean;
}

/** Layers / options tfjs 4.22 cannot run; models using them are checked against the float64 reference. */
export function tfjsCannotRun(graph: LayerGraph): string | undefined {
  for (const call of graph.calls) {
    const l = call.layer;
    if (['ZeroPadding1D', 'Cropping1D', 'Subtract'].includes(l.className)) return `tfjs has no ${l.className} layer ('${l.name}')`;
    const inner =
      l.className === 'Bidirectional' || l.className === 'TimeDistributed'
        ? ((l.config.layer as { class_name?: string; config?: Record<string, unknown> }) ?? {})
        : { class_name: l.className, config: l.config };
    if (inner.class_name === 'GRU' && inner.config?.reset_after === true) return `tfjs cannot build GRU with reset_after=true ('${l.name}')`;
    if ((l.className === 'Conv1D' || l.className === 'Convolution1D') && l.config.padding === 'causal')
      return `tfjs' Conv1D 'causal' padding throws at predict ('${l.name}')`;
    const acts = [l.config.activation, l.config.recurrent_activation, inner.config?.activation, inner.config?.recurrent_activation];
    if (acts.includes('gelu_new')) return `tfjs 4.22 cannot deserialize the 'gelu_new' activation it saves ('${l.name}')`;
    if (l.className === 'ReLU' && (l.config.negative_slope || l.config.threshold)) return `tfjs' ReLU has no negative_slope/threshold ('${l.name}')`;
    if (l.className === 'BatchNormalization') {
      const axis = Array.isArray(l.config.axis) ? l.config.axis : [l.config.axis ?? -1];
      // tfjs' cpu kernel applies the statistics along the last axis whatever `axis` says.
      if (axis.some((a) => a !== -1 && !(typeof a === 'number' && a === (graph.inputs[0]?.shape.length ?? 0) - 1)))
        return `tfjs computes BatchNormalization wrongly for a non-last axis ('${l.name}')`;
    }
    if (l.className === 'Conv1D' && typeof l.config.groups === 'number' && l.config.groups > 1) return `tfjs' Conv1D has no groups ('${l.name}')`;
    if (call.inputs.length > 1 && ['LSTM', 'GRU', 'SimpleRNN'].includes(l.className)) return `initial_state inputs ('${l.name}')`;
  }
  return undefined;
}

export { rng } from '../data/random.js';

/** Integer range for inputs that feed an Embedding, else undefined (normal floats). */
function embeddingRange(graph: LayerGraph, input: InputSpec): number | undefined {
  for (const c of graph.calls) {
    if (c.layer.className === 'Embedding' && c.inputs.some((k) => k.layer === input.name)) return new LayerConfig(c.layer).int('input_dim');
  }
  return undefined;
}

interface Feed {
  spec: InputSpec;
  dims: number[];
  data: Float32Array | Int32Array;
}

/** Batch `index` of `size` samples from the sample data (the first input only). */
function sampleFeeds(graph: LayerGraph, samples: SampleData, index: number, size: number): Feed[] {
  const spec = graph.inputs[0]!;
  const per = samples.dims.slice(1).reduce((a, b) => a * b, 1);
  const from = index * size;
  const n = Math.min(size, samples.dims[0]! - from);
  return [{ spec, dims: [n, ...samples.dims.slice(1)], data: samples.data.slice(from * per, (from + n) * per) }];
}

/** Dims of a random parity input: the declared ones, free ones filled in. */
function inputDims(spec: InputSpec, batch: number, time: number): number[] {
  return spec.shape.map((d, i) => (d !== null ? d : i === 0 ? batch : i === 1 ? time : 3));
}

/**
 * Refuses, before anything is written or allocated, random parity inputs that streamcell
 * cannot generate: a fixed time dimension over {@link MAX_CHECK_STEPS}, or a tensor over 2^26
 * elements (the model's fixed dims are used as they are; free ones take the check's sizes).
 */
export function checkParityInputs(graph: LayerGraph, file: string, opts: Pick<ParityOptions, 'batchSizes' | 'timeLengths'> = {}): void {
  const batch = Math.max(...(opts.batchSizes ?? [1, 7]));
  const time = Math.max(...(opts.timeLengths ?? [5, 12]));
  for (const spec of graph.inputs) {
    const t = spec.shape[1];
    if (spec.shape.length >= 3 && typeof t === 'number' && t > MAX_CHECK_STEPS) {
      throw new InputError(
        `input '${spec.name}' fixes its time dimension at ${t} steps; the parity check runs the model on whole sequences, and streamcell generates at most ${MAX_CHECK_STEPS} steps`,
        {
          file,
          field: spec.name,
          expected: `a time dimension of at most ${MAX_CHECK_STEPS} or a free one (null), or --no-verify to skip the check (the exported model still streams any length once streamified)`,
        },
      );
    }
    checkGeneratedSize(inputDims(spec, batch, time), `the parity check's input '${spec.name}' (declared [${spec.shape.map((d) => d ?? '?').join(', ')}])`, {
      file,
      field: spec.name,
      expected: 'declared dims whose product stays within 2^26 elements, or --no-verify to skip the check',
    });
  }
}

function makeInputs(graph: LayerGraph, batch: number, time: number, rand: () => number): Feed[] {
  return graph.inputs.map((spec) => {
    const dims = inputDims(spec, batch, time);
    checkGeneratedSize(dims, `the parity check's input '${spec.name}'`, { field: spec.name });
    const n = dims.reduce((a, b) => a * b, 1);
    const range = embeddingRange(graph, spec);
    if (range !== undefined || spec.dtype === 'int32') {
      const hi = range ?? 10;
      const ints = Array.from({ length: n }, () => Math.floor(rand() * hi));
      return { spec, dims, data: spec.dtype === 'int32' ? Int32Array.from(ints) : Float32Array.from(ints) };
    }
    // Box-Muller normal values: exercise negative inputs and saturating activations.
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) data[i] = Math.sqrt(-2 * Math.log(rand() + 1e-12)) * Math.cos(2 * Math.PI * rand());
    return { spec, dims, data };
  });
}

/** Max abs and scaled difference; NaN on both sides counts as equal, NaN on one side as ∞. */
function diff(a: ArrayLike<number>, b: ArrayLike<number>): { abs: number; scaled: number } {
  if (a.length !== b.length) return { abs: Infinity, scaled: Infinity };
  let abs = 0;
  let scaled = 0;
  for (let i = 0; i < a.length; i++) {
    let d = Math.abs(a[i]! - b[i]!);
    if (Number.isNaN(d)) d = Number.isNaN(a[i]!) && Number.isNaN(b[i]!) ? 0 : Infinity;
    if (d > abs) abs = d;
    const s = d / Math.max(1, Math.abs(b[i]!));
    if (s > scaled) scaled = s;
  }
  return { abs, scaled };
}

type RefRunner = (feeds: Feed[]) => Promise<ArrayLike<number>[]>;

/** Training-only config (regularizers, constraints) removed: tfjs refuses Keras 3's `L2` class, and inference never uses it. */
function forInference(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(forInference);
  if (typeof v !== 'object' || v === null) return v;
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, /_(regularizer|constraint)$/.test(k) ? null : forInference(x)]));
}

async function tfjsRunner(art: LoadedArtifacts, result: ExportResult): Promise<{ run: RefRunner; name: string; dispose: () => void }> {
  const { tf, backend } = await loadTfjs();
  const weightSpecs = art.weights.map((w) => ({ name: w.name, shape: w.shape, dtype: w.dtype }));
  const total = art.weights.reduce((n, w) => n + w.data.byteLength, 0);
  const buf = new Uint8Array(total);
  let off = 0;
  for (const w of art.weights) {
    buf.set(new Uint8Array(w.data.buffer, w.data.byteOffset, w.data.byteLength), off);
    off += w.data.byteLength;
  }
  const model = await tf.loadLayersModel(tf.io.fromMemory({ modelTopology: forInference(art.topology) as object, weightSpecs, weightData: buf.buffer }));
  return {
    name: `tfjs predict, ${backend}`,
    dispose: () => model.dispose(),
    run: async (feeds) => {
      const xs = feeds.map((f) => tf.tensor(f.data, f.dims, f.spec.dtype));
      const ys = model.predict(xs.length === 1 ? xs[0]! : xs);
      const list = Array.isArray(ys) ? ys : [ys];
      const out = await Promise.all(list.map((y) => y.data() as Promise<Float32Array>));
      xs.forEach((x) => x.dispose());
      list.forEach((y) => y.dispose());
      if (out.length !== result.outputs.length) throw new Error(`tfjs returned ${out.length} outputs, ONNX has ${result.outputs.length}`);
      return out;
    },
  };
}

/**
 * How far float32 arithmetic may move this model's outputs: a float32 sum of n products errs by
 * about √n rounding units of its magnitude (one standard deviation; the worst of a batch's
 * outputs lies about three out), so every weight and input is moved by a random relative
 * ±3·√n·2^-24 (n: the largest fan-in, a weight matrix's rows) and the float64 reference run on that. A model that amplifies rounding (huge logits, nearly tied classes) gets a large
 * budget; a well-conditioned one a budget far under the tolerance.
 */
function float32Scale(graph: LayerGraph): number {
  let fanIn = 1;
  for (const l of graph.layers.values()) for (const w of l.weights) if (w.shape.length >= 2) fanIn = Math.max(fanIn, w.shape[w.shape.length - 2]!);
  return 3 * Math.sqrt(fanIn) * 2 ** -24;
}

function perturbedGraph(graph: LayerGraph, rand: () => number, scale: number): LayerGraph {
  const layers = new Map<string, LayerSpec>();
  for (const [name, l] of graph.layers) {
    layers.set(name, {
      ...l,
      weights: l.weights.map((w) =>
        w.data instanceof Float32Array ? { ...w, data: Float32Array.from(w.data, (v) => v * (1 + (rand() * 2 - 1) * scale)) } : w,
      ),
    });
  }
  return { ...graph, layers, calls: graph.calls.map((c) => ({ ...c, layer: layers.get(c.layer.name)! })) };
}

const perturbFeeds = (feeds: Feed[], rand: () => number, scale: number): Feed[] =>
  feeds.map((f) => ({ ...f, data: f.data instanceof Float32Array ? Float32Array.from(f.data, (v) => v * (1 + (rand() * 2 - 1) * scale)) : f.data }));

async function float64Runner(graph: LayerGraph, result: ExportResult): Promise<{ run: RefRunner; name: string }> {
  const { evaluateReference } = await import('./reference/evaluate.js');
  let state: ReferenceState | undefined;
  return {
    name: 'streamcell float64 reference',
    run: async (feeds) => {
      const r = evaluateReference(
        graph,
        feeds.map((f) => ({ shape: f.dims, data: Float64Array.from(f.data) })),
        state,
      );
      if (result.states.length > 0) state = r.state;
      return r.outputs.map((o) => o.data);
    },
  };
}

/**
 * Runs the exported model and its source on the same random inputs and reports the max
 * absolute error per case. Throws {@link CheckFailedError} only via {@link assertParity}.
 */
export async function checkParity(art: LoadedArtifacts, result: ExportResult, opts: ParityOptions = {}): Promise<ParityReport> {
  const graph = result.graph;
  const tolerance = opts.tolerance ?? 1e-4;
  let why = tfjsCannotRun(graph);
  const mode = opts.reference ?? 'auto';
  let useF64 = mode === 'float64' || (mode === 'auto' && why !== undefined);
  const { backend, record } = await resolveBackend(opts.backend ? [opts.backend] : undefined);
  const session: Session = await backend.createSession(result.model);
  const rand = rng(opts.seed ?? 1234);
  const fixedBatch = graph.inputs[0]?.shape[0];
  const freeTime = graph.inputs.some((i) => i.shape.length >= 2 && i.shape[1] === null);
  const stateful = result.states.length > 0;
  const calls = stateful ? (opts.statefulCalls ?? 3) : 1;
  const samples = opts.samples;
  // Real inputs: the samples in batches (consecutive calls for stateful models); else random cases.
  const SAMPLE_BATCH = typeof fixedBatch === 'number' ? fixedBatch : 16;
  const plan: { batch: number; time: number; calls: number }[] = [];
  if (samples) {
    if (samples.dims[0]! < SAMPLE_BATCH && typeof fixedBatch === 'number') {
      throw new InputError(`the model's batch is fixed at ${fixedBatch}; the sample data has ${samples.dims[0]} samples`, {
        file: samples.source,
        option: 'sampleData',
        expected: `at least ${fixedBatch} samples`,
      });
    }
    const n = typeof fixedBatch === 'number' ? Math.floor(samples.dims[0]! / fixedBatch) : Math.ceil(samples.dims[0]! / SAMPLE_BATCH);
    plan.push({ batch: SAMPLE_BATCH, time: samples.dims[1] ?? 0, calls: n });
  } else {
    const batches = typeof fixedBatch === 'number' ? [fixedBatch] : (opts.batchSizes ?? [1, 7]);
    const times = freeTime ? (opts.timeLengths ?? [5, 12]) : [0];
    for (const batch of batches) for (const time of times) plan.push({ batch, time, calls });
  }
  const cases: ParityCase[] = [];
  let tfjs: Awaited<ReturnType<typeof tfjsRunner>> | undefined;
  let refName = '';
  const adjudicate = opts.adjudicate !== false && mode !== 'float64';
  try {
    for (const p of plan) {
      // A fresh reference per case: stateful models start from zero state, like ONNX below.
      let ref: { run: RefRunner; name: string } | undefined;
      if (!useF64) {
        try {
          tfjs?.dispose();
          tfjs = await tfjsRunner(art, result);
          ref = tfjs;
        } catch (e) {
          if (mode === 'tfjs') throw e;
          // tfjs cannot load what the file holds (a Keras 3 class, a layer it lacks): float64 it is.
          why = `tfjs cannot load this model: ${(e as Error).message.split('\n')[0]}`;
          useF64 = true;
        }
      }
      ref ??= await float64Runner(graph, result);
      // Failing cases are re-judged against float64; stateful models replay the calls so far.
      const judge = adjudicate && !useF64 ? await float64Runner(graph, result) : undefined;
      const noisy = judge ? await float64Runner(perturbedGraph(graph, rng(77), float32Scale(graph)), result) : undefined;
      const noiseRand = rng(78);
      // Exported state starts at 0 (init 0), like the references.
      const carry = new StateCarry(result.states, p.batch);
      for (let call = 0; call < p.calls; call++) {
        const feeds = samples ? sampleFeeds(graph, samples, call, p.batch) : makeInputs(graph, p.batch, p.time, rand);
        const batch = feeds[0]!.dims[0]!;
        if (stateful && batch !== p.batch) break; // a short last batch cannot continue the states
        let expected: ArrayLike<number>[];
        try {
          expected = await ref.run(feeds);
        } catch (e) {
          if (useF64 || mode === 'tfjs') throw e;
          why = `tfjs cannot run this model: ${(e as Error).message.split('\n')[0]}`;
          useF64 = true;
          ref = await float64Runner(graph, result);
          expected = await ref.run(feeds);
        }
        refName = useF64 && why ? `streamcell float64 reference (${why})` : ref.name;
        const onnxFeeds: Record<string, TensorData> = {};
        for (const f of feeds) onnxFeeds[f.spec.name] = { type: f.spec.dtype, data: f.data, dims: f.dims };
        const got = await carry.step(session, onnxFeeds);
        const perOutput: Record<string, number> = {};
        let maxScaledError = 0;
        result.outputs.forEach((o, i) => {
          const d = diff(got[o.name]!.data as Float32Array, expected[i]!);
          perOutput[o.name] = d.abs;
          maxScaledError = Math.max(maxScaledError, d.scaled);
        });
        const c: ParityCase = {
          batch,
          time: freeTime || samples ? (feeds[0]!.dims[1] ?? null) : null,
          call,
          maxAbsError: Math.max(...Object.values(perOutput)),
          maxScaledError,
          perOutput,
        };
        // Stateful references keep state: they see every call, failing or not.
        const f64 = judge && (stateful || c.maxAbsError > tolerance) ? await judge.run(feeds) : undefined;
        const f64n = noisy && (stateful || c.maxAbsError > tolerance) ? await noisy.run(perturbFeeds(feeds, noiseRand, float32Scale(graph))) : undefined;
        if (f64 && f64n && c.maxAbsError > tolerance) {
          let onnxVs = 0;
          let tfjsVs = 0;
          let budget = 0;
          result.outputs.forEach((o, i) => {
            onnxVs = Math.max(onnxVs, diff(got[o.name]!.data as Float32Array, f64[i]!).abs);
            tfjsVs = Math.max(tfjsVs, diff(expected[i]!, f64[i]!).abs);
            budget = Math.max(budget, diff(f64n[i]!, f64[i]!).abs);
          });
          // ONNX passes when it is no further from exact math than tfjs is, or than float32
          // rounding of the inputs and weights moves this model's outputs.
          c.adjudication = { onnxVsFloat64: onnxVs, tfjsVsFloat64: tfjsVs, float32Budget: budget, passed: onnxVs <= Math.max(tfjsVs, budget, tolerance) };
        }
        cases.push(c);
      }
    }
  } finally {
    tfjs?.dispose();
    await session.release();
  }
  const maxAbsError = Math.max(...cases.map((c) => c.maxAbsError));
  const maxScaledError = Math.max(...cases.map((c) => c.maxScaledError));
  const adjudicated = cases.filter((c) => c.maxAbsError > tolerance && c.adjudication?.passed).length;
  const passed = cases.every((c) => c.maxAbsError <= tolerance || c.adjudication?.passed === true);
  const inputs = samples ? `${samples.dims[0]} samples from ${samples.source}` : 'random normal inputs';
  return { reference: refName, backend: `${record.name} ${record.version}`, inputs, adjudicated, cases, maxAbsError, maxScaledError, tolerance, passed };
}

export function assertParity(report: ParityReport, file?: string): void {
  if (!report.passed) {
    const worst = report.cases.reduce((a, b) => (b.maxAbsError > a.maxAbsError ? b : a));
    const out = Object.entries(worst.perOutput).reduce((a, b) => (b[1] > a[1] ? b : a))[0];
    const adj = report.cases.find((c) => c.adjudication && !c.adjudication.passed)?.adjudication;
    throw new CheckFailedError(
      `parity check failed: max abs error ${report.maxAbsError.toExponential(3)} > tolerance ${report.tolerance} ` +
        `(output '${out}', batch ${worst.batch}${worst.time !== null ? `, time ${worst.time}` : ''}; reference: ${report.reference}; inputs: ${report.inputs})` +
        (adj
          ? `; against the float64 reference ONNX is further off (${adj.onnxVsFloat64.toExponential(2)}) than tfjs (${adj.tfjsVsFloat64.toExponential(2)})`
          : '') +
        (report.inputs.startsWith('random')
          ? '. If the model only ever sees certain inputs (one-hot, a bounded range), check on them with --sample-data F (.npy, .json or .csv)'
          : ''),
      { file },
    );
  }
}
