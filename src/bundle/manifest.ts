/**
 * The bundle format (DESIGN.md): a directory with `manifest.json` (snake_case wire keys) and
 * `manifest.sig`, an Ed25519 signature of the manifest's exact bytes, base64.
 */
import { InputError } from '../errors.js';

export const MANIFEST = 'manifest.json';
export const SIGNATURE = 'manifest.sig';
export const BUNDLE_FORMAT = 1;
/** Largest manifest read (a built one is a few KiB). */
export const MAX_MANIFEST_BYTES = 1 << 20;
/** Largest bundle file read when its manifest entry carries no `bytes`. */
export const MAX_FILE_BYTES = 1 << 30;
/** Longest bundle name or version. */
export const MAX_NAME_LENGTH = 100;

export type ModelRole = 'float' | 'int8' | 'step' | 'step_int8';

export interface ManifestFileJson {
  path: string;
  sha256: string;
  bytes: number;
}

/** A bundle's manifest.json as written (snake_case wire keys): format, name, version, created, files with sizes and SHA-256. */
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
  /** The step model runtimes load when not told which (absent in older bundles: `step`). */
  step_default?: 'step' | 'step_int8';
  /** How `step_default` and the int8 variant were chosen: preference, measured latencies, CPU. */
  step_choice?: StepChoiceJson;
}

/** The manifest's record of the step-model choice (snake_case wire keys). */
export interface StepChoiceJson {
  prefer: string;
  /** Which int8 variant `step_int8` is, e.g. "int8, float kernels (weights folded at load)". */
  step_int8: string;
  /** p50 per step, batch 1, µs, measured in the same interleaved rounds: `float` and each int8 candidate. */
  latency_us: Record<string, number>;
  /** Each int8 candidate's latency / float's. */
  ratio_vs_float: Record<string, number>;
  cpu: string;
  reason: string;
}

/** The step roles `step_default` may name. */
export const STEP_ROLES = ['step', 'step_int8'] as const;

const kindOf = (v: unknown): string =>
  v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v === 'string' ? `the string ${JSON.stringify(v.slice(0, 40))}` : typeof v;

/**
 * Why a bundle name or version cannot be used (it names a folder on every device), or
 * undefined when it can: 1–100 characters, not starting with '.' or '-', no '/', '\', '..',
 * whitespace, NUL or other control characters.
 */
export function badBundleName(v: unknown): string | undefined {
  if (typeof v !== 'string') return `is ${kindOf(v)}, not a string`;
  if (v.length === 0) return 'is empty';
  if (v.length > MAX_NAME_LENGTH) return `has ${v.length} characters, more than ${MAX_NAME_LENGTH}`;
  if (v.includes('\0')) return 'contains a NUL character';
  if (/[\x00-\x1f\x7f]/.test(v)) return 'contains a control character';
  if (/\s/.test(v)) return 'contains whitespace';
  if (v.startsWith('.')) return "starts with '.'";
  if (v.startsWith('-')) return "starts with '-'";
  if (v.includes('/') || v.includes('\\')) return "contains '/' or '\\'";
  if (v.includes('..')) return "contains '..'";
  return undefined;
}

export function checkBundleName(v: unknown, field: string, file?: string): string {
  const bad = badBundleName(v);
  if (bad)
    throw new InputError(
      `the bundle ${/version/.test(field) ? 'version' : 'name'} ${typeof v === 'string' ? JSON.stringify(v.length > 60 ? v.slice(0, 60) + '…' : v) + ' ' : ''}${bad}`,
      { file, field, expected: `1–${MAX_NAME_LENGTH} characters, not starting with '.' or '-', without '/', '\\', '..', whitespace or control characters` },
    );
  return v as string;
}

/** The store's folder name for a bundle. */
export function bundleId(m: Pick<ManifestJson, 'name' | 'version'>): string {
  return `${m.name}-${m.version}`.replace(/[^A-Za-z0-9._-]/g, '_');
}

const ROLE = /^[a-z][a-z0-9_]{0,31}$/;
/** A bundle file is a plain name inside the bundle folder. */
const FILE_NAME = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,99}$/;

