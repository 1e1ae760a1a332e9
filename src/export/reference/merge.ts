/** Merge layers: Add, Subtract, Multiply, Average, Maximum, Minimum, Concatenate. */
import { broadcastBinary, concat, map, normAxis, type NDArray } from './ndarray.js';
import { unsupported, type RefLayer } from './types.js';

/**
 * Keras (and tfjs) bring lower-rank inputs up by inserting axes right after the batch axis,
 * not in front as NumPy would, before broadcasting element-wise.
 */
function alignRanks(inputs: NDArray[]): NDArray[] {
  const rank = Math.max(...inputs.map((x) => x.shape.length));
  return inputs.map((x) => {
    const missing = rank - x.shape.length;
    if (missing === 0) return x;
    return { shape: [x.shape[0]!, ...new Array<number>(missing).fill(1), ...x.shape.slice(1)], data: x.data };
  });
}

function elementwise(f: (a: number, b: number) => number, post?: (v: number, n: number) => number): RefLayer {
  return ({ layer, inputs }) => {
    if (inputs.length < 2) throw unsupported(layer, `needs at least 2 inputs, got ${inputs.length}`, 'inputs');
    const xs = alignRanks(inputs);
    let acc = xs[0]!;
    for (const x of xs.slice(1)) acc = broadcastBinary(acc, x, f);
    return [post ? map(acc, (v) => post(v, xs.length)) : acc];
  };
}

export const add = elementwise((a, b) => a + b);
export const multiply = elementwise((a, b) => a * b);
export const average = elementwise(
  (a, b) => a + b,
  (v, n) => v / n,
);
export const maximum = elementwise(Math.max);
export const minimum = elementwise(Math.min);

export const subtract: RefLayer = (args) => {
  if (args.inputs.length !== 2) throw unsupported(args.layer, `needs exactly 2 inputs, got ${args.inputs.length}`, 'inputs');
  return elementwise((a, b) => a - b)(args);
};

export const concatenate: RefLayer = ({ layer, cfg, inputs }) => {
  const rank = inputs[0]!.shape.length;
  const axis = normAxis(cfg.int('axis', -1), rank, `layer '${layer.name}'`);
  return [concat(inputs, axis)];
};
