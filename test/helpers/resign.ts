/** Test bundles whose manifest was changed and signed again with the right key (so only the change is under test). */
import { createPrivateKey, sign } from 'node:crypto';
import { cp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** Copies bundle `from` to `to`, writes the manifest `edit` returns (an object, or raw text) and signs it with `key`, then runs `damage`. */
export async function resignedCopy(
  from: string,
  to: string,
  key: string,
  edit: (m: any) => unknown,
  damage: (d: string) => Promise<void> = async () => {},
): Promise<string> {
  await rm(to, { recursive: true, force: true });
  await cp(from, to, { recursive: true });
  const m = JSON.parse(await readFile(join(to, 'manifest.json'), 'utf8'));
  const out = edit(m) ?? m;
  const bytes = Buffer.from(typeof out === 'string' ? out : JSON.stringify(out, null, 2) + '\n');
  await writeFile(join(to, 'manifest.json'), bytes);
  await writeFile(join(to, 'manifest.sig'), sign(null, bytes, createPrivateKey(await readFile(key))).toString('base64') + '\n');
  await damage(to);
  return to;
}
