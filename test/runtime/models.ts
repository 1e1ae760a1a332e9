/**
 * Small ONNX models for the runtime tests, built with the project's graph builder so the
 * tests do not depend on the streamify pass: an LSTM step model (state_in/state_out,
 * `streamcell.state`), the same LSTM as a fixed-window sequence model, a two-input step
 * model, and a bare-session reference that steps one stream by hand.
 */
import { A, GraphBuilder, type Dim } from '../../src/export/onnx/builder.js';
import { resolveBackend } from '../../src/runtime/backend-impl.js';
import type { Backend, BackendName, Session, TensorData } from '../../src/runtime/backend.js';

/** Deterministic values in [-scale, scale) (LCG), so failures reproduce. */
export function seeded(n: number, seed: number, scale = 0.5): number[] {
  let s = (seed * 2654435761) >>> 0 || 1;
  return Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s / 2 ** 32 - 0.5) * 2 * scale;
  });
}

export interface LstmSpec {
  hidden?: number;
  input?: number;
  out?: number;
  seed?: number;
}

interface Weights {
  H: number;
  I: number;
  O: number;
  W: number[];
  R: number[];
  B: number[];
  Wd: number[];
  bd: number[];
}

function weights(spec: LstmSpec, inputSize?: number): Weights {
  const H = spec.hidden ?? 8;
  const I = inputSize ?? spec.input ?? 3;
  const O = spec.out ?? 2;
  const seed = spec.seed ?? 1;
  return {
    H,
    I,
    O,
    W: seeded(4 * H * I, seed * 10 + 1, 0.6),
    R: seeded(4 * H * H, seed * 10 + 2, 0.4),
    B: seeded(8 * H, seed * 10 + 3, 0.3),
    Wd: seeded(H * O, seed * 10 + 4, 0.7),
    bd: seeded(O, seed * 10 + 5, 0.2),
  };
}

/** LSTM over time-major `xt` [T, batch, I] with optional initial state; returns [Y_h, Y_c] (each [1, batch, H]). */
function lstm(g: GraphBuilder, w: Weights, xt: string, h0?: string, c0?: string): [string, string] {
  const Wn = g.initializer('W', 'float32', [1, 4 * w.H, w.I], w.W);
  const Rn = g.initializer('R', 'float32', [1, 4 * w.H, w.H], w.R);
  const Bn = g.initializer('B', 'float32', [1, 8 * w.H], w.B);
  const yh = g.uniq('Y_h');
  const yc = g.uniq('Y_c');
  g.node('LSTM', h0 ? [xt, Wn, Rn, Bn, '', h0, c0!] : [xt, Wn, Rn, Bn], { hidden_size: A.i(w.H) }, { outputs: ['', yh, yc] });
  return [yh, yc];
}

function dense(g: GraphBuilder, w: Weights, h: string): void {
  const Wd = g.initializer('Wd', 'float32', [w.H, w.O], w.Wd);
  const bd = g.initializer('bd', 'float32', [w.O], w.bd);
  g.op('Add', [g.op('MatMul', [h, Wd]), bd], {}, { output: 'y' });
  g.addOutput('y', 'float32', ['batch', w.O]);
}

export function stateMeta(H: number): string {
  return JSON.stringify(
    ['h', 'c'].map((k) => ({ name: `lstm.${k}`, input: `state_in.lstm.${k}`, output: `state_out.lstm.${k}`, shape: [H], dtype: 'float32', init: 0 })),
  );
}

/** Step model: x [batch, 1, I] (or `time` symbolic), state_in.lstm.{h,c} [batch, H] → y [batch, O] + state_out. */
export function lstmStepModel(spec: LstmSpec = {}, opts: { timeDim?: Dim; metadata?: Record<string, string> | null } = {}): Uint8Array {
  const w = weights(spec);
  const g = new GraphBuilder(17);
  g.addInput('x', 'float32', ['batch', opts.timeDim ?? 1, w.I]);
  g.addInput('state_in.lstm.h', 'float32', ['batch', w.H]);
  g.addInput('state_in.lstm.c', 'float32', ['batch', w.H]);
  const xt = g.op('Transpose', ['x'], { perm: A.is([1, 0, 2]) });
  const axes = g.i64([0]);
  const [yh, yc] = lstm(g, w, xt, g.op('Unsqueeze', ['state_in.lstm.h', axes]), g.op('Unsqueeze', ['state_in.lstm.c', axes]));
  g.op('Squeeze', [yh, axes], {}, { output: 'state_out.lstm.h' });
  g.op('Squeeze', [yc, axes], {}, { output: 'state_out.lstm.c' });
  dense(g, w, 'state_out.lstm.h');
  g.addOutput('state_out.lstm.h', 'float32', ['batch', w.H]);
  g.addOutput('state_out.lstm.c', 'float32', ['batch', w.H]);
  const metadata = opts.metadata === null ? {} : (opts.metadata ?? { 'streamcell.state': stateMeta(w.H) });
  return g.encode({ irVersion: 8, producerVersion: 'test', metadata });
}

