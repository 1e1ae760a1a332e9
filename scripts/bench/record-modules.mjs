/**
 * Preload that records every module a Node process loads, one `file:` URL per line, in the file
 * named by RECORD_MODULES (appended; a URL may repeat). ES modules are seen by a load hook,
 * CommonJS ones by wrapping Module._load (on Node 20 a require() inside a CommonJS package does
 * not pass the ESM hooks). Builtins (`node:`) are left out.
 *
 *   RECORD_MODULES=/tmp/m.txt node --import ./scripts/bench/record-modules.mjs dist/cli/bin.js --help
 *
 * Used by scripts/bench/startup.mjs (module counts) and test/cli/startup.test.ts.
 */
import Module, { register } from 'node:module';
import { appendFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

const out = process.env.RECORD_MODULES;
if (out) {
  register(
    'data:text/javascript,' +
      encodeURIComponent(`import { appendFileSync } from 'node:fs';
export async function load(url, context, next) {
  if (!url.startsWith('node:')) appendFileSync(${JSON.stringify(out)}, url + '\\n');
  return next(url, context);
}`),
    import.meta.url,
  );
  const seen = new Set();
  const load = Module._load;
  Module._load = function (request, parent, isMain) {
    if (!Module.isBuiltin(request)) {
      try {
        const url = pathToFileURL(Module._resolveFilename(request, parent, isMain)).href;
        if (!seen.has(url)) {
          seen.add(url);
          appendFileSync(out, url + '\n');
        }
      } catch {
        /* unresolvable: Module._load throws the real error below */
      }
    }
    return load.apply(this, arguments);
  };
}

/** The distinct modules listed in a RECORD_MODULES file. */
export function recordedModules(text) {
  return [...new Set(text.split('\n').filter(Boolean))];
}
