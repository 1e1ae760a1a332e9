/** Concatenate, Add, Subtract, Multiply, Average, Maximum, Minimum. */
import { UnsupportedError } from '../../errors.js';
import { A } from '../onnx/builder.js';
import type { Converter, Tensor } from '../context.js';
import type { Shape } from '../topology.js';

/** Broadcast of Keras shapes: known sizes win over null. */
function mergedShape(ts: Tensor[]): Shape {
  const rank = Math.max(...ts.map((t) => t.shape.length));
  return Array.from({ length: rank }, (_, i) => {
    for (const t of ts) {
      const d = t.shape[t.shape.length - rank + i];
      if (typeof d === 'number' && d !== 1) return d;
    }
    for (const t of ts) if (t.shape[t.shape.length - rank + i] === 1) return 1;
    return null;
  });
}

function needAtLeast(n: number): (args: Parameters<Converter>[0]) => void {
  return ({ layer, inputs }) => {
    if (inputs.length < n)
      throw new UnsupportedError(`needs at least ${n} inputs, got ${inputs.length}`, { layer: { name: layer.name, className: layer.className } });
  };
}

function variadic(op: 'Sum' | 'Mul' | 'Max' | 'Min', scale?: (n: number) => number): Converter {
  return (args) => {
    needAtLeast(2)(args);
    const g = args.ctx.g;
    const names = args.inputs.map((t) => t.name);
    let y = op === 'Mul' ? names.slice(1).reduce((acc, n) => g.op('Mul', [acc, n]), names[0]!) : g.op(op, names);
    if (scale) y = g.op('Mul', [y, g.scalarF(scale(names.length))]);
    return [{ name: y, shape: mergedShape(args.inputs), dtype: 'float32' }];
  };
}

export const add = variadic('Sum');
export const multiply = variadic('Mul');
export const maximum = variadic('Max');
export const minimum = variadic('Min');
export const average = variadic('Sum', (n) => 1 / n);

export const subtract: Converter = (args) => {
  const { ctx, layer, inputs } = args;
  if (inputs.length !== 2)
    throw new UnsupportedError(`needs exactly 2 inputs, got ${inputs.length}`, { layer: { name: layer.name, className: layer.className } });
  return [{ name: ctx.g.op('Sub', [inputs[0]!.name, inputs[1]!.name]), shape: mergedShape(inputs), dtype: 'float32' }];
};

export const concatenate: Converter = (args) => {
  needAtLeast(2)(args);
  const { ctx, cfg, inputs } = args;
  const rank = inputs[0]!.shape.length;
  const raw = cfg.int('axis', -1);
  const axis = raw < 0 ? raw + rank : raw;
  const shape = mergedShape(inputs);
  const sizes = inputs.map((t) => t.shape[axis]);
  shape[axis] = sizes.every((d) => typeof d === 'number') ? (sizes as number[]).reduce((a, b) => a + b, 0) : null;
  return [
    {
      name: ctx.g.op(
        'Concat',
        inputs.map((t) => t.name),
        { axis: A.i(axis) },
      ),
      shape,
      dtype: inputs[0]!.dtype,
    },
  ];
};
