/**
 * `--backend` for every command that runs a model, and how the chosen backend is reported.
 * A named backend (flag or STREAMCELL_BACKEND) is forced: no probe, no fallback. Otherwise the
 * board's preference is tried in order (onnxruntime-web first on 32-bit ARM), onnxruntime-node
 * after a probe in a child process, so a binary that would crash falls back to WASM.
 */
import type { Argv } from 'yargs';
import { detectDevice } from '../devices/detect.js';
import { InputError } from '../errors.js';
import { BACKEND_NAMES, type BackendChoice, type BackendName, type BackendRecord } from '../runtime/backend.js';

export interface BackendArgs {
  backend?: BackendName;
}

export function withBackendOption<T>(y: Argv<T>) {
  return y.option('backend', {
    choices: BACKEND_NAMES,
    describe:
      "force an inference backend (also STREAMCELL_BACKEND); default: the board's preference, onnxruntime-node after a crash-safe probe, else onnxruntime-web",
  });
}

/** The backend a command should use: forced by flag or environment, else the board's preference. */
export function backendChoice(args: BackendArgs, configured?: BackendName): BackendChoice & { preferred: BackendName[] } {
  const env = process.env.STREAMCELL_BACKEND;
  if (env !== undefined && env !== '' && !BACKEND_NAMES.includes(env as BackendName)) {
    throw new InputError(`STREAMCELL_BACKEND is '${env}'`, { field: 'STREAMCELL_BACKEND', expected: BACKEND_NAMES.join(' or ') });
  }
  // Flag, then environment (an EnvironmentFile override on a device), then the config file.
  const force = args.backend ?? ((env || undefined) as BackendName | undefined) ?? configured;
  const first = detectDevice().backend;
  const preferred = [first, ...BACKEND_NAMES.filter((b) => b !== first)];
  return force ? { force, preferred } : { prefer: preferred, preferred };
}

/** `--execution-provider a,b` (or a config list) → a list; the backend checks it against what it has. */
export function executionProviders(v: string | string[] | undefined): string[] | undefined {
  if (v === undefined) return undefined;
  const list = (Array.isArray(v) ? v : v.split(',')).map((s) => s.trim().toLowerCase()).filter(Boolean);
  if (list.length === 0)
    throw new InputError('--execution-provider is empty', { field: '--execution-provider', expected: 'a comma-separated list, e.g. cuda' });
  return list;
}

/** One line: which backend ran and why (for stderr or a text report). */
export function describeBackend(r: BackendRecord): string {
  const why =
    r.how === 'forced'
      ? 'forced'
      : r.skipped.length
        ? `fallback: ${r.skipped.map((s) => `${s.name} skipped — ${s.reason}`).join('; ')}`
        : r.probe?.ok
          ? `native probe ok${r.probe.cached ? ', cached' : ''}`
          : 'preferred';
  return `backend: ${r.name} ${r.version} (${why})`;
}
