/**
 * Serial port source: the only module that imports `serialport`. The port implementation is an
 * option (`openPort`), so tests can pass a mock and users a custom binding.
 *
 * Unplugging a USB serial adapter on Linux gives no 'close' event, only read errors (EIO,
 * ENXIO, EBADF): any error or close marks the source disconnected; it then polls for the
 * device path with exponential backoff and reopens it, without restarting the process.
 */
import { existsSync } from 'node:fs';
import { SerialPort } from 'serialport';
import { FramedDecoder, type FramingOptions } from './framed.js';
import { LineFormatParser } from '../framing/line-format.js';
import type { Source, SourceEvents } from '../types.js';

/** The part of a serial port this source uses. */
export interface PortLike {
  on(event: 'data', cb: (b: Buffer) => void): unknown;
  on(event: 'error', cb: (e: Error) => void): unknown;
  on(event: 'close', cb: () => void): unknown;
  open(cb: (err: Error | null) => void): void;
  close(cb?: (err: Error | null) => void): void;
  removeAllListeners(): unknown;
  readonly isOpen: boolean;
  /** Stream flow control (serialport's port is a Readable); optional for test doubles. */
  pause?(): unknown;
  resume?(): unknown;
}

export interface SerialSourceOptions {
  path: string;
  baudRate?: number;
  framing: FramingOptions;
  /** Backoff between reopen attempts (default 100 ms doubling to 2 s). */
  minBackoffMs?: number;
  maxBackoffMs?: number;
  openPort?: (path: string, baudRate: number) => PortLike;
}

const realPort = (path: string, baudRate: number): PortLike => new SerialPort({ path, baudRate, autoOpen: false }) as unknown as PortLike;

export class SerialSource implements Source {
  readonly uri: string;
  private port?: PortLike;
  private decoder?: FramedDecoder;
  private stopped = false;
  private timer?: NodeJS.Timeout;
  private events?: SourceEvents;
  private connected = false;
  private readonly lineFormat?: LineFormatParser;

  constructor(private readonly opts: SerialSourceOptions) {
    if (!opts.path) throw new RangeError("'path' of the serial port is required");
    const baud = opts.baudRate ?? 115200;
    if (!Number.isInteger(baud) || baud <= 0) throw new RangeError(`'baudRate' must be a positive integer, got ${baud}`);
    this.uri = `serial:${opts.path}?baud=${baud}`;
    if (opts.framing.kind === 'line') this.lineFormat = new LineFormatParser(opts.framing);
  }

  async start(events: SourceEvents): Promise<void> {
    this.events = events;
    this.stopped = false;
    await new Promise<void>((resolve) => this.connect(this.opts.minBackoffMs ?? 100, resolve));
  }

  private connect(backoff: number, first?: () => void): void {
    if (this.stopped) return first?.();
    const retry = () => {
      first?.();
      const next = Math.min(backoff * 2, this.opts.maxBackoffMs ?? 2000);
      this.timer = setTimeout(() => this.connect(next), backoff);
    };
    if (!existsSync(this.opts.path)) return retry();
    const port = (this.opts.openPort ?? realPort)(this.opts.path, this.opts.baudRate ?? 115200);
    port.open((err) => {
      if (err) return retry();
      if (this.stopped) return port.close();
      this.port = port;
      this.decoder = new FramedDecoder(this.opts.framing, this.events!, this.lineFormat);
      port.on('data', (b) => {
        this.decoder?.write(b);
        // Backpressure: pause the port (the tty buffers, then flow control or the kernel drops) until the pipeline catches up.
        const behind = this.events!.pressure?.();
        if (behind && port.pause) {
          port.pause();
          void behind.then(() => port.isOpen && port.resume?.());
        }
      });
      port.on('error', (e) => this.lost(e.message));
      port.on('close', () => this.lost('port closed'));
      this.connected = true;
      this.events!.status('connected', this.opts.path);
      first?.();
    });
  }

  private lost(why: string): void {
    if (!this.connected) return;
    this.connected = false;
    const port = this.port;
    const decoder = this.decoder;
    this.port = undefined;
    this.decoder = undefined;
    port?.removeAllListeners();
    if (port?.isOpen) port.close(() => undefined);
    void decoder?.end();
    this.events!.status('disconnected', why);
    if (!this.stopped) this.timer = setTimeout(() => this.connect(this.opts.minBackoffMs ?? 100), this.opts.minBackoffMs ?? 100);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    const port = this.port;
    this.connected = false;
    this.port = undefined;
    if (port) {
      port.removeAllListeners();
      await new Promise<void>((r) => (port.isOpen ? port.close(() => r()) : r()));
    }
    await this.decoder?.end();
  }
}
