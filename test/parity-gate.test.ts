/** The parity check is a real gate: an ONNX file that differs from the source fails it. */
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { isCheckFailedError } from '../src/errors.js';
import { exportToOnnx } from '../src/export/exporter.js';
import { assertParity, checkParity } from '../src/export/parity.js';
import { decodeModel, encodeModel } from '../src/onnx/proto.js';
import { loadTfjsArtifacts } from '../src/export/tfjs-format/load.js';

const shipped = fileURLToPath(new URL('../models/co2-lstm/model.json', import.meta.url));

describe('parity gate', () => {
  it('passes for the faithful export and fails, naming the output, once one weight is perturbed by 1e-3', async () => {
    const art = await loadTfjsArtifacts(shipped);
    const result = await exportToOnnx(art);
    const ok = await checkParity(art, result, { tolerance: 1e-5 });
    expect(ok.passed).toBe(true);
    expect(() => assertParity(ok)).not.toThrow();

    const m = decodeModel(result.model);
    const w = m.graph!.initializer!.find((t) => t.name!.endsWith('/W'))!;
    const f = new Float32Array(Uint8Array.from(w.rawData!).buffer);
    f[0]! += 1e-3;
    w.rawData = new Uint8Array(f.buffer);
    const bad = await checkParity(art, { ...result, model: encodeModel(m) }, { tolerance: 1e-5 });
    expect(bad.passed).toBe(false);
    expect(bad.maxAbsError).toBeGreaterThan(1e-5);
    let err: unknown;
    try {
      assertParity(bad, shipped);
    } catch (e) {
      err = e;
    }
    expect(isCheckFailedError(err)).toBe(true);
    expect((err as Error).message).toMatch(/parity check failed: .* \(output 'delta'/);
  });
});
