/**
 * The numerical check of a step model: the sequence model runs on a random sequence (and on
 * every prefix, for outputs without a time axis) and the step model one step at a time from
 * the initial state; every step of every output is compared.
 */
import { CheckFailedError, InputError, UnsupportedError } from '../../errors.js';
import { MAX_CHECK_STEPS } from '../../limits.js';
import { rng } from '../../data/random.js';
import { decodeModel, DTYPE_NAMES, encodeModel, type ValueInfoProto } from '../../onnx/proto.js';
import { resolveBackend } from '../../runtime/backend-impl.js';
import type { Session, TensorData } from '../../runtime/backend.js';
import { initialStateRows } from '../../runtime/step-model.js';
import { dimsOf } from '../onnx/edit.js';
import { describeInputs, normalFrom, randomInput, resolveDims, zeroInput } from '../onnx/feeds.js';
import type { StepCheck, StreamifyOptions, StreamifyReport } from './types.js';

interface IoDesc {
  name: string;
  dims: (number | string | null)[];
  dtype: string;
}

function outputsOf(bytes: Uint8Array): IoDesc[] {
  const m = decodeModel(bytes);
  return (m.graph!.output ?? []).map((v: ValueInfoProto) => ({
    name: v.name!,
    dims: dimsOf(v),
    dtype: DTYPE_NAMES[v.type?.tensorType?.elemType ?? 1] ?? 'float32',
  }));
}

function sliceAxis(t: TensorData, axis: number, from: number, len: number): TensorData {
  const dims = [...t.dims];
  const outer = dims.slice(0, axis).reduce((a, b) => a * b, 1);
  const inner = dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const src = t.data as Float32Array;
  const out = new (src.constructor as Float32ArrayConstructor)(outer * len * inner);
  for (let o = 0; o < outer; o++) out.set(src.subarray((o * dims[axis]! + from) * inner, (o * dims[axis]! + from + len) * inner), o * len * inner);
  dims[axis] = len;
  return { type: t.type, data: out, dims };
}

function firstRow(t: TensorData): TensorData {
  const rows = t.dims[0]!;
  const size = t.data.length / rows;
  return { type: t.type, data: (t.data as Float32Array).slice(0, size), dims: [1, ...t.dims.slice(1)] };
}

/** Works on float and integer (BigInt64Array: an ArgMax class output) tensors alike. */
function maxAbsDiff(a: ArrayLike<number | bigint>, b: ArrayLike<number | bigint>): number {
  if (a.length !== b.length) return Infinity;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(Number(a[i]!) - Number(b[i]!));
    m = Number.isNaN(d) ? Infinity : Math.max(m, d);
  }
  return m;
}

function maxAbs(a: ArrayLike<number | bigint>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(Number(a[i]!)));
  return m;
}

/** The sequence model with its fixed time length made free, when that is all that pins it. */
export function freeTime(seqBytes: Uint8Array, axisOf: Map<string, number>): Uint8Array {
  const m = decodeModel(seqBytes);
  for (const i of m.graph!.input ?? []) {
    const ax = axisOf.get(i.name!);
    const dim = i.type?.tensorType?.shape?.dim;
    if (ax !== undefined && dim?.[ax]) dim[ax] = { dimParam: 'streamcell_time' };
  }
  m.graph!.valueInfo = [];
  for (const o of m.graph!.output ?? []) if (o.type?.tensorType?.shape) o.type.tensorType.shape = null;
  return encodeModel(m);
}

type Report = Pick<StreamifyReport, 'states' | 'sequenceInputs' | 'lengthInputs' | 'replacedInputs'> &
  Partial<Pick<StreamifyReport, 'transposed' | 'stateOutputs'>>;

/**
 * Runs the sequence model on a random sequence (and on each prefix, for outputs without a time
 * axis) and the step model one step at a time from the initial state; compares every step.
 */
