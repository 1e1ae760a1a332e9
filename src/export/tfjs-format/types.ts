/**
 * Wire format of a tfjs LayersModel on disk (`model.json` + binary weight shards), as written
 * by tfjs `model.save()` and by `tensorflowjs_converter` from Keras. Keys are snake_case, as
 * on disk; the rest of the exporter sees the in-memory types of `../topology.ts`.
 */

export type JsonValue = null | boolean | number | string | JsonValue[] | { [k: string]: JsonValue };
export type JsonObject = { [k: string]: JsonValue };

export type WeightDtype = 'float32' | 'int32' | 'bool' | 'float16' | 'uint8' | 'uint16';

export interface WeightSpecJson {
  name: string;
  shape: number[];
  dtype: WeightDtype | string;
  /** Present when the converter quantized weights (`--quantize_*`). */
  quantization?: { dtype: 'uint8' | 'uint16' | 'float16'; scale?: number; min?: number; original_dtype?: string };
  group?: string;
}

export interface WeightsManifestGroupJson {
  paths: string[];
  weights: WeightSpecJson[];
}

/** One layer entry of a `Sequential`/`Model`/`Functional` config. */
export interface LayerJson {
  class_name: string;
  config: JsonObject;
  /** Functional models only. Keras 2: `[[[layer, node, tensor, kwargs], ...], ...]`. Keras 3: `[{args, kwargs}]`. */
  inbound_nodes?: JsonValue[];
  name?: string;
}

export interface ModelTopologyJson {
  class_name: string;
  config: JsonObject | LayerJson[];
  keras_version?: string;
  backend?: string;
}

export interface ModelJson {
  format?: string;
  generatedBy?: string;
  convertedBy?: string | null;
  modelTopology: ModelTopologyJson | { model_config: ModelTopologyJson };
  weightsManifest: WeightsManifestGroupJson[];
  trainingConfig?: JsonValue;
  userDefinedMetadata?: JsonObject;
}
