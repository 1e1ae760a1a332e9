/**
 * Turns one text line into a reading: CSV, whitespace-separated, `key=value` pairs, or JSON
 * lines. Columns are chosen by name (with a header line, or keys) or by index; an optional
 * stream-id column and timestamp column. Every failure is a DropReason, never an exception.
 *
 * Fields, numbers, gaps, `nan`/`inf`, JSON `null`, quoting, BOM and CRLF follow the one
 * reading grammar of ./grammar.ts (its header states the rules); serial, file, stdin and MQTT
 * (with `format=`) all read lines through this class.
 */
import type { DropReason, Reading } from '../types.js';
import { parseJsonNumber, parseNumberField, splitFields, trimmed, type FieldSeparator } from './grammar.js';

export type LineFormat = 'csv' | 'whitespace' | 'kv' | 'jsonl';

export interface LineFormatOptions {
  format: LineFormat;
  /** Channel columns: names (header/keys) or 0-based indexes, in the model's channel order. */
  columns: (string | number)[];
  /** Column holding the stream id (name or index); absent: stream 'default'. */
  streamColumn?: string | number;
  /** Column holding a timestamp (ms since epoch, or seconds when `timeUnit` is 's'). */
  timeColumn?: string | number;
  timeUnit?: 'ms' | 's';
  /** Whether the first line is a header (csv/whitespace). 'auto': when it is not numeric. */
  header?: boolean | 'auto';
}

export type ParseResult = { reading: Reading } | { drop: DropReason; detail: string } | { header: true };

export class LineFormatParser {
  private names: string[] | undefined;
  private first = true;
  /** Highest column index a line needs (cached after the first line). */
  private need?: number;
  private readonly sep: FieldSeparator;

  constructor(readonly opts: LineFormatOptions) {
    if (!opts.columns.length) throw new RangeError("'columns' must name at least one channel");
    this.sep = opts.format === 'whitespace' ? 'whitespace' : ',';
  }

  /** Column index of a name or index, once the header is known. */
  private index(c: string | number): number {
    if (typeof c === 'number') return c;
    const i = this.names?.indexOf(c) ?? -1;
    return i;
  }

  parse(line: string, arrival: number): ParseResult {
    const text = trimmed(line);
    if (text === '') return { drop: 'malformed', detail: 'empty line' };
    switch (this.opts.format) {
      case 'jsonl':
        return this.parseJson(text, arrival);
      case 'kv':
        return this.parseKv(text, arrival);
      default:
        return this.parseDelimited(text, arrival);
    }
  }

  private parseDelimited(text: string, arrival: number): ParseResult {
    const cells = splitFields(text, this.sep);
    if (this.first) {
      this.first = false;
      const wantHeader =
        this.opts.header === true ||
        (this.opts.header !== false &&
          cells.some((c) => c === '' || parseNumberField(c) === undefined) &&
          this.opts.columns.some((c) => typeof c === 'string'));
      if (wantHeader) {
        this.names = cells;
        const missing = [...this.opts.columns, this.opts.streamColumn, this.opts.timeColumn].filter((c) => typeof c === 'string' && !cells.includes(c));
        if (missing.length) return { drop: 'malformed', detail: `header lacks columns ${missing.join(', ')}` };
        return { header: true };
      }
    }
    // The highest column index a line needs: fixed once the header (if any) is known.
    const need = (this.need ??= Math.max(...[...this.opts.columns, this.opts.streamColumn ?? 0, this.opts.timeColumn ?? 0].map((c) => this.index(c))));
    if (this.names && cells.length !== this.names.length) return { drop: 'column-count', detail: `${cells.length} fields, header has ${this.names.length}` };
    if (need < 0) return { drop: 'malformed', detail: 'named columns need a header line' };
    if (cells.length <= need) return { drop: 'column-count', detail: `${cells.length} fields, need at least ${need + 1}` };
    return this.build((c) => cells[this.index(c)], arrival);
  }

  private parseKv(text: string, arrival: number): ParseResult {
    const map = new Map<string, string>();
    for (const part of text.split(/[\s,;]+/)) {
      if (!part) continue;
      const eq = part.indexOf('=');
      if (eq <= 0) return { drop: 'malformed', detail: `'${part.slice(0, 40)}' is not key=value` };
      map.set(part.slice(0, eq), part.slice(eq + 1));
    }
    return this.build((c) => map.get(String(c)), arrival);
  }

  private parseJson(text: string, arrival: number): ParseResult {
    let o: unknown;
    try {
      o = JSON.parse(text);
    } catch {
      return { drop: 'malformed', detail: 'not valid JSON' };
    }
    if (typeof o !== 'object' || o === null || Array.isArray(o)) return { drop: 'malformed', detail: 'JSON line is not an object' };
    const obj = o as Record<string, unknown>;
    if (Array.isArray(obj.values)) {
      const vals = obj.values;
      if (vals.length !== this.opts.columns.length) return { drop: 'column-count', detail: `${vals.length} values, expected ${this.opts.columns.length}` };
      return this.build((c) => (typeof c === 'number' ? vals[c] : vals[this.opts.columns.indexOf(c)]) as string | undefined, arrival, obj);
    }
    return this.build((c) => obj[String(c)] as string | undefined, arrival, obj);
  }

  private build(get: (c: string | number) => unknown, arrival: number, obj?: Record<string, unknown>): ParseResult {
    const values: number[] = [];
    for (const c of this.opts.columns) {
      const raw = get(c);
      if (raw === undefined) return { drop: 'column-count', detail: `missing channel '${c}'` };
      // An empty cell or JSON null is a gap in the data: NaN, handled by the stream's non-finite policy.
      const v = parseJsonNumber(raw);
      if (v === undefined)
        return { drop: 'malformed', detail: `channel '${c}' is '${String(typeof raw === 'string' ? raw : JSON.stringify(raw)).slice(0, 20)}', not a number` };
      values.push(v);
    }
    const streamRaw = this.opts.streamColumn !== undefined ? get(this.opts.streamColumn) : obj?.stream;
    const stream = streamRaw === undefined || streamRaw === null || streamRaw === '' ? 'default' : String(streamRaw);
    let t = arrival;
    const tRaw = this.opts.timeColumn !== undefined ? get(this.opts.timeColumn) : obj?.t;
    if (tRaw !== undefined && tRaw !== null && tRaw !== '') {
      const tv = Number(tRaw);
      if (!Number.isFinite(tv)) return { drop: 'malformed', detail: `timestamp '${String(tRaw).slice(0, 20)}' is not a number` };
      t = this.opts.timeUnit === 's' ? tv * 1000 : tv;
    }
    return { reading: { stream, values, t } };
  }
}
