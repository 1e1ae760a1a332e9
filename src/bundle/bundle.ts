/**
 * Building and verifying bundles. Building: export the tfjs model, streamify it, quantize both
 * forms, write every file with its SHA-256 into the manifest, sign the manifest with Ed25519.
 * Verifying: the manifest must parse and have the format's structure, every listed file must be
 * a regular file (not a symlink, FIFO or device) of the listed size with its exact SHA-256
 * (hashed as a stream, never more bytes than the manifest lists), and with a public key the
 * signature must match — otherwise an InputError naming the file and the field.
 */
import { createHash, createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { constants, type Stats } from 'node:fs';
import { lstat, mkdir, open, readdir, readlink, rename, rm, writeFile, type FileHandle } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { InputError } from '../errors.js';
import { VERSION } from '../version.js';
import {
  BUNDLE_FORMAT,
  checkBundleName,
  checkManifest,
  MANIFEST,
  MAX_FILE_BYTES,
  MAX_MANIFEST_BYTES,
  SIGNATURE,
  type ManifestFileJson,
  type ManifestJson,
  type ModelRole,
  type StepChoiceJson,
} from './manifest.js';
import { mkdirp } from '../mkdirp.js';

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

/** What {@link writeBundle} writes: name, version, the files by role and their bytes. */
export interface BundleParts {
  name: string;
  version: string;
  preprocessing: Record<string, unknown> & { channels: string[]; window: number; task: 'forecast' | 'classify'; sample_rate?: number };
  models: Partial<Record<ModelRole, Uint8Array>>;
  sourceSha256: string;
  /** The step model runtimes load by default, and how it was chosen. */
  stepDefault?: ManifestJson['step_default'];
  stepChoice?: StepChoiceJson;
}

/**
 * Writes a bundle directory atomically (a temp directory renamed into place) and signs it when
 * a private key is given.
 */
export async function writeBundle(out: string, parts: BundleParts, privateKey?: KeyObject): Promise<ManifestJson> {
  checkBundleName(parts.name, 'name');
  checkBundleName(parts.version, 'version');
  const dir = resolve(out);
  const tmp = `${dir}.tmp-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  await mkdirp(tmp);
  const files: ManifestJson['files'] = {};
  const put = async (role: ModelRole | 'preprocessing', path: string, bytes: Uint8Array) => {
    await writeFile(join(tmp, path), bytes);
    files[role] = { path, sha256: sha256(bytes), bytes: bytes.byteLength } satisfies ManifestFileJson;
  };
  for (const [role, bytes] of Object.entries(parts.models) as [ModelRole, Uint8Array][]) await put(role, `${role.replace('_', '-')}.onnx`, bytes);
  await put('preprocessing', 'preprocessing.json', Buffer.from(JSON.stringify(parts.preprocessing, null, 2) + '\n'));
  const p = parts.preprocessing;
  const manifest: ManifestJson = {
    format: BUNDLE_FORMAT,
    name: parts.name,
    version: parts.version,
    created: new Date().toISOString(),
    channels: p.channels,
    sample_rate: p.sample_rate ?? null,
    window: p.window,
    task: p.task,
    preprocessing: p,
    files,
    min_streamcell_version: VERSION,
    source_sha256: parts.sourceSha256,
    ...(parts.stepDefault ? { step_default: parts.stepDefault } : {}),
    ...(parts.stepChoice ? { step_choice: parts.stepChoice } : {}),
  };
  const bytes = Buffer.from(JSON.stringify(manifest, null, 2) + '\n');
  await writeFile(join(tmp, MANIFEST), bytes);
  if (privateKey) await writeFile(join(tmp, SIGNATURE), sign(null, bytes, privateKey).toString('base64') + '\n');
  await rm(dir, { recursive: true, force: true });
  await rename(tmp, dir);
  return manifest;
}

/** A bundle whose manifest, checksums (and signature, when a key was given) verified: its directory, manifest and whether it is signed. */
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

function kind(st: Stats): string {
  return st.isSymbolicLink()
    ? 'a symbolic link'
    : st.isDirectory()
      ? 'a directory'
      : st.isFIFO()
        ? 'a FIFO'
        : st.isSocket()
          ? 'a socket'
          : st.isCharacterDevice()
            ? 'a character device'
            : st.isBlockDevice()
              ? 'a block device'
              : 'not a regular file';
}

/**
 * Opens a bundle file for reading only when it is a regular file: lstat first (a FIFO would
 * block open(2)), then O_NOFOLLOW, and the opened file must be the one lstat saw.
 */
async function openRegular(path: string, ctx: { field: string; expected: string }): Promise<{ fh: FileHandle; size: number }> {
  let st: Stats;
  try {
    st = await lstat(path);
  } catch (e) {
    throw new InputError(`bundle file is missing: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { file: path, ...ctx });
  }
  if (!st.isFile()) {
    const to = st.isSymbolicLink() ? ` to ${await readlink(path).catch(() => '?')}` : '';
    throw new InputError(`bundle file is ${kind(st)}${to}: bundles hold regular files only`, { file: path, ...ctx });
  }
  let fh: FileHandle;
  try {
    fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new InputError(
      code === 'ELOOP' ? 'bundle file is a symbolic link: bundles hold regular files only' : `cannot open bundle file: ${code ?? (e as Error).message}`,
      { file: path, ...ctx },
    );
  }
  const now = await fh.stat();
  if (!now.isFile() || now.ino !== st.ino || now.dev !== st.dev) {
    await fh.close();
    throw new InputError('bundle file was replaced while being opened', { file: path, ...ctx });
  }
  return { fh, size: now.size };
}

