/**
 * Shared by every byte-stream source: bytes → framing (lines or binary frames) → readings,
 * with each failure reported as a drop. One FramedDecoder per connection: a reconnect starts
 * a fresh one, so a line cut by an unplug is counted, not glued to the next.
 */
import { BinaryFrameParser, type BinaryFrameOptions, type FrameChunk } from '../framing/binary.js';
import { LineParser, type LineChunk } from '../framing/delimiter.js';
import { LineFormatParser, type LineFormatOptions } from '../framing/line-format.js';
import type { SourceEvents } from '../types.js';

export type FramingOptions = ({ kind: 'line'; maxLength?: number } & LineFormatOptions) | ({ kind: 'binary'; stream?: string } & BinaryFrameOptions);

export class FramedDecoder {
  private readonly parser: LineParser | BinaryFrameParser;
  private readonly lineFormat?: LineFormatParser;
  /** Arrival of the chunk being decoded: epoch ms (a reading's time when the line has none) and `performance.now()`. */
  private arrival = 0;
  private rx = 0;
  /** Resolves when the framing has flushed after end(). */
  readonly finished: Promise<void>;

  constructor(opts: FramingOptions, events: SourceEvents, lineFormat?: LineFormatParser) {
    if (opts.kind === 'line') {
      this.parser = new LineParser({ maxLength: opts.maxLength });
      // The header is read once per source, not once per connection.
      this.lineFormat = lineFormat ?? new LineFormatParser(opts);
      this.parser.on('data', (c: LineChunk) => {
        if ('drop' in c) return events.drop(c.drop.reason, c.drop.detail);
        const r = this.lineFormat!.parse(c.line, this.arrival);
        if ('reading' in r) {
          r.reading.rx = this.rx;
          events.reading(r.reading);
        } else if ('drop' in r) events.drop(r.drop, r.detail);
      });
    } else {
      this.parser = new BinaryFrameParser(opts);
      const stream = opts.stream ?? 'default';
      this.parser.on('data', (c: FrameChunk) => {
        if ('drop' in c) events.drop(c.drop.reason, c.drop.detail);
        else events.reading({ stream, values: c.values, t: this.arrival, rx: this.rx });
      });
    }
    this.finished = new Promise((resolve) => this.parser.once('end', resolve));
    this.parser.resume();
  }

  write(chunk: Buffer): void {
    this.arrival = Date.now();
    this.rx = performance.now();
    this.parser.write(chunk);
  }

  end(): Promise<void> {
    this.parser.end();
    return this.finished;
  }
}
