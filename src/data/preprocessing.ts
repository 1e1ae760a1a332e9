/** Re-exported from the model format's owner, `src/model-format`. */
export { checkPreprocessing } from '../model-format/preprocessing.js';
export type { PreprocessingJson } from '../model-format/preprocessing.js';
