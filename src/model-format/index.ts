/**
 * The streamcell model format: the `streamcell.*` metadata keys an ONNX model carries, the
 * `streamcell.state` entries of a step model, and the embedded preprocessing. Dependency-free
 * (errors only), so export, runtime, devices and CLI can all read and write it.
 */
export { META, STATE_METADATA_KEY } from './keys.js';
export type { MetaKey } from './keys.js';
export { STATE_NAME, parseStateMetadata, serializeStateMetadata } from './state.js';
export type { StateSpec, StateGraphView } from './state.js';
export { checkPreprocessing, readPreprocessing } from './preprocessing.js';
export type { PreprocessingJson } from './preprocessing.js';