export async function checkStepModel(seqBytes: Uint8Array, stepBytes: Uint8Array, report: Report, opts: StreamifyOptions = {}): Promise<StepCheck> {
  const tolerance = opts.tolerance ?? 1e-4;
  const { backend, record } = await resolveBackend(opts.backend ? [opts.backend] : undefined);
  const seqModel = decodeModel(seqBytes);
  const seqInputs = describeInputs(seqModel.graph!);
  const stepInputs = describeInputs(decodeModel(stepBytes).graph!);
  const axisOf = new Map(report.sequenceInputs.map((s) => [s.name, s.axis]));
  const transposed = new Set(report.transposed ?? []);
  const firstSeq = seqInputs.find((i) => axisOf.has(i.name));
  const declaredT = firstSeq ? firstSeq.dims[axisOf.get(firstSeq.name)!] : undefined;
  // A fixed length beyond the check's limit (a declared 10⁹ steps): check the first steps on
  // the sequence model with its time freed, as for a free time axis.
  const longT = typeof declaredT === 'number' && declaredT > MAX_CHECK_STEPS;
  const fixedT = longT ? undefined : declaredT;
  const T = typeof fixedT === 'number' ? fixedT : Math.min(opts.steps ?? 6, MAX_CHECK_STEPS);
  const freed = longT ? freeTime(seqBytes, axisOf) : undefined;
  const dims = resolveDims(freed ? describeInputs(decodeModel(freed).graph!) : seqInputs, { batch: 2, time: T }, axisOf);
  const batchOf = firstSeq ? dims.get(firstSeq.name)![axisOf.get(firstSeq.name) === 0 ? 1 : 0]! : 2;
  const stateNames = new Set(report.states.map((s) => s.input));
  const lengths = new Set(report.lengthInputs);
  const replaced = new Set(report.replacedInputs);
  const rand = rng(opts.seed ?? 99);
  const normal = normalFrom(rand);
  const full: Record<string, TensorData> = {};
  for (const i of seqInputs) {
    const d = dims.get(i.name)!;
    if (stateNames.has(i.name)) full[i.name] = zeroInput(i, d);
    else if (replaced.has(i.name))
      full[i.name] = zeroInput(i, d); // like the step model's initial state
    else if (lengths.has(i.name))
      full[i.name] = { type: i.dtype as TensorData['type'], data: Int32Array.from({ length: d.reduce((a, b) => a * b, 1) }, () => T), dims: d };
    else full[i.name] = randomInput(i, d, rand, () => normal() * 0.8);
  }
  const existingStates = report.states.filter((s) => seqInputs.some((i) => i.name === s.input));
  const initial = (batch: number): Record<string, TensorData> =>
    Object.fromEntries(report.states.map((s) => [s.input, { type: 'float32', data: initialStateRows(s, batch), dims: [batch, ...s.shape] } as TensorData]));

  let seq: Session;
  try {
    seq = await backend.createSession(freed ?? seqBytes);
  } catch (e) {
    if (!longT) throw e;
    throw new InputError(
      `input '${firstSeq!.name}' fixes its time dimension at ${declaredT} steps, over the check's limit of ${MAX_CHECK_STEPS}, and the model does not run on fewer (${(e as Error).message.split('\n')[0]})`,
      {
        field: firstSeq!.name,
        expected: `a time dimension of at most ${MAX_CHECK_STEPS} steps or a free one; or skip the check (--no-verify)`,
      },
    );
  }
  const step: Session = await backend.createSession(stepBytes);
  let free: Session | undefined;
  try {
    const feedsFor = (len: number): Record<string, TensorData> => {
      const feeds: Record<string, TensorData> = {};
      for (const [k, v] of Object.entries(full)) feeds[k] = axisOf.has(k) ? sliceAxis(v, axisOf.get(k)!, 0, len) : v;
      const init = initial(batchOf);
      for (const s of existingStates) feeds[s.input] = init[s.input]!;
      return feeds;
    };
    const whole = await seq.run(feedsFor(T));
    const stepOutputs = new Set(outputsOf(stepBytes).map((o) => o.name));
    const outputs = outputsOf(seqBytes).filter((o) => !o.name.startsWith('state_out.') && stepOutputs.has(o.name));
    // Outputs without a time axis answer for the prefix seen so far: run the sequence model on
    // every prefix. A fixed-length model is tried with its length freed.
    let note: string | undefined;
    const prefixes = new Map<number, Record<string, TensorData>>([[T, whole]]);
    let prefixRunner: Session | undefined = typeof fixedT === 'number' ? undefined : seq;
    let triedFree = false;
    const prefix = async (len: number): Promise<Record<string, TensorData> | undefined> => {
      if (prefixes.has(len)) return prefixes.get(len)!;
      if (!prefixRunner && !triedFree) {
        triedFree = true;
        try {
          free = await backend.createSession(freeTime(seqBytes, axisOf));
          await free.run(feedsFor(1));
          prefixRunner = free;
        } catch (e) {
          note = `the sequence model only runs on ${T} steps (${(e as Error).message.split('\n')[0]}): outputs without a time axis were compared at the last step only`;
        }
      }
      if (!prefixRunner) return undefined;
      const r = await prefixRunner.run(feedsFor(len));
      prefixes.set(len, r);
      return r;
    };

    let state = initial(batchOf);
    const perOutput: Record<string, number> = {};
    const scale: Record<string, number> = {};
    let timeAxis: Map<string, number | undefined> | undefined;
    let comparisons = 0;
    let firstStep: { feeds: Record<string, TensorData>; got: Record<string, TensorData> } | undefined;
    for (let t = 0; t < T; t++) {
      const feeds: Record<string, TensorData> = { ...state };
      for (const i of stepInputs) {
        if (stateNames.has(i.name)) continue;
        const v = full[i.name];
        if (!v) throw new Error(`step model input '${i.name}' has no counterpart in the sequence model`);
        let x = axisOf.has(i.name) ? sliceAxis(v, axisOf.get(i.name)!, t, 1) : v;
        if (transposed.has(i.name)) x = { ...x, dims: [x.dims[1]!, x.dims[0]!, ...x.dims.slice(2)] };
        feeds[i.name] = x;
      }
      const got = await step.run(feeds);
      if (t === 0) firstStep = { feeds, got };
      timeAxis ??= new Map(
        outputs.map((o) => {
          const w = whole[o.name]!.dims;
          const st = got[o.name]!.dims;
          const sameRank = w.length === st.length;
          let ax = sameRank ? w.findIndex((d, j) => d === T && st[j] === 1 && T !== 1) : -1;
          if (ax < 0 && transposed.has(o.name) && sameRank) ax = 0;
          return [o.name, ax >= 0 ? ax : undefined];
        }),
      );
      state = {};
      for (const s of report.states) state[s.input] = got[s.output]!;
      // Outputs that were final states (hn, cn) are the step model's state_out tensors: the
      // states of all layers in order, as the sequence model concatenates them.
      for (const so of report.stateOutputs ?? []) {
        if (!(so.output in whole)) continue;
        const want = t === T - 1 ? whole[so.output] : (await prefix(t + 1))?.[so.output];
        if (!want) continue;
        const parts = so.states.map((name) => got[report.states.find((s) => s.name === name)!.output]!.data as Float32Array);
        const flat = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
        let off = 0;
        for (const p of parts) {
          flat.set(p, off);
          off += p.length;
        }
        comparisons++;
        perOutput[so.output] = Math.max(perOutput[so.output] ?? 0, maxAbsDiff(flat, want.data as Float32Array));
        scale[so.output] = Math.max(scale[so.output] ?? 0, maxAbs(want.data as Float32Array));
      }
      for (const o of outputs) {
        const ax = timeAxis.get(o.name);
        let want: TensorData | undefined;
        if (ax !== undefined) want = sliceAxis(whole[o.name]!, ax, t, 1);
        else want = t === T - 1 ? whole[o.name] : (await prefix(t + 1))?.[o.name];
        if (!want) continue;
        comparisons++;
        const d = maxAbsDiff(got[o.name]!.data as Float32Array, want.data as Float32Array);
        perOutput[o.name] = Math.max(perOutput[o.name] ?? 0, d);
        scale[o.name] = Math.max(scale[o.name] ?? 0, maxAbs(want.data as Float32Array));
      }
    }
    // The pool runs any number of rows: one row alone must give what it gave among others.
    const loneRows = stepInputs.every((i) => stateNames.has(i.name) || axisOf.has(i.name));
    if (firstStep && batchOf > 1 && loneRows) {
      const feeds = Object.fromEntries(Object.entries(firstStep.feeds).map(([k, v]) => [k, firstRow(v)]));
      let lone: Record<string, TensorData> | undefined;
      try {
        lone = await step.run(feeds);
      } catch (e) {
        throw new UnsupportedError(
          `the step model does not run on a batch of 1 (${(e as Error).message.split('\n')[0]}): the graph has a fixed batch size somewhere`,
          { supported: ['models whose batch size is free'] },
        );
      }
      for (const o of outputs) {
        const d = maxAbsDiff(lone[o.name]!.data as Float32Array, firstRow(firstStep.got[o.name]!).data as Float32Array);
        perOutput[o.name] = Math.max(perOutput[o.name] ?? 0, d);
      }
    }
    const maxAbsError = Math.max(0, ...Object.values(perOutput));
    // A check that compared nothing proves nothing.
    if (comparisons === 0) note = `${note ? `${note}; ` : ''}no output of the step model could be compared with the sequence model`;
    const res: StepCheck = {
      backend: `${record.name} ${record.version}`,
      steps: T,
      batch: batchOf,
      comparisons,
      maxAbsError,
      perOutput,
      scale,
      tolerance,
      passed: maxAbsError <= tolerance && comparisons > 0,
    };
    if (note) res.note = note;
    return res;
  } finally {
    await seq.release();
    await step.release();
    await free?.release();
  }
}

