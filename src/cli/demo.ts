/**
 * `streamcell demo`: the main job in one command. A simulated 3-axis accelerometer is written
 * into a real pseudo-terminal (socat) when available, else fed in-process; the daemon reads it
 * like a USB serial sensor, steps the shipped activity model, serves the live dashboard and
 * prints predictions with a small terminal chart, then stops by itself.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, openSync, rmSync, writeSync, closeSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Daemon } from '../devices/daemon.js';
import { SimSource, simValue } from '../devices/sources/sim.js';
import { sinkFromUri, sourceFromUri } from '../devices/uri.js';
import type { PredictionRecord, Sink, Source } from '../devices/types.js';
import type { BackendChoice } from '../runtime/backend.js';
import { describeBackend } from './backend-option.js';

export interface DemoOptions {
  bundle: string;
  bytes: Uint8Array;
  /** The bundle's name and version (the dashboard's status shows them). */
  manifest?: { name: string; version: string };
  seconds?: number;
  port: number;
  hz: number;
  out: NodeJS.WritableStream;
  backend?: BackendChoice;
}

const SPARK = '▁▂▃▄▅▆▇█';

/** Prints predictions: a redrawn status line with a sparkline on a TTY, a line per second otherwise. */
class TerminalSink implements Sink {
  readonly uri = 'terminal:';
  private readonly hist: number[] = [];
  private last?: PredictionRecord;
  private lastPrint = 0;
  count = 0;
  constructor(private readonly out: NodeJS.WritableStream & { isTTY?: boolean }) {}

  write(rec: PredictionRecord): void {
    this.count++;
    this.last = rec;
    this.hist.push(rec.input[0]!);
    if (this.hist.length > 40) this.hist.shift();
    const now = Date.now();
    if (now - this.lastPrint < (this.out.isTTY ? 100 : 1000)) return;
    this.lastPrint = now;
    this.print(this.out.isTTY ? '\r\x1b[2K' : '', this.out.isTTY ? '' : '\n');
  }

  private print(pre: string, post: string): void {
    const r = this.last;
    if (!r) return;
    const lo = Math.min(...this.hist);
    const hi = Math.max(...this.hist);
    const spark = this.hist.map((v) => SPARK[Math.min(7, Math.floor(((v - lo) / (hi - lo || 1)) * 7.999))]).join('');
    const probs = Object.values(r.outputs)[0] ?? [];
    const conf = probs.length ? Math.max(...probs) : 0;
    this.out.write(
      `${pre}#${String(r.seq).padStart(5)}  ax ${spark}  → ${(r.label ?? String(r.forecast?.toFixed(3))).padEnd(6)} ${(conf * 100).toFixed(0).padStart(3)}%${post}`,
    );
  }

  async flush(): Promise<void> {}
  async close(): Promise<void> {
    if ((this.out as { isTTY?: boolean }).isTTY) this.out.write('\n');
  }
}

function hasSocat(): boolean {
  return spawnSync('socat', ['-V'], { stdio: 'ignore' }).status === 0;
}

/** Simulated IMU lines into a pty pair; returns the device path the daemon opens. */
async function startPtySensor(hz: number): Promise<{ dev: string; begin: () => void; stop: () => void }> {
  const dir = await mkdtemp(join(tmpdir(), 'streamcell-demo-'));
  const dev = join(dir, 'ttyIMU');
  const feed = join(dir, 'ttyIMU-feed');
  const proc: ChildProcess = spawn('socat', [`pty,raw,echo=0,link=${dev}`, `pty,raw,echo=0,link=${feed}`], { stdio: 'ignore' });
  const t0 = Date.now();
  while (!(existsSync(dev) && existsSync(feed))) {
    if (Date.now() - t0 > 5000) throw new Error('socat did not create the pseudo-terminal');
    await new Promise((r) => setTimeout(r, 20));
  }
  let timer: NodeJS.Timeout | undefined;
  let fd: number | undefined;
  return {
    dev,
    // Starts writing once the daemon holds the port open, so the header line is not lost.
    begin: () => {
      fd = openSync(feed, 'w');
      writeSync(fd, 'ax,ay,az\n');
      let i = 0;
      let seed = 7;
      const rand = () => (seed = (seed * 1664525 + 1013904223) >>> 0) / 4294967296;
      const start = performance.now();
      timer = setInterval(() => {
        const due = Math.floor(((performance.now() - start) / 1000) * hz);
        let text = '';
        for (; i < due; i++)
          text +=
            simValue('imu', i, hz, rand, 0)
              .map((v) => v.toFixed(4))
              .join(',') + '\n';
        if (text) writeSync(fd!, text);
      }, 10);
    },
    stop: () => {
      clearInterval(timer);
      if (fd !== undefined) closeSync(fd);
      proc.kill('SIGTERM');
      // The demo may exit before socat does: remove the folder (and the links in it) now.
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function runDemo(o: DemoOptions): Promise<{ predictions: number; via: string; url: string }> {
  let source: Source;
  let via: string;
  let stopSensor = () => {};
  let beginSensor = () => {};
  if (hasSocat()) {
    const s = await startPtySensor(o.hz);
    stopSensor = s.stop;
    beginSensor = s.begin;
    source = await sourceFromUri(`serial:${s.dev}?baud=115200&format=csv&header=true`, { channels: ['ax', 'ay', 'az'] });
    via = `simulated accelerometer → pseudo-terminal ${s.dev} (socat) → serial source`;
  } else {
    source = new SimSource({ kind: 'imu', hz: o.hz, seed: 7 });
    via = 'simulated accelerometer (in-process; install socat to go through a real pseudo-terminal)';
  }
  const terminal = new TerminalSink(o.out);
  const url = `http://127.0.0.1:${o.port}`;
  const daemon = await Daemon.create({
    model: o.bytes,
    sources: [source],
    sinks: [sinkFromUri(url), async () => terminal],
    backend: o.backend?.force,
    preferBackends: o.backend?.prefer,
    bundle: o.manifest,
  });
  o.out.write(
    `streamcell demo: ${o.bundle}\n  sensor:    ${via}\n  model:     ${daemon.info.kind} model, sha256 ${daemon.info.sha256.slice(0, 12)}…, classes ${(daemon.pre?.classes ?? []).join(' / ')}\n  ${describeBackend(daemon.backendRecord)}\n  dashboard: ${url}  (metrics ${url}/metrics, health ${url}/healthz)\n  ${o.seconds ? `stops after ${o.seconds} s` : 'runs until Ctrl-C'}\n\n`,
  );
  await daemon.start();
  beginSensor();
  await new Promise<void>((resolve) => {
    const done = () => resolve();
    process.once('SIGINT', done);
    process.once('SIGTERM', done);
    if (o.seconds) setTimeout(done, o.seconds * 1000).unref();
  });
  stopSensor();
  await daemon.stop();
  o.out.write(`\n${terminal.count} predictions. Next: stream your own sensor — see "From your CSV to a device" in the README.\n`);
  return { predictions: terminal.count, via, url };
}