/**
 * Checks a parsed manifest's structure; every problem is an InputError naming `file` and the
 * field (e.g. `files.step.sha256`).
 */
export function checkManifest(raw: unknown, file: string): ManifestJson {
  const fail = (field: string, msg: string, expected: string): never => {
    throw new InputError(msg, { file, field, expected });
  };
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    fail('(manifest)', `the manifest is ${kindOf(raw)}, not a JSON object`, 'the manifest written by streamcell bundle');
  const m = raw as Record<string, unknown>;
  if (m.format !== BUNDLE_FORMAT) fail('format', `unsupported bundle format ${JSON.stringify(m.format) ?? 'undefined'}`, String(BUNDLE_FORMAT));
  checkBundleName(m.name, 'name', file);
  checkBundleName(m.version, 'version', file);
  if (m.min_streamcell_version !== undefined && (typeof m.min_streamcell_version !== 'string' || !/^\d+\.\d+\.\d+/.test(m.min_streamcell_version))) {
    fail('min_streamcell_version', `min_streamcell_version is ${kindOf(m.min_streamcell_version)}`, 'a version such as 0.1.0');
  }
  const files = m.files;
  if (typeof files !== 'object' || files === null || Array.isArray(files)) {
    fail(
      'files',
      `'files' is ${kindOf(files)}, not an object mapping each role to {path, sha256, bytes}`,
      'an object such as {"step": {"path": "step.onnx", "sha256": "…", "bytes": 1234}}',
    );
  }
  const entries = Object.entries(files as Record<string, unknown>);
  if (entries.length === 0) fail('files', "'files' lists no file", 'at least one model');
  for (const [role, f] of entries) {
    const at = `files.${role}`;
    if (!ROLE.test(role)) fail('files', `the role ${JSON.stringify(role.slice(0, 40))} is not a role name`, 'float, int8, step, step_int8 or preprocessing');
    if (typeof f !== 'object' || f === null || Array.isArray(f)) fail(at, `${at} is ${kindOf(f)}, not an object`, '{"path": …, "sha256": …, "bytes": …}');
    const e = f as Record<string, unknown>;
    if (typeof e.path !== 'string') fail(`${at}.path`, `${at}.path is ${kindOf(e.path)}, not a string`, 'a file name inside the bundle');
    const p = e.path as string;
    if (p.split(/[\\/]/).includes('..') || p.startsWith('/'))
      fail(`${at}.path`, `file '${p.slice(0, 100)}' lies outside the bundle`, 'a path inside the bundle');
    if (!FILE_NAME.test(p))
      fail(
        `${at}.path`,
        `file '${p.slice(0, 100)}' is not a plain file name in the bundle folder`,
        "a name of letters, digits, '.', '_' and '-' with no folder",
      );
    if (p === MANIFEST || p === SIGNATURE) fail(`${at}.path`, `file '${p}' is the manifest itself`, 'a model or preprocessing file');
    if (typeof e.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(e.sha256))
      fail(`${at}.sha256`, `${at}.sha256 is ${e.sha256 === undefined ? 'missing' : kindOf(e.sha256)}`, '64 lowercase hex digits');
    if (e.bytes !== undefined && (typeof e.bytes !== 'number' || !Number.isSafeInteger(e.bytes) || e.bytes < 0))
      fail(`${at}.bytes`, `${at}.bytes is ${kindOf(e.bytes)} ${typeof e.bytes === 'number' ? e.bytes : ''}`.trim(), 'the file size, a non-negative integer');
  }
  if (m.step_default !== undefined) {
    if (!STEP_ROLES.includes(m.step_default as 'step')) fail('step_default', `step_default is ${kindOf(m.step_default)}`, STEP_ROLES.join(' or '));
    if (!(files as Record<string, unknown>)[m.step_default as string])
      fail('step_default', `step_default names '${m.step_default as string}', which 'files' does not list`, 'a step role listed in files');
  }
  return m as unknown as ManifestJson;
}
