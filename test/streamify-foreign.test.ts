/**
 * Acceptance 2 of streaming: ONNX's own backend tests for forward LSTM/GRU/RNN (Debian's
 * libonnx-testdata), written by another exporter. Each is streamified and stepped over its
 * test input one time step at a time; the outputs must reproduce the expected tensors.
 * The .pb tensors are read with streamcell's own protobuf code.
 */
import { existsSync, readdirSync } from 'node:fs';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { streamifyModel } from '../src/export/streamify/index.js';
import { decodeModel, decodeTensor, tensorValues, toNum } from '../src/onnx/proto.js';
import { resolveBackend } from '../src/runtime/backend-impl.js';
import type { TensorData } from '../src/runtime/backend.js';
import { initialStateRows } from '../src/runtime/step-model.js';
import { checkOnnxFiles } from './helpers/onnx-checker.js';

const ROOT = '/usr/share/libonnx-testdata/data/node';
const dirs = existsSync(ROOT)
  ? readdirSync(ROOT)
      .filter((d) => /^test_(lstm|gru|simple_rnn)_|^test_rnn_seq_length$/.test(d))
      .sort()
  : [];
const written: string[] = [];

function isForward(modelBytes: Uint8Array): boolean {
  return (decodeModel(modelBytes).graph!.node ?? []).every((n) => {
    const d = (n.attribute ?? []).find((a) => a.name === 'direction');
    return !d || new TextDecoder().decode(d.s!) === 'forward';
  });
}

function slice(t: TensorData, axis: number, from: number): TensorData {
  const dims = [...t.dims];
  const outer = dims.slice(0, axis).reduce((a, b) => a * b, 1);
  const inner = dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const src = t.data as Float32Array;
  const out = new Float32Array(outer * inner);
  for (let o = 0; o < outer; o++) out.set(src.subarray((o * dims[axis]! + from) * inner, (o * dims[axis]! + from + 1) * inner), o * inner);
  dims[axis] = 1;
  return { type: 'float32', data: out, dims };
}

/** A time-major [1, batch, …] step slice as the step model takes it when streamify made it batch-major. */
function batchMajor(t: TensorData, swap: boolean): TensorData {
  return swap ? { ...t, dims: [t.dims[1]!, t.dims[0]!, ...t.dims.slice(2)] } : t;
}

function stack(parts: TensorData[], axis: number): Float32Array {
  const dims = parts[0]!.dims;
  const outer = dims.slice(0, axis).reduce((a, b) => a * b, 1);
  const inner = dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const out = new Float32Array(outer * parts.length * inner);
  for (let o = 0; o < outer; o++)
    parts.forEach((p, t) => out.set((p.data as Float32Array).subarray(o * inner, (o + 1) * inner), (o * parts.length + t) * inner));
  return out;
}

describe('streamify ONNX backend-test models (libonnx-testdata)', () => {
  it('finds the test models (.ci/run installs libonnx-testdata)', () => {
    expect(dirs.length).toBeGreaterThanOrEqual(12);
  });

  it.each(dirs)('%s: stepping reproduces test_data_set_0', async (dir) => {
    const bytes = new Uint8Array(await readFile(join(ROOT, dir, 'model.onnx')));
    expect(isForward(bytes)).toBe(true);
    const seq = decodeModel(bytes);
    const inits = new Set((seq.graph!.initializer ?? []).map((t) => t.name));
    const inputNames = (seq.graph!.input ?? []).filter((i) => !inits.has(i.name)).map((i) => i.name!);
    const outputNames = (seq.graph!.output ?? []).map((o) => o.name!);
    const data = join(ROOT, dir, 'test_data_set_0');
    const inputs: Record<string, TensorData> = {};
    for (const [i, name] of inputNames.entries()) {
      const t = tensorValues(decodeTensor(await readFile(join(data, `input_${i}.pb`))));
      inputs[t.name || name] = { type: t.dtype as TensorData['type'], data: t.data as Float32Array, dims: t.dims };
    }
    const expected = await Promise.all(
      outputNames.map(async (name, i) => ({ name, t: tensorValues(decodeTensor(await readFile(join(data, `output_${i}.pb`)))) })),
    );

    const { model, report } = await streamifyModel(bytes, { tolerance: 1e-5 });
    expect(report.verification!.passed).toBe(true);
    const out = join(await mkdtemp(join(tmpdir(), 'streamcell-foreign-')), `${dir}.step.onnx`);
    await writeFile(out, model);
    written.push(out);

    const { backend } = await resolveBackend(['onnxruntime-node']);
    const step = await backend.createSession(model);
    const [{ name: xName, axis }] = report.sequenceInputs as [{ name: string; axis: number }];
    const x = inputs[xName]!;
    const T = x.dims[axis]!;
    const batch = x.dims[axis === 0 ? 1 : 0]!;
    // Initial states: the test's own initial_h/initial_c where it has them, else the declared init.
    let state: Record<string, TensorData> = {};
    for (const s of report.states) {
      const kind = s.name.split('.').pop();
      const given = report.replacedInputs.find((r) => (kind === 'h' ? /initial_h/.test(r) : /initial_c/.test(r)));
      state[s.input] = given
        ? { type: 'float32', data: inputs[given]!.data, dims: [batch, ...s.shape] }
        : { type: 'float32', data: initialStateRows(s, batch), dims: [batch, ...s.shape] };
    }
    const perStep: Record<string, TensorData>[] = [];
    for (let t = 0; t < T; t++) {
      const feeds: Record<string, TensorData> = { ...state };
      for (const name of step.inputNames)
        if (!name.startsWith('state_in.')) feeds[name] = name === xName ? batchMajor(slice(x, axis, t), report.transposed.includes(name)) : inputs[name]!;
      const r = await step.run(feeds);
      perStep.push(r);
      state = Object.fromEntries(report.states.map((s) => [s.input, r[s.output]!]));
    }
    await step.release();
    for (const { name, t } of expected) {
      // Y carries the time axis (axis 0, or 1 for batch-major models); Y_h/Y_c are final states.
      // Outputs that only returned final states are the step model's state_out tensors.
      const asState = report.stateOutputs.find((o) => o.output === name);
      const finalName = asState ? report.states.find((s) => s.name === asState.states[0])!.output : name;
      if (asState) expect(asState.states).toHaveLength(1);
      const got =
        t.dims.length === 4
          ? stack(
              perStep.map((r) => r[name]!),
              axis,
            )
          : (perStep[T - 1]![finalName]!.data as Float32Array);
      const want = t.data as Float32Array;
      expect(got.length).toBe(want.length);
      let err = 0;
      for (let i = 0; i < want.length; i++) err = Math.max(err, Math.abs(got[i]! - want[i]!));
      expect(err, `${dir} ${name}`).toBeLessThanOrEqual(1e-5);
    }
    void toNum;
  });
});

afterAll(() => {
  if (!written.length) return;
  const { results } = checkOnnxFiles(written);
  const bad = Object.entries(results).filter(([, e]) => e !== null);
  if (bad.length) throw new Error(`ONNX checker rejected step models: ${JSON.stringify(bad)}`);
});
