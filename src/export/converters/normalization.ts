/** BatchNormalization (folded to a multiply-add) and LayerNormalization (decomposed). */
import { UnsupportedError } from '../../errors.js';
import { reduce } from '../onnx/ops.js';
import type { Converter, Tensor } from '../context.js';
import type { LayerSpec } from '../topology.js';

function who(layer: LayerSpec) {
  return { name: layer.name, className: layer.className };
}

function normAxes(layer: LayerSpec, raw: number[], rank: number): number[] {
  const axes = raw.map((a) => (a < 0 ? a + rank : a));
  if (axes.some((a) => a <= 0 || a >= rank)) {
    throw new UnsupportedError(`axis ${JSON.stringify(raw)} is invalid for an input of rank ${rank} (the batch axis cannot be normalised)`, {
      layer: who(layer),
      field: 'axis',
    });
  }
  return axes;
}

/** Parameter shape that broadcasts along `axes` of an input of rank `rank` (batch excluded). */
function paramDims(x: Tensor, axes: number[], layer: LayerSpec): number[] {
  return x.shape.slice(1).map((d, i) => {
    if (!axes.includes(i + 1)) return 1;
    if (typeof d !== 'number') throw new UnsupportedError(`normalised axis ${i + 1} must have a known size`, { layer: who(layer), field: 'axis' });
    return d;
  });
}

export const batchNormalization: Converter = ({ ctx, layer, cfg, inputs }) => {
  const g = ctx.g;
  const x = inputs[0]!;
  const axes = normAxes(layer, cfg.ints('axis', [-1]), x.shape.length);
  const dims = paramDims(x, axes, layer);
  const n = dims.reduce((a, b) => a * b, 1);
  const eps = cfg.num('epsilon', 1e-3);
  const mean = cfg.weightOfShape('moving_mean', [n])!.data;
  const variance = cfg.weightOfShape('moving_variance', [n])!.data;
  const gamma = cfg.bool('scale', true) ? cfg.weightOfShape('gamma', [n])!.data : undefined;
  const beta = cfg.bool('center', true) ? cfg.weightOfShape('beta', [n])!.data : undefined;
  // y = (x − mean)·γ/√(var+ε) + β = x·scale + shift, computed in float64 once.
  const scale = new Float32Array(n);
  const shift = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const s = (gamma ? gamma[i]! : 1) / Math.sqrt(variance[i]! + eps);
    scale[i] = s;
    shift[i] = (beta ? beta[i]! : 0) - mean[i]! * s;
  }
  const y = g.op('Add', [
    g.op('Mul', [x.name, g.initializer(`${layer.name}/scale`, 'float32', dims, scale)]),
    g.initializer(`${layer.name}/shift`, 'float32', dims, shift),
  ]);
  return [{ ...x, name: y }];
};

export const layerNormalization: Converter = ({ ctx, layer, cfg, inputs }) => {
  const g = ctx.g;
  const x = inputs[0]!;
  const axes = normAxes(layer, cfg.ints('axis', [-1]), x.shape.length);
  const dims = paramDims(x, axes, layer);
  const n = dims.reduce((a, b) => a * b, 1);
  const eps = cfg.num('epsilon', 1e-3);
  // Two-pass mean/variance as tfjs' moments(): more accurate than E[x²]−E[x]².
  const mean = reduce(g, 'ReduceMean', x.name, axes, true);
  const d = g.op('Sub', [x.name, mean]);
  const variance = reduce(g, 'ReduceMean', g.op('Mul', [d, d]), axes, true);
  let y = g.op('Div', [d, g.op('Sqrt', [g.op('Add', [variance, g.scalarF(eps)])])]);
  if (cfg.bool('scale', true)) y = g.op('Mul', [y, g.initializer(`${layer.name}/gamma`, 'float32', dims, cfg.weightOfShape('gamma', [n])!.data)]);
  if (cfg.bool('center', true)) y = g.op('Add', [y, g.initializer(`${layer.name}/beta`, 'float32', dims, cfg.weightOfShape('beta', [n])!.data)]);
  return [{ ...x, name: y }];
};