/**
 * Streams a listed file through SHA-256 — checking its size against the manifest before a
 * byte is read, and never reading past it — optionally handing each chunk to `sink` and
 * keeping the bytes. Throws an InputError naming the file and the field on any mismatch.
 */
async function readListed(
  path: string,
  role: string,
  f: ManifestFileJson,
  opts: { keep?: boolean; sink?: (chunk: Uint8Array) => Promise<unknown> } = {},
): Promise<Buffer | undefined> {
  const { fh, size } = await openRegular(path, { field: `files.${role}.path`, expected: `the ${role} file listed in the manifest, a regular file` });
  try {
    const limit = f.bytes ?? MAX_FILE_BYTES;
    if (f.bytes !== undefined && size !== f.bytes) {
      throw new InputError(`size mismatch: the file has ${size} bytes, the manifest says ${f.bytes} (refused without reading it)`, {
        file: path,
        field: `files.${role}.bytes`,
        expected: 'the file as the bundle was built',
      });
    }
    if (size > limit)
      throw new InputError(`the file has ${size} bytes, more than ${limit}`, { file: path, field: `files.${role}.bytes`, expected: `at most ${limit} bytes` });
    const hash = createHash('sha256');
    const chunks: Buffer[] = [];
    let total = 0;
    const buf = Buffer.allocUnsafe(Math.min(1 << 20, limit + 1));
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      total += bytesRead;
      if (total > limit)
        throw new InputError(`the file grew past ${limit} bytes while being read`, {
          file: path,
          field: `files.${role}.bytes`,
          expected: 'the file as the bundle was built',
        });
      const chunk = buf.subarray(0, bytesRead);
      hash.update(chunk);
      if (opts.keep) chunks.push(Buffer.from(chunk));
      if (opts.sink) await opts.sink(chunk);
    }
    const got = hash.digest('hex');
    if (got !== f.sha256) {
      throw new InputError(`checksum mismatch: SHA-256 is ${got.slice(0, 16)}…, the manifest says ${f.sha256.slice(0, 16)}…`, {
        file: path,
        field: `files.${role}.sha256`,
        expected: 'the file as the bundle was built',
      });
    }
    return opts.keep ? Buffer.concat(chunks, total) : undefined;
  } finally {
    await fh.close();
  }
}

async function readSmall(path: string, max: number, ctx: { field: string; expected: string }): Promise<Buffer> {
  const { fh, size } = await openRegular(path, ctx);
  try {
    if (size > max) throw new InputError(`the file has ${size} bytes, more than ${max}`, { file: path, ...ctx });
    const buf = Buffer.alloc(max + 1);
    let n = 0;
    for (;;) {
      const { bytesRead } = await fh.read(buf, n, buf.length - n, null);
      if (bytesRead === 0) break;
      n += bytesRead;
      if (n > max) throw new InputError(`the file grew past ${max} bytes while being read`, { file: path, ...ctx });
    }
    return buf.subarray(0, n);
  } finally {
    await fh.close();
  }
}

interface ReadManifest {
  manifest: ManifestJson;
  /** The manifest's exact bytes (the ones the signature covers). */
  bytes: Buffer;
  /** manifest.sig's bytes, when there is one. */
  sig?: Buffer;
  signed: boolean;
}

