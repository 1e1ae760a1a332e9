/**
 * The bundle format (DESIGN.md): a directory with `manifest.json` (snake_case wire keys) and
 * `manifest.sig`, an Ed25519 signature of the manifest's exact bytes, base64.
 */
export const MANIFEST = 'manifest.json';
export const SIGNATURE = 'manifest.sig';
export const BUNDLE_FORMAT = 1;

export type ModelRole = 'float' | 'int8' | 'step' | 'step_int8';

export interface ManifestFileJson {
  path: string;
  sha256: string;
  bytes: number;
}

export interface ManifestJson {
  format: number;
  name: string;
  version: string;
  created: string;
  channels: string[];
  sample_rate: number | null;
  window: number;
  task: 'forecast' | 'classify';
  /** The inference preprocessing (also in each model's metadata). */
  preprocessing: Record<string, unknown>;
  /** Models by role, plus `preprocessing` (preprocessing.json). */
  files: Partial<Record<ModelRole | 'preprocessing', ManifestFileJson>>;
  min_streamcell_version: string;
  /** SHA-256 of the source model (model.json + weights), as in the ONNX metadata. */
  source_sha256: string;
}
