/**
 * The many spellings of a recurrence's initial state. Exporters write it as nothing, a graph
 * input (`h0`), a slice of a graph input per layer of a stacked model (PyTorch's `h0[i]`), a
 * constant initializer, or a tensor built from the input's shape (PyTorch's
 * `Shape → Gather → Unsqueeze → Concat → ConstantOfShape`, `Expand`, `Tile`). All of them
 * become carried state; only a state computed from input *data* cannot be carried.
 */
import { UnsupportedError } from '../../errors.js';
import type { StreamifyContext } from './context.js';

export type InitialState =
  | { kind: 'absent' }
  /** The graph input itself. */
  | { kind: 'input'; input: string }
  /** A slice/gather/split/squeeze of a graph input (one layer of a stacked model's h0). */
  | { kind: 'selection'; input: string; ops: string[] }
  /** Computed from constants and input shapes only: the same value for every sequence. */
  | { kind: 'constant'; value: number | number[] };

/** Ops that pick part of a tensor without computing anything. */
const SELECT = new Set(['Slice', 'Gather', 'Split', 'Squeeze', 'Unsqueeze', 'Identity', 'Reshape', 'Transpose', 'Cast']);

/**
 * Classifies the initial-state value `init` of node `layer` (state `kind`, `hidden` units per
 * batch row) and, for constants, computes its value per element of one batch row.
 */
export async function classifyInitialState(ctx: StreamifyContext, init: string, layer: string, kind: string, hidden: number): Promise<InitialState> {
  if (!init) return { kind: 'absent' };
  if (ctx.isGraphInput(init)) return { kind: 'input', input: init };
  const prov = ctx.provenance(init);
  if (prov.dataInputs.size === 0) {
    // Evaluated at batch 2 where the batch is free; a statically shaped export keeps its own batch.
    const res = (await ctx.evaluate({ [init]: 'float32' }, 2))[init];
    const data = res?.data as Float32Array | undefined;
    const rows = data ? data.length / hidden : 0;
    if (!data || !Number.isInteger(rows) || rows < 1) {
      throw new UnsupportedError(
        `node '${layer}': its initial ${kind} state evaluates to ${data?.length ?? 0} values [${res?.dims ?? []}], not [1, batch, ${hidden}]`,
        { supported: ['an initial state of shape [1, batch, hidden]'] },
      );
    }
    const row = Array.from(data.subarray(0, hidden));
    for (let r = 1; r < rows; r++) {
      if (row.some((v, j) => v !== data[r * hidden + j])) {
        throw new UnsupportedError(
          `node '${layer}': its initial ${kind} state differs between batch rows (computed per row), so no single initial state exists`,
          { supported: ['the same initial state for every sequence'] },
        );
      }
    }
    if (row.some((v) => !Number.isFinite(v)))
      throw new UnsupportedError(`node '${layer}': its initial ${kind} state holds NaN/Inf`, { supported: ['a finite initial state'] });
    return { kind: 'constant', value: row.every((v) => v === row[0]) ? row[0]! : row };
  }
  // A pure selection from one graph input: walk its first inputs back; the rest must be constant.
  const ops: string[] = [];
  let v = init;
  for (let depth = 0; depth < 16; depth++) {
    const p = ctx.producer(v);
    if (!p || !SELECT.has(p.opType!)) break;
    const rest = (p.input ?? []).slice(1).filter(Boolean);
    if (rest.some((r) => ctx.provenance(r).dataInputs.size > 0)) break;
    ops.push(p.opType!);
    v = p.input![0]!;
    if (ctx.isGraphInput(v)) return { kind: 'selection', input: v, ops: ops.reverse() };
  }
  const chain = [...prov.ops].filter((o) => o !== 'Constant');
  throw new UnsupportedError(
    `node '${layer}' computes its initial ${kind} state from the data of input${prov.dataInputs.size > 1 ? 's' : ''} ${[...prov.dataInputs].map((i) => `'${i}'`).join(', ')}` +
      ` (through ${chain.join(', ') || 'other ops'}), not from a constant or a state input: a step model cannot carry a state that depends on the whole sequence`,
    { supported: ['no initial state', 'a constant or zero initial state (also built from the input shape)', 'a graph input (h0) or a slice of one per layer'] },
  );
}
