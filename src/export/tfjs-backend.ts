/**
 * Lazy tfjs loader: `@tensorflow/tfjs-node` when its native library loads, otherwise
 * `@tensorflow/tfjs` on a pure-JS or WebAssembly backend. Only commands that train, export or
 * verify call this, so a device running the daemon never loads tfjs.
 *
 * Without tfjs-node the backend depends on the use: training runs on the WebAssembly backend
 * (`@tensorflow/tfjs-backend-wasm`, SIMD, one thread: 2–3× the cpu backend's windows/s on an
 * LSTM), while export parity and the tfjs latency of `bench-model` stay on the cpu backend,
 * whose float32 kernels are the reference the parity tolerances were set against. The tfjs
 * engine has one current backend per process; each {@link loadTfjs} call selects the one its
 * use needs, so a process must not train and check parity concurrently.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { DataId, KernelFunc, TensorInfo } from '@tensorflow/tfjs';
import { InputError } from '../errors.js';

export type Tf = typeof import('@tensorflow/tfjs');

export interface TfjsInfo {
  tf: Tf;
  /** e.g. "tensorflow (tfjs-node)", "wasm (@tensorflow/tfjs-backend-wasm, SIMD, 1 thread)" or "cpu (@tensorflow/tfjs)". */
  backend: string;
  /** Why a faster backend is not used, when it is not. */
  fallbackReason?: string;
}

/**
 * What the backend is for: 'reference' (export parity, tfjs predict latency: tfjs-node, else
 * the cpu backend) or 'train' (tfjs-node, else wasm, else cpu). 'cpu' and 'wasm' ask for that
 * backend of @tensorflow/tfjs (as `npm run bench` compares them); 'wasm' fails with an
 * InputError when it cannot start.
 */
export type TfjsUse = 'reference' | 'train' | 'cpu' | 'wasm';

interface Loaded {
  tf: Tf;
  node: boolean;
  reason?: string;
}

let loaded: Promise<Loaded> | undefined;
let wasmReady: Promise<{ label: string } | { error: string }> | undefined;

function loadModule(): Promise<Loaded> {
  loaded ??= (async () => {
    let reason: string | undefined;
    if (process.env.STREAMCELL_TFJS_NODE !== '0') {
      try {
        const name = '@tensorflow/tfjs-node';
        const tf = (await import(name)) as Tf;
        await tf.ready();
        return { tf, node: true };
      } catch (e) {
        reason = `@tensorflow/tfjs-node not usable: ${(e as Error).message.split('\n')[0]}`;
      }
    } else reason = 'STREAMCELL_TFJS_NODE=0';
    let tf: Tf;
    try {
      tf = await import('@tensorflow/tfjs');
    } catch (e) {
      // A device install (scripts/install-on-device.sh) leaves tfjs out on purpose.
      throw new InputError(
        `@tensorflow/tfjs is not installed (${(e as Error).message.split('\n')[0]}): training, export parity and tfjs models need the workstation install`,
        {
          expected:
            "run this on the workstation install (npm install, which includes tfjs), or 'npm install @tensorflow/tfjs' here; on a device, export with --no-verify or bring ONNX models",
        },
      );
    }
    // The cpu backend prints an "install tfjs-node" banner on its first tensor unless in
    // production mode; we already say which backend is used.
    tf.env().set('PROD', true);
    return { tf, node: false, reason };
  })();
  return loaded;
}

/**
 * Registers and starts the wasm backend once. Its .wasm binaries are read from the installed
 * package's dist/ folder with fs (no fetch, works offline). Multi-threaded wasm is off: tfjs
 * 4.22 disables it under Node (its worker comes from a blob: URL, which Node's Worker refuses).
 */
function startWasm(tf: Tf): Promise<{ label: string } | { error: string }> {
  wasmReady ??= (async () => {
    if (process.env.STREAMCELL_TFJS_WASM === '0') return { error: 'STREAMCELL_TFJS_WASM=0' };
    try {
      const name = '@tensorflow/tfjs-backend-wasm';
      const wasm = (await import(name)) as typeof import('@tensorflow/tfjs-backend-wasm');
      const dist = join(dirname(createRequire(import.meta.url).resolve(`${name}/package.json`)), 'dist') + '/';
      wasm.setWasmPaths(dist);
      registerWasmConv2DBackpropFilter(tf);
      // tfjs logs "Initialization of backend wasm failed" itself and setBackend returns false.
      const error = console.error;
      let why = '';
      console.error = (...a: unknown[]) => {
        why ||= a.map((x) => (x instanceof Error ? x.message : String(x))).join(' ');
      };
      let ok: boolean;
      try {
        ok = await tf.setBackend('wasm');
      } finally {
        console.error = error;
      }
      if (!ok) return { error: `@tensorflow/tfjs-backend-wasm did not start${why ? `: ${why.split('\n')[0]}` : ''}` };
      const simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
      const threads = wasm.getThreadsCount();
      return { label: `wasm (@tensorflow/tfjs-backend-wasm, ${simd ? 'SIMD' : 'no SIMD'}, ${threads} thread${threads === 1 ? '' : 's'})` };
    } catch (e) {
      return { error: `@tensorflow/tfjs-backend-wasm not usable: ${(e as Error).message.split('\n')[0]}` };
    }
  })();
  return wasmReady;
}

