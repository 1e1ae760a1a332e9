/** Shared CLI plumbing: JSON vs human output and error → exit status. */
import { accessSync, constants, statSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { describeError, InputError, isStreamcellError } from '../errors.js';
import type { ArgumentsCamelCase, Argv } from 'yargs';

/**
 * Writes a file the user named with a flag: a missing folder or a read-only place is their input
 * to fix (exit 2, naming the file and the flag), not a crash.
 */
/**
 * Refuses, before any work, an output path whose folder does not exist or cannot be written
 * (exit 2 naming `flag`): a report written after minutes of training must not fail then.
 */
export function assertWritableFolder(file: string, flag: string): void {
  const dir = dirname(file);
  let ok = false;
  try {
    ok = statSync(dir).isDirectory();
    if (ok) accessSync(dir, constants.W_OK);
  } catch {
    ok = false;
  }
  if (!ok)
    throw new InputError(`cannot write '${file}': its folder does not exist or is not writable`, {
      file,
      field: flag,
      expected: 'a file path in an existing, writable folder',
    });
}

/** A comma-separated flag value as its trimmed, non-empty items (undefined when the flag is absent). */
export function commaList(v: string | undefined): string[] | undefined {
  return v
    ?.split(',')
    .map((x) => x.trim())
    .filter(Boolean);
}

export async function writeOutput(file: string, data: string | Uint8Array, flag = '-o', mode?: number): Promise<void> {
  try {
    await writeFile(file, data, mode === undefined ? undefined : { mode });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT'
        ? 'its folder does not exist'
        : code === 'EACCES' || code === 'EPERM'
          ? 'permission denied'
          : code === 'EISDIR'
            ? 'it is a folder'
            : code === 'ENOSPC'
              ? 'the disk is full'
              : (e as Error).message;
    throw new InputError(`cannot write '${file}': ${why}`, { file, field: flag, expected: 'a file path in an existing, writable folder' });
  }
}

/**
 * The arguments a command's `builder` declares, inferred from its options (so the handler's
 * type cannot drift from them), plus the global ones.
 */
export type ArgsOf<B extends (y: Argv) => Argv<unknown> | Promise<Argv<unknown>>> = ArgumentsCamelCase<
  GlobalArgs & (Awaited<ReturnType<B>> extends Argv<infer T> ? T : never)
>;

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

/** `maxDrop` → `--max-drop`: the flag a library option comes from. */
export function flagOf(option: string): string {
  return `--${option.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}

export function reportError(args: GlobalArgs, e: unknown): void {
  const code = exitCodeFor(e);
  // The library names its option; a CLI user set a flag.
  if (isStreamcellError(e) && e.context.option && !e.context.field) (e.context as { field?: string }).field = flagOf(e.context.option);
  if (args.json) {
    const ctx = isStreamcellError(e) ? e.context : {};
    process.stdout.write(
      JSON.stringify({ ok: false, error: { name: (e as Error).name, message: (e as Error).message, ...ctx }, exitCode: code }, null, 2) + '\n',
    );
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
