import { generateKeyPairSync } from 'node:crypto';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Argv } from 'yargs';
import { InputError } from '../../errors.js';
import { emit, guarded, type ArgsOf } from '../output.js';
import { mkdirp } from '../../mkdirp.js';

export const command = 'keygen';
export const describe = 'Create an Ed25519 key pair for signing bundles (streamcell.key private, streamcell.pub public)';

export function builder(y: Argv) {
  return y
    .option('output', { alias: 'o', type: 'string', default: '.', describe: 'directory for streamcell.key and streamcell.pub' })
    .option('force', { type: 'boolean', default: false, describe: 'overwrite existing keys' });
}

export async function handler(args: ArgsOf<typeof builder>): Promise<void> {
  await guarded(args, async () => {
    const dir = resolve(args.output);
    const priv = join(dir, 'streamcell.key');
    const pub = join(dir, 'streamcell.pub');
    if (!args.force && (existsSync(priv) || existsSync(pub)))
      throw new InputError('keys exist already; refusing to overwrite them', { file: priv, expected: 'a directory without streamcell.key (or --force)' });
    await mkdirp(dir);
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    await writeFile(priv, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    await writeFile(pub, publicKey.export({ type: 'spki', format: 'pem' }), { mode: 0o644 });
    emit(args, { ok: true, privateKey: priv, publicKey: pub }, () => `wrote ${priv} (keep it secret) and ${pub} (pin it on devices)`);
  });
}
