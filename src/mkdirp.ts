/**
 * `mkdir -p`, one component at a time. Node's `mkdir(…, { recursive: true })` (sync and async)
 * loops forever where mkdir(2) answers ENOENT under an existing parent (e.g. below /proc, as
 * root); these fail with that error instead, for the caller to report.
 */
import { mkdirSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { resolve, sep } from 'node:path';

function prefixes(dir: string): string[] {
  const parts = resolve(dir).split(sep).filter(Boolean);
  return parts.map((_, i) => sep + parts.slice(0, i + 1).join(sep));
}

const exists = (e: unknown) => (e as NodeJS.ErrnoException).code === 'EEXIST';

export function mkdirpSync(dir: string): void {
  for (const p of prefixes(dir)) {
    try {
      mkdirSync(p);
    } catch (e) {
      if (!exists(e)) throw e;
    }
  }
}

export async function mkdirp(dir: string): Promise<void> {
  for (const p of prefixes(dir))
    await mkdir(p).catch((e: unknown) => {
      if (!exists(e)) throw e;
    });
}
