/** `streamcell.*` metadata_props keys written into every ONNX file (DESIGN.md). */
export const META = {
  version: 'streamcell.version',
  sourceSha256: 'streamcell.source_sha256',
  sourceFormat: 'streamcell.source_format',
  sourceName: 'streamcell.source_name',
  state: 'streamcell.state',
  preprocessing: 'streamcell.preprocessing',
  channels: 'streamcell.channels',
  sampleRate: 'streamcell.sample_rate',
  window: 'streamcell.window',
  opset: 'streamcell.opset',
} as const;

/** One entry of `streamcell.state`. */
export interface StateMeta {
  /** `<layer>.<kind>` */
  name: string;
  input: string;
  output: string;
  /** Shape without batch. */
  shape: number[];
  dtype: 'float32';
  /** Initial value: one number for every element, or one per element of the shape (row-major). */
  init: number | number[];
}
