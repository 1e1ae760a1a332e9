/**
 * Float64 reference interpreter for a {@link LayerGraph}: computes what tfjs (or Keras, for
 * layers tfjs cannot run) would predict, so exports of such models can still be checked.
 *
 * @example
 * const { outputs } = evaluateReference(graph, [ndarray([1, 5, 2], values)]);
 * const y = toFloat32(outputs[0]!);
 */
import { InputError } from '../../errors.js';
import { keyId, type LayerGraph } from '../topology.js';
import { applyLayer } from './layers.js';
import { map, type NDArray } from './ndarray.js';
import type { StateStore } from './types.js';

export { toFloat32 } from './ndarray.js';
export type { NDArray } from './ndarray.js';

/** Recurrent state of stateful layers, keyed `${layerName}.h` / `${layerName}.c`, each [batch, units]. */
export interface ReferenceState {
  [stateName: string]: NDArray;
}

/**
 * Runs `graph` on `inputs` (one per graph input, batch first, in `graph.inputs` order).
 * Stateful recurrent layers start from `state` (zeros where a key is absent) and their final
 * states are returned; the passed-in object is not modified.
 */
export function evaluateReference(graph: LayerGraph, inputs: NDArray[], state: ReferenceState = {}): { outputs: NDArray[]; state: ReferenceState } {
  if (inputs.length !== graph.inputs.length) {
    throw new InputError(`model '${graph.name}' takes ${graph.inputs.length} inputs, got ${inputs.length}`, {
      expected: graph.inputs.map((i) => i.name).join(', '),
    });
  }
  const values = new Map<string, NDArray>();
  graph.inputs.forEach((spec, i) => {
    const x = inputs[i]!;
    checkInputShape(spec.name, spec.shape, x);
    // An int32 input receives whatever was fed truncated, as a cast to int32 would.
    values.set(keyId({ layer: spec.name, node: 0, index: 0 }), spec.dtype === 'int32' ? map(x, Math.trunc) : x);
  });
  const finalState: ReferenceState = {};
  const store: StateStore = {
    get: (key) => finalState[key] ?? state[key],
    set: (key, value) => {
      finalState[key] = value;
    },
  };
  for (const call of graph.calls) {
    const args = call.inputs.map((k) => {
      const v = values.get(keyId(k));
      if (!v)
        throw new InputError(`layer '${call.layer.name}' needs '${k.layer}' (node ${k.node}, output ${k.index}), which was not computed`, {
          field: `${call.layer.name}.inbound_nodes`,
        });
      return v;
    });
    const outs = applyLayer({ layer: call.layer, inputs: args, kwargs: call.kwargs, state: store });
    outs.forEach((o, index) => values.set(keyId({ layer: call.layer.name, node: call.node, index }), o));
  }
  const outputs = graph.outputs.map((k) => {
    const v = values.get(keyId(k));
    if (!v) throw new InputError(`model output '${k.layer}' (node ${k.node}, output ${k.index}) was not computed`, { field: 'output_layers' });
    return v;
  });
  return { outputs, state: finalState };
}

function checkInputShape(name: string, shape: readonly (number | null)[], x: NDArray): void {
  const ok = x.shape.length === shape.length && shape.every((d, i) => d === null || d === x.shape[i]);
  if (!ok || x.data.length !== x.shape.reduce((a, b) => a * b, 1)) {
    throw new InputError(`input '${name}' has shape [${x.shape}] (${x.data.length} values)`, {
      field: `input ${name}`,
      expected: `shape [${shape.map((d) => d ?? '?')}]`,
    });
  }
}
