/**
 * Registry of reference layer implementations by Keras/tfjs class name, and TimeDistributed,
 * which wraps any of them.
 */
import { UnsupportedError } from '../../errors.js';
import { acceptedLayerClasses, canonicalLayerClass, inferenceIdentities, type LayerClass } from '../layer-classes.js';
import type { JsonObject } from '../tfjs-format/types.js';
import { LayerConfig, type LayerSpec } from '../topology.js';
import * as adv from './advanced.js';
import * as conv from './conv.js';
import * as core from './core.js';
import * as merge from './merge.js';
import { reshape, type NDArray } from './ndarray.js';
import * as norm from './normalization.js';
import * as rec from './recurrent.js';
import { requireRank, unsupported, type RefArgs, type RefLayer } from './types.js';

/**
 * TimeDistributed(layer): folds time into the batch, applies the inner layer to every step
 * at once, and unfolds. Weights are stored under the wrapper's name.
 */
const timeDistributed: RefLayer = (args) => {
  const { layer, cfg } = args;
  const x = args.inputs[0]!;
  if (x.shape.length < 3) requireRank(args, x, 3, '[batch, time, ...]');
  const inner = cfg.raw('layer') as { class_name?: string; config?: JsonObject } | undefined;
  const impl = inner?.class_name ? lookup(inner.class_name) : undefined;
  if (!inner || !impl || inner.class_name === 'TimeDistributed') {
    throw unsupported(layer, `TimeDistributed(${inner?.class_name ?? '?'}) is not supported`, 'layer');
  }
  const spec: LayerSpec = { name: layer.name, className: inner.class_name!, config: inner.config ?? {}, weights: layer.weights };
  const [batch, time] = x.shape as [number, number];
  const folded = reshape(x, [batch * time, ...x.shape.slice(2)]);
  const outs = impl({ ...args, layer: spec, cfg: new LayerConfig(spec), inputs: [folded] });
  return outs.map((o: NDArray) => reshape(o, [batch, time, ...o.shape.slice(1)]));
};

const REGISTRY: Record<LayerClass, RefLayer> = {
  InputLayer: core.identity,
  Dense: core.dense,
  ...inferenceIdentities(core.identity),
  Activation: core.activation,
  Flatten: core.flatten,
  Reshape: core.reshape,
  Permute: core.permute,
  RepeatVector: core.repeatVector,
  Embedding: core.embedding,
  ReLU: adv.relu,
  LeakyReLU: adv.leakyRelu,
  PReLU: adv.prelu,
  ELU: adv.elu,
  ThresholdedReLU: adv.thresholdedRelu,
  Softmax: adv.softmaxLayer,
  BatchNormalization: norm.batchNormalization,
  LayerNormalization: norm.layerNormalization,
  Add: merge.add,
  Subtract: merge.subtract,
  Multiply: merge.multiply,
  Average: merge.average,
  Maximum: merge.maximum,
  Minimum: merge.minimum,
  Concatenate: merge.concatenate,
  Conv1D: conv.conv1d,
  MaxPooling1D: conv.maxPooling1d,
  AveragePooling1D: conv.averagePooling1d,
  GlobalAveragePooling1D: conv.globalAveragePooling1d,
  GlobalMaxPooling1D: conv.globalMaxPooling1d,
  ZeroPadding1D: conv.zeroPadding1d,
  Cropping1D: conv.cropping1d,
  LSTM: rec.lstm,
  GRU: rec.gru,
  SimpleRNN: rec.simpleRnn,
  Bidirectional: rec.bidirectional,
  TimeDistributed: timeDistributed,
};

/** Every class spelling the reference interpreter accepts (canonical names and aliases). */
export const REFERENCE_LAYER_CLASSES: readonly string[] = acceptedLayerClasses();

function lookup(className: string): RefLayer | undefined {
  const c = canonicalLayerClass(className);
  return c ? REGISTRY[c] : undefined;
}

/** Whether the reference interpreter has an implementation for `className` (canonical or alias). */
export function hasReferenceLayer(className: string): boolean {
  return lookup(className) !== undefined;
}

/** Evaluates one call of `args.layer`; throws UnsupportedError for classes it does not know. */
export function applyLayer(args: Omit<RefArgs, 'cfg'>): NDArray[] {
  const impl = lookup(args.layer.className);
  if (!impl) {
    throw new UnsupportedError(`class '${args.layer.className}' is not supported by the reference interpreter`, {
      layer: { name: args.layer.name, className: args.layer.className },
      supported: REFERENCE_LAYER_CLASSES,
    });
  }
  return impl({ ...args, cfg: new LayerConfig(args.layer) });
}
