/**
 * The one module that imports onnxruntime. Backends are loaded lazily in priority order;
 * a backend whose native binary is missing (e.g. 32-bit ARM) is skipped with its reason.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { Backend, BackendChoice, BackendName, BackendRecord, Session, SessionOptions, TensorData } from './backend.js';
import { BACKEND_NAMES } from './backend.js';
import { InputError, UnsupportedError } from '../errors.js';
import { createWorkerSession } from './worker-session.js';

type Ort = typeof import('onnxruntime-common');

async function loadOrt(name: BackendName): Promise<Ort> {
  if (name === 'onnxruntime-node') {
    const m = (await import('onnxruntime-node')) as unknown as Ort & { default?: Ort };
    return (m.InferenceSession ? m : m.default) as Ort;
  }
  const m = (await import('onnxruntime-web')) as unknown as Ort & { default?: Ort };
  const ort = (m.InferenceSession ? m : m.default) as Ort;
  // Node has no cross-origin-isolated SharedArrayBuffer threads story we want: one thread.
  ort.env.wasm.numThreads = 1;
  return ort;
}

/** onnxruntime-node's native session, as its own session handler drives it. */
interface NativeSession {
  loadModel(buffer: ArrayBufferLike, byteOffset: number, byteLength: number, options: object): void;
  readonly inputMetadata: readonly { name: string }[];
  readonly outputMetadata: readonly { name: string }[];
  run(feeds: object, fetches: Record<string, null>, options: object): Record<string, { type: string; data: TensorData['data']; dims: readonly number[] }>;
  dispose(): void;
}

interface NativeBinding {
  binding: { InferenceSession: new () => NativeSession };
  initOrt(): void;
}

let nativeLoaded: NativeBinding | null | undefined;

/**
 * onnxruntime-node's native binding, when this version exposes it as 1.30 does (dist/binding.js:
 * `binding.InferenceSession`, `initOrt`), else null. Its public `session.run` is this native call
 * deferred with `setImmediate`, wrapped in validation and tensor re-wrapping that cost about a
 * third of a small model's step; streamcell calls the native session the same way without them.
 * STREAMCELL_ORT_PUBLIC=1 uses the public API instead.
 */
function nativeBinding(): NativeBinding | null {
  if (nativeLoaded === undefined) {
    nativeLoaded = null;
    if (process.env.STREAMCELL_ORT_PUBLIC !== '1') {
      try {
        const req = createRequire(import.meta.url);
        const m = req(join(dirname(req.resolve('onnxruntime-node')), 'binding.js')) as NativeBinding;
        if (typeof m?.binding?.InferenceSession === 'function' && typeof m.initOrt === 'function') nativeLoaded = m;
      } catch {
        // Another layout: the public API.
      }
    }
  }
  return nativeLoaded;
}

/** Whether onnxruntime-node sessions run on its native binding here (see {@link nativeBinding}). */
export function usesNativeBinding(): boolean {
  return nativeBinding() !== null;
}

/** A session on the native binding: feeds as onnxruntime tensors, run deferred with setImmediate like onnxruntime-node's own. */
function nativeSession(ns: NativeSession, ort: Ort): Session {
  const inputNames = ns.inputMetadata.map((m) => m.name);
  const outputNames = ns.outputMetadata.map((m) => m.name);
  const allFetches: Record<string, null> = Object.fromEntries(outputNames.map((n) => [n, null]));
  const noOptions = {};
  let released = false;
  return {
    inputNames,
    outputNames,
    run(feeds: Record<string, TensorData>, names?: readonly string[]) {
      const ortFeeds: Record<string, InstanceType<Ort['Tensor']>> = {};
      for (const k in feeds) {
        const t = feeds[k]!;
        ortFeeds[k] = new ort.Tensor(t.type as 'float32', t.data as Float32Array, t.dims);
      }
      const fetches = names ? Object.fromEntries(names.map((n) => [n, null])) : allFetches;
      return new Promise((resolve, reject) => {
        setImmediate(() => {
          if (released) return reject(new Error('the session was released'));
          try {
            const res = ns.run(ortFeeds, fetches, noOptions);
            const out: Record<string, TensorData> = {};
            for (const k in res) {
              const t = res[k]!;
              out[k] = { type: t.type as TensorData['type'], data: t.data, dims: t.dims };
            }
            resolve(out);
          } catch (e) {
            reject(e);
          }
        });
      });
    },
    async release() {
      if (released) return;
      released = true;
      ns.dispose();
    },
  };
}

