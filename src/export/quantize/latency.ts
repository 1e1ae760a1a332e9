/**
 * Latency of several models on this CPU, measured in the same process in interleaved rounds
 * (the order rotates every round), so that load from other processes and frequency changes hit
 * every model alike. The ratios are what can be compared; absolute times on a shared machine
 * are not. onnxruntime picks its kernels by CPUID (AVX2, AVX-512 VNNI, NEON…): a quantized
 * model's speed against its float model is a property of the CPU it runs on.
 */
import { cpus } from 'node:os';
import type { PreprocessingJson } from '../../data/preprocessing.js';
import { resolveBackend } from '../../runtime/backend-impl.js';
import type { BackendName } from '../../runtime/backend.js';
import { readModelInfo } from '../../runtime/step-model.js';
import { modelFeeds } from '../onnx/feeds.js';
import type { QuantizeReport } from './index.js';

/** What {@link measureLatencies} measured: per model the p50 of one batch-1 run, and its ratio to the first model. */
export interface Latencies {
  /** p50 per run (one step for step models, one window otherwise), µs, in the order given. */
  us: number[];
  /** Median over the rounds of (model k's p50 / model 0's p50 in the same round); ratios[0] = 1. */
  ratios: number[];
  rounds: number;
  /** The CPU it was measured on (os.cpus()[0].model). */
  cpu: string;
}

/** A function that measures latencies; injectable where a test must decide deterministically. */
export type MeasureLatencies = (models: Uint8Array[]) => Promise<Latencies>;

const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]!;

/**
 * Measures the batch-1 latency of `models` (same inputs or not: each gets its own random
 * feeds) within about `budgetMs` (default 1 s, after warm-up), in rounds that visit every model.
 */
export async function measureLatencies(
  models: Uint8Array[],
  opts: { pre?: PreprocessingJson; backend?: BackendName; budgetMs?: number } = {},
): Promise<Latencies> {
  const budget = opts.budgetMs ?? 1000;
  const { backend } = await resolveBackend(opts.backend ? [opts.backend] : undefined);
  const sessions = [];
  try {
    for (const m of models) sessions.push(await backend.createSession(m));
    const feeds = models.map((m) => {
      const info = readModelInfo(m);
      return modelFeeds(m, { batch: 1, time: info.kind === 'step' ? 1 : (opts.pre?.window ?? 32), other: 1 }, 3);
    });
    // Warm-up: up to 20 runs or 0.2 s each; its mean sizes the rounds.
    let perRunMs = 0;
    for (let k = 0; k < models.length; k++) {
      const t0 = performance.now();
      let n = 0;
      while (n < 20 && (n < 2 || performance.now() - t0 < 200)) {
        await sessions[k]!.run(feeds[k]!);
        n++;
      }
      perRunMs = Math.max(perRunMs, (performance.now() - t0) / n);
    }
    // About 15 rounds; each model runs `runs` times a round (5–50), a slow model fewer rounds.
    const runs = Math.max(1, Math.min(50, Math.floor(budget / 15 / models.length / Math.max(perRunMs, 1e-3))));
    const samples: number[][] = models.map(() => []);
    const start = performance.now();
    let rounds = 0;
    while (rounds < 3 || (rounds < 60 && performance.now() - start < budget)) {
      for (let j = 0; j < models.length; j++) {
        const k = (j + rounds) % models.length;
        const t: number[] = [];
        for (let i = 0; i < runs; i++) {
          const t0 = process.hrtime.bigint();
          await sessions[k]!.run(feeds[k]!);
          t.push(Number(process.hrtime.bigint() - t0) / 1e3);
        }
        samples[k]!.push(median(t));
      }
      rounds++;
    }
    return {
      us: samples.map(median),
      ratios: samples.map((s) => median(s.map((v, r) => v / samples[0]![r]!))),
      rounds,
      cpu: cpus()[0]?.model ?? 'unknown CPU',
    };
  } finally {
    for (const s of sessions) await s.release();
  }
}

/**
 * Ratios within this of 1 are "the same speed": interleaved medians on a shared machine still
 * move by a few percent from run to run.
 */
export const SAME_SPEED = 0.03;

/** Whether a latency ratio (to float) counts as no slower: ≤ 1 + SAME_SPEED, as printed (2 decimals). */
export function noSlower(ratio: number): boolean {
  return Math.round(ratio * 100) / 100 <= 1 + SAME_SPEED;
}

/** One sentence on a quantized model's speed against its float model, e.g. "int8 is 1.20× SLOWER than float on this CPU …". */
export function latencyVerdict(label: string, ratio: number, hint = ''): string {
  const r = ratio.toFixed(2);
  if (Math.round(ratio * 100) / 100 < 1 - SAME_SPEED) return `${label}: ${r}× float latency on this CPU (faster)`;
  if (noSlower(ratio)) return `${label}: ${r}× float latency on this CPU (the same speed, within measurement noise)`;
  return `${label} is ${r}× SLOWER than float on this CPU: use it for size only${hint}`;
}

/** The latency sentence for a quantized model, with the way out when dynamic int8 is the slower one. */
export function speedVerdict(q: Pick<QuantizeReport, 'mode' | 'kernels'>, ratio: number): string {
  const label = q.mode === 'int8' ? `int8 (${q.kernels ?? 'integer'} kernels)` : q.mode;
  const hint =
    q.mode === 'int8' && q.kernels !== 'float' ? ', or --kernels float (the same int8 weights, folded to float when the model loads: float speed)' : '';
  return latencyVerdict(label, ratio, hint);
}
