/**
 * Simulated sensors for demos and tests: a sine with noise, an ECG-like waveform, and a
 * 3-axis accelerometer whose activity (still / walk / run) changes every few seconds.
 * Deterministic for a given seed.
 */
import type { Source, SourceEvents } from '../types.js';

export type SimKind = 'sine' | 'ecg' | 'imu';
export const SIM_CHANNELS: Record<SimKind, number> = { sine: 1, ecg: 1, imu: 3 };

export interface SimOptions {
  kind: SimKind;
  hz: number;
  streams?: number;
  seed?: number;
  /** Stop after this many samples per stream (default: run until stopped). */
  count?: number;
}

export function simValue(kind: SimKind, i: number, hz: number, rand: () => number, stream: number): number[] {
  const t = i / hz;
  const noise = () => (rand() - 0.5) * 0.1;
  if (kind === 'sine') return [Math.sin(2 * Math.PI * (0.5 + 0.1 * stream) * t) + noise()];
  if (kind === 'ecg') {
    const beat = (t * 1.2 + stream * 0.13) % 1; // 72 bpm
    const qrs = Math.exp(-(((beat - 0.3) / 0.012) ** 2)) * 1.6 - Math.exp(-(((beat - 0.33) / 0.01) ** 2)) * 0.4;
    const p = Math.exp(-(((beat - 0.15) / 0.03) ** 2)) * 0.15;
    const tw = Math.exp(-(((beat - 0.55) / 0.05) ** 2)) * 0.3;
    return [qrs + p + tw + noise() * 0.5];
  }
  const segment = Math.floor(t / 5 + stream * 0.37);
  const activity = (segment * 7 + stream) % 3;
  const [f, a] = [
    [0, 0.02],
    [1.8, 0.35],
    [2.8, 0.9],
  ][activity]!;
  const w = 2 * Math.PI * f! * t;
  return [a! * Math.sin(w) + noise(), 0.6 * a! * Math.sin(2 * w + 0.5) + noise(), 1 + a! * 0.8 * Math.abs(Math.sin(w)) + noise()];
}

export class SimSource implements Source {
  readonly uri: string;
  private timer?: NodeJS.Timeout;
  private resolveDone!: () => void;
  readonly done: Promise<void> = new Promise((r) => (this.resolveDone = r));

  constructor(private readonly opts: SimOptions) {
    if (!(opts.kind in SIM_CHANNELS)) throw new RangeError(`unknown simulator '${opts.kind}' (sine, ecg, imu)`);
    if (!(opts.hz > 0)) throw new RangeError(`'hz' must be positive, got ${opts.hz}`);
    this.uri = `sim:${opts.kind}?hz=${opts.hz}`;
  }

  async start(events: SourceEvents): Promise<void> {
    let seed = this.opts.seed ?? 1;
    const rand = () => (seed = (seed * 1664525 + 1013904223) >>> 0) / 4294967296;
    const streams = this.opts.streams ?? 1;
    const t0 = performance.now();
    let i = 0;
    events.status('connected', this.uri);
    const tick = () => {
      const due = Math.floor(((performance.now() - t0) / 1000) * this.opts.hz) + 1;
      for (; i < due; i++) {
        if (this.opts.count !== undefined && i >= this.opts.count) {
          this.resolveDone();
          return;
        }
        for (let s = 0; s < streams; s++)
          events.reading({ stream: streams === 1 ? 'default' : `sim${s}`, values: simValue(this.opts.kind, i, this.opts.hz, rand, s), t: Date.now() });
      }
      this.timer = setTimeout(tick, Math.max(1, 1000 / this.opts.hz));
    };
    tick();
  }

  async stop(): Promise<void> {
    clearTimeout(this.timer);
    this.resolveDone();
  }
}
