/** The WASM fallback runs exported models too, and backend resolution says what it skipped. */
import { describe, expect, it } from 'vitest';
import { loadTfjsArtifacts } from '../src/export/tfjs-format/load.js';
import { exportToOnnx } from '../src/export/exporter.js';
import { resolveBackend } from '../src/runtime/backend-impl.js';
import { fileURLToPath } from 'node:url';
import { maxAbs, runOnnx } from './helpers/ort.js';

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
