/** A model argument that is either an ONNX file or a bundle directory (verified first). */
import { statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { InputError } from '../errors.js';
import { loadPublicKey, verifyBundle, type VerifiedBundle } from '../bundle/bundle.js';
import { MANIFEST, type ModelRole } from '../bundle/manifest.js';

export interface ResolvedModel {
  file: string;
  bytes: Uint8Array;
  bundle?: VerifiedBundle;
}

/**
 * Reads an ONNX file, or verifies a bundle (checksums always; the signature when a public key
 * is given by `publicKey` or STREAMCELL_PUBLIC_KEY) and returns its `role` model.
 */
export async function resolveModel(path: string, opts: { publicKey?: string; role?: ModelRole } = {}): Promise<ResolvedModel> {
  const file = resolve(path);
  let isDir = false;
  try {
    isDir = statSync(file).isDirectory();
  } catch (e) {
    throw new InputError(`cannot read model: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { file, expected: 'an ONNX model or a bundle directory' });
  }
  if (isDir) {
    const keyFile = opts.publicKey ?? process.env.STREAMCELL_PUBLIC_KEY;
    const publicKey = keyFile ? loadPublicKey(await readFile(resolve(keyFile), 'utf8').catch(() => {
      throw new InputError('cannot read the public key', { file: resolve(keyFile), expected: 'a PEM public key (streamcell keygen)' });
    }), resolve(keyFile)) : undefined;
    const bundle = await verifyBundle(file, { publicKey });
    const role = opts.role ?? 'step';
    const bytes = bundle.model(role) ?? (role === 'step' ? bundle.model('float') : undefined);
    if (!bytes) throw new InputError(`the bundle has no ${role} model`, { file: join(file, MANIFEST), field: `files.${role}`, expected: 'a bundle built by streamcell bundle' });
    return { file, bytes, bundle };
  }
  try {
    return { file, bytes: new Uint8Array(await readFile(file)) };
  } catch (e) {
    throw new InputError(`cannot read model: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { file, expected: 'an ONNX model' });
  }
}
