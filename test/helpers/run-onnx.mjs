// Runs ONNX files on a fixed input with onnxruntime-node (or -web) and prints the first output
// as JSON. Plain JavaScript on purpose: test/quantize-cpu.test.ts starts it under qemu-x86_64
// with an emulated CPU (AVX2 without VNNI) to compare integer kernels across CPUs.
//   node test/helpers/run-onnx.mjs BACKEND T CHANNELS FILE...
import { readFileSync } from 'node:fs';

const [backendName, T, C, ...files] = process.argv.slice(2);
const ort = backendName === 'onnxruntime-web' ? await import('onnxruntime-web') : await import('onnxruntime-node');
if (backendName === 'onnxruntime-web') ort.env.wasm.numThreads = 1;
const dims = [4, Number(T), Number(C)];
const x = Float32Array.from({ length: dims[0] * dims[1] * dims[2] }, (_, i) => Math.sin(i / 7) + 0.3 * Math.cos(i / 3));
const out = {};
for (const f of files) {
  const s = await ort.InferenceSession.create(readFileSync(f), { intraOpNumThreads: 1 });
  const r = await s.run({ [s.inputNames[0]]: new ort.Tensor('float32', x, dims) });
  out[f] = Array.from(r[s.outputNames[0]].data);
}
process.stdout.write(JSON.stringify(out));