class OrtBackend implements Backend {
  constructor(
    readonly name: BackendName,
    private readonly ort: Ort,
  ) {}

  get version(): string {
    const v = this.ort.env.versions as Record<string, string | undefined>;
    return v.node ?? v.web ?? v.common ?? 'unknown';
  }

  get executionProviders(): readonly string[] {
    if (this.name === 'onnxruntime-web') return ['wasm'];
    const list = (this.ort as unknown as { listSupportedBackends?: () => { name: string }[] }).listSupportedBackends?.() ?? [{ name: 'cpu' }];
    return list.map((b) => b.name);
  }

  /** onnxruntime's session options for ours; refuses an execution provider this build lacks. */
  private ortOptions(options: SessionOptions): { ortOptions: Record<string, unknown>; wanted: string[] } {
    const base = this.name === 'onnxruntime-node' ? 'cpu' : 'wasm';
    const wanted = (options.executionProviders ?? []).filter((p) => p !== base);
    const missing = wanted.filter((p) => !this.executionProviders.includes(p));
    if (missing.length) {
      throw new InputError(
        `${this.name} ${this.version} on ${process.platform}-${process.arch} has no execution provider ${missing.map((m) => `'${m}'`).join(', ')}`,
        {
          field: 'executionProviders',
          expected: `one of: ${this.executionProviders.join(', ')} (onnxruntime-node's npm build has no CUDA/TensorRT provider on arm64, e.g. Jetson)`,
        },
      );
    }
    const ortOptions = {
      executionProviders: [...wanted, base],
      intraOpNumThreads: options.intraOpThreads ?? 1,
      interOpNumThreads: 1,
      graphOptimizationLevel: options.graphOptimization ?? 'all',
      ...(options.optimizedModelPath && this.name === 'onnxruntime-node' ? { optimizedModelFilePath: options.optimizedModelPath } : {}),
      // onnxruntime's KleidiAI kernels (ARM CPUs with SME) compute dynamic-int8 MatMul/LSTM
      // differently from every other CPU: under emulation they were 0.77 off the NEON, x86 and
      // WASM results. A fleet must get the same prediction on every board, so the MLAS kernels
      // (the ones every Raspberry Pi and Jetson runs) are used everywhere.
      ...(this.name === 'onnxruntime-node' ? { extra: { mlas: { disable_kleidiai: '1' } } } : {}),
    };
    return { ortOptions, wanted };
  }

  /** A session that did not start because of a provider listed by the build whose libraries are not on this machine (CUDA, TensorRT). */
  private providerError(e: unknown, wanted: string[]): unknown {
    if (wanted.length === 0) return e;
    return new InputError(`execution provider ${wanted.map((w) => `'${w}'`).join(', ')} did not start: ${(e as Error).message.split('\n')[0]}`, {
      field: 'executionProviders',
      expected: `a provider whose libraries are installed here; this build lists ${this.executionProviders.join(', ')}, and 'cpu' always works`,
    });
  }