/** Reads, checks the signature of (with a key), parses and checks the structure of a bundle's manifest. */
async function readManifest(root: string, publicKey?: KeyObject): Promise<ReadManifest> {
  const mpath = join(root, MANIFEST);
  let bytes: Buffer;
  try {
    bytes = await readSmall(mpath, MAX_MANIFEST_BYTES, {
      field: MANIFEST,
      expected: `the manifest written by streamcell bundle, a regular file of at most ${MAX_MANIFEST_BYTES} bytes`,
    });
  } catch (e) {
    if (e instanceof InputError && /^bundle file is missing/.test(e.message))
      throw new InputError(`not a bundle: ${e.message.replace(/^bundle file is missing: /, '')}`, {
        file: mpath,
        expected: 'a directory written by streamcell bundle',
      });
    throw e;
  }
  const spath = join(root, SIGNATURE);
  const sigExists = await lstat(spath).then(
    () => true,
    () => false,
  );
  const sigBytes = sigExists ? await readSmall(spath, 4096, { field: SIGNATURE, expected: 'manifest.sig (streamcell bundle --sign KEY)' }) : undefined;
  let signed = false;
  if (publicKey) {
    if (!sigBytes) throw new InputError('the bundle is not signed', { file: spath, expected: 'manifest.sig (streamcell bundle --sign KEY)' });
    const sig = Buffer.from(sigBytes.toString('utf8').trim(), 'base64');
    if (sig.length !== 64 || !verify(null, bytes, publicKey, sig)) {
      throw new InputError('signature does not match the manifest: the manifest was changed or signed with another key', {
        file: spath,
        expected: 'an Ed25519 signature of manifest.json by the pinned key',
      });
    }
    signed = true;
  }
  let raw: unknown;
  try {
    raw = JSON.parse(bytes.toString('utf8'));
  } catch (e) {
    throw new InputError(`manifest is not valid JSON: ${(e as Error).message}`, {
      file: mpath,
      field: '(manifest)',
      expected: 'the manifest written by streamcell bundle',
    });
  }
  const manifest = checkManifest(raw, mpath);
  if (manifest.min_streamcell_version && cmpVersion(manifest.min_streamcell_version, VERSION) > 0) {
    throw new InputError(`the bundle needs streamcell ≥ ${manifest.min_streamcell_version}, this is ${VERSION}`, {
      file: mpath,
      field: 'min_streamcell_version',
      expected: `≤ ${VERSION}`,
    });
  }
  return { manifest, bytes, sig: sigBytes, signed };
}

/**
 * Verifies a bundle directory. With `publicKey` the signature is required and checked.
 * Listed files must be regular files; unlisted files are not looked at.
 */
export async function verifyBundle(dir: string, opts: { publicKey?: KeyObject } = {}): Promise<VerifiedBundle> {
  const root = resolve(dir);
  const { manifest, signed } = await readManifest(root, opts.publicKey);
  const contents = new Map<string, Uint8Array>();
  for (const [role, f] of Object.entries(manifest.files) as [string, ManifestFileJson][]) {
    contents.set(role, (await readListed(join(root, f.path), role, f, { keep: true }))!);
  }
  return { dir: root, manifest, signed, model: (role) => contents.get(role) };
}

export interface CopiedBundle {
  manifest: ManifestJson;
  signed: boolean;
  /** Entries of the source that the manifest does not list, not copied ("name" or "name (a symbolic link)"). */
  ignored: string[];
}

/**
 * Copies a bundle into `dest` (which must not exist): the manifest bytes that were checked,
 * manifest.sig, and the files the manifest lists — each a regular file opened without
 * following links, streamed through SHA-256 and checked against the manifest as it is copied.
 * Nothing else is copied; unlisted entries come back in `ignored`. The caller removes `dest`
 * when this throws.
 */
export async function copyBundle(src: string, dest: string, opts: { publicKey?: KeyObject } = {}): Promise<CopiedBundle> {
  const root = resolve(src);
  const m = await readManifest(root, opts.publicKey);
  await mkdir(dest, { mode: 0o755 });
  await writeFile(join(dest, MANIFEST), m.bytes, { flag: 'wx', mode: 0o644 });
  if (m.sig) await writeFile(join(dest, SIGNATURE), m.sig, { flag: 'wx', mode: 0o644 });
  const listed = new Set<string>([MANIFEST, SIGNATURE]);
  for (const [role, f] of Object.entries(m.manifest.files) as [string, ManifestFileJson][]) {
    if (listed.has(f.path)) continue; // two roles, one file
    listed.add(f.path);
    const out = await open(join(dest, f.path), constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o644);
    try {
      await readListed(join(root, f.path), role, f, { sink: (chunk) => out.appendFile(chunk) });
    } finally {
      await out.close();
    }
  }
  const ignored: string[] = [];
  for (const name of (await readdir(root)).sort()) {
    if (listed.has(name)) continue;
    const st = await lstat(join(root, name)).catch(() => undefined);
    ignored.push(st && !st.isFile() ? `${name} (${kind(st)})` : name);
  }
  return { manifest: m.manifest, signed: m.signed, ignored };
}
