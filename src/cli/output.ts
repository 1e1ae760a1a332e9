/** Shared CLI plumbing: JSON vs human output and error → exit status. */
import { describeError, isStreamcellError } from '../errors.js';

export interface GlobalArgs {
  json?: boolean;
}

/** Prints `data` as one JSON document with --json, else the human text. */
export function emit(args: GlobalArgs, data: unknown, human: () => string): void {
  if (args.json) process.stdout.write(JSON.stringify(data, null, 2) + '\n');
  else process.stdout.write(human() + '\n');
}

/** Exit status for an error: 1 failed check, 2 bad input/usage, 3 anything unexpected. */
export function exitCodeFor(e: unknown): number {
  if (isStreamcellError(e)) return e.exitCode;
  return 3;
}

export function reportError(args: GlobalArgs, e: unknown): void {
  const code = exitCodeFor(e);
  if (args.json) {
    const ctx = isStreamcellError(e) ? e.context : {};
    process.stdout.write(JSON.stringify({ ok: false, error: { name: (e as Error).name, message: (e as Error).message, ...ctx }, exitCode: code }, null, 2) + '\n');
  }
  process.stderr.write(`streamcell: ${describeError(e)}\n`);
  if (code === 3 && e instanceof Error && e.stack && process.env.STREAMCELL_DEBUG) process.stderr.write(e.stack + '\n');
  process.exitCode = code;
}

/** Runs a handler body, mapping thrown errors to output and exit status. */
export async function guarded(args: GlobalArgs, body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (e) {
    reportError(args, e);
  }
}

export function fmtBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(2)} MiB`;
}
