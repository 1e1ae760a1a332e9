/** streamcell's public library API. Everything a user imports is named here. */
export {
  StreamcellError,
  InputError,
  UnsupportedError,
  CheckFailedError,
  isStreamcellError,
  isInputError,
  isUnsupportedError,
  isCheckFailedError,
  describeError,
} from './errors.js';
export type { ErrorContext } from './errors.js';
export { VERSION } from './version.js';
export { loadTfjsArtifacts } from './export/tfjs-format/load.js';
export type { LoadedArtifacts, WeightTensor } from './export/tfjs-format/load.js';
export type { LayerGraph, LayerSpec, LayerCall, InputSpec, Shape } from './export/topology.js';
export { exportToOnnx, DEFAULT_OPSET, MIN_OPSET, MAX_OPSET, IR_VERSION } from './export/exporter.js';
export type { ExportOptions, ExportResult, IoInfo } from './export/exporter.js';
export { exportModelFile } from './export/api.js';
export type { ExportFileOptions, ExportSummary } from './export/api.js';
export { checkParity, assertParity } from './export/parity.js';
export type { ParityOptions, ParityReport, ParityCase } from './export/parity.js';
export { inspectFile } from './export/inspect.js';
export type { InspectReport } from './export/inspect.js';
export { supportedLayers } from './export/converters/registry.js';
export { SUPPORTED_ACTIVATIONS } from './export/converters/activations.js';
export { META, readPreprocessing, parseStateMetadata, serializeStateMetadata } from './model-format/index.js';
export type { StateMeta } from './export/metadata.js';
export { resolveBackend } from './runtime/backend-impl.js';
export type { Backend, BackendName, BackendRecord, Session, SessionOptions, TensorData } from './runtime/backend.js';
export {
  readModelInfo,
  STATE_METADATA_KEY,
  StreamPool,
  WindowPool,
  SampleError,
  StreamRejectedError,
  InferenceError,
  PoolBusyError,
  ForecastError,
  isSampleError,
  isStreamRejectedError,
  isInferenceError,
  isPoolBusyError,
  isForecastError,
  MAX_ROLLOUT,
  SNAPSHOT_VERSION,
  benchPool,
} from './runtime/index.js';
export type {
  ModelInfo,
  IoSpec,
  StateSpec,
  DimSpec,
  Pool,
  PoolOptions,
  WindowPoolOptions,
  PoolStats,
  BatchResult,
  Prediction,
  Sample,
  RejectReason,
  NonFinitePolicy,
  UnknownStreamPolicy,
  FullPolicy,
  BenchPoolOptions,
  BenchPoolResult,
  LatencyStats,
  Forecast,
  ForecastOptions,
  ForecastOneOptions,
  ForecastManyOptions,
  ForecastResult,
} from './runtime/index.js';
export { streamifyModel, checkStepModel, assertStepCheck } from './export/streamify/index.js';
export type { StreamifyOptions, StreamifyReport, StepCheck } from './export/streamify/index.js';
export { trainModel, trainBenchmark } from './train/train.js';
export type { TrainOptions, TrainResult, TrainReport, TrainProgress, EpochRecord, Score, TrainBenchmark } from './train/train.js';
export { parseArch, formatArch } from './train/arch.js';
export { verifyBundle, writeBundle } from './bundle/bundle.js';
export type { VerifiedBundle, BundleParts } from './bundle/bundle.js';
export { buildBundle } from './bundle/build.js';
export type { BuildBundleOptions, BuildBundleResult } from './bundle/build.js';
export type { ManifestJson } from './bundle/manifest.js';
export { quantizeModel, compareModels, assertGate } from './export/quantize/index.js';
export type { QuantMode, QuantizeOptions, QuantizeReport, Comparison } from './export/quantize/index.js';
export { Daemon } from './devices/daemon.js';
export type { DaemonOptions, Logger } from './devices/daemon.js';
export { Pipeline, DEFAULT_MAX_STREAMS } from './devices/pipeline.js';
export type { PipelineOptions, StreamPolicy } from './devices/pipeline.js';
export { sourceFromUri, sinkFromUri } from './devices/uri.js';
export type { UriContext, SinkContext, SinkFactory } from './devices/uri.js';
export type { Source, SourceEvents, Sink, Reading, PredictionRecord, DropReason } from './devices/types.js';
