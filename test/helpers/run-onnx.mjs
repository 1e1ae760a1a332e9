// Runs ONNX files on a fixed input through streamcell's own backend (dist/, so the session
// options the product uses apply) and prints the first output as JSON. Plain JavaScript on
// purpose: test/quantize-cpu.test.ts starts it under qemu (emulated x86 and ARM CPUs).
//   node test/helpers/run-onnx.mjs BACKEND T CHANNELS FILE...
import { readFileSync } from 'node:fs';

const { resolveBackend } = await import(new URL('../../dist/runtime/backend-impl.js', import.meta.url).href);
const [backendName, T, C, ...files] = process.argv.slice(2);
const { backend } = await resolveBackend([backendName]);
const dims = [4, Number(T), Number(C)];
const x = Float32Array.from({ length: dims[0] * dims[1] * dims[2] }, (_, i) => Math.sin(i / 7) + 0.3 * Math.cos(i / 3));
const out = {};
for (const f of files) {
  const s = await backend.createSession(new Uint8Array(readFileSync(f)));
  const r = await s.run({ [s.inputNames[0]]: { type: 'float32', data: x, dims } });
  out[f] = Array.from(r[s.outputNames[0]].data);
  await s.release();
}
process.stdout.write(JSON.stringify(out));
