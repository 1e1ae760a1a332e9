/**
 * Stepping a step model over a sequence: start every state tensor at its initial value, run,
 * feed each `state_out.*` back as the next call's `state_in.*`. The one place that plumbing
 * is written; evaluation, calibration, the parity check and the benchmark use it.
 */
import type { Session, TensorData } from './backend.js';
import { initialStateRows, type StateSpec } from './step-model.js';

/**
 * The feeds of a step model with its state carried between calls. {@link feeds} holds the
 * state inputs and whatever sample inputs were last given, and is reused from call to call
 * (no per-step copies, so a timing loop measures `session.run`).
 */
export class StateCarry {
  /** State inputs (and the last sample inputs) for the next `session.run`. */
  readonly feeds: Record<string, TensorData> = {};

  /**
   * @param states - the model's state tensors (`ModelInfo.states`).
   * @param rows - batch rows of state (one per stream or parallel sequence).
   */
  constructor(
    private readonly states: readonly Pick<StateSpec, 'input' | 'output' | 'shape' | 'init'>[],
    readonly rows = 1,
  ) {
    this.reset();
  }

  /** Sets every state back to its initial value. */
  reset(): void {
    for (const s of this.states) this.feeds[s.input] = { type: 'float32', data: initialStateRows(s, this.rows), dims: [this.rows, ...s.shape] };
  }

  /** The current state tensors by state input name. */
  state(): Record<string, TensorData> {
    const out: Record<string, TensorData> = {};
    for (const s of this.states) out[s.input] = this.feeds[s.input]!;
    return out;
  }

  /**
   * One call: runs `session` on `inputs` (added to {@link feeds}) with the current state, and
   * keeps the returned `state_out.*` as the next state. Returns every output of the call.
   */
  async step(session: Session, inputs?: Record<string, TensorData>, outputNames?: readonly string[]): Promise<Record<string, TensorData>> {
    if (inputs) Object.assign(this.feeds, inputs);
    const r = await session.run(this.feeds, outputNames);
    for (const s of this.states) this.feeds[s.input] = r[s.output]!;
    return r;
  }
}

/** Options of {@link stepOverSequence}. */
export interface StepOverSequenceOptions {
  /** Batch rows of state (default 1). */
  rows?: number;
  /** Called with each step's outputs (all of them, state outputs included) as they come. */
  onStep?: (t: number, outputs: Record<string, TensorData>) => void | Promise<void>;
}

/**
 * Runs a step model over `steps` steps from its initial state, feeding the state back
 * between steps. `inputAt(t)` gives step t's sample inputs; each step's outputs go to
 * `opts.onStep` (not collected: a long sequence with many outputs would not fit). Returns the
 * final state by state input name.
 *
 * @example
 * ```ts
 * const info = readModelInfo(bytes);
 * await stepOverSequence(session, info, T, (t) => ({ x: { type: 'float32', data: row(t), dims: [1, 1, C] } }), {
 *   onStep: (t, out) => preds.push(out.y!.data[0]),
 * });
 * ```
 */
export async function stepOverSequence(
  session: Session,
  info: { states: readonly Pick<StateSpec, 'input' | 'output' | 'shape' | 'init'>[] },
  steps: number,
  inputAt: (t: number) => Record<string, TensorData>,
  opts: StepOverSequenceOptions = {},
): Promise<Record<string, TensorData>> {
  const carry = new StateCarry(info.states, opts.rows ?? 1);
  for (let t = 0; t < steps; t++) {
    const r = await carry.step(session, inputAt(t));
    await opts.onStep?.(t, r);
  }
  return carry.state();
}
