/**
 * A small, strict CSV reader for sensor tables: a header row, then one row per sample.
 * Empty cells and NaN are gaps (kept as NaN for the caller to fill); anything else that is not
 * a number is an error naming the file, line and column.
 *
 * Fields and numbers follow the devices' reading grammar (src/devices/framing/grammar.ts:
 * quoting, BOM, CRLF, `nan`, empty cells), so a CSV line reads the same here as from a serial
 * port or a file source. Two rules are this reader's own: `NA` is also a gap (R-style exports),
 * and `inf` is an error, as a training table must be finite.
 */
import { readFile } from 'node:fs/promises';
import { InputError } from '../errors.js';
import { parseNumberField, splitFields } from '../devices/framing/grammar.js';

export interface Table {
  file: string;
  columns: string[];
  /** Column-major numeric data; NaN marks a gap. Non-numeric columns are kept in `text`. */
  numeric: Map<string, Float64Array>;
  text: Map<string, string[]>;
  rows: number;
}

/** Cells of one row: the devices' quote-aware field splitter (src/devices/framing/grammar.ts). */
function splitLine(line: string, sep: string): string[] {
  return splitFields(line, sep === '\t' ? '\t' : sep === ';' ? ';' : ',');
}

/**
 * Parses CSV text. `textColumns` may hold labels (kept as strings); every other column must be
 * numeric or empty.
 *
 * @example
 * const t = await readCsv('data.csv', { textColumns: ['activity'] });
 */
export function parseCsv(text: string, file: string, opts: { textColumns?: string[] } = {}): Table {
  const lines = text.split(/\r?\n/);
  while (lines.length > 0 && lines[lines.length - 1]!.trim() === '') lines.pop();
  if (lines.length === 0) throw new InputError('the CSV file is empty', { file, line: 1, expected: 'a header row naming the columns' });
  const header = lines[0]!.replace(/^\uFEFF/, '');
  const sep = header.includes(',') ? ',' : header.includes(';') ? ';' : header.includes('\t') ? '\t' : ',';
  const columns = splitLine(header, sep).map((c) => c.trim());
  if (columns.some((c) => c === '') || new Set(columns).size !== columns.length) {
    throw new InputError(`the header row has empty or repeated column names: ${JSON.stringify(columns)}`, { file, line: 1, expected: 'unique column names' });
  }
  const textCols = new Set(opts.textColumns ?? []);
  const n = lines.length - 1;
  const numeric = new Map<string, Float64Array>();
  const texts = new Map<string, string[]>();
  for (const c of columns) {
    if (textCols.has(c)) texts.set(c, new Array<string>(n));
    else numeric.set(c, new Float64Array(n));
  }
  for (let r = 0; r < n; r++) {
    const cells = splitLine(lines[r + 1]!, sep);
    if (cells.length !== columns.length) {
      throw new InputError(`row has ${cells.length} cells, the header has ${columns.length}`, {
        file,
        line: r + 2,
        expected: `${columns.length} comma-separated cells (${columns.join(', ')})`,
      });
    }
    for (let c = 0; c < columns.length; c++) {
      const name = columns[c]!;
      const raw = cells[c]!.trim();
      const t = texts.get(name);
      if (t) {
        t[r] = raw;
        continue;
      }
      if (raw.toLowerCase() === 'na') {
        numeric.get(name)![r] = NaN;
        continue;
      }
      const v = parseNumberField(raw);
      if (v === undefined || v === Infinity || v === -Infinity)
        throw new InputError(`cell ${JSON.stringify(raw)} is not a number`, {
          file,
          line: r + 2,
          field: name,
          expected: 'a finite number, or an empty cell for a gap',
        });
      numeric.get(name)![r] = v;
    }
  }
  return { file, columns, numeric, text: texts, rows: n };
}

export async function readCsv(file: string, opts: { textColumns?: string[] } = {}): Promise<Table> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new InputError(`cannot read '${file}': ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { file, expected: 'a CSV file' });
  }
  return parseCsv(text, file, opts);
}

/** Fills NaN gaps by linear interpolation (edges: nearest value); returns how many were filled. */
export function fillGaps(v: Float64Array): number {
  let filled = 0;
  for (let i = 0; i < v.length; i++) {
    if (!Number.isNaN(v[i]!)) continue;
    let j = i;
    while (j < v.length && Number.isNaN(v[j]!)) j++;
    const left = i > 0 ? v[i - 1]! : v[j]!;
    const right = j < v.length ? v[j]! : left;
    for (let k = i; k < j; k++) v[k] = Number.isNaN(left) ? right : left + ((right - left) * (k - i + 1)) / (j - i + 1);
    filled += j - i;
    i = j - 1;
  }
  return filled;
}

export function column(t: Table, name: string): Float64Array {
  const c = t.numeric.get(name);
  if (!c) {
    throw new InputError(`no numeric column '${name}'`, { file: t.file, line: 1, field: name, expected: `one of: ${[...t.numeric.keys()].join(', ')}` });
  }
  return c;
}
