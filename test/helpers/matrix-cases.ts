/**
 * The exporter's model matrix: every converter and recurrent option, built in tfjs. Shared by
 * the parity matrix (ONNX vs tfjs) and the streaming matrix (step model vs sequence model).
 */
import * as tf from '@tensorflow/tfjs';

export interface Case {
  name: string;
  build: () => tf.LayersModel;
  opset?: number;
  /**
   * Unbounded gate activations (relu6 as a GRU gate) let values grow past 1e3 over 12 steps;
   * float32 then cannot hold 1e-5 absolute, so the error is judged relative to |value| once |value| > 1.
   */
  scaled?: boolean;
  /** tfjs cannot reload what it saved (gelu_new): also compare with the in-memory model. */
  inMemory?: boolean;
}

const L = tf.layers;
const seq = (layers: tf.layers.Layer[]) => tf.sequential({ layers });

const ACTIVATIONS = [
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

function rnnCases(kind: 'lstm' | 'gru' | 'simpleRNN'): Case[] {
  const mk = (cfg: Record<string, unknown>) => (L[kind] as (c: object) => tf.layers.Layer)({ units: 6, inputShape: [null, 3], ...cfg });
  const cases: Case[] = [
    { name: `${kind} last output`, build: () => seq([mk({})]) },
    { name: `${kind} returnSequences`, build: () => seq([mk({ returnSequences: true })]) },
    { name: `${kind} goBackwards`, build: () => seq([mk({ goBackwards: true })]) },
    { name: `${kind} goBackwards returnSequences`, build: () => seq([mk({ goBackwards: true, returnSequences: true })]) },
    { name: `${kind} useBias false`, build: () => seq([mk({ useBias: false, returnSequences: true })]) },
    {
      name: `${kind} stacked + dense`,
      build: () => seq([mk({ returnSequences: true }), (L[kind] as (c: object) => tf.layers.Layer)({ units: 4 }), L.dense({ units: 2 })]),
    },
    { name: `${kind} activation relu (native op)`, build: () => seq([mk({ activation: 'relu', returnSequences: true })]) },
    { name: `${kind} activation swish (Scan)`, build: () => seq([mk({ activation: 'swish', returnSequences: true })]) },
    { name: `${kind} activation gelu goBackwards (Scan)`, build: () => seq([mk({ activation: 'gelu', goBackwards: true, returnSequences: true })]) },
    { name: `${kind} activation linear`, build: () => seq([mk({ activation: 'linear' })]) },
    { name: `${kind} activation selu goBackwards last (Scan)`, build: () => seq([mk({ activation: 'selu', goBackwards: true })]) },
  ];
  if (kind !== 'simpleRNN') {
    cases.push(
      { name: `${kind} recurrentActivation sigmoid`, build: () => seq([mk({ recurrentActivation: 'sigmoid', returnSequences: true })]) },
      { name: `${kind} recurrentActivation tanh, activation softsign`, build: () => seq([mk({ recurrentActivation: 'tanh', activation: 'softsign' })]) },
      {
        name: `${kind} recurrentActivation relu6 (Scan)`,
        scaled: kind === 'gru',
        build: () => seq([mk({ recurrentActivation: 'relu6', returnSequences: true })]),
      },
      { name: `${kind} useBias false swish (Scan)`, build: () => seq([mk({ useBias: false, activation: 'swish' })]) },
    );
  }
  cases.push({
    name: `${kind} returnState (functional)`,
    build: () => {
      const x = tf.input({ shape: [null, 3] });
      const outs = (L[kind] as (c: object) => tf.layers.Layer)({ units: 5, returnState: true, returnSequences: true }).apply(x) as tf.SymbolicTensor[];
      return tf.model({ inputs: x, outputs: outs });
    },
  });
  cases.push({
    name: `${kind} returnState goBackwards swish (Scan, functional)`,
    build: () => {
      const x = tf.input({ shape: [null, 3] });
      const outs = (L[kind] as (c: object) => tf.layers.Layer)({ units: 5, returnState: true, goBackwards: true, activation: 'swish' }).apply(
        x,
      ) as tf.SymbolicTensor[];
      return tf.model({ inputs: x, outputs: outs });
    },
  });
  cases.push({
    name: `${kind} stateful`,
    build: () => seq([(L[kind] as (c: object) => tf.layers.Layer)({ units: 5, stateful: true, returnSequences: true, batchInputShape: [2, 4, 3] })]),
  });
  return cases;
}

export const cases: Case[] = [
  ...ACTIVATIONS.map((a) => ({ name: `dense ${a}`, inMemory: a === 'gelu_new', build: () => seq([L.dense({ units: 5, inputShape: [4], activation: a })]) })),
  { name: 'dense on 3-D input, no bias', build: () => seq([L.dense({ units: 3, inputShape: [null, 4], useBias: false })]) },
  ...rnnCases('lstm'),
  ...rnnCases('gru'),
  ...rnnCases('simpleRNN'),
  ...(['concat', 'sum', 'mul', 'ave'] as const).flatMap((mode) => [
    {
      name: `bidirectional lstm ${mode} sequences`,
      build: () => seq([L.bidirectional({ layer: L.lstm({ units: 4, returnSequences: true }) as tf.RNN, mergeMode: mode, inputShape: [null, 3] })]),
    },
    {
      name: `bidirectional gru ${mode} last`,
      build: () => seq([L.bidirectional({ layer: L.gru({ units: 4 }) as tf.RNN, mergeMode: mode, inputShape: [null, 3] })]),
    },
  ]),
  {
    name: 'bidirectional simpleRNN concat + dense',
    build: () =>
      seq([
        L.bidirectional({ layer: L.simpleRNN({ units: 4, returnSequences: true }) as tf.RNN, inputShape: [null, 3] }),
        L.timeDistributed({ layer: L.dense({ units: 2 }) }),
      ]),
  },
  {
    name: 'bidirectional lstm swish (Scan)',
    build: () => seq([L.bidirectional({ layer: L.lstm({ units: 4, activation: 'swish', returnSequences: true }) as tf.RNN, inputShape: [null, 3] })]),
  },
  {
    name: 'bidirectional returnState',
    build: () => {
      const x = tf.input({ shape: [null, 3] });
      const outs = L.bidirectional({ layer: L.lstm({ units: 4, returnState: true }) as tf.RNN, mergeMode: 'concat' }).apply(x) as tf.SymbolicTensor[];
      return tf.model({ inputs: x, outputs: outs });
    },
  },
  {
    name: 'timeDistributed dense',
    build: () =>
      seq([L.lstm({ units: 6, returnSequences: true, inputShape: [null, 3] }), L.timeDistributed({ layer: L.dense({ units: 2, activation: 'tanh' }) })]),
  },
  { name: 'conv1d valid', build: () => seq([L.conv1d({ filters: 4, kernelSize: 3, inputShape: [null, 3] })]) },
  {
    name: 'conv1d same stride 2 relu',
    build: () => seq([L.conv1d({ filters: 4, kernelSize: 3, strides: 2, padding: 'same', activation: 'relu', inputShape: [null, 3] })]),
  },
  { name: 'conv1d same dilation 2', build: () => seq([L.conv1d({ filters: 4, kernelSize: 3, dilationRate: 2, padding: 'same', inputShape: [null, 3] })]) },
  { name: 'conv1d valid dilation 2 fixed length', build: () => seq([L.conv1d({ filters: 4, kernelSize: 2, dilationRate: 2, inputShape: [11, 3] })]) },
  {
    name: 'conv1d same stride 3 fixed length, no bias',
    build: () => seq([L.conv1d({ filters: 2, kernelSize: 4, strides: 3, padding: 'same', useBias: false, inputShape: [13, 3] })]),
  },
  { name: 'conv1d + lstm', build: () => seq([L.conv1d({ filters: 4, kernelSize: 3, padding: 'same', inputShape: [null, 3] }), L.lstm({ units: 5 })]) },
  { name: 'maxPooling1d valid', build: () => seq([L.maxPooling1d({ poolSize: 2, inputShape: [null, 3] })]) },
  { name: 'maxPooling1d same stride 1', build: () => seq([L.maxPooling1d({ poolSize: 3, strides: 1, padding: 'same', inputShape: [null, 3] })]) },
  { name: 'averagePooling1d valid stride 1', build: () => seq([L.averagePooling1d({ poolSize: 3, strides: 1, inputShape: [null, 3] })]) },
  { name: 'averagePooling1d same', build: () => seq([L.averagePooling1d({ poolSize: 3, strides: 2, padding: 'same', inputShape: [null, 3] })]) },
  { name: 'averagePooling1d same fixed length', build: () => seq([L.averagePooling1d({ poolSize: 2, padding: 'same', inputShape: [7, 3] })]) },
  { name: 'globalAveragePooling1d', build: () => seq([L.conv1d({ filters: 4, kernelSize: 2, inputShape: [null, 3] }), L.globalAveragePooling1d({})]) },
  { name: 'globalMaxPooling1d', build: () => seq([L.conv1d({ filters: 4, kernelSize: 2, inputShape: [null, 3] }), L.globalMaxPooling1d({})]) },
  { name: 'batchNormalization 3-D', build: () => seq([L.batchNormalization({ inputShape: [null, 3] })]) },
  {
    name: 'batchNormalization after dense, no center',
    build: () => seq([L.dense({ units: 4, inputShape: [3] }), L.batchNormalization({ center: false, epsilon: 0.01 })]),
  },
  { name: 'layerNormalization', build: () => seq([L.lstm({ units: 6, returnSequences: true, inputShape: [null, 3] }), L.layerNormalization({})]) },
  { name: 'layerNormalization no scale', build: () => seq([L.dense({ units: 6, inputShape: [3] }), L.layerNormalization({ scale: false, epsilon: 1e-5 })]) },
  {
    name: 'dropout family (identity)',
    build: () =>
      seq([
        L.dropout({ rate: 0.5, inputShape: [null, 3] }),
        L.spatialDropout1d({ rate: 0.3 }),
        L.gaussianNoise({ stddev: 1 }),
        L.gaussianDropout({ rate: 0.4 }),
        L.alphaDropout({ rate: 0.2 }),
        L.lstm({ units: 4 }),
        L.dropout({ rate: 0.5 }),
      ]),
  },
  {
    name: 'activation layers',
    build: () =>
      seq([
        L.dense({ units: 6, inputShape: [4] }),
        L.activation({ activation: 'tanh' }),
        L.reLU({ maxValue: 0.5 }),
        L.dense({ units: 6 }),
        L.leakyReLU({ alpha: 0.2 }),
        L.dense({ units: 6 }),
        L.elu({}),
        L.dense({ units: 6 }),
        L.thresholdedReLU({ theta: 0.1 }),
        L.dense({ units: 6 }),
        L.softmax({}),
      ]),
  },
  { name: 'reLU plain', build: () => seq([L.reLU({ inputShape: [4] })]) },
  { name: 'prelu', build: () => seq([L.dense({ units: 6, inputShape: [4] }), L.prelu({})]) },
  { name: 'prelu 3-D shared time axis', build: () => seq([L.prelu({ inputShape: [5, 3], sharedAxes: [1] })]) },
  { name: 'flatten + dense', build: () => seq([L.conv1d({ filters: 2, kernelSize: 3, inputShape: [8, 3] }), L.flatten({}), L.dense({ units: 2 })]) },
  { name: 'reshape', build: () => seq([L.dense({ units: 12, inputShape: [4] }), L.reshape({ targetShape: [-1, 3] }), L.lstm({ units: 3 })]) },
  { name: 'permute', build: () => seq([L.permute({ dims: [2, 1], inputShape: [5, 3] }), L.lstm({ units: 3 })]) },
  {
    name: 'repeatVector seq2seq',
    build: () =>
      seq([
        L.lstm({ units: 6, inputShape: [null, 3] }),
        L.repeatVector({ n: 4 }),
        L.gru({ units: 5, returnSequences: true }),
        L.timeDistributed({ layer: L.dense({ units: 1 }) }),
      ]),
  },
  { name: 'embedding + lstm', build: () => seq([L.embedding({ inputDim: 20, outputDim: 4, inputShape: [null] }), L.lstm({ units: 5 })]) },
  ...(['concatenate', 'add', 'multiply', 'average', 'maximum', 'minimum'] as const).map((m) => ({
    name: `merge ${m} (two inputs, functional)`,
    build: () => {
      const a = tf.input({ shape: [null, 3], name: 'sensor_a' });
      const b = tf.input({ shape: [null, 3], name: 'sensor_b' });
      const ha = L.lstm({ units: 4, returnSequences: true }).apply(a) as tf.SymbolicTensor;
      const hb = L.gru({ units: 4, returnSequences: true }).apply(b) as tf.SymbolicTensor;
      const merged = (L[m] as (c?: object) => tf.layers.Layer)({}).apply([ha, hb]) as tf.SymbolicTensor;
      return tf.model({ inputs: [a, b], outputs: L.dense({ units: 2 }).apply(merged) as tf.SymbolicTensor });
    },
  })),
  {
    name: 'shared input, three branches, two outputs',
    build: () => {
      const x = tf.input({ shape: [null, 3], name: 'imu' });
      const c = L.conv1d({ filters: 4, kernelSize: 3, padding: 'same' }).apply(x) as tf.SymbolicTensor;
      const r = L.lstm({ units: 4, returnSequences: true }).apply(x) as tf.SymbolicTensor;
      const cat = L.concatenate({}).apply([c, r, x]) as tf.SymbolicTensor;
      const last = L.gru({ units: 6 }).apply(cat) as tf.SymbolicTensor;
      const cls = L.dense({ units: 3, activation: 'softmax', name: 'activity' }).apply(last) as tf.SymbolicTensor;
      const reg = L.dense({ units: 1, name: 'intensity' }).apply(last) as tf.SymbolicTensor;
      return tf.model({ inputs: x, outputs: [cls, reg] });
    },
  },
  {
    name: 'shared layer called twice',
    build: () => {
      const a = tf.input({ shape: [4] });
      const b = tf.input({ shape: [4] });
      const d = L.dense({ units: 3, activation: 'tanh' });
      const s = L.add({}).apply([d.apply(a) as tf.SymbolicTensor, d.apply(b) as tf.SymbolicTensor]) as tf.SymbolicTensor;
      return tf.model({ inputs: [a, b], outputs: s });
    },
  },
  {
    name: 'stacked lstm opset 13',
    opset: 13,
    build: () => seq([L.lstm({ units: 6, returnSequences: true, inputShape: [null, 3] }), L.lstm({ units: 4, activation: 'swish' }), L.dense({ units: 1 })]),
  },
  {
    name: 'conv pooling layerNorm opset 13',
    opset: 13,
    build: () => seq([L.conv1d({ filters: 4, kernelSize: 3, inputShape: [null, 3] }), L.layerNormalization({}), L.globalAveragePooling1d({})]),
  },
];
