/**
 * Acceptance 1 and 2 of the exporter: every converter and recurrent option, built in tfjs,
 * saved to disk, loaded, exported, run in onnxruntime-node, compared with tfjs predict
 * (max abs error ≤ 1e-5, batch 1 and 7, two sequence lengths where time is free), and every
 * written file validated by ONNX's own checker.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, describe, expect, it } from 'vitest';
import { exportModelFile } from '../src/export/api.js';
import { resolveBackend } from '../src/runtime/backend-impl.js';
import { checkOnnxFiles } from './helpers/onnx-checker.js';
import { setSeededWeights } from './helpers/models.js';
import { saveModel } from './helpers/tfjs-save.js';
import { cases } from './helpers/matrix-cases.js';

const written: string[] = [];
const summary: { name: string; maxAbsError: number; maxScaledError: number; scaled: boolean; cases: number; reference: string }[] = [];
let root: string;

/** ONNX vs the in-memory tfjs model on one fixed batch (for models tfjs cannot reload). */
async function inMemoryError(model: tf.LayersModel, onnx: Uint8Array): Promise<number> {
  const { backend } = await resolveBackend(['onnxruntime-node']);
  const session = await backend.createSession(onnx);
  const shape = model.inputs[0]!.shape.map((d) => d ?? 3) as number[];
  shape[0] = 7;
  const x = tf.randomNormal(shape, 0, 1, 'float32', 5);
  const want = (model.predict(x) as tf.Tensor).dataSync();
  const got = await session.run({ [session.inputNames[0]!]: { type: 'float32', data: x.dataSync() as Float32Array, dims: shape } });
  await session.release();
  const y = got[session.outputNames[0]!]!.data as Float32Array;
  return Math.max(...Array.from(y, (v, i) => Math.abs(v - want[i]!)));
}

describe('tfjs → ONNX parity matrix (onnxruntime-node vs tfjs predict)', () => {
  it.each(cases.map((c, i) => [c.name, c, i] as const))('%s', async (_name, c, i) => {
    root ??= await mkdtemp(join(tmpdir(), 'streamcell-parity-'));
    const model = setSeededWeights(c.build(), i + 1);
    const dir = join(root, `case-${i}`);
    const modelJson = await saveModel(model, dir);
    const onnxPath = join(dir, 'model.onnx');
    const r = await exportModelFile(modelJson, {
      opset: c.opset,
      tolerance: c.scaled ? Infinity : 1e-5,
      batchSizes: [1, 7],
      timeLengths: [5, 12],
      write: (b) => writeFile(onnxPath, b),
    });
    written.push(onnxPath);
    const p = r.parity!;
    summary.push({
      name: c.name,
      maxAbsError: p.maxAbsError,
      maxScaledError: p.maxScaledError,
      scaled: !!c.scaled,
      cases: p.cases.length,
      reference: p.reference,
    });
    expect(p.cases.length).toBeGreaterThanOrEqual(2);
    if (c.scaled) expect(p.maxScaledError, JSON.stringify(p.cases)).toBeLessThanOrEqual(1e-5);
    else expect(p.maxAbsError, JSON.stringify(p.cases)).toBeLessThanOrEqual(1e-5);
    if (c.inMemory) {
      expect(p.reference).toMatch(/float64 reference/);
      expect(await inMemoryError(model, r.result.model)).toBeLessThanOrEqual(1e-5);
    } else {
      expect(p.reference).toMatch(/^tfjs predict/);
    }
    model.dispose();
  });

  it('every written ONNX file passes onnx.checker.check_model(full_check=True)', () => {
    expect(written.length).toBe(cases.length);
    const { version, results } = checkOnnxFiles(written);
    expect(version).toMatch(/^1\./);
    const failures = Object.entries(results).filter(([, e]) => e !== null);
    expect(failures).toEqual([]);
  });
});

afterAll(() => {
  if (summary.length && process.env.STREAMCELL_PARITY_REPORT) {
    const abs = summary.filter((s) => !s.scaled);
    const worst = abs.reduce((a, b) => (b.maxAbsError > a.maxAbsError ? b : a));
    const cases = summary.reduce((n, s) => n + s.cases, 0);
    process.stdout.write(
      `parity matrix: ${summary.length} models, ${cases} cases; worst max abs error ${worst.maxAbsError.toExponential(2)} (${worst.name})\n`,
    );
    for (const s of summary.filter((x) => x.scaled))
      process.stdout.write(`  ${s.name}: max abs ${s.maxAbsError.toExponential(2)}, scaled ${s.maxScaledError.toExponential(2)}\n`);
  }
});
