/**
 * Layer class → converter, one entry per canonical class of `../layer-classes.ts` (which also
 * maps the other tfjs and Keras spellings). The list of classes is what "supported" means in
 * every error message.
 */
import type { Converter } from '../context.js';
import { canonicalLayerClass, inferenceIdentities, LAYER_CLASSES, type LayerClass } from '../layer-classes.js';
import * as act from './activations.js';
import * as conv from './conv.js';
import * as core from './core.js';
import * as merge from './merge.js';
import * as norm from './normalization.js';
import * as rnn from './recurrent.js';

const table: Record<Exclude<LayerClass, 'InputLayer' | 'TimeDistributed'>, Converter> & { TimeDistributed?: Converter } = {
  Dense: core.dense,
  ...inferenceIdentities(core.identity),
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
table.TimeDistributed = core.timeDistributed((c) => converterFor(c));

/** The converter for `className` (canonical or alias); undefined for a class without one. */
export function converterFor(className: string): Converter | undefined {
  const c = canonicalLayerClass(className);
  return c && c !== 'InputLayer' ? table[c] : undefined;
}

/** Canonical class names the exporter handles (InputLayer included), sorted. */
export function supportedLayers(): string[] {
  return [...LAYER_CLASSES].sort();
}
