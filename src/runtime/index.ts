/** The runtime's public API: model info, the multi-stream pools, their errors, the benchmark. */
export { readModelInfo, STATE_METADATA_KEY } from './step-model.js';
export type { ModelInfo, IoSpec, StateSpec, DimSpec } from './step-model.js';
export { StreamPool } from './pool.js';
export { WindowPool } from './window.js';
export type {
  BatchResult,
  FullPolicy,
  NonFinitePolicy,
  Pool,
  PoolOptions,
  PoolStats,
  Prediction,
  RejectReason,
  Sample,
  UnknownStreamPolicy,
  WindowPoolOptions,
} from './pool-types.js';
export {
  SampleError,
  StreamRejectedError,
  InferenceError,
  PoolBusyError,
  ForecastError,
  isForecastError,
  isSampleError,
  isStreamRejectedError,
  isInferenceError,
  isPoolBusyError,
} from './pool-errors.js';
export { MAX_ROLLOUT } from './forecast.js';
export type { Forecast, ForecastOptions, ForecastOneOptions, ForecastManyOptions, ForecastResult } from './forecast.js';
export { SNAPSHOT_VERSION } from './snapshot.js';
export { benchPool } from './bench.js';
export { StateCarry, stepOverSequence } from './step-sequence.js';
export type { StepOverSequenceOptions } from './step-sequence.js';
export type { BenchPoolOptions, BenchPoolResult, LatencyStats } from './bench.js';
export { resolveBackend } from './backend-impl.js';
export type { Backend, BackendName, BackendRecord, Session, SessionOptions, TensorData } from './backend.js';
