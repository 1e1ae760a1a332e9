/**
 * File replay and stdin: bytes through the same framing as a serial port. A file replays as
 * fast as the pipeline takes it (reading pauses while it is behind), or at `rate` lines per
 * second (paced in small bursts on a timer).
 */
import { createReadStream } from 'node:fs';

import type { Readable } from 'node:stream';
import { FramedDecoder, type FramingOptions } from './framed.js';
import type { Source, SourceEvents } from '../types.js';

export class StreamSource implements Source {
  private resolveDone!: () => void;
  readonly done: Promise<void> = new Promise((r) => (this.resolveDone = r));
  private input?: Readable;
  private stopped = false;

  constructor(
    readonly uri: string,
    private readonly open: () => Readable,
    private readonly framing: FramingOptions,
    private readonly rate?: number,
  ) {
    if (rate !== undefined && !(rate > 0)) throw new RangeError(`'rate' must be positive, got ${rate}`);
  }

  async start(events: SourceEvents): Promise<void> {
    const input = this.open();
    this.input = input;
    input.once('error', (e) => events.status('disconnected', e.message));
    events.status('connected', this.uri);
    const decoder = new FramedDecoder(this.framing, this.rate ? this.paced(events) : events);
    void (async () => {
      for await (const chunk of input) {
        if (this.stopped) break;
        decoder.write(chunk as Buffer);
        if (this.rate) await this.drainPaced();
        // Backpressure: stop reading (the stream pauses) until the pipeline catches up.
        const behind = events.pressure?.();
        if (behind) await behind;
      }
      await decoder.end();
      if (this.rate) await this.drainPaced(true);
      this.resolveDone();
    })().catch((e) => {
      events.status('disconnected', (e as Error).message);
      this.resolveDone();
    });
  }

  // Pacing: readings are queued and released at `rate` per second.
  private queue: (() => void)[] = [];
  private paced(events: SourceEvents): SourceEvents {
    return {
      reading: (r) => this.queue.push(() => events.reading({ ...r, t: Date.now() })),
      drop: (reason, d) => this.queue.push(() => events.drop(reason, d)),
      status: events.status,
    };
  }

  private async drainPaced(all = false): Promise<void> {
    const period = 1000 / this.rate!;
    let next = performance.now();
    while (this.queue.length > (all ? 0 : 256) && !this.stopped) {
      const burst = Math.max(1, Math.floor(5 / period));
      for (let i = 0; i < burst && this.queue.length; i++) this.queue.shift()!();
      next += burst * period;
      const wait = next - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.input?.destroy();
    this.queue = [];
    this.resolveDone();
  }
}

export function fileSource(path: string, framing: FramingOptions, rate?: number): StreamSource {
  return new StreamSource(`file:${path}${rate ? `?rate=${rate}` : ''}`, () => createReadStream(path, { highWaterMark: 16 << 10 }), framing, rate);
}

export function stdinSource(framing: FramingOptions): StreamSource {
  return new StreamSource('stdin:', () => process.stdin, framing);
}
