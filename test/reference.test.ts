/**
 * The float64 reference interpreter against tfjs itself (for every layer tfjs can run) and
 * against hand computations (for the Keras-only layers and options it exists for).
 */
import * as tf from '@tensorflow/tfjs';
import { afterAll, describe, expect, it } from 'vitest';
import { UnsupportedError } from '../src/errors.js';
import { erf, applyActivation } from '../src/export/reference/activations.js';
import { evaluateReference, toFloat32, type NDArray, type ReferenceState } from '../src/export/reference/evaluate.js';
import { ndarray } from '../src/export/reference/ndarray.js';
import { rng } from '../src/export/parity.js';
import type { JsonObject, ModelTopologyJson } from '../src/export/tfjs-format/types.js';
import type { WeightTensor } from '../src/export/tfjs-format/load.js';
import { buildLayerGraph, type LayerGraph } from '../src/export/topology.js';

const TOL = 1e-5;
let worst = 0;

afterAll(() => {
  console.log(`reference vs tfjs: max abs error observed ${worst.toExponential(3)}`);
});

/** Uniform values in [lo, hi), rounded to float32 so tfjs and the reference see the same numbers. */
function uniform(shape: number[], seed: number, lo = -1, hi = 1): NDArray {
  const r = rng(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  return ndarray(
    shape,
    Float32Array.from({ length: n }, () => lo + (hi - lo) * r()),
  );
}

/** Replaces every weight with seeded values; variances stay positive. */
function randomizeWeights(model: tf.LayersModel, seed: number, scale = 0.6): void {
  const r = rng(seed);
  const values = model.weights.map((w) => {
    const n = w.shape.reduce((a: number, b) => a * (b ?? 1), 1);
    const positive = /variance/.test(w.originalName);
    const data = Float32Array.from({ length: n }, () => (positive ? 0.3 + r() : scale * (2 * r() - 1)));
    return tf.tensor(data, w.shape as number[]);
  });
  model.setWeights(values);
  values.forEach((t) => t.dispose());
}

/** Saves `model` in memory and builds the exporter's LayerGraph from what would be on disk. */
async function graphOf(model: tf.LayersModel): Promise<LayerGraph> {
  let art: tf.io.ModelArtifacts | undefined;
  await model.save(
    tf.io.withSaveHandler(async (a) => {
      art = a;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  const specs = art!.weightSpecs ?? [];
  const raw = art!.weightData;
  const buffer = raw === undefined ? new ArrayBuffer(0) : Array.isArray(raw) ? tf.io.concatenateArrayBuffers(raw) : raw;
  let offset = 0;
  const weights: WeightTensor[] = specs.map((s) => {
    const n = s.shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(buffer.slice(offset, offset + 4 * n));
    offset += 4 * n;
    expect(s.dtype).toBe('float32');
    return { name: s.name, shape: s.shape, dtype: 'float32', data };
  });
  return buildLayerGraph({ topology: art!.modelTopology as unknown as ModelTopologyJson, weights, modelJsonPath: 'mem' });
}

function predict(model: tf.LayersModel, inputs: NDArray[]): NDArray[] {
  const ts = inputs.map((x) => tf.tensor(toFloat32(x), x.shape));
  const out = model.predict(ts.length === 1 ? ts[0]! : ts);
  const outs = Array.isArray(out) ? out : [out];
  const res = outs.map((t) => ndarray(t.shape, t.dataSync()));
  ts.forEach((t) => t.dispose());
  outs.forEach((t) => t.dispose());
  return res;
}

/** Checks the reference (`actual`) against tfjs (`expected`) and records the worst error seen. */
function expectClose(actual: NDArray, expected: NDArray, tol = TOL): void {
  expect(actual.shape).toEqual(expected.shape);
  let err = 0;
  for (let i = 0; i < actual.data.length; i++) err = Math.max(err, Math.abs(actual.data[i]! - expected.data[i]!));
  if (Number.isNaN(err) || actual.data.some(Number.isNaN)) err = Infinity;
  worst = Math.max(worst, err);
  expect(err).toBeLessThanOrEqual(tol);
}

/** Randomizes the weights, then compares the reference with tfjs' predict on `inputs`. */
async function compare(model: tf.LayersModel, inputs: NDArray[], seed = 1): Promise<void> {
  randomizeWeights(model, seed);
  const graph = await graphOf(model);
  const expected = predict(model, inputs);
  const { outputs } = evaluateReference(graph, inputs);
  expect(outputs.length).toBe(expected.length);
  outputs.forEach((o, i) => expectClose(o, expected[i]!));
}

function seq(inputShape: number[], layers: tf.layers.Layer[]): tf.Sequential {
  const m = tf.sequential();
  layers.forEach((l, i) => {
    if (i === 0) m.add(tf.layers.inputLayer({ inputShape }));
    m.add(l);
  });
  return m;
}

/** A graph from a hand-written Sequential topology and weights, for layers tfjs cannot build. */
function handGraph(inputShape: (number | null)[], layers: { class_name: string; config: JsonObject }[], weights: WeightTensor[] = []): LayerGraph {
  const topology = {
    class_name: 'Sequential',
    config: {
      name: 'hand',
      layers: [{ class_name: 'InputLayer', config: { name: 'x', batch_input_shape: [null, ...inputShape], dtype: 'float32' } }, ...layers],
    },
  } as unknown as ModelTopologyJson;
  return buildLayerGraph({ topology, weights, modelJsonPath: 'mem' });
}

function weight(name: string, shape: number[], seed: number): WeightTensor {
  const v = uniform(shape, seed, -0.7, 0.7);
  return { name, shape, dtype: 'float32', data: toFloat32(v) };
}

describe('reference activations', () => {
  it('erf agrees with high-precision values to 1e-15', () => {
    const known: [number, number][] = [
      [0.1, 0.1124629160182849],
      [0.5, 0.5204998778130465],
      [1, 0.8427007929497149],
      [2, 0.9953222650189527],
      [2.9, 0.9999589021219005],
      [3, 0.9999779095030014],
      [3.5, 0.9999992569016276],
      [5, 0.9999999999984626],
      [-1.5, -0.9661051464753108],
    ];
    for (const [x, v] of known) expect(Math.abs(erf(x) - v)).toBeLessThan(1e-15);
    expect(erf(0)).toBe(0);
    expect(erf(40)).toBe(1);
  });

  it('log_softmax and exponential follow their formulas', () => {
    const x = uniform([2, 4], 9, -3, 3);
    const who = { name: 't', className: 'Dense' };
    const ls = applyActivation('log_softmax', x, who);
    const ex = applyActivation('exponential', x, who);
    for (let r = 0; r < 2; r++) {
      const row = Array.from(x.data.subarray(4 * r, 4 * r + 4));
      const lse = Math.log(row.reduce((s, v) => s + Math.exp(v), 0));
      row.forEach((v, j) => {
        expect(ls.data[4 * r + j]).toBeCloseTo(v - lse, 12);
        expect(ex.data[4 * r + j]).toBeCloseTo(Math.exp(v), 12);
      });
    }
    expect(() => applyActivation('nope', x, who)).toThrow(UnsupportedError);
  });
});

describe('reference vs tfjs: dense and activations', () => {
  const acts = [
    'linear',
    'relu',
    'relu6',
    'elu',
    'selu',
    'tanh',
    'sigmoid',
    'hardSigmoid',
    'softmax',
    'softplus',
    'softsign',
    'swish',
    'mish',
    'gelu',
    'gelu_new',
  ] as const;
  for (const activation of acts) {
    it(`Dense(${activation})`, async () => {
      const m = seq([5], [tf.layers.dense({ units: 4, activation, name: 'd' })]);
      randomizeWeights(m, 3, 2); // large weights push every activation into its nonlinear range
      const graph = await graphOf(m);
      const x = uniform([3, 5], 11, -2, 2);
      expectClose(evaluateReference(graph, [x]).outputs[0]!, predict(m, [x])[0]!);
    });
  }

  it('Dense without bias on a 3-D input, then Activation layers', async () => {
    const m = seq([4, 3], [tf.layers.dense({ units: 5, useBias: false, name: 'd' }), tf.layers.activation({ activation: 'tanh', name: 'a' })]);
    await compare(m, [uniform([2, 4, 3], 12)]);
  });

  it('advanced activation layers', async () => {
    const m = seq(
      [6],
      [
        tf.layers.dense({ units: 6, name: 'd' }),
        tf.layers.leakyReLU({ alpha: 0.2, name: 'lr' }),
        tf.layers.dense({ units: 6, name: 'd2' }),
        tf.layers.elu({ name: 'elu' }),
        tf.layers.dense({ units: 6, name: 'd3' }),
        tf.layers.thresholdedReLU({ theta: 0.1, name: 'tr' }),
        tf.layers.dense({ units: 6, name: 'd4' }),
        tf.layers.reLU({ maxValue: 0.3, name: 'relu' }),
        tf.layers.dense({ units: 6, name: 'd5' }),
        tf.layers.softmax({ name: 'sm' }),
      ],
    );
    await compare(m, [uniform([4, 6], 13, -2, 2)]);
  });

  it('PReLU with and without shared axes, then Softmax', async () => {
    const m = seq([5, 3], [tf.layers.prelu({ name: 'p1' }), tf.layers.prelu({ sharedAxes: [1], name: 'p2' }), tf.layers.softmax({ axis: -1, name: 'sm' })]);
    await compare(m, [uniform([2, 5, 3], 14, -2, 2)]);
  });

  it('identity-at-inference layers', async () => {
    const m = seq(
      [5, 3],
      [
        tf.layers.dropout({ rate: 0.5, name: 'do' }),
        tf.layers.spatialDropout1d({ rate: 0.5, name: 'sd' }),
        tf.layers.gaussianNoise({ stddev: 1, name: 'gn' }),
        tf.layers.gaussianDropout({ rate: 0.5, name: 'gd' }),
        tf.layers.alphaDropout({ rate: 0.5, name: 'ad' }),
        tf.layers.dense({ units: 2, name: 'd' }),
      ],
    );
    await compare(m, [uniform([2, 5, 3], 15)]);
  });
});

describe('reference vs tfjs: recurrent', () => {
  const T = 6;
  const cases = [
    { name: 'LSTM sequences', make: () => tf.layers.lstm({ units: 4, returnSequences: true, name: 'r' }) },
    { name: 'LSTM last, go_backwards', make: () => tf.layers.lstm({ units: 4, goBackwards: true, name: 'r' }) },
    {
      name: 'LSTM sequences, go_backwards, sigmoid/relu, no bias',
      make: () =>
        tf.layers.lstm({ units: 3, returnSequences: true, goBackwards: true, useBias: false, recurrentActivation: 'sigmoid', activation: 'relu', name: 'r' }),
    },
    { name: 'GRU sequences', make: () => tf.layers.gru({ units: 4, returnSequences: true, name: 'r' }) },
    { name: 'GRU last, go_backwards, sigmoid', make: () => tf.layers.gru({ units: 5, goBackwards: true, recurrentActivation: 'sigmoid', name: 'r' }) },
    {
      name: 'GRU sequences, go_backwards, no bias, softsign',
      make: () => tf.layers.gru({ units: 3, returnSequences: true, goBackwards: true, useBias: false, activation: 'softsign', name: 'r' }),
    },
    { name: 'SimpleRNN sequences', make: () => tf.layers.simpleRNN({ units: 4, returnSequences: true, name: 'r' }) },
    {
      name: 'SimpleRNN last, go_backwards, relu, no bias',
      make: () => tf.layers.simpleRNN({ units: 4, goBackwards: true, activation: 'relu', useBias: false, name: 'r' }),
    },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      await compare(seq([T, 3], [c.make()]), [uniform([3, T, 3], 21)]);
    });
  }

  it('stacked LSTM → GRU → Dense over a free time axis', async () => {
    const m = seq(
      [null as unknown as number, 2],
      [tf.layers.lstm({ units: 5, returnSequences: true, name: 'l' }), tf.layers.gru({ units: 4, name: 'g' }), tf.layers.dense({ units: 2, name: 'd' })],
    );
    await compare(m, [uniform([2, 7, 2], 22)]);
  });

  for (const kind of ['lstm', 'gru', 'simpleRNN'] as const) {
    it(`${kind}: return_state and initial_state as extra inputs (functional)`, async () => {
      const x = tf.input({ shape: [T, 3], name: 'x' });
      const nStates = kind === 'lstm' ? 2 : 1;
      const states = Array.from({ length: nStates }, (_, i) => tf.input({ shape: [4], name: `s${i}` }));
      const opts = { units: 4, returnSequences: true, returnState: true };
      const a = tf.layers[kind]({ ...opts, name: 'a' }).apply(x) as tf.SymbolicTensor[];
      const b = tf.layers[kind]({ ...opts, goBackwards: true, name: 'b' }).apply(a[0]!, { initialState: states }) as tf.SymbolicTensor[];
      const m = tf.model({ inputs: [x, ...states], outputs: [...a, ...b] });
      const inputs = [uniform([2, T, 3], 23), ...states.map((_, i) => uniform([2, 4], 24 + i))];
      await compare(m, inputs);
    });
  }

  it('stateful LSTM carries state across calls', async () => {
    const m = tf.sequential();
    m.add(tf.layers.lstm({ units: 3, stateful: true, returnSequences: true, batchInputShape: [2, 4, 2], name: 'sl' }));
    m.add(tf.layers.gru({ units: 2, stateful: true, batchInputShape: [2, 4, 3], name: 'sg' }));
    randomizeWeights(m, 5);
    const graph = await graphOf(m);
    let state: ReferenceState = {};
    for (let call = 0; call < 3; call++) {
      const x = uniform([2, 4, 2], 30 + call);
      const expected = predict(m, [x])[0]!;
      const r = evaluateReference(graph, [x], state);
      expectClose(r.outputs[0]!, expected);
      expect(Object.keys(r.state).sort()).toEqual(['sg.h', 'sl.c', 'sl.h']);
      state = r.state;
    }
  });

  for (const mergeMode of ['concat', 'sum', 'mul', 'ave', null] as const) {
    for (const returnSequences of [true, false]) {
      it(`Bidirectional(LSTM) merge_mode=${mergeMode} return_sequences=${returnSequences}`, async () => {
        const x = tf.input({ shape: [T, 3], name: 'x' });
        const bi = tf.layers.bidirectional({
          layer: tf.layers.lstm({ units: 3, returnSequences, name: 'inner' }) as tf.RNN,
          mergeMode: mergeMode as 'concat',
          name: 'bi',
        });
        const y = bi.apply(x) as tf.SymbolicTensor | tf.SymbolicTensor[];
        const m = tf.model({ inputs: x, outputs: y });
        await compare(m, [uniform([2, T, 3], 40)]);
      });
    }
  }

  it('Bidirectional(GRU) and Bidirectional(SimpleRNN) with return_state', async () => {
    const x = tf.input({ shape: [T, 3], name: 'x' });
    const g = tf.layers
      .bidirectional({ layer: tf.layers.gru({ units: 3, returnSequences: true, returnState: true, name: 'g' }) as tf.RNN, mergeMode: 'concat', name: 'bg' })
      .apply(x) as tf.SymbolicTensor[];
    const s = tf.layers
      .bidirectional({ layer: tf.layers.simpleRNN({ units: 2, returnState: true, name: 's' }) as tf.RNN, mergeMode: 'ave', name: 'bs' })
      .apply(g[0]!) as tf.SymbolicTensor[];
    const m = tf.model({ inputs: x, outputs: [...g, ...s] });
    await compare(m, [uniform([2, T, 3], 41)]);
  });

  it('TimeDistributed(Dense) after a recurrent layer', async () => {
    const m = seq(
      [T, 3],
      [
        tf.layers.simpleRNN({ units: 4, returnSequences: true, name: 'r' }),
        tf.layers.timeDistributed({ layer: tf.layers.dense({ units: 2, activation: 'sigmoid', name: 'inner' }), name: 'td' }),
      ],
    );
    await compare(m, [uniform([2, T, 3], 42)]);
  });
});

describe('reference vs tfjs: convolution, pooling, normalization', () => {
  const convs = [
    { padding: 'valid', strides: 1, dilationRate: 1, kernelSize: 3 },
    { padding: 'valid', strides: 2, dilationRate: 1, kernelSize: 3 },
    { padding: 'same', strides: 1, dilationRate: 1, kernelSize: 4 },
    { padding: 'same', strides: 3, dilationRate: 1, kernelSize: 4 },
    { padding: 'same', strides: 2, dilationRate: 1, kernelSize: 1 },
    { padding: 'valid', strides: 1, dilationRate: 2, kernelSize: 3 },
    { padding: 'same', strides: 1, dilationRate: 3, kernelSize: 2 },
  ] as const;
  for (const c of convs) {
    it(`Conv1D ${JSON.stringify(c)}`, async () => {
      const m = seq([11, 3], [tf.layers.conv1d({ ...c, filters: 4, activation: 'relu', name: 'c' })]);
      await compare(m, [uniform([2, 11, 3], 50)]);
    });
  }

  it('Conv1D without bias', async () => {
    await compare(seq([8, 2], [tf.layers.conv1d({ filters: 3, kernelSize: 2, useBias: false, name: 'c' })]), [uniform([2, 8, 2], 51)]);
  });

  const pools = [
    { poolSize: 2, strides: undefined, padding: 'valid' },
    { poolSize: 3, strides: 1, padding: 'valid' },
    { poolSize: 3, strides: 2, padding: 'same' },
    { poolSize: 4, strides: 3, padding: 'same' },
    { poolSize: 2, strides: 2, padding: 'same' },
  ] as const;
  for (const p of pools) {
    for (const kind of ['maxPooling1d', 'averagePooling1d'] as const) {
      it(`${kind} ${JSON.stringify(p)}`, async () => {
        const m = seq([9, 3], [tf.layers[kind]({ ...p, name: 'p' })]);
        await compare(m, [uniform([2, 9, 3], 52)]);
      });
    }
  }

  it('global poolings', async () => {
    const x = tf.input({ shape: [7, 3], name: 'x' });
    const a = tf.layers.globalAveragePooling1d({ name: 'ga' }).apply(x) as tf.SymbolicTensor;
    const b = tf.layers.globalMaxPooling1d({ name: 'gm' }).apply(x) as tf.SymbolicTensor;
    await compare(tf.model({ inputs: x, outputs: [a, b] }), [uniform([3, 7, 3], 53)]);
  });

  // axis ≠ -1 is checked by hand below: tfjs' CPU batchNorm kernel indexes the statistics as
  // if they ran along the last axis, so tfjs itself gets BatchNormalization(axis=1) wrong.
  it('BatchNormalization (default, no center/scale)', async () => {
    const m = seq(
      [5, 3],
      [tf.layers.batchNormalization({ name: 'bn1' }), tf.layers.batchNormalization({ center: false, scale: false, epsilon: 0.01, name: 'bn2' })],
    );
    await compare(m, [uniform([2, 5, 3], 54, -2, 2)]);
  });

  it('LayerNormalization (last axis, several axes, no scale)', async () => {
    const m = seq(
      [5, 4],
      [
        tf.layers.layerNormalization({ name: 'ln1' }),
        tf.layers.layerNormalization({ axis: [1, 2], epsilon: 1e-5, name: 'ln2' }),
        tf.layers.layerNormalization({ scale: false, name: 'ln3' }),
      ],
    );
    await compare(m, [uniform([2, 5, 4], 55, -2, 2)]);
  });
});

describe('reference vs tfjs: merges, shapes, embedding', () => {
  it('Add, Multiply, Average, Maximum, Minimum, Concatenate', async () => {
    const a = tf.input({ shape: [4, 3], name: 'a' });
    const b = tf.input({ shape: [4, 3], name: 'b' });
    const c = tf.input({ shape: [4, 3], name: 'c' });
    const outs = [
      tf.layers.add({ name: 'add' }).apply([a, b, c]),
      tf.layers.multiply({ name: 'mul' }).apply([a, b]),
      tf.layers.average({ name: 'avg' }).apply([a, b, c]),
      tf.layers.maximum({ name: 'max' }).apply([a, b]),
      tf.layers.minimum({ name: 'min' }).apply([b, c]),
      tf.layers.concatenate({ name: 'cat' }).apply([a, b]),
      tf.layers.concatenate({ axis: 1, name: 'cat1' }).apply([a, c]),
    ] as tf.SymbolicTensor[];
    const m = tf.model({ inputs: [a, b, c], outputs: outs });
    await compare(m, [uniform([2, 4, 3], 60), uniform([2, 4, 3], 61), uniform([2, 4, 3], 62)]);
  });

  it('Permute, Reshape, Flatten, RepeatVector', async () => {
    const m = seq(
      [4, 6],
      [
        tf.layers.permute({ dims: [2, 1], name: 'perm' }),
        tf.layers.reshape({ targetShape: [3, 8], name: 'resh' }),
        tf.layers.flatten({ name: 'flat' }),
        tf.layers.dense({ units: 3, name: 'd' }),
        tf.layers.repeatVector({ n: 4, name: 'rep' }),
      ],
    );
    await compare(m, [uniform([2, 4, 6], 63)]);
  });

  it('Reshape with -1', async () => {
    const m = seq([4, 6], [tf.layers.reshape({ targetShape: [-1, 3], name: 'resh' }), tf.layers.dense({ units: 2, name: 'd' })]);
    await compare(m, [uniform([2, 4, 6], 64)]);
  });

  it('Embedding (float indices are truncated)', async () => {
    const m = seq([5], [tf.layers.embedding({ inputDim: 10, outputDim: 3, name: 'emb' }), tf.layers.lstm({ units: 2, name: 'l' })]);
    const idx = ndarray([2, 5], [0, 1, 2, 3, 9, 4.7, 5.2, 8.99, 7, 6]);
    await compare(m, [idx]);
  });
});

describe('reference: Keras-only layers, checked by hand', () => {
  const x = uniform([2, 5, 3], 70);
  const at = (a: NDArray, b: number, t: number, c: number) => a.data[(b * a.shape[1]! + t) * a.shape[2]! + c]!;

  it('ZeroPadding1D and Cropping1D', () => {
    const pad = evaluateReference(handGraph([5, 3], [{ class_name: 'ZeroPadding1D', config: { name: 'zp', padding: [2, 1] } }]), [x]).outputs[0]!;
    expect(pad.shape).toEqual([2, 8, 3]);
    for (let b = 0; b < 2; b++)
      for (let t = 0; t < 8; t++)
        for (let c = 0; c < 3; c++) {
          expect(at(pad, b, t, c)).toBe(t < 2 || t >= 7 ? 0 : at(x, b, t - 2, c));
        }
    const sym = evaluateReference(handGraph([5, 3], [{ class_name: 'ZeroPadding1D', config: { name: 'zp', padding: 1 } }]), [x]).outputs[0]!;
    expect(sym.shape).toEqual([2, 7, 3]);
    const crop = evaluateReference(handGraph([5, 3], [{ class_name: 'Cropping1D', config: { name: 'cr', cropping: [1, 2] } }]), [x]).outputs[0]!;
    expect(crop.shape).toEqual([2, 2, 3]);
    for (let b = 0; b < 2; b++) for (let t = 0; t < 2; t++) for (let c = 0; c < 3; c++) expect(at(crop, b, t, c)).toBe(at(x, b, t + 1, c));
  });

  it('Subtract', () => {
    const topology = {
      class_name: 'Functional',
      config: {
        name: 'sub',
        layers: [
          { class_name: 'InputLayer', name: 'a', config: { name: 'a', batch_input_shape: [null, 3], dtype: 'float32' }, inbound_nodes: [] },
          { class_name: 'InputLayer', name: 'b', config: { name: 'b', batch_input_shape: [null, 3], dtype: 'float32' }, inbound_nodes: [] },
          {
            class_name: 'Subtract',
            name: 's',
            config: { name: 's' },
            inbound_nodes: [
              [
                ['a', 0, 0, {}],
                ['b', 0, 0, {}],
              ],
            ],
          },
        ],
        input_layers: [
          ['a', 0, 0],
          ['b', 0, 0],
        ],
        output_layers: [['s', 0, 0]],
      },
    } as unknown as ModelTopologyJson;
    const graph = buildLayerGraph({ topology, weights: [], modelJsonPath: 'mem' });
    const a = uniform([4, 3], 71);
    const b = uniform([4, 3], 72);
    const y = evaluateReference(graph, [a, b]).outputs[0]!;
    y.data.forEach((v, i) => expect(v).toBe(a.data[i]! - b.data[i]!));
  });

  it('causal Conv1D equals tfjs valid conv on a left-zero-padded input', async () => {
    for (const [k, d] of [
      [3, 1],
      [2, 3],
      [4, 2],
    ] as const) {
      const m = seq([5 + (k - 1) * d, 3], [tf.layers.conv1d({ filters: 2, kernelSize: k, dilationRate: d, padding: 'valid', name: 'c' })]);
      randomizeWeights(m, 73);
      const valid = await graphOf(m);
      const spec = valid.layers.get('c')!;
      const causal = handGraph([5, 3], [{ class_name: 'Conv1D', config: { ...spec.config, padding: 'causal', name: 'c' } }], spec.weights);
      const padded = evaluateReference(handGraph([5, 3], [{ class_name: 'ZeroPadding1D', config: { name: 'zp', padding: [(k - 1) * d, 0] } }]), [x])
        .outputs[0]!;
      expectClose(evaluateReference(causal, [x]).outputs[0]!, predict(m, [padded])[0]!);
    }
  });

  it('grouped Conv1D equals per-group convolutions', () => {
    const kernel = weight('g/kernel', [3, 2, 4], 74);
    const bias = weight('g/bias', [4], 75);
    const x4 = uniform([2, 6, 4], 76);
    const y = evaluateReference(
      handGraph([6, 4], [{ class_name: 'Conv1D', config: { name: 'g', filters: 4, kernel_size: [3], groups: 2, padding: 'same' } }], [kernel, bias]),
      [x4],
    ).outputs[0]!;
    for (let b = 0; b < 2; b++)
      for (let t = 0; t < 6; t++)
        for (let o = 0; o < 4; o++) {
          const g = o >> 1;
          let acc = bias.data[o]!;
          for (let j = 0; j < 3; j++) {
            const ti = t - 1 + j;
            if (ti < 0 || ti >= 6) continue;
            for (let c = 0; c < 2; c++) acc += at(x4, b, ti, g * 2 + c) * kernel.data[(j * 2 + c) * 4 + o]!;
          }
          expect(at(y, b, t, o)).toBeCloseTo(acc, 12);
        }
  });

  it('GRU reset_after=true (Keras) matches a hand-written loop, with go_backwards and return_state', () => {
    const u = 3;
    const kernel = weight('gru/gru_cell/kernel', [3, 3 * u], 77);
    const rec = weight('gru/gru_cell/recurrent_kernel', [u, 3 * u], 78);
    const bias = weight('gru/gru_cell/bias', [2, 3 * u], 79);
    const config = {
      name: 'gru',
      units: u,
      activation: 'tanh',
      recurrent_activation: 'sigmoid',
      use_bias: true,
      reset_after: true,
      return_sequences: true,
      return_state: true,
      go_backwards: true,
    };
    const graph = handGraph([5, 3], [{ class_name: 'GRU', config }], [kernel, rec, bias]);
    graph.outputs = [
      { layer: 'gru', node: 0, index: 0 },
      { layer: 'gru', node: 0, index: 1 },
    ];
    const [ys, hLast] = evaluateReference(graph, [x]).outputs as [NDArray, NDArray];
    const sig = (v: number) => 1 / (1 + Math.exp(-v));
    const W = (i: number, j: number) => kernel.data[i * 3 * u + j]!;
    const U = (i: number, j: number) => rec.data[i * 3 * u + j]!;
    for (let b = 0; b < 2; b++) {
      let h = [0, 0, 0];
      for (let s = 0; s < 5; s++) {
        const t = 4 - s;
        const xv = [0, 1, 2].map((c) => at(x, b, t, c));
        const mx = (j: number) => bias.data[j]! + xv.reduce((acc, v, i) => acc + v * W(i, j), 0);
        const mh = (j: number) => bias.data[3 * u + j]! + h.reduce((acc, v, i) => acc + v * U(i, j), 0);
        h = h.map((hp, j) => {
          const z = sig(mx(j) + mh(j));
          const r = sig(mx(u + j) + mh(u + j));
          const hh = Math.tanh(mx(2 * u + j) + r * mh(2 * u + j));
          return z * hp + (1 - z) * hh;
        });
        h.forEach((v, j) => expect(at(ys, b, s, j)).toBeCloseTo(v, 12));
      }
      h.forEach((v, j) => expect(hLast.data[b * u + j]).toBeCloseTo(v, 12));
    }
  });

  it('BatchNormalization over axis 1', () => {
    const stats = ['gamma', 'beta', 'moving_mean', 'moving_variance'].map((n, i) => weight(`bn/${n}`, [5], 80 + i));
    stats[3] = { ...stats[3]!, data: stats[3]!.data.map((v) => v + 1) };
    const y = evaluateReference(handGraph([5, 3], [{ class_name: 'BatchNormalization', config: { name: 'bn', axis: 1, epsilon: 0.01 } }], stats), [x])
      .outputs[0]!;
    const [g, b, mu, v] = stats.map((s) => s.data);
    for (let i = 0; i < 2; i++)
      for (let t = 0; t < 5; t++)
        for (let c = 0; c < 3; c++) {
          expect(at(y, i, t, c)).toBeCloseTo(((at(x, i, t, c) - mu![t]!) / Math.sqrt(v![t]! + 0.01)) * g![t]! + b![t]!, 12);
        }
  });

  it('Softmax over the time axis and over two axes', () => {
    const one = evaluateReference(handGraph([5, 3], [{ class_name: 'Softmax', config: { name: 's', axis: 1 } }]), [x]).outputs[0]!;
    const two = evaluateReference(handGraph([5, 3], [{ class_name: 'Softmax', config: { name: 's', axis: [1, 2] } }]), [x]).outputs[0]!;
    for (let i = 0; i < 2; i++) {
      let all = 0;
      for (let t = 0; t < 5; t++) for (let c = 0; c < 3; c++) all += Math.exp(at(x, i, t, c));
      for (let c = 0; c < 3; c++) {
        let col = 0;
        for (let t = 0; t < 5; t++) col += Math.exp(at(x, i, t, c));
        for (let t = 0; t < 5; t++) {
          expect(at(one, i, t, c)).toBeCloseTo(Math.exp(at(x, i, t, c)) / col, 12);
          expect(at(two, i, t, c)).toBeCloseTo(Math.exp(at(x, i, t, c)) / all, 12);
        }
      }
    }
  });

  it('Keras ReLU with negative_slope and threshold', () => {
    const graph = handGraph([4], [{ class_name: 'ReLU', config: { name: 'r', negative_slope: 0.1, threshold: 0.5, max_value: 2 } }]);
    const xs = ndarray([1, 4], [-1, 0.25, 1, 3]);
    expect(Array.from(evaluateReference(graph, [xs]).outputs[0]!.data)).toEqual([0.1 * (-1 - 0.5), 0.1 * (0.25 - 0.5), 1, 2]);
  });

  it('refuses unknown classes and options', () => {
    expect(() => evaluateReference(handGraph([4, 2], [{ class_name: 'Conv1DTranspose', config: { name: 'ct' } }]), [uniform([1, 4, 2], 1)])).toThrow(
      UnsupportedError,
    );
    expect(() =>
      evaluateReference(
        handGraph(
          [4, 2],
          [{ class_name: 'Conv1D', config: { name: 'c', filters: 1, kernel_size: 2, padding: 'reflect' } }],
          [weight('c/kernel', [2, 2, 1], 1), weight('c/bias', [1], 2)],
        ),
        [uniform([1, 4, 2], 1)],
      ),
    ).toThrow(/padding/);
    expect(() =>
      evaluateReference(
        handGraph(
          [4],
          [{ class_name: 'Dense', config: { name: 'd', units: 1, activation: 'weird' } }],
          [weight('d/kernel', [4, 1], 1), weight('d/bias', [1], 2)],
        ),
        [uniform([1, 4], 1)],
      ),
    ).toThrow(/layer 'd' \(Dense\)/);
  });
});
