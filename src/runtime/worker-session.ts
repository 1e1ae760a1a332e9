/**
 * Sessions in worker threads. onnxruntime-node runs a session on the calling JavaScript
 * thread (its async `run` is the synchronous kernel call deferred with `setImmediate`), so
 * two sessions in one thread never compute at the same time. A session in a worker thread
 * computes while the main thread validates, batches and delivers, and N of them use N cores.
 *
 * The worker is plain CommonJS run with `eval` that requires the onnxruntime package by its
 * resolved path: it needs none of streamcell's modules (so it works the same from the
 * sources under test and from the built package). Feeds are copied into fresh buffers and
 * transferred; outputs come back transferred. One call in flight per worker.
 */
import { Worker } from 'node:worker_threads';
import type { Session, TensorData } from './backend.js';

const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { ortPath, model, options, web } = workerData;
let ort = require(ortPath);
if (!ort.InferenceSession && ort.default) ort = ort.default;
if (web) ort.env.wasm.numThreads = 1;
ort.InferenceSession.create(model, options).then(
  (session) => {
    parentPort.postMessage({ ready: true, inputNames: session.inputNames, outputNames: session.outputNames });
    parentPort.on('message', async (m) => {
      if (m.release) {
        await session.release();
        parentPort.postMessage({ released: true });
        return;
      }
      try {
        const feeds = {};
        for (const k of Object.keys(m.feeds)) {
          const t = m.feeds[k];
          feeds[k] = new ort.Tensor(t.type, t.data, t.dims);
        }
        const res = m.outputNames ? await session.run(feeds, m.outputNames) : await session.run(feeds);
        const out = {};
        const transfer = [];
        for (const k of Object.keys(res)) {
          const t = res[k];
          out[k] = { type: t.type, data: t.data, dims: t.dims };
          if (!transfer.includes(t.data.buffer)) transfer.push(t.data.buffer);
        }
        parentPort.postMessage({ out }, transfer);
      } catch (e) {
        parentPort.postMessage({ error: String((e && e.message) || e) });
      }
    });
  },
  (e) => parentPort.postMessage({ error: String((e && e.message) || e) }),
);
`;

/** What the worker needs to open the session: the onnxruntime entry point and the session options. */
export interface WorkerSessionSpec {
  /** Resolved path of the onnxruntime package's CommonJS entry. */
  ortPath: string;
  /** onnxruntime-web needs its thread count pinned. */
  web: boolean;
  /** onnxruntime `InferenceSession.create` options (plain data). */
  options: Record<string, unknown>;
}

/**
 * Opens `model` in a new worker thread. Rejects with onnxruntime's message when the model does
 * not load there (the worker is then stopped).
 */
export function createWorkerSession(model: Uint8Array, spec: WorkerSessionSpec): Promise<Session> {
  const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { ortPath: spec.ortPath, model, options: spec.options, web: spec.web } });
  // Settled by the worker's next message (one call in flight at a time).
  let waiting: { resolve: (v: Record<string, TensorData>) => void; reject: (e: Error) => void } | undefined;
  let released: (() => void) | undefined;
  let dead: Error | undefined;
  const fail = (e: Error) => {
    dead ??= e;
    waiting?.reject(e);
    waiting = undefined;
  };
  return new Promise<Session>((resolve, reject) => {
    const onReady = (m: { ready?: boolean; error?: string; inputNames?: string[]; outputNames?: string[] }) => {
      if (m.error !== undefined || !m.ready) {
        void worker.terminate();
        reject(new Error(m.error ?? 'the session worker did not start'));
        return;
      }
      worker.off('error', onStartError);
      worker.on('message', onMessage);
      worker.on('error', (e) => fail(e));
      worker.on('exit', (code) => fail(new Error(`the session worker exited (code ${code})`)));
      resolve(session(m.inputNames!, m.outputNames!));
    };
    const onStartError = (e: Error) => reject(e);
    worker.once('message', onReady);
    worker.once('error', onStartError);
  });

  function onMessage(m: { out?: Record<string, TensorData>; error?: string; released?: boolean }): void {
    if (m.released) {
      released?.();
      return;
    }
    const w = waiting;
    waiting = undefined;
    if (w === undefined) return;
    if (m.error !== undefined) w.reject(new Error(m.error));
    else w.resolve(m.out!);
  }

  function session(inputNames: string[], outputNames: string[]): Session {
    return {
      inputNames,
      outputNames,
      run(feeds: Record<string, TensorData>, names?: readonly string[]): Promise<Record<string, TensorData>> {
        if (dead) return Promise.reject(dead);
        if (waiting) return Promise.reject(new Error('a worker session runs one call at a time'));
        const copy: Record<string, TensorData> = {};
        const transfer: ArrayBuffer[] = [];
        for (const k in feeds) {
          const t = feeds[k]!;
          // A fresh buffer per call: the feed may be a view on a larger table, and it is transferred.
          const data = t.data.slice();
          copy[k] = { type: t.type, data, dims: t.dims };
          transfer.push(data.buffer as ArrayBuffer);
        }
        return new Promise((resolve, reject) => {
          waiting = { resolve, reject };
          worker.postMessage({ feeds: copy, outputNames: names }, transfer);
        });
      },
      async release(): Promise<void> {
        if (dead) return;
        await new Promise<void>((res) => {
          released = res;
          worker.postMessage({ release: true });
        });
        dead = new Error('the session was released');
        await worker.terminate();
      },
    };
  }
}