/** The same LSTM as a sequence model over a window: x [batch, window, I] → y [batch, O] (last step). */
export function lstmWindowModel(spec: LstmSpec = {}, window: Dim = 6): Uint8Array {
  const w = weights(spec);
  const g = new GraphBuilder(17);
  g.addInput('x', 'float32', ['batch', window, w.I]);
  const xt = g.op('Transpose', ['x'], { perm: A.is([1, 0, 2]) });
  const [yh] = lstm(g, w, xt);
  dense(g, w, g.op('Squeeze', [yh, g.i64([0])]));
  return g.encode({ irVersion: 8, producerVersion: 'test', metadata: {} });
}

/** Two sample inputs: x [batch, 1, 3] and z [batch, 2] (no time axis), concatenated into an LSTM of input 5. */
export function twoInputStepModel(spec: LstmSpec = {}): Uint8Array {
  const w = weights(spec, 5);
  const g = new GraphBuilder(17);
  g.addInput('x', 'float32', ['batch', 1, 3]);
  g.addInput('z', 'float32', ['batch', 2]);
  g.addInput('state_in.lstm.h', 'float32', ['batch', w.H]);
  g.addInput('state_in.lstm.c', 'float32', ['batch', w.H]);
  const zt = g.op('Unsqueeze', ['z', g.i64([1])]);
  const cat = g.op('Concat', ['x', zt], { axis: A.i(2) });
  const xt = g.op('Transpose', [cat], { perm: A.is([1, 0, 2]) });
  const axes = g.i64([0]);
  const [yh, yc] = lstm(g, w, xt, g.op('Unsqueeze', ['state_in.lstm.h', axes]), g.op('Unsqueeze', ['state_in.lstm.c', axes]));
  g.op('Squeeze', [yh, axes], {}, { output: 'state_out.lstm.h' });
  g.op('Squeeze', [yc, axes], {}, { output: 'state_out.lstm.c' });
  dense(g, w, 'state_out.lstm.h');
  g.addOutput('state_out.lstm.h', 'float32', ['batch', w.H]);
  g.addOutput('state_out.lstm.c', 'float32', ['batch', w.H]);
  return g.encode({ irVersion: 8, producerVersion: 'test', metadata: { 'streamcell.state': stateMeta(w.H) } });
}

/** A sensor-like input: smooth per-stream signal, deterministic. */
export function signal(stream: number, steps: number, features: number): Float32Array[] {
  return Array.from({ length: steps }, (_, t) => Float32Array.from({ length: features }, (_, f) => Math.sin(0.21 * t + 0.7 * stream + 1.3 * f) + 0.1 * stream));
}

/** Steps one stream through a step model with a bare session; returns `y` at every step. */
export async function bareStepRun(
  model: Uint8Array,
  steps: Record<string, Float32Array>[],
  opts: { backend?: BackendName; hidden: number; dims?: Record<string, number[]> } = { hidden: 8 },
): Promise<Float32Array[]> {
  const { backend } = await resolveBackend([opts.backend ?? 'onnxruntime-node']);
  const s: Session = await backend.createSession(model);
  try {
    const H = opts.hidden;
    let h: Float32Array = new Float32Array(H);
    let c: Float32Array = new Float32Array(H);
    const ys: Float32Array[] = [];
    for (const step of steps) {
      const feeds: Record<string, TensorData> = {
        'state_in.lstm.h': { type: 'float32', data: h, dims: [1, H] },
        'state_in.lstm.c': { type: 'float32', data: c, dims: [1, H] },
      };
      for (const [name, v] of Object.entries(step)) feeds[name] = { type: 'float32', data: v, dims: opts.dims?.[name] ?? [1, 1, v.length] };
      const res = await s.run(feeds);
      h = res['state_out.lstm.h']!.data as Float32Array;
      c = res['state_out.lstm.c']!.data as Float32Array;
      ys.push(res.y!.data as Float32Array);
    }
    return ys;
  } finally {
    await s.release();
  }
}

/** Runs a window model on one window [W][I] with a bare session. */
export async function bareWindowRun(model: Uint8Array, windows: Float32Array[][]): Promise<Float32Array[]> {
  const { backend } = await resolveBackend(['onnxruntime-node']);
  const s = await backend.createSession(model);
  try {
    const out: Float32Array[] = [];
    for (const win of windows) {
      const I = win[0]!.length;
      const data = new Float32Array(win.length * I);
      win.forEach((row, t) => data.set(row, t * I));
      const res = await s.run({ x: { type: 'float32', data, dims: [1, win.length, I] } });
      out.push(res.y!.data as Float32Array);
    }
    return out;
  } finally {
    await s.release();
  }
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/**
 * The onnxruntime-node backend with each session's `run` replaced by `run(inner, feeds,
 * names)`: failures and delays injected around the real run.
 */
export async function wrappedBackend(
  run: (inner: Session, feeds: Record<string, TensorData>, names?: readonly string[]) => Promise<Record<string, TensorData>>,
): Promise<Backend> {
  const { backend: real } = await resolveBackend(['onnxruntime-node']);
  return {
    name: real.name,
    version: real.version,
    executionProviders: real.executionProviders,
    async createSession(m, o) {
      const s = await real.createSession(m, o);
      return { inputNames: s.inputNames, outputNames: s.outputNames, release: () => s.release(), run: (feeds, names) => run(s, feeds, names) };
    },
  };
}