interface WasmBackendLike {
  readSync(dataId: DataId): ArrayLike<number>;
  makeOutput(shape: number[], dtype: 'float32', memoryOffset?: number, values?: Float32Array): TensorInfo;
}

/**
 * tfjs-backend-wasm 4.22 has no Conv2DBackpropFilter kernel, the weight gradient of Conv1D
 * (tfjs runs Conv1D as a Conv2D of height 1), so a trainable `conv1d:F:K` layer would fail on
 * its first batch. This registers the cpu backend's algorithm (the same loops, in JS, on the
 * wasm backend's memory) for it; every other kernel training uses exists in wasm.
 */
export function registerWasmConv2DBackpropFilter(tf: Tf): void {
  if (tf.getKernel('Conv2DBackpropFilter', 'wasm')) return;
  tf.registerKernel({
    kernelName: 'Conv2DBackpropFilter',
    backendName: 'wasm',
    kernelFunc: (({ inputs, backend, attrs }) => {
      const { x, dy } = inputs as { x: TensorInfo; dy: TensorInfo };
      const { strides, pad, dataFormat, dimRoundingMode, filterShape } = attrs as Record<string, never>;
      const info = tf.backend_util.computeConv2DInfo(
        x.shape as [number, number, number, number],
        filterShape,
        strides,
        1,
        pad,
        dimRoundingMode,
        false,
        tf.backend_util.convertConv2DDataFormat(dataFormat),
      );
      const b = backend as unknown as WasmBackendLike;
      const xv = b.readSync(x.dataId);
      const dyv = b.readSync(dy.dataId);
      // wasm's own Conv2D takes channelsLast only, so its gradient is NHWC too.
      if (info.dataFormat !== 'channelsLast') throw new Error("Conv2DBackpropFilter on wasm supports dataFormat 'channelsLast' only");
      const [h, w, c] = [info.inHeight, info.inWidth, info.inChannels];
      const [oh, ow, oc] = [info.outHeight, info.outWidth, info.outChannels];
      const xAt = (n: number, r: number, q: number, k: number) => ((n * h + r) * w + q) * c + k;
      const dyAt = (n: number, r: number, q: number, k: number) => ((n * oh + r) * ow + q) * oc + k;
      const { strideHeight: sh, strideWidth: sw, filterHeight: fh, filterWidth: fw, inChannels: ic } = info;
      const top = info.padInfo.top;
      const left = info.padInfo.left;
      const dW = new Float32Array(fh * fw * ic * oc);
      for (let wr = 0; wr < fh; ++wr) {
        const r0 = Math.max(0, Math.ceil((top - wr) / sh));
        const r1 = Math.min(oh, (info.inHeight + top - wr) / sh);
        for (let wc = 0; wc < fw; ++wc) {
          const c0 = Math.max(0, Math.ceil((left - wc) / sw));
          const c1 = Math.min(ow, (info.inWidth + left - wc) / sw);
          for (let d1 = 0; d1 < ic; ++d1) {
            for (let d2 = 0; d2 < oc; ++d2) {
              let dot = 0;
              for (let n = 0; n < info.batchSize; ++n)
                for (let yr = r0; yr < r1; ++yr)
                  for (let yc = c0; yc < c1; ++yc) dot += xv[xAt(n, wr + yr * sh - top, wc + yc * sw - left, d1)]! * dyv[dyAt(n, yr, yc, d2)]!;
              dW[((wr * fw + wc) * ic + d1) * oc + d2] = dot;
            }
          }
        }
      }
      return b.makeOutput([fh, fw, ic, oc], 'float32', undefined, dW);
    }) as KernelFunc,
  });
}

async function useCpu(tf: Tf, reason: string | undefined): Promise<TfjsInfo> {
  if (tf.getBackend() !== 'cpu') await tf.setBackend('cpu');
  await tf.ready();
  return { tf, backend: `${tf.getBackend()} (@tensorflow/tfjs)`, ...(reason ? { fallbackReason: reason } : {}) };
}

/**
 * The tfjs module with the backend for `use` selected (see {@link TfjsUse}).
 *
 * @example
 * const { tf, backend, fallbackReason } = await loadTfjs('train');
 */
export async function loadTfjs(use: TfjsUse = 'reference'): Promise<TfjsInfo> {
  const m = await loadModule();
  const { tf } = m;
  if (m.node && (use === 'reference' || use === 'train')) {
    if (tf.getBackend() !== 'tensorflow') await tf.setBackend('tensorflow');
    return { tf, backend: `${tf.getBackend()} (tfjs-node)` };
  }
  if (use === 'cpu') return useCpu(tf, undefined);
  if (use === 'reference') return useCpu(tf, m.reason);
  const w = await startWasm(tf);
  if ('error' in w) {
    if (use === 'wasm')
      throw new InputError(`the wasm backend of tfjs cannot start: ${w.error}`, { expected: 'npm install @tensorflow/tfjs-backend-wasm@4.22.0' });
    return useCpu(tf, [m.reason, w.error].filter(Boolean).join('; '));
  }
  if (tf.getBackend() !== 'wasm') await tf.setBackend('wasm');
  await tf.ready();
  return { tf, backend: w.label, ...(m.reason && use === 'train' ? { fallbackReason: m.reason } : {}) };
}
