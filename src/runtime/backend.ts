/**
 * The inference backend contract. Everything above the runtime sees these small interfaces;
 * `backend-impl.ts` is the only module that imports onnxruntime-node / onnxruntime-web.
 *
 * Resolution follows onnxruntime's own `backend-impl.ts`: a priority list, lazy
 * initialisation, a backend that fails to load is skipped, and when none works the error
 * lists every cause.
 */

export type BackendName = 'onnxruntime-node' | 'onnxruntime-web';
export const BACKEND_NAMES: readonly BackendName[] = ['onnxruntime-node', 'onnxruntime-web'];

export type TensorType = 'float32' | 'int32' | 'int64' | 'float16' | 'int8' | 'uint8' | 'bool';

/** A tensor handed to or returned by a session. */
export interface TensorData {
  type: TensorType;
  data: Float32Array | Int32Array | BigInt64Array | Uint16Array | Int8Array | Uint8Array;
  dims: readonly number[];
}

/** Session settings: threads, execution providers, graph optimisation. */
export interface SessionOptions {
  /** Threads inside one op (default 1: predictable latency on small boards). */
  intraOpThreads?: number;
  /** Graph optimisation level (default 'all'). */
  graphOptimization?: 'disabled' | 'basic' | 'extended' | 'all';
  /**
   * onnxruntime execution providers to try in order, e.g. ['cuda'] (the CPU provider always comes
   * last). Refused with the list of what this onnxruntime build has when one is missing.
   */
  executionProviders?: readonly string[];
  /**
   * onnxruntime-node: write the graph as onnxruntime runs it (after its optimisations, e.g.
   * constants folded) to this file, to check what a model costs per run.
   */
  optimizedModelPath?: string;
}

/** An inference session of one model: its input and output names, `run`, and `release`. */
export interface Session {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  run(feeds: Record<string, TensorData>, outputNames?: readonly string[]): Promise<Record<string, TensorData>>;
  release(): Promise<void>;
}

/** An inference backend (onnxruntime-node or onnxruntime-web): creates sessions from ONNX bytes. */
export interface Backend {
  readonly name: BackendName;
  /** Library version of the backend, e.g. "1.30.0". */
  readonly version: string;
  /** Execution providers this build of the backend has (e.g. cpu; cuda where built in). */
  readonly executionProviders: readonly string[];
  createSession(model: Uint8Array, options?: SessionOptions): Promise<Session>;
  /**
   * The same session in a worker thread, so that it computes while the calling thread does
   * other work; where absent, the backend cannot run in a worker.
   */
  createWorkerSession?(model: Uint8Array, options?: SessionOptions): Promise<Session>;
}

/** Which backend is in use, and why the ones before it were skipped. */
export interface BackendRecord {
  name: BackendName;
  version: string;
  skipped: { name: BackendName; reason: string }[];
  /** `forced` when the caller named the backend; `preferred` when it was chosen from a preference order. */
  how: 'forced' | 'preferred';
  /** The native probe's verdict, when one was needed (see probe.ts). */
  probe?: { ok: boolean; reason?: string; cached: boolean; ms: number };
}

/** How to pick a backend: force one (no fallback, no probe), or prefer an order (probe, fall back). */
export interface BackendChoice {
  force?: BackendName;
  prefer?: readonly BackendName[];
}
