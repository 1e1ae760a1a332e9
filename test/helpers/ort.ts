/** Runs ONNX bytes in onnxruntime-node (or the WASM backend) on float32 inputs. */
import { resolveBackend } from '../../src/runtime/backend-impl.js';
import type { BackendName, TensorData } from '../../src/runtime/backend.js';

export async function runOnnx(
  model: Uint8Array,
  feeds: Record<string, { data: Float32Array; dims: number[] }>,
  backend: BackendName = 'onnxruntime-node',
): Promise<Record<string, TensorData>> {
  const { backend: b } = await resolveBackend([backend]);
  const s = await b.createSession(model);
  try {
    const f: Record<string, TensorData> = {};
    for (const [k, v] of Object.entries(feeds)) f[k] = { type: 'float32', data: v.data, dims: v.dims };
    return await s.run(f);
  } finally {
    await s.release();
  }
}

export function maxAbs(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}
