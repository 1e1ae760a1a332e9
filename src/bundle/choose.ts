/**
 * Which step model a bundle serves by default: its float step model or its int8 twin, and which
 * int8 variant becomes the twin. Decided by a latency measurement on the machine that builds the
 * bundle (float and every int8 candidate in the same interleaved rounds), unless `prefer` says
 * otherwise. The measurement is injectable so the decision can be tested deterministically.
 */
import { measureLatencies, noSlower, SAME_SPEED, type MeasureLatencies } from '../export/quantize/latency.js';
import { InputError } from '../errors.js';

import { STEP_PREFERENCES, type StepPreference } from './preference.js';

export { STEP_PREFERENCES, type StepPreference };

/** An int8 step model the bundle could carry as `step_int8`. */
export interface StepCandidate {
  /** Key in the manifest's latency table, e.g. `int8_float_kernels`. */
  name: string;
  /** For people, e.g. "int8, float kernels (weights folded at load)". */
  label: string;
  bytes: Uint8Array;
}

/** The decision and what it was based on (written to the manifest as `step_choice`). */
export interface StepChoice {
  /** The role runtimes load when not told otherwise. */
  defaultRole: 'step' | 'step_int8';
  /** The candidate that became `step_int8`. */
  int8: StepCandidate;
  prefer: StepPreference;
  /** p50 per step, batch 1, µs: `float` and each candidate by name. */
  latencyUs: Record<string, number>;
  /** Each candidate's latency / float's, the median of same-round ratios. */
  ratio: Record<string, number>;
  cpu: string;
  reason: string;
}

/**
 * Picks the int8 twin and the default. The twin: under `size` the smallest file; otherwise the
 * fastest candidate, where candidates within {@link SAME_SPEED} of the fastest count as equally
 * fast and the first listed wins (list the one you would rather ship first). The default:
 * `float` → step, `int8`/`size` → step_int8, `speed` → step_int8 when it is no slower than float
 * ({@link noSlower}: ratio ≤ 1 + SAME_SPEED, the same speed within noise, and smaller), else step.
 */
export async function chooseStep(
  float: Uint8Array,
  candidates: StepCandidate[],
  prefer: StepPreference = 'speed',
  measure: MeasureLatencies = (ms) => measureLatencies(ms),
): Promise<StepChoice> {
  if (!STEP_PREFERENCES.includes(prefer)) throw new InputError(`unknown preference '${prefer}'`, { option: 'prefer', expected: STEP_PREFERENCES.join(' | ') });
  if (candidates.length === 0) throw new Error('chooseStep: no int8 candidate');
  const m = await measure([float, ...candidates.map((c) => c.bytes)]);
  const latencyUs: Record<string, number> = { float: m.us[0]! };
  const ratio: Record<string, number> = {};
  candidates.forEach((c, i) => {
    latencyUs[c.name] = m.us[i + 1]!;
    ratio[c.name] = m.ratios[i + 1]!;
  });
  let int8: StepCandidate;
  if (prefer === 'size') int8 = candidates.reduce((a, b) => (b.bytes.byteLength < a.bytes.byteLength ? b : a));
  else {
    const best = Math.min(...candidates.map((c) => ratio[c.name]!));
    int8 = candidates.find((c) => ratio[c.name]! <= best + SAME_SPEED)!;
  }
  const r = ratio[int8.name]!;
  const speed = `${int8.label} runs at ${r.toFixed(2)}× float's latency on ${m.cpu}`;
  let defaultRole: StepChoice['defaultRole'];
  let reason: string;
  if (prefer === 'float' || prefer === 'int8') {
    defaultRole = prefer === 'float' ? 'step' : 'step_int8';
    reason = `--prefer ${prefer}; ${speed}`;
  } else if (prefer === 'size') {
    defaultRole = 'step_int8';
    reason = `--prefer size: the smallest int8 model; ${speed}`;
  } else if (noSlower(r)) {
    defaultRole = 'step_int8';
    reason = `--prefer speed: ${speed}, no slower than float (within ${SAME_SPEED * 100}%), and smaller`;
  } else {
    defaultRole = 'step';
    reason = `--prefer speed: ${speed}, slower than float, so float is the default (int8 stays in the bundle for size)`;
  }
  return { defaultRole, int8, prefer, latencyUs, ratio, cpu: m.cpu, reason };
}