/**
 * Throws when the check failed: {@link UnsupportedError} (exit 2) when the step model computes
 * something else (the model looks at the whole window), {@link CheckFailedError} (exit 1) when
 * it differs only by float rounding beyond a tight tolerance.
 */
export function assertStepCheck(c: StepCheck, file?: string): void {
  if (c.passed) return;
  if (c.comparisons === 0) {
    throw new UnsupportedError(`the step model could not be checked: ${c.note ?? 'no output to compare'}`, {
      file,
      supported: ['models with at least one prediction output'],
    });
  }
  const [name, err] = Object.entries(c.perOutput).reduce((a, b) => (b[1] > a[1] ? b : a));
  const ref = Math.max(1, c.scale?.[name] ?? 1);
  const where = `output '${name}', max abs error ${err.toExponential(3)} > ${c.tolerance} over ${c.comparisons} comparisons in ${c.steps} steps`;
  // A model that looks at the whole window is off by the order of its values; float rounding
  // and dynamic int8's per-call activation scales stay within a few percent of them.
  if (err / ref < 3e-2) {
    throw new CheckFailedError(
      `the step model differs from the sequence model by rounding or quantization noise only (${where}, ${((100 * err) / ref).toPrecision(2)}% of the outputs' scale): raise --tolerance if that is acceptable`,
      { file },
    );
  }
  throw new UnsupportedError(
    `the step model differs from the sequence model (${where}): some layer looks at the whole window (global pooling over time, Flatten, RepeatVector, a fixed-length Reshape, attention, …), so the model cannot be served one sample at a time. Serve it in window mode instead (WindowPool; streamcell stream --model SEQ.onnx --window N)`,
    { file, supported: ['models whose output at step t depends only on inputs up to t'] },
  );
}
