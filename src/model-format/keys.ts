/**
 * The `streamcell.*` keys of an ONNX model's `metadata_props` (DESIGN.md): the one list every
 * layer reads and writes them by.
 */

/** `streamcell.*` metadata_props keys, by what they carry. */
export const META = {
  /** The streamcell version that wrote the model. */
  version: 'streamcell.version',
  /** SHA-256 of the source (tfjs/Keras) model the ONNX file was exported from. */
  sourceSha256: 'streamcell.source_sha256',
  /** The source model's format, e.g. `tfjs-layers-model`. */
  sourceFormat: 'streamcell.source_format',
  /** The source model's name. */
  sourceName: 'streamcell.source_name',
  /** JSON array of a model's state tensors ({@link StateSpec}); see `parseStateMetadata`. */
  state: 'streamcell.state',
  /** The inference preprocessing.json (JSON); see `readPreprocessing`. */
  preprocessing: 'streamcell.preprocessing',
  /** JSON array of the input channel names. */
  channels: 'streamcell.channels',
  /** Samples per second, as a decimal string. */
  sampleRate: 'streamcell.sample_rate',
  /** Window length in samples, as a decimal string. */
  window: 'streamcell.window',
  /** The ONNX opset the exporter targeted, as a decimal string. */
  opset: 'streamcell.opset',
  /** `'true'` on a step model written by streamify. */
  step: 'streamcell.step',
  /** On a step model: SHA-256 of the sequence model it was streamified from. */
  sequenceSha256: 'streamcell.sequence_sha256',
  /** JSON `{mode, quantized, calibration}` on a model written by quantize. */
  quantization: 'streamcell.quantization',
} as const;

/** Any `streamcell.*` metadata key. */
export type MetaKey = (typeof META)[keyof typeof META];

/** The `metadata_props` key that lists a step model's state tensors (same as `META.state`). */
export const STATE_METADATA_KEY = META.state;