  async createSession(model: Uint8Array, options: SessionOptions = {}): Promise<Session> {
    const ort = this.ort;
    const { ortOptions, wanted } = this.ortOptions(options);
    const native = this.name === 'onnxruntime-node' ? nativeBinding() : undefined;
    if (native) {
      let ns: NativeSession;
      try {
        native.initOrt();
        ns = new native.binding.InferenceSession();
        ns.loadModel(model.buffer, model.byteOffset, model.byteLength, ortOptions);
      } catch (e) {
        throw this.providerError(e, wanted);
      }
      return nativeSession(ns, ort);
    }
    let session: Awaited<ReturnType<Ort['InferenceSession']['create']>>;
    try {
      session = await ort.InferenceSession.create(model, ortOptions as never);
    } catch (e) {
      throw this.providerError(e, wanted);
    }
    return {
      inputNames: session.inputNames,
      outputNames: session.outputNames,
      async run(feeds: Record<string, TensorData>, outputNames?: readonly string[]) {
        const ortFeeds: Record<string, InstanceType<Ort['Tensor']>> = {};
        for (const [k, t] of Object.entries(feeds)) ortFeeds[k] = new ort.Tensor(t.type as 'float32', t.data as Float32Array, t.dims);
        const res = outputNames ? await session.run(ortFeeds, outputNames as string[]) : await session.run(ortFeeds);
        const out: Record<string, TensorData> = {};
        for (const [k, t] of Object.entries(res)) out[k] = { type: t.type as TensorData['type'], data: t.data as TensorData['data'], dims: t.dims };
        return out;
      },
      release: () => session.release(),
    };
  }

  /** The same session in a worker thread (see worker-session.ts). */
  async createWorkerSession(model: Uint8Array, options: SessionOptions = {}): Promise<Session> {
    const { ortOptions, wanted } = this.ortOptions(options);
    try {
      return await createWorkerSession(model, {
        ortPath: createRequire(import.meta.url).resolve(this.name),
        web: this.name === 'onnxruntime-web',
        options: ortOptions,
      });
    } catch (e) {
      throw this.providerError(e, wanted);
    }
  }
}

const cache = new Map<BackendName, Promise<Backend>>();
/** The native probe's verdict in this process, reported again when the loaded backend is reused. */
let lastProbe: BackendRecord['probe'];

function load(name: BackendName): Promise<Backend> {
  let p = cache.get(name);
  if (!p) {
    p = loadOrt(name).then((ort) => new OrtBackend(name, ort));
    p.catch(() => cache.delete(name));
    cache.set(name, p);
  }
  return p;
}

/**
 * Returns the first backend that loads, in `order` (default: native, then WASM), with a
 * record of what was skipped. Throws listing every cause when none loads.
 *
 * Without an explicit `order` (or with `{ prefer }`), onnxruntime-node is probed in a child
 * process first (probe.ts): a binary that would crash this process is skipped, not loaded. An
 * explicit order or `{ force }` loads exactly what it names.
 */
export async function resolveBackend(order?: readonly BackendName[] | BackendChoice): Promise<{ backend: Backend; record: BackendRecord }> {
  const choice: BackendChoice = Array.isArray(order)
    ? { force: (order as BackendName[]).length === 1 ? (order as BackendName[])[0] : undefined, prefer: order as BackendName[] }
    : ((order as BackendChoice | undefined) ?? {});
  const forced = choice.force !== undefined;
  const list: readonly BackendName[] = forced ? [choice.force!] : [...new Set([...(choice.prefer ?? []), ...BACKEND_NAMES])];
  const probeIt = !forced && !Array.isArray(order);
  const skipped: BackendRecord['skipped'] = [];
  let probe: BackendRecord['probe'];
  for (const name of list) {
    if (name === 'onnxruntime-node' && probeIt && cache.has(name))
      probe = lastProbe; // loaded after a probe in this process
    else if (name === 'onnxruntime-node' && probeIt) {
      const { probeNative } = await import('./probe.js');
      const p = await probeNative();
      probe = lastProbe = { ok: p.ok, reason: p.reason, cached: p.cached, ms: p.ms };
      if (!p.ok) {
        skipped.push({ name, reason: `native probe: ${p.reason}${p.cached ? ` (remembered in ${p.cacheFile}; delete it to probe again)` : ''}` });
        continue;
      }
    }
    try {
      const backend = await load(name);
      return { backend, record: { name, version: backend.version, skipped, how: forced ? 'forced' : 'preferred', probe } };
    } catch (e) {
      skipped.push({ name, reason: (e as Error).message.split('\n')[0]! });
    }
  }
  throw new UnsupportedError(`no inference backend could be loaded on this machine:\n${skipped.map((s) => `  ${s.name}: ${s.reason}`).join('\n')}`, {
    field: 'backend',
    supported: [...BACKEND_NAMES],
  });
}
