/**
 * Real pseudo-terminal pairs from socat: the daemon opens `dev` like a USB serial adapter, the
 * test writes sensor lines into `feed`. Killing socat makes `dev` disappear (an unplug).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readlinkSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { track } from './children.js';

export class PtyPair {
  proc?: ChildProcess;
  readonly dev: string;
  readonly feed: string;

  constructor(dir: string, name = 'tty') {
    this.dev = join(dir, `${name}-dev`);
    this.feed = join(dir, `${name}-feed`);
  }

  async start(): Promise<void> {
    this.proc = track(spawn('socat', [`pty,raw,echo=0,link=${this.dev}`, `pty,raw,echo=0,link=${this.feed}`], { stdio: 'ignore' }));
    const t0 = Date.now();
    while (!(existsSync(this.dev) && existsSync(this.feed))) {
      if (Date.now() - t0 > 5000) throw new Error('socat did not create the pty pair within 5 s (is socat installed?)');
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /**
   * Resolves once process `pid` holds `dev` open (its /proc/PID/fd links to the pty), e.g. the
   * daemon has opened the serial port: a poll instead of a fixed sleep before feeding lines.
   */
  async openedBy(pid: number, timeoutMs = 20_000): Promise<void> {
    const t0 = Date.now();
    for (;;) {
      let target: string | undefined;
      try {
        target = realpathSync(this.dev);
        if (readdirSync(`/proc/${pid}/fd`).some((fd) => readlinkSafe(`/proc/${pid}/fd/${fd}`) === target)) return;
      } catch {
        /* the link or the process is not there (yet) */
      }
      if (Date.now() - t0 > timeoutMs) throw new Error(`process ${pid} did not open ${this.dev} (${target ?? 'no pty'}) within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Unplug: kill socat; both links vanish. */
  async kill(): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null) return;
    await new Promise<void>((r) => {
      p.once('exit', () => r());
      p.kill('SIGKILL');
    });
    const t0 = Date.now();
    while (existsSync(this.dev) && Date.now() - t0 < 2000) await new Promise((r) => setTimeout(r, 10));
  }
}

function readlinkSafe(p: string): string | undefined {
  try {
    return readlinkSync(p);
  } catch {
    return undefined;
  }
}
