/** The WASM fallback runs exported models too, and backend resolution says what it skipped. */
import { describe, expect, it } from 'vitest';
import { loadTfjsArtifacts } from '../src/export/tfjs-format/load.js';
import { exportToOnnx } from '../src/export/exporter.js';
import { resolveBackend } from '../src/runtime/backend-impl.js';
import { fileURLToPath } from 'node:url';
import { maxAbs, runOnnx } from './helpers/ort.js';
import { lstmStepModel } from './runtime/models.js';

const shipped = fileURLToPath(new URL('../models/co2-lstm/model.json', import.meta.url));

describe('inference backends', () => {
  it('onnxruntime-web (WASM, 1 thread) gives the same outputs as onnxruntime-node', async () => {
    const { model } = await exportToOnnx(await loadTfjsArtifacts(shipped));
    const x = Float32Array.from({ length: 2 * 52 }, (_, i) => Math.sin(i / 5));
    const feeds = { lstm_input: { data: x, dims: [2, 52, 1] } };
    const native = (await runOnnx(model, feeds, 'onnxruntime-node')).delta!.data as Float32Array;
    const wasm = (await runOnnx(model, feeds, 'onnxruntime-web')).delta!.data as Float32Array;
    expect(maxAbs(native, wasm)).toBeLessThanOrEqual(1e-5);
  });

  it('resolution records the backend in use', async () => {
    const { record } = await resolveBackend();
    expect(record.name).toBe('onnxruntime-node');
    expect(record.version).toMatch(/^\d+\.\d+/);
    const web = await resolveBackend(['onnxruntime-web']);
    expect(web.record.name).toBe('onnxruntime-web');
  });
});

describe("onnxruntime-node's native binding", () => {
  it('is what streamcell runs sessions on, with the same outputs as the public API, bit for bit', async () => {
    const { usesNativeBinding } = await import('../src/runtime/backend-impl.js');
    const ort = (await import('onnxruntime-node')) as unknown as typeof import('onnxruntime-common');
    const model = lstmStepModel({ hidden: 8, input: 3, out: 2, seed: 5 });
    const { backend } = await resolveBackend(['onnxruntime-node']);
    expect(usesNativeBinding()).toBe(true);
    const ours = await backend.createSession(model);
    const pub = await ort.InferenceSession.create(model, { executionProviders: ['cpu'], intraOpNumThreads: 1, graphOptimizationLevel: 'all' });
    expect(ours.inputNames).toEqual(pub.inputNames);
    expect(ours.outputNames).toEqual(pub.outputNames);
    const feeds = (rows: number) => ({
      x: { type: 'float32' as const, data: Float32Array.from({ length: rows * 3 }, (_, i) => Math.sin(i)), dims: [rows, 1, 3] },
      'state_in.lstm.h': { type: 'float32' as const, data: new Float32Array(rows * 8).fill(0.1), dims: [rows, 8] },
      'state_in.lstm.c': { type: 'float32' as const, data: new Float32Array(rows * 8).fill(-0.2), dims: [rows, 8] },
    });
    for (const rows of [1, 5]) {
      const f = feeds(rows);
      const a = await ours.run(f);
      const b = await pub.run(Object.fromEntries(Object.entries(f).map(([k, t]) => [k, new ort.Tensor(t.type, t.data, t.dims)])));
      for (const k of pub.outputNames) {
        expect(a[k]!.dims).toEqual(b[k]!.dims);
        expect(Array.from(a[k]!.data as Float32Array)).toEqual(Array.from(b[k]!.data as Float32Array));
      }
      // Only the outputs asked for.
      expect(Object.keys(await ours.run(f, [pub.outputNames[0]!]))).toEqual([pub.outputNames[0]]);
    }
    await expect(ours.run({ x: feeds(1).x })).rejects.toThrow();
    await ours.release();
    await expect(ours.run(feeds(1))).rejects.toThrow(/released/);
    await pub.release();
  });
});
