/**
 * The one reading grammar: how a text field or a JSON value becomes a number, and how a
 * delimited line splits into fields. Every text input uses it — the serial, file, stdin and
 * MQTT sources (through {@link LineFormatParser} or the MQTT payload reader) and the CSV table
 * reader of train/verify (`src/data/csv.ts`).
 *
 * Semantics, decided once:
 * - **Numbers**: a decimal with optional sign, fraction and exponent (`-1.5`, `.5`, `2e-3`,
 *   `+7`). Surrounding whitespace is ignored. Hex, `1_000`, `0x10` and thousands separators
 *   are not numbers.
 * - **`nan` / `inf` tokens** (any case, optional sign; `infinity` too) are read as NaN and
 *   ±Infinity. They are readings, not syntax errors: whether a non-finite reading is dropped
 *   ('non-finite') or repaired is the validation stage's policy (the training reader refuses
 *   infinities, see src/data/csv.ts).
 * - **Empty field** (`1,,3`, `a=`, JSON `""`): a gap, NaN.
 * - **JSON `null`**: a gap, NaN — the same as an empty field. A JSON key that is *absent* is a
 *   'column-count' drop; a JSON boolean, object, array or non-numeric string is 'malformed'.
 * - **Quoting** (CSV only): a field may be wrapped in double quotes; `""` inside is one quote;
 *   a separator inside quotes is part of the field. Whitespace and kv lines have no quoting.
 * - **BOM / CRLF**: a UTF-8 byte-order mark at the start of a line and a trailing CR are
 *   removed (String.prototype.trim removes both, with the line's outer whitespace).
 * - **Overlong lines** are dropped by the line splitter ('overlong'), before this grammar.
 */

/** `s.trim()`, without the call when neither end can be whitespace (the hot path: plain numeric fields). */
export function trimmed(s: string): string {
  if (s.length === 0) return s;
  const a = s.charCodeAt(0);
  const z = s.charCodeAt(s.length - 1);
  // Whitespace String.prototype.trim removes is ≤ U+0020 or ≥ U+0080 (NBSP, BOM, U+2028, …).
  return a <= 0x20 || a >= 0x80 || z <= 0x20 || z >= 0x80 ? s.trim() : s;
}

/** A delimited line's separator: one character (quote-aware) or runs of whitespace. */
export type FieldSeparator = ',' | ';' | '\t' | 'whitespace';

const DECIMAL = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;
const NON_FINITE = /^([+-]?)(nan|inf|infinity)$/i;

/**
 * Reads one text field as a number: NaN for an empty field or a `nan` token, ±Infinity for
 * `inf`/`infinity`, undefined when the field is not a number in this grammar.
 */
export function parseNumberField(field: string): number | undefined {
  const tok = trimmed(field);
  if (tok === '') return NaN;
  if (DECIMAL.test(tok)) return Number(tok);
  const m = NON_FINITE.exec(tok);
  if (m) return m[2]!.toLowerCase() === 'nan' ? NaN : m[1] === '-' ? -Infinity : Infinity;
  return undefined;
}

/**
 * Reads one JSON value as a number: numbers as they are, `null` as NaN (a gap), strings
 * through {@link parseNumberField}; undefined for anything else (booleans, objects, arrays).
 */
export function parseJsonNumber(v: unknown): number | undefined {
  if (typeof v === 'number') return v;
  if (v === null) return NaN;
  if (typeof v === 'string') return parseNumberField(v);
  return undefined;
}

/**
 * Splits one line into fields. With a one-character separator, double quotes group (and `""`
 * escapes a quote); fields are trimmed. With 'whitespace', the trimmed line splits on runs of
 * whitespace.
 */
export function splitFields(line: string, sep: FieldSeparator): string[] {
  if (sep === 'whitespace') {
    const t = line.trim();
    return t === '' ? [] : t.split(/\s+/);
  }
  if (!line.includes('"')) {
    const cells = line.split(sep);
    for (let i = 0; i < cells.length; i++) cells[i] = trimmed(cells[i]!);
    return cells;
  }
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i]!;
    if (ch === '"') {
      if (quoted && line[i + 1] === '"') {
        cur += '"';
        i++;
      } else quoted = !quoted;
    } else if (ch === sep && !quoted) {
      out.push(cur.trim());
      cur = '';
    } else cur += ch;
  }
  out.push(cur.trim());
  return out;
}
