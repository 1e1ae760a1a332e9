/**
 * Error classes shared by every layer of streamcell.
 *
 * Domain failures extend {@link StreamcellError}: a literal `name`, context fields and an
 * optional `cause`, plus an `isXError` guard per class. The CLI maps them to exit codes:
 * {@link InputError} and {@link UnsupportedError} → 2 (the user gave us something we cannot
 * take), {@link CheckFailedError} → 1 (a parity/accuracy/health check failed).
 */

export interface ErrorContext {
  /** File the problem was found in, when there is one. */
  file?: string;
  /** 1-based line within `file`, when meaningful. */
  line?: number;
  /** Field / JSON path / option name that is wrong. */
  field?: string;
  /** What was expected there. */
  expected?: string;
  /**
   * The library option that is wrong (camelCase, as in the options object). The CLI shows the
   * flag it comes from (`maxDrop` → `--max-drop`); a library caller sees the option's name.
   */
  option?: string;
}

export class StreamcellError extends Error {
  override name: string = 'StreamcellError';
  readonly context: ErrorContext;
  /** Exit status the CLI uses for this error. */
  readonly exitCode: number = 2;

  constructor(message: string, context: ErrorContext = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.context = context;
  }
}

export function isStreamcellError(e: unknown): e is StreamcellError {
  return e instanceof StreamcellError;
}

/** Something the user handed us (file, option, data) is malformed or inconsistent. */
export class InputError extends StreamcellError {
  override name = 'InputError' as const;
}

export function isInputError(e: unknown): e is InputError {
  return e instanceof InputError;
}

/** A layer, option, activation or op that streamcell does not convert. */
export class UnsupportedError extends StreamcellError {
  override name = 'UnsupportedError' as const;
  /** Layer name and class the problem is in, when it is about a layer. */
  readonly layer?: { name: string; className: string };
  /** What is supported instead (class names, option values). */
  readonly supported: readonly string[];

  constructor(message: string, opts: { layer?: { name: string; className: string }; supported?: readonly string[]; field?: string; file?: string } = {}) {
    const list = opts.supported && opts.supported.length > 0 ? `\nSupported: ${opts.supported.join(', ')}` : '';
    const where = opts.layer ? `layer '${opts.layer.name}' (${opts.layer.className}): ` : '';
    super(`${where}${message}${list}`, { field: opts.field, file: opts.file });
    this.layer = opts.layer;
    this.supported = opts.supported ?? [];
  }
}

export function isUnsupportedError(e: unknown): e is UnsupportedError {
  return e instanceof UnsupportedError;
}

/** A check (parity, accuracy gate, health) ran and failed. */
export class CheckFailedError extends StreamcellError {
  override name = 'CheckFailedError' as const;
  override readonly exitCode: number = 1;
}

export function isCheckFailedError(e: unknown): e is CheckFailedError {
  return e instanceof CheckFailedError;
}

/** Formats an error for a human, with its context, on one or a few lines. */
export function describeError(e: unknown): string {
  if (e instanceof StreamcellError) {
    const c = e.context;
    const where = [c.file, c.line !== undefined ? `line ${c.line}` : undefined, c.field ? `field '${c.field}'` : c.option ? `option '${c.option}'` : undefined]
      .filter(Boolean)
      .join(', ');
    const expected = c.expected ? ` (expected ${c.expected})` : '';
    return `${e.name}: ${where ? where + ': ' : ''}${e.message}${expected}`;
  }
  return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
}
