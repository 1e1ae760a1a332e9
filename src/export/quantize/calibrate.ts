/**
 * Activation ranges for int8-static: the model runs on real inputs (a CSV through the model's
 * preprocessing) with the tensors to quantize exposed as extra outputs. MinMax keeps the
 * extremes; percentile clips the tails (robust to a few outliers).
 */
import { stepRow, windowBatch, type Dataset } from '../../data/evaluate.js';
import type { PreprocessingJson } from '../../data/preprocessing.js';
import { decodeModel, encodeModel, type ModelProto } from '../../onnx/proto.js';
import { resolveBackend } from '../../runtime/backend-impl.js';
import type { BackendName } from '../../runtime/backend.js';
import { readModelInfo } from '../../runtime/step-model.js';
import { stepOverSequence } from '../../runtime/step-sequence.js';
import type { Ranges } from './passes.js';

export interface CalibrationOptions {
  method: 'minmax' | 'percentile';
  /** For 'percentile': the two-sided coverage, e.g. 99.99. */
  percentile?: number;
  /** Upper bound on windows (sequence models) or steps (step models) used. */
  maxSamples?: number;
  backend?: BackendName;
}

const RESERVOIR = 20000;

class Stat {
  min = Infinity;
  max = -Infinity;
  seen = 0;
  readonly sample: number[] = [];
  add(d: ArrayLike<number>, rand: () => number): void {
    for (let i = 0; i < d.length; i++) {
      const v = d[i]!;
      if (!Number.isFinite(v)) continue;
      if (v < this.min) this.min = v;
      if (v > this.max) this.max = v;
      this.seen++;
      if (this.sample.length < RESERVOIR) this.sample.push(v);
      else {
        const j = Math.floor(rand() * this.seen);
        if (j < RESERVOIR) this.sample[j] = v;
      }
    }
  }
}

export async function calibrate(
  model: Uint8Array,
  targets: string[],
  pre: PreprocessingJson,
  data: Dataset,
  opts: CalibrationOptions,
): Promise<{ ranges: Ranges; samples: number }> {
  const m = decodeModel(model);
  const existing = new Set((m.graph!.output ?? []).map((o) => o.name));
  for (const t of targets) if (!existing.has(t)) m.graph!.output!.push({ name: t, type: { tensorType: { elemType: 1 } } });
  const probe = encodeModel(m as ModelProto);
  const info = readModelInfo(model);
  const { backend } = await resolveBackend(opts.backend ? [opts.backend] : undefined);
  const session = await backend.createSession(probe);
  const stats = new Map(targets.map((t) => [t, new Stat()]));
  let seed = 12345;
  const rand = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 4294967296;
  const W = pre.window;
  const T = data.table.rows;
  const inName = info.sampleInputs[0]!.name;
  let samples = 0;
  try {
    if (info.kind === 'step') {
      const rank = info.sampleInputs[0]!.dims.length;
      const steps = Math.min(T, opts.maxSamples ?? 5000);
      await stepOverSequence(session, info, steps, (t) => ({ [inName]: stepRow(data, t, rank) }), {
        onStep: (_t, r) => {
          for (const [name, st] of stats) st.add(r[name]!.data as Float32Array, rand);
          samples++;
        },
      });
    } else {
      const positions: number[] = [];
      const stride = Math.max(1, Math.floor((T - W) / (opts.maxSamples ?? 2000)));
      for (let t = W; t <= T; t += stride) positions.push(t);
      const B = 128;
      for (let i = 0; i < positions.length; i += B) {
        const chunk = positions.slice(i, i + B);
        const r = await session.run({ [inName]: windowBatch(data, chunk, W) });
        for (const [name, st] of stats) st.add(r[name]!.data as Float32Array, rand);
        samples += chunk.length;
      }
    }
  } finally {
    await session.release();
  }
  const ranges: Ranges = new Map();
  for (const [name, st] of stats) {
    if (st.seen === 0) continue;
    if (opts.method === 'minmax') ranges.set(name, { min: st.min, max: st.max });
    else {
      const p = opts.percentile ?? 99.99;
      const sorted = [...st.sample].sort((a, b) => a - b);
      const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.round(q * (sorted.length - 1))))]!;
      ranges.set(name, { min: at((100 - p) / 200), max: at(1 - (100 - p) / 200) });
    }
  }
  return { ranges, samples };
}
