/** A model argument that is either an ONNX file or a bundle directory (verified first). */
import { statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { InputError, isStreamcellError } from '../errors.js';
import { readPreprocessing } from '../model-format/index.js';
import { decodeUserModel } from '../onnx/proto.js';
import type { BackendChoice } from '../runtime/backend.js';
import { loadPublicKey, verifyBundle, type VerifiedBundle } from '../bundle/bundle.js';
import { MANIFEST, type ModelRole } from '../bundle/manifest.js';

export interface ResolvedModel {
  file: string;
  bytes: Uint8Array;
  bundle?: VerifiedBundle;
}

/**
 * Reads an ONNX file, or verifies a bundle (checksums always; the signature when a public key
 * is given by `publicKey` or STREAMCELL_PUBLIC_KEY) and returns its `role` model (default: the
 * manifest's `step_default`, else `step`).
 */
export async function resolveModel(path: string, opts: { publicKey?: string; role?: ModelRole } = {}): Promise<ResolvedModel> {
  const file = resolve(path);
  let isDir = false;
  try {
    isDir = statSync(file).isDirectory();
  } catch (e) {
    throw new InputError(`cannot read model: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, {
      file,
      expected: 'an ONNX model or a bundle directory',
    });
  }
  if (isDir) {
    const bundle = await verifyBundle(file, { publicKey: await publicKeyFrom(opts.publicKey) });
    // The step model the bundle was built to serve by default (bundle --prefer), else float.
    const role = opts.role ?? bundle.manifest.step_default ?? 'step';
    const bytes = bundle.model(role) ?? (role === 'step' ? bundle.model('float') : undefined);
    if (!bytes)
      throw new InputError(`the bundle has no ${role} model`, {
        file: join(file, MANIFEST),
        field: `files.${role}`,
        expected: 'a bundle built by streamcell bundle',
      });
    return { file, bytes, bundle };
  }
  try {
    return { file, bytes: new Uint8Array(await readFile(file)) };
  } catch (e) {
    throw new InputError(`cannot read model: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { file, expected: 'an ONNX model' });
  }
}

/** onnxruntime's first message line without its C++ source location and function signature. */
export function ortMessage(e: unknown): string {
  const first = (e instanceof Error ? e.message : String(e)).split('\n')[0]!.trim();
  const text = first.replace(/^\S+\.(?:h|cc|cpp):\d+ (?:[^()]*\([^()]*\) )?/, '');
  return text.length > 400 ? `${text.slice(0, 397)}...` : text;
}

/**
 * Proves onnxruntime can load a user's ONNX file before a command builds anything on it, so a
 * file it refuses (an unknown op, an opset it does not know, a dangling node input, an
 * initializer larger than its data) is the user's input error, exit 2 naming the file — and a
 * later failure on a model streamcell derived from it stays what it is, a bug (exit 3).
 */
export async function assertOnnxLoads(bytes: Uint8Array, file: string, choice: BackendChoice = {}): Promise<void> {
  decodeUserModel(bytes, file);
  const { resolveBackend } = await import('../runtime/backend-impl.js');
  const { backend } = await resolveBackend(choice.force ? { force: choice.force } : { prefer: choice.prefer });
  let session;
  try {
    session = await backend.createSession(bytes);
  } catch (e) {
    if (isStreamcellError(e)) throw e;
    throw new InputError(`onnxruntime cannot load ${file}: ${ortMessage(e)}`, {
      file,
      expected: 'an ONNX model onnxruntime can load: known ops of a released opset, every node input defined, initializers as large as their data',
    });
  }
  await session.release();
}

/**
 * Runs a command's work on a user's file: an input error that names no file (nor a flag) is
 * about this one, so it gets `file`.
 */
export async function aboutFile<T>(file: string, body: () => Promise<T>): Promise<T> {
  try {
    return await body();
  } catch (e) {
    if (isStreamcellError(e) && !e.context.file && !e.context.field?.startsWith('--')) (e.context as { file?: string }).file = file;
    throw e;
  }
}

/**
 * The channels a step model's readings carry: the names in its `streamcell.preprocessing`
 * metadata, else the size of its sample input's last dim.
 */
export function channelsOf(info: { metadata: Record<string, string>; sampleInputs: { dims: (number | string | null)[] }[] }, file: string): string[] | number {
  const pre = readPreprocessing(info.metadata, file);
  if (pre === undefined) {
    const last = info.sampleInputs[0]?.dims.at(-1);
    return typeof last === 'number' && last >= 1 ? last : 1;
  }
  return pre.channels;
}

/** The bundle-verification key named by `--public-key FILE` or STREAMCELL_PUBLIC_KEY; undefined when neither is set. */
export async function publicKeyFrom(flag: string | undefined): Promise<ReturnType<typeof loadPublicKey> | undefined> {
  const keyFile = flag ?? process.env.STREAMCELL_PUBLIC_KEY;
  if (!keyFile) return undefined;
  const text = await readFile(resolve(keyFile), 'utf8').catch(() => {
    throw new InputError('cannot read the public key', { file: resolve(keyFile), expected: 'a PEM public key (streamcell keygen)' });
  });
  return loadPublicKey(text, resolve(keyFile));
}
