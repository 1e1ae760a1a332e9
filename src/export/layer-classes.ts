/**
 * The Keras/tfjs layer classes streamcell handles: canonical names and the other spellings
 * Keras and tfjs use for them. The converter registry and the reference interpreter both look
 * classes up here, so they accept the same set.
 */

/** Canonical layer class names (as tfjs writes them in model.json). */
export const LAYER_CLASSES = [
  'InputLayer',
  'Dense',
  'Dropout',
  'SpatialDropout1D',
  'GaussianNoise',
  'GaussianDropout',
  'AlphaDropout',
  'Flatten',
  'Reshape',
  'Permute',
  'RepeatVector',
  'Embedding',
  'Activation',
  'ReLU',
  'LeakyReLU',
  'PReLU',
  'ELU',
  'ThresholdedReLU',
  'Softmax',
  'LSTM',
  'GRU',
  'SimpleRNN',
  'Bidirectional',
  'TimeDistributed',
  'Conv1D',
  'MaxPooling1D',
  'AveragePooling1D',
  'GlobalAveragePooling1D',
  'GlobalMaxPooling1D',
  'ZeroPadding1D',
  'Cropping1D',
  'BatchNormalization',
  'LayerNormalization',
  'Concatenate',
  'Add',
  'Subtract',
  'Multiply',
  'Average',
  'Maximum',
  'Minimum',
] as const;

/** A canonical layer class name. */
export type LayerClass = (typeof LAYER_CLASSES)[number];

/** Other spellings Keras and tfjs use for the same class → canonical name. */
export const LAYER_CLASS_ALIASES: Readonly<Record<string, LayerClass>> = {
  Conv1d: 'Conv1D',
  Convolution1D: 'Conv1D',
  MaxPool1D: 'MaxPooling1D',
  MaxPooling1d: 'MaxPooling1D',
  AvgPool1D: 'AveragePooling1D',
  AveragePool1D: 'AveragePooling1D',
  GlobalAvgPool1D: 'GlobalAveragePooling1D',
  GlobalMaxPool1D: 'GlobalMaxPooling1D',
};

/** Classes that are the identity at inference (noise and dropout): both tables map them to one no-op. */
export const INFERENCE_IDENTITY_CLASSES = [
  'Dropout',
  'SpatialDropout1D',
  'GaussianNoise',
  'GaussianDropout',
  'AlphaDropout',
] as const satisfies readonly LayerClass[];

/** `{Dropout: identity, SpatialDropout1D: identity, ...}` for a table's own identity implementation. */
export function inferenceIdentities<T>(identity: T): Record<(typeof INFERENCE_IDENTITY_CLASSES)[number], T> {
  return Object.fromEntries(INFERENCE_IDENTITY_CLASSES.map((c) => [c, identity])) as Record<(typeof INFERENCE_IDENTITY_CLASSES)[number], T>;
}

const CANONICAL = new Set<string>(LAYER_CLASSES);

/** The canonical name of `className` (itself or an alias); undefined for a class streamcell does not know. */
export function canonicalLayerClass(className: string): LayerClass | undefined {
  if (CANONICAL.has(className)) return className as LayerClass;
  return Object.hasOwn(LAYER_CLASS_ALIASES, className) ? LAYER_CLASS_ALIASES[className] : undefined;
}

/** Every spelling accepted: canonical names and aliases, sorted. */
export function acceptedLayerClasses(): string[] {
  return [...LAYER_CLASSES, ...Object.keys(LAYER_CLASS_ALIASES)].sort();
}
