/** Options, report and rewriter contract of the streamify pass. */
import type { NodeProto } from '../../onnx/proto.js';
import type { BackendName } from '../../runtime/backend.js';
import type { StateMeta } from '../metadata.js';
import type { StreamifyContext } from './context.js';

/** Options of {@link streamifyModel}: time axis, check length and tolerance, backend. */
export interface StreamifyOptions {
  /** Time axis of the sequence inputs when it cannot be found from the graph (default: found, else 1). */
  timeAxis?: number;
  /** Run the numerical check (default true); a failed check throws. */
  verify?: boolean;
  tolerance?: number;
  steps?: number;
  seed?: number;
  backend?: BackendName;
}

/** What {@link streamifyModel} did: the step model, its state tensors, the rewrites applied and the step check. */
export interface StreamifyReport {
  states: StateMeta[];
  /** Inputs that carry the time axis, with the axis in the sequence model (the step model's is 1). */
  sequenceInputs: { name: string; axis: number }[];
  rewritten: { node: string; op: string; as: string }[];
  /** Sequence-model inputs that held RNN sequence_lens (dropped in the step model). */
  lengthInputs: string[];
  /** Sequence-model inputs that held initial states (now `state_in.*`, fed zeros when checking). */
  replacedInputs: string[];
  /** Sequence-model outputs that only returned final states (`hn`, `cn`): in the step model they are the `state_out.*`. */
  stateOutputs: { output: string; states: string[] }[];
  /** Time-major inputs/outputs made batch-major ([batch, 1, …]) in the step model. */
  transposed: string[];
  /** Where each state's initial value came from. */
  initialStates: { state: string; from: string }[];
  verification?: StepCheck;
}

/** The step check: the step model run sample by sample against the sequence model, with the largest difference. */
export interface StepCheck {
  backend: string;
  steps: number;
  batch: number;
  /** How many (step, output) pairs were compared. */
  comparisons: number;
  maxAbsError: number;
  perOutput: Record<string, number>;
  /** Largest |value| of each output of the sequence model (to tell rounding from a different computation). */
  scale?: Record<string, number>;
  tolerance: number;
  passed: boolean;
  /** Why fewer steps than all were compared, when so. */
  note?: string;
}

/**
 * Rewrites one node so that it carries its state between steps. Registered by op type in
 * `rewriters/registry.ts`; a rewriter throws `UnsupportedError` for what cannot stream.
 */
export interface Rewriter {
  ops: readonly string[];
  /** Op domain; default the ONNX domain. */
  domain?: string;
  rewrite(ctx: StreamifyContext, node: NodeProto, layer: string): void | Promise<void>;
}
