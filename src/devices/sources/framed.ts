/**
 * Shared by every byte-stream source: bytes → framing (lines or binary frames) → readings,
 * with each failure reported as a drop. One FramedDecoder per connection: a reconnect starts
 * a fresh one, so a line cut by an unplug is counted, not glued to the next.
 */
import { BinaryFrameParser, type BinaryFrameOptions, type FrameChunk } from '../framing/binary.js';
import { LineParser, type LineEvents } from '../framing/delimiter.js';
import { LineFormatParser, type LineFormatOptions } from '../framing/line-format.js';
import type { SourceEvents } from '../types.js';

export type FramingOptions = ({ kind: 'line'; maxLength?: number } & LineFormatOptions) | ({ kind: 'binary'; stream?: string } & BinaryFrameOptions);

export class FramedDecoder {
  private readonly lines?: LineParser;
  private readonly lineEvents?: LineEvents;
  private readonly frames?: BinaryFrameParser;
  /** Arrival of the chunk being decoded: epoch ms (a reading's time when the line has none) and `performance.now()`. */
  private arrival = 0;
  private rx = 0;
  private ended?: () => void;
  /** Resolves when the framing has flushed after end(). */
  readonly finished: Promise<void>;

  constructor(opts: FramingOptions, events: SourceEvents, lineFormat?: LineFormatParser) {
    if (opts.kind === 'line') {
      // Lines are split synchronously (no stream in between): a chunk's readings reach the
      // pipeline within the source's data event, so they are batched together.
      this.lines = new LineParser({ maxLength: opts.maxLength });
      // The header is read once per source, not once per connection.
      const format = lineFormat ?? new LineFormatParser(opts);
      this.lineEvents = {
        line: (line) => {
          const r = format.parse(line, this.arrival);
          if ('reading' in r) {
            r.reading.rx = this.rx;
            events.reading(r.reading);
          } else if ('drop' in r) events.drop(r.drop, r.detail);
        },
        drop: (reason, detail) => events.drop(reason, detail),
      };
      this.finished = new Promise((resolve) => (this.ended = resolve));
    } else {
      const frames = (this.frames = new BinaryFrameParser(opts));
      const stream = opts.stream ?? 'default';
      frames.on('data', (c: FrameChunk) => {
        if ('drop' in c) events.drop(c.drop.reason, c.drop.detail);
        else events.reading({ stream, values: c.values, t: this.arrival, rx: this.rx });
      });
      this.finished = new Promise((resolve) => frames.once('end', resolve));
      frames.resume();
    }
  }

  write(chunk: Buffer): void {
    this.arrival = Date.now();
    this.rx = performance.now();
    if (this.lines) this.lines.feed(chunk, this.lineEvents!);
    else this.frames!.write(chunk);
  }

  end(): Promise<void> {
    if (this.lines) {
      if (this.ended) {
        this.lines.finish(this.lineEvents!);
        this.ended();
        this.ended = undefined;
      }
    } else this.frames!.end();
    return this.finished;
  }
}
