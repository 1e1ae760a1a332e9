import { createRequire } from 'node:module';

// src/ and dist/ both sit next to package.json, so the same relative path works for both.
const pkg = createRequire(import.meta.url)('../package.json') as { version: string };

/** The toolkit's version, written into every file it produces. */
export const VERSION: string = pkg.version;
