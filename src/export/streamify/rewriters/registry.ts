/**
 * Streamify rewriters by op type, like the converter registry: a new pattern is one module
 * here and its test. Ops not listed are per-time-step (MatMul, activations, normalisation over
 * features) and pass through unchanged; the numerical check catches anything that is not.
 */
import type { Rewriter } from '../types.js';
import { quantizedLstm, recurrence } from './recurrent.js';
import { reverseSlice } from './reverse.js';
import { scan } from './scan.js';
import { causalWindow } from './window.js';

const ALL: Rewriter[] = [recurrence, quantizedLstm, scan, causalWindow, reverseSlice];

const byKey = new Map<string, Rewriter>();
for (const r of ALL) for (const op of r.ops) byKey.set(`${r.domain ?? ''}:${op}`, r);

/** The rewriter for a node, or undefined when the node is per-time-step. */
export function rewriterFor(opType: string, domain: string | null | undefined): Rewriter | undefined {
  const d = !domain || domain === 'ai.onnx' ? '' : domain;
  return byKey.get(`${d}:${opType}`);
}

/** Op types that streamify rewrites (for messages and docs). */
export function rewrittenOps(): string[] {
  return ALL.flatMap((r) => r.ops.map((o) => (r.domain ? `${r.domain}.${o}` : o)));
}
