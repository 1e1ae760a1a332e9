/**
 * Building and verifying bundles. Building: export the tfjs model, streamify it, quantize both
 * forms, write every file with its SHA-256 into the manifest, sign the manifest with Ed25519.
 * Verifying: the manifest must parse, every listed file must exist with its exact SHA-256, and
 * with a public key the signature must match — otherwise an InputError naming the file.
 */
import { createHash, createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { InputError } from '../errors.js';
import { VERSION } from '../version.js';
import { BUNDLE_FORMAT, MANIFEST, SIGNATURE, type ManifestFileJson, type ManifestJson, type ModelRole } from './manifest.js';

export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export function loadPrivateKey(pem: string, file: string): KeyObject {
  try {
    const k = createPrivateKey(pem);
    if (k.asymmetricKeyType !== 'ed25519') throw new Error(`a ${k.asymmetricKeyType} key`);
    return k;
  } catch (e) {
    throw new InputError(`not an Ed25519 private key: ${(e as Error).message}`, { file, expected: 'a PEM private key written by streamcell keygen' });
  }
}

export function loadPublicKey(pem: string, file: string): KeyObject {
  try {
    const k = createPublicKey(pem);
    if (k.asymmetricKeyType !== 'ed25519') throw new Error(`a ${k.asymmetricKeyType} key`);
    return k;
  } catch (e) {
    throw new InputError(`not an Ed25519 public key: ${(e as Error).message}`, { file, expected: 'a PEM public key written by streamcell keygen' });
  }
}

export interface BundleParts {
  name: string;
  version: string;
  preprocessing: Record<string, unknown> & { channels: string[]; window: number; task: 'forecast' | 'classify'; sample_rate?: number };
  models: Partial<Record<ModelRole, Uint8Array>>;
  sourceSha256: string;
}

/**
 * Writes a bundle directory atomically (a temp directory renamed into place) and signs it when
 * a private key is given.
 */
export async function writeBundle(out: string, parts: BundleParts, privateKey?: KeyObject): Promise<ManifestJson> {
  const dir = resolve(out);
  const tmp = `${dir}.tmp-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  const files: ManifestJson['files'] = {};
  const put = async (role: ModelRole | 'preprocessing', path: string, bytes: Uint8Array) => {
    await writeFile(join(tmp, path), bytes);
    files[role] = { path, sha256: sha256(bytes), bytes: bytes.byteLength } satisfies ManifestFileJson;
  };
  for (const [role, bytes] of Object.entries(parts.models) as [ModelRole, Uint8Array][]) await put(role, `${role.replace('_', '-')}.onnx`, bytes);
  await put('preprocessing', 'preprocessing.json', Buffer.from(JSON.stringify(parts.preprocessing, null, 2) + '\n'));
  const p = parts.preprocessing;
  const manifest: ManifestJson = {
    format: BUNDLE_FORMAT, name: parts.name, version: parts.version, created: new Date().toISOString(),
    channels: p.channels, sample_rate: p.sample_rate ?? null, window: p.window, task: p.task, preprocessing: p,
    files, min_streamcell_version: VERSION, source_sha256: parts.sourceSha256,
  };
  const bytes = Buffer.from(JSON.stringify(manifest, null, 2) + '\n');
  await writeFile(join(tmp, MANIFEST), bytes);
  if (privateKey) await writeFile(join(tmp, SIGNATURE), sign(null, bytes, privateKey).toString('base64') + '\n');
  await rm(dir, { recursive: true, force: true });
  await rename(tmp, dir);
  return manifest;
}

export interface VerifiedBundle {
  dir: string;
  manifest: ManifestJson;
  signed: boolean;
  /** Reads a model role's bytes (already checked). */
  model(role: ModelRole): Uint8Array | undefined;
}

function cmpVersion(a: string, b: string): number {
  const pa = a.split(/[.-]/).map(Number);
  const pb = b.split(/[.-]/).map(Number);
  for (let i = 0; i < 3; i++) if ((pa[i] ?? 0) !== (pb[i] ?? 0)) return (pa[i] ?? 0) - (pb[i] ?? 0);
  return 0;
}

/**
 * Verifies a bundle directory. With `publicKey` the signature is required and checked; with
 * `requireSignature` and no key the call is refused.
 */
export async function verifyBundle(dir: string, opts: { publicKey?: KeyObject } = {}): Promise<VerifiedBundle> {
  const root = resolve(dir);
  const mpath = join(root, MANIFEST);
  let bytes: Buffer;
  try {
    bytes = await readFile(mpath);
  } catch (e) {
    throw new InputError(`not a bundle: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { file: mpath, expected: 'a directory written by streamcell bundle' });
  }
  let signed = false;
  if (opts.publicKey) {
    const spath = join(root, SIGNATURE);
    let sig: Buffer;
    try {
      sig = Buffer.from((await readFile(spath, 'utf8')).trim(), 'base64');
    } catch {
      throw new InputError('the bundle is not signed', { file: spath, expected: 'manifest.sig (streamcell bundle --sign KEY)' });
    }
    if (sig.length !== 64 || !verify(null, bytes, opts.publicKey, sig)) {
      throw new InputError('signature does not match the manifest: the manifest was changed or signed with another key', { file: spath, expected: 'an Ed25519 signature of manifest.json by the pinned key' });
    }
    signed = true;
  }
  let manifest: ManifestJson;
  try {
    manifest = JSON.parse(bytes.toString('utf8')) as ManifestJson;
  } catch (e) {
    throw new InputError(`manifest is not valid JSON: ${(e as Error).message}`, { file: mpath, expected: 'the manifest written by streamcell bundle' });
  }
  if (manifest.format !== BUNDLE_FORMAT || typeof manifest.files !== 'object' || manifest.files === null) {
    throw new InputError(`unsupported bundle format ${JSON.stringify(manifest.format)}`, { file: mpath, field: 'format', expected: String(BUNDLE_FORMAT) });
  }
  if (manifest.min_streamcell_version && cmpVersion(manifest.min_streamcell_version, VERSION) > 0) {
    throw new InputError(`the bundle needs streamcell ≥ ${manifest.min_streamcell_version}, this is ${VERSION}`, { file: mpath, field: 'min_streamcell_version', expected: `≤ ${VERSION}` });
  }
  const contents = new Map<string, Uint8Array>();
  for (const [role, f] of Object.entries(manifest.files) as [string, ManifestFileJson][]) {
    const path = join(root, f.path);
    if (!path.startsWith(root + '/')) throw new InputError(`file '${f.path}' lies outside the bundle`, { file: mpath, field: `files.${role}.path`, expected: 'a path inside the bundle' });
    let data: Buffer;
    try {
      data = await readFile(path);
    } catch (e) {
      throw new InputError(`bundle file is missing: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { file: path, field: `files.${role}`, expected: `the ${role} file listed in the manifest` });
    }
    const got = sha256(data);
    if (got !== f.sha256) {
      throw new InputError(`checksum mismatch: SHA-256 is ${got.slice(0, 16)}…, the manifest says ${f.sha256.slice(0, 16)}…`, { file: path, field: `files.${role}.sha256`, expected: 'the file as the bundle was built' });
    }
    contents.set(role, data);
  }
  return { dir: root, manifest, signed, model: (role) => contents.get(role) };
}
