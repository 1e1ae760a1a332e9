/**
 * A real mosquitto broker for integration tests: a generated config on a free loopback port,
 * persistence on (so a persistent subscriber session and its queued messages survive a
 * stop/start, as they would on a production broker), stop with SIGTERM, start again on the
 * same port.
 *
 * ```ts
 * const broker = await startMosquitto();
 * await broker.stop();   // broker down: clients see the connection close
 * await broker.start();  // same port, same persistence file
 * await broker.dispose();
 * ```
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { createServer, connect as netConnect, type Server } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { track } from './children.js';

const CANDIDATES = ['/usr/sbin/mosquitto', '/usr/local/sbin/mosquitto', '/usr/bin/mosquitto', '/usr/local/bin/mosquitto'];

/** Path of the mosquitto binary, or undefined when it is not installed. */
export function mosquittoBinary(): string | undefined {
  if (process.env.MOSQUITTO_BIN) return process.env.MOSQUITTO_BIN;
  return CANDIDATES.find((p) => existsSync(p));
}

export interface Mosquitto {
  readonly port: number;
  /** `mqtt://127.0.0.1:PORT` */
  readonly url: string;
  readonly running: boolean;
  /** Starts the broker (again) on the same port; resolves once it accepts TCP connections. */
  start(): Promise<void>;
  /** SIGTERM; resolves when the process has exited (mosquitto saves its persistence file then). */
  stop(): Promise<void>;
  /** Stops the broker and removes its directory. */
  dispose(): Promise<void>;
  /** The broker's log so far (for failure messages). */
  log(): string;
}

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const p of live) p.kill('SIGKILL');
});

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = netConnect({ port, host: '127.0.0.1' });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

export async function startMosquitto(): Promise<Mosquitto> {
  const bin = mosquittoBinary();
  if (!bin) {
    throw new Error('mosquitto not found (looked in ' + CANDIDATES.join(', ') + '); install it: apt-get install -y mosquitto, or set MOSQUITTO_BIN');
  }
  const dir = mkdtempSync(join(tmpdir(), 'streamcell-mosquitto-'));
  const port = await freePort();
  const logFile = join(dir, 'mosquitto.log');
  const conf = join(dir, 'mosquitto.conf');
  const lines = [
    `listener ${port} 127.0.0.1`,
    'allow_anonymous true',
    'persistence true',
    `persistence_location ${dir}/`,
    // Offline persistent sessions must not drop messages during the tests' outages.
    'max_queued_messages 0',
    'max_queued_bytes 0',
    `log_dest file ${logFile}`,
    'log_type error',
    'log_type warning',
    'log_type notice',
  ];
  // Run as root, mosquitto drops to user 'mosquitto', which cannot write our temp dir.
  if (process.getuid?.() === 0) lines.push(`user ${userInfo().username}`);
  writeFileSync(conf, lines.join('\n') + '\n');

  let proc: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  // While stopped, the port is held by a server that hangs up at once: clients see a dead broker,
  // and no broker another test file starts in parallel can take the port (freePort races).
  let holder: Server | undefined;
  const release = () => new Promise<void>((r) => (holder ? holder.close(() => r()) : r())).then(() => (holder = undefined));

  const broker: Mosquitto = {
    port,
    url: `mqtt://127.0.0.1:${port}`,
    get running() {
      return proc !== undefined;
    },
    async start() {
      if (proc) return;
      await release();
      const p = track(spawn(bin, ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] }));
      let stderr = '';
      p.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
      live.add(p);
      proc = p;
      let gone = false;
      exited = new Promise((resolve) =>
        p.once('exit', () => {
          gone = true;
          live.delete(p);
          resolve();
        }),
      );
      const deadline = Date.now() + 10_000;
      while (!(await canConnect(port))) {
        if (gone) {
          proc = undefined;
          throw new Error(`mosquitto exited at start: ${stderr}\n${broker.log()}`);
        }
        if (Date.now() > deadline) throw new Error(`mosquitto did not listen on ${port} within 10 s\n${broker.log()}`);
        await new Promise((r) => setTimeout(r, 25));
      }
    },
    async stop() {
      const p = proc;
      if (!p) return;
      proc = undefined;
      p.kill('SIGTERM');
      const timer = setTimeout(() => p.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
      const h = createServer((sock) => sock.destroy());
      await new Promise<void>((r, j) => h.once('error', j).listen(port, '127.0.0.1', () => r()));
      holder = h;
    },
    async dispose() {
      await broker.stop();
      await release();
      rmSync(dir, { recursive: true, force: true });
    },
    log() {
      try {
        return readFileSync(logFile, 'utf8');
      } catch {
        return '';
      }
    },
  };
  await broker.start();
  return broker;
}

/**
 * Publishes `payload` on `topic` (QoS 1) every 50 ms until `seen()` says the subscriber under test
 * got it: proof that its SUBSCRIBE is active, instead of a fixed sleep after connecting.
 */
export async function publishUntilSeen(
  pub: { publishAsync(topic: string, payload: string, opts: { qos: 0 | 1 | 2 }): Promise<unknown> },
  topic: string,
  payload: string,
  seen: () => boolean,
  timeoutMs = 10_000,
): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!seen()) {
    if (Date.now() > end) throw new Error(`no subscriber got ${topic} within ${timeoutMs} ms (its SUBSCRIBE never became active)`);
    await pub.publishAsync(topic, payload, { qos: 1 });
    await new Promise((r) => setTimeout(r, 50));
  }
}
