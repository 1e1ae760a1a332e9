/**
 * Layer class name → converter. One entry per class as written in model.json (tfjs and
 * Keras spellings). The list of keys is what "supported" means in every error message.
 */
import type { Converter } from '../context.js';
import * as act from './activations.js';
import * as conv from './conv.js';
import * as core from './core.js';
import * as merge from './merge.js';
import * as norm from './normalization.js';
import * as rnn from './recurrent.js';

const table: Record<string, Converter> = {
  Dense: core.dense,
  Dropout: core.identity,
  SpatialDropout1D: core.identity,
  GaussianNoise: core.identity,
  GaussianDropout: core.identity,
  AlphaDropout: core.identity,
  Flatten: core.flatten,
  Reshape: core.reshape,
  Permute: core.permute,
  RepeatVector: core.repeatVector,
  Embedding: core.embedding,
  Activation: act.activationLayer,
  ReLU: act.reluLayer,
  LeakyReLU: act.leakyReluLayer,
  PReLU: act.preluLayer,
  ELU: act.eluLayer,
  ThresholdedReLU: act.thresholdedReluLayer,
  Softmax: act.softmaxLayer,
  LSTM: rnn.lstm,
  GRU: rnn.gru,
  SimpleRNN: rnn.simpleRnn,
  Bidirectional: rnn.bidirectional,
  Conv1D: conv.conv1d,
  MaxPooling1D: conv.maxPool1d,
  AveragePooling1D: conv.avgPool1d,
  GlobalAveragePooling1D: conv.globalAvgPool1d,
  GlobalMaxPooling1D: conv.globalMaxPool1d,
  ZeroPadding1D: conv.zeroPadding1d,
  Cropping1D: conv.cropping1d,
  BatchNormalization: norm.batchNormalization,
  LayerNormalization: norm.layerNormalization,
  Concatenate: merge.concatenate,
  Add: merge.add,
  Subtract: merge.subtract,
  Multiply: merge.multiply,
  Average: merge.average,
  Maximum: merge.maximum,
  Minimum: merge.minimum,
};
table.TimeDistributed = core.timeDistributed((c) => table[c]);

/** Other spellings Keras and tfjs use for the same class. */
const aliases: Record<string, string> = {
  Conv1d: 'Conv1D', Convolution1D: 'Conv1D', MaxPool1D: 'MaxPooling1D', AvgPool1D: 'AveragePooling1D', AveragePool1D: 'AveragePooling1D',
  GlobalAvgPool1D: 'GlobalAveragePooling1D', GlobalMaxPool1D: 'GlobalMaxPooling1D', MaxPooling1d: 'MaxPooling1D',
};

export function converterFor(className: string): Converter | undefined {
  return table[className] ?? table[aliases[className] ?? ''];
}

export function supportedLayers(): string[] {
  return ['InputLayer', ...Object.keys(table)].sort();
}
