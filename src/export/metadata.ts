/** The `streamcell.*` metadata keys and state entry type, owned by `src/model-format`. */
export { META } from '../model-format/keys.js';
export type { StateSpec as StateMeta } from '../model-format/state.js';
