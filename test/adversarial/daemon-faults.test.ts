/**
 * Faults a daemon meets in the field, with the real CLI as a child process: a full disk under
 * a JSONL sink and under the MQTT queue (a 64 KiB tmpfs in a private mount namespace), 100,000
 * unique stream ids, 80 dashboard clients that never read, checkpoints that cannot be restored
 * and temp files of killed writes, and hostile flags. The daemon must stay up, keep serving its
 * other sinks, count what it could not deliver, and stay within bounded memory.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect as netConnect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect as mqttConnect } from 'mqtt';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { track } from '../helpers/children.js';
import { CLI, runCli } from '../helpers/cli.js';
import { freePort, metric, readJsonl, waitFor } from '../helpers/daemon.js';
import { startMosquitto, type Mosquitto } from '../helpers/mosquitto.js';

const BUNDLE = fileURLToPath(new URL('../../models/imu-activity.bundle', import.meta.url));
const TOKEN = 'fault-test-token-0123456789';

let dir: string;
const children = new Set<ChildProcess>();
const sockets = new Set<Socket>();

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'streamcell-faults-'));
});

afterEach(() => {
  for (const s of sockets) s.destroy();
  sockets.clear();
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  children.clear();
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

interface Daemon {
  proc: ChildProcess;
  stderr: () => string;
  exited: Promise<number | null>;
  /** Writes JSON-lines readings to its stdin, honouring the pipe's backpressure. */
  send(lines: string[]): Promise<void>;
  /** Peak resident memory (VmHWM) in MB, while it runs. */
  peakMb(): number;
}

/** `streamcell stream --source stdin:?format=jsonl&stream=stream …`, optionally wrapped (unshare). */
function daemon(args: string[], wrap?: (argv: string[]) => string[]): Daemon {
  const argv = [process.execPath, CLI, 'stream', '--bundle', BUNDLE, '--source', 'stdin:?format=jsonl&stream=stream', '--log-level', 'warn', ...args];
  const full = wrap ? wrap(argv) : argv;
  const proc = track(spawn(full[0]!, full.slice(1), { stdio: ['pipe', 'ignore', 'pipe'] }));
  children.add(proc);
  let err = '';
  proc.stderr!.on('data', (d) => (err += d));
  proc.stdin!.on('error', () => undefined);
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  return {
    proc,
    exited,
    stderr: () => err,
    async send(lines) {
      for (let i = 0; i < lines.length; i += 500) {
        if (!proc.stdin!.write(lines.slice(i, i + 500).join('\n') + '\n')) await new Promise((r) => proc.stdin!.once('drain', r));
      }
    },
    peakMb() {
      const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${proc.pid}/status`, 'utf8'));
      return m ? Number(m[1]) / 1024 : NaN;
    },
  };
}

const reading = (stream: string, i: number) => JSON.stringify({ stream, ax: Math.sin(i / 7), ay: Math.cos(i / 5), az: 1 + 0.1 * Math.sin(i / 3) });

async function health(url: string): Promise<{ status: number; body: any; ms: number }> {
  const t0 = performance.now();
  const r = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(5000) });
  const body = await r.json();
  return { status: r.status, body, ms: performance.now() - t0 };
}

describe('a full disk', () => {
  it('jsonl:/dev/full: the daemon stays up, the other sinks get everything, errors are counted, SIGTERM still checkpoints', async () => {
    const port = await freePort();
    const good = join(dir, 'good.jsonl');
    const ckpt = join(dir, 'full.ckpt');
    const d = daemon(['--sink', 'jsonl:/dev/full', '--sink', `jsonl:${good}`, '--sink', `http://127.0.0.1:${port}`, '--checkpoint', ckpt]);
    const url = `http://127.0.0.1:${port}`;
    await waitFor(
      () => health(url).catch(() => ({ status: 0 })),
      (h) => h.status === 200,
      20_000,
      'the daemon to answer',
    );
    const N = 3000;
    await d.send(Array.from({ length: N }, (_, i) => reading(`s${i % 3}`, i)));
    await waitFor(
      () => readJsonl(good).length,
      (n) => n === N,
      30_000,
      'all predictions in the good sink',
    );
    const errors = await waitFor(
      () => metric(url, 'streamcell_sink_errors_total', { sink: 'jsonl:/dev/full', code: 'ENOSPC' }),
      (n) => n > 0,
      10_000,
      'ENOSPC counted',
    );
    const h = await health(url);
    // A full disk does not fail /healthz (a restart cannot fix it) but says which sink is failing.
    expect(h.status).toBe(200);
    expect(h.body.degraded).toBe(true);
    const full = h.body.sinks.find((s: { uri: string }) => s.uri === 'jsonl:/dev/full');
    expect(full.ok).toBe(false);
    expect(full.detail).toMatch(/ENOSPC/);
    expect(h.body.sinks.find((s: { uri: string }) => s.uri === `jsonl:${good}`).ok).toBe(true);
    expect(await metric(url, 'streamcell_sink_healthy', { sink: 'jsonl:/dev/full' })).toBe(0);
    d.proc.kill('SIGTERM');
    expect(await d.exited, d.stderr()).toBe(0);
    expect(statSync(ckpt).size).toBeGreaterThan(0);
    const recs = readJsonl(good);
    expect(new Set(recs.map((r) => `${r.stream}/${r.seq}`)).size).toBe(N);
    expect(d.stderr()).toMatch(/sink write failed; queueing and retrying/);
    console.log(
      `[fault /dev/full] ${N} readings: good sink ${recs.length}, ENOSPC errors counted ${errors}, exit 0 on SIGTERM, checkpoint ${statSync(ckpt).size} bytes`,
    );
  });

  it('the MQTT queue on a full 64 KiB tmpfs with the broker down: no crash, everything arrives once the broker is back', async () => {
    const broker: Mosquitto = await startMosquitto();
    try {
      await broker.stop();
      const qdir = join(dir, 'q');
      await mkdir(qdir);
      const out = join(dir, 'mq.jsonl');
      const port = await freePort();
      const url = `http://127.0.0.1:${port}`;
      // A private mount namespace (as an unprivileged user namespace's root): a tiny tmpfs as the queue's disk.
      const d = daemon(
        ['--sink', `mqtt://127.0.0.1:${broker.port}/preds/#?queue=${qdir}&client=fault-sink`, '--sink', `jsonl:${out}`, '--sink', `http://127.0.0.1:${port}`],
        (argv) => ['unshare', '--user', '--map-root-user', '--mount', 'sh', '-c', `mount -t tmpfs -o size=64k tmpfs '${qdir}' && exec "$@"`, 'sh', ...argv],
      );
      await waitFor(
        () => health(url).catch(() => ({ status: 0 })),
        (h) => h.status === 200,
        20_000,
        'the daemon to answer',
      );
      const N = 2000; // ~200 B each: several times what the tmpfs holds
      await d.send(Array.from({ length: N }, (_, i) => reading(`m${i % 2}`, i)));
      await waitFor(
        () => readJsonl(out).length,
        (n) => n === N,
        30_000,
        'all predictions in the JSONL sink',
      );
      const enospc = await waitFor(
        () => metric(url, 'streamcell_sink_errors_total', { code: 'ENOSPC' }),
        (n) => n > 0,
        10_000,
        'ENOSPC counted for the queue',
      );
      const h = await health(url);
      expect(h.body.sinks.find((s: { uri: string }) => s.uri.startsWith('mqtt://')).ok).toBe(false);

      const got = new Set<string>();
      await broker.start();
      const sub = mqttConnect(broker.url, { clientId: 'fault-sub', reconnectPeriod: 200 });
      try {
        await new Promise<void>((r) => sub.once('connect', () => r()));
        await new Promise<void>((r, j) => sub.subscribe('preds/#', { qos: 1 }, (e) => (e ? j(e) : r())));
        sub.on('message', (_t, p) => {
          const m = JSON.parse(p.toString()) as { stream: string; seq: number };
          got.add(`${m.stream}/${m.seq}`);
        });
        // The sink reconnects with a backoff of up to 30 s; records held in memory are published then.
        await waitFor(
          () => got.size,
          (n) => n === N,
          60_000,
          'every prediction over MQTT',
        );
        const overflow = await metric(url, 'streamcell_queue_overflow_total');
        expect(overflow).toBe(0);
        d.proc.stdin!.end();
        expect(await d.exited, d.stderr()).toBe(0);
        console.log(`[fault full queue disk] ${N} predictions: JSONL ${N}, MQTT ${got.size} after the broker came back, ENOSPC counted ${enospc}, overflow 0`);
      } finally {
        sub.end(true);
      }
    } finally {
      await broker.dispose();
    }
  });

  it('a JSONL file on a disk that fills and then frees: records are queued, then written complete and in order', async () => {
    // Inside a private mount namespace: a 256 KiB tmpfs holding a 220 KiB filler file and the output (~75 KiB).
    const mnt = join(dir, 'fill');
    await mkdir(mnt);
    const sink = fileURLToPath(new URL('../../dist/devices/sinks/jsonl.js', import.meta.url));
    const metrics = fileURLToPath(new URL('../../dist/devices/metrics.js', import.meta.url));
    const script = `
      const { writeFileSync, rmSync, readFileSync } = await import('node:fs');
      const { JsonlSink } = await import(${JSON.stringify(sink)});
      const { DaemonMetrics } = await import(${JSON.stringify(metrics)});
      const m = new DaemonMetrics();
      writeFileSync(${JSON.stringify(join(mnt, 'filler'))}, Buffer.alloc(220 * 1024));
      const s = new JsonlSink({ path: ${JSON.stringify(join(mnt, 'out.jsonl'))}, metrics: m });
      const rec = (i) => ({ stream: 'a', seq: i, t: i, input: [i], outputs: { y: [i / 7] } });
      for (let i = 0; i < 1000; i++) { s.write(rec(i)); if (i % 50 === 0) await new Promise((r) => setImmediate(r)); }
      const until = async (f) => { for (let k = 0; k < 400 && !f(); k++) await new Promise((r) => setTimeout(r, 25)); };
      await until(() => !s.health().ok);
      const failing = s.health();
      rmSync(${JSON.stringify(join(mnt, 'filler'))});
      await until(() => s.health().ok);
      await s.close();
      const lines = readFileSync(${JSON.stringify(join(mnt, 'out.jsonl'))}, 'utf8').split(String.fromCharCode(10)).filter(Boolean).map((l) => JSON.parse(l).seq);
      const errors = (await m.sinkErrors.get()).values.reduce((a, v) => a + v.value, 0);
      console.log(JSON.stringify({ failing, recovered: s.health(), lines, errors }));
    `;
    const r = spawnSync(
      'unshare',
      [
        '--user',
        '--map-root-user',
        '--mount',
        'sh',
        '-c',
        `mount -t tmpfs -o size=256k tmpfs '${mnt}' && exec "$@"`,
        'sh',
        process.execPath,
        '--input-type=module',
        '-e',
        script,
      ],
      { encoding: 'utf8', timeout: 60_000 },
    );
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { failing: { ok: boolean; detail: string }; recovered: { ok: boolean }; lines: number[]; errors: number };
    expect(out.failing.ok).toBe(false);
    expect(out.failing.detail).toMatch(/ENOSPC/);
    expect(out.recovered.ok).toBe(true);
    expect(out.errors).toBeGreaterThan(0);
    // Every record exactly once, in order: a partial write was completed, not repeated.
    expect(out.lines).toEqual(Array.from({ length: 1000 }, (_, i) => i));
  });

  it('run -o /dev/full is exit 2 naming the output and the error, not exit 0', async () => {
    const csv = join(dir, 'small.csv');
    await writeFile(csv, 'time,ax,ay,az\n' + Array.from({ length: 200 }, (_, i) => `${i},${Math.sin(i)},${Math.cos(i)},1`).join('\n') + '\n');
    const r = runCli(['run', BUNDLE, '--input', csv, '--output', '/dev/full']);
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/\/dev\/full.*200 of 200 predictions could not be written \(ENOSPC\)/);
  });
});

describe('bounded memory', () => {
  it('100,000 unique stream ids: streams, /metrics, checkpoint and memory stay bounded', async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const ckpt = join(dir, 'ids.ckpt');
    const d = daemon(['--sink', `http://127.0.0.1:${port}`, '--checkpoint', ckpt, '--checkpoint-every', '1']);
    await waitFor(
      () => health(url).catch(() => ({ status: 0 })),
      (h) => h.status === 200,
      20_000,
      'the daemon to answer',
    );
    const N = 100_000;
    await d.send(Array.from({ length: N }, (_, i) => reading(`id-${i}`, i)));
    await waitFor(
      () => metric(url, 'streamcell_predictions_out_total'),
      (n) => n === N,
      90_000,
      'a prediction per reading',
    );
    const text = await (await fetch(`${url}/metrics`)).text();
    const streams = await metric(url, 'streamcell_streams');
    const evicted = await metric(url, 'streamcell_streams_evicted');
    await waitFor(
      () => (existsSync(ckpt) ? statSync(ckpt).mtimeMs : 0),
      (t) => t > 0,
      5000,
      'a checkpoint',
    );
    const peak = d.peakMb();
    const h = await health(url);
    d.proc.kill('SIGTERM');
    expect(await d.exited, d.stderr()).toBe(0);
    const ckptBytes = statSync(ckpt).size;
    // The pool keeps 10,000 streams by default (least recently used evicted).
    expect(streams).toBe(10_000);
    expect(evicted).toBe(N - 10_000);
    expect(h.body.streams).toBe(10_000);
    // 64 labelled streams + "(other)" on two counters: a few kB, whatever the ids.
    expect(text.length).toBeLessThan(64 * 1024);
    expect(text).toContain('stream="(other)"');
    // 10,000 streams × (2 × 32 floats of state + id + counter): well under 10 MB.
    expect(ckptBytes).toBeLessThan(10 * 2 ** 20);
    expect(peak).toBeLessThan(500);
    console.log(
      `[bounded ids] ${N} unique ids: pool ${streams} streams, evicted ${evicted}, /metrics ${text.length} B, checkpoint ${ckptBytes} B, peak RSS ${peak.toFixed(0)} MB`,
    );
  });

  it('80 dashboard clients that never read: /healthz answers in < 100 ms, extra clients refused, slow ones dropped', async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const d = daemon(['--sink', `http://127.0.0.1:${port}`]);
    await waitFor(
      () => health(url).catch(() => ({ status: 0 })),
      (h) => h.status === 200,
      20_000,
      'the daemon to answer',
    );
    // Fill the dashboard's history: 100 streams × 500 predictions (the default bounds).
    await d.send(Array.from({ length: 50_000 }, (_, i) => reading(`h${i % 100}`, i)));
    await waitFor(
      () => metric(url, 'streamcell_predictions_out_total'),
      (n) => n === 50_000,
      60_000,
      'history predictions',
    );
    // 80 clients ask for /events and never read a byte.
    const statuses: string[] = [];
    for (let i = 0; i < 80; i++) {
      const s = netConnect(port, '127.0.0.1');
      sockets.add(s);
      s.pause();
      s.once('connect', () => s.write(`GET /events HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`));
      s.once('readable', () => statuses.push(String(s.read(16) ?? '')));
    }
    await waitFor(
      () => statuses.length,
      (n) => n === 80,
      20_000,
      'every client answered (200 or 503)',
    );
    // Live traffic while they sit there; /healthz measured throughout.
    const latencies: number[] = [];
    const sending = d.send(Array.from({ length: 20_000 }, (_, i) => reading(`h${i % 100}`, i)));
    const t0 = Date.now();
    while (Date.now() - t0 < 4000) latencies.push((await health(url)).ms);
    await sending;
    await waitFor(
      () => metric(url, 'streamcell_predictions_out_total'),
      (n) => n === 70_000,
      60_000,
      'live predictions',
    );
    latencies.sort((a, b) => a - b);
    const max = latencies.at(-1)!;
    const p95 = latencies[Math.floor(latencies.length * 0.95)]!;
    const refused = statuses.filter((s) => s.includes(' 503 ')).length;
    d.proc.kill('SIGTERM');
    expect(await d.exited, d.stderr()).toBe(0);
    // Before the bounds, one such crowd stalled the event loop (and /healthz) for ~10 s. The
    // median and p95 are the event loop's responsiveness; the max allows for the scheduling
    // noise of a 2-core machine running other test files in parallel.
    expect(p95).toBeLessThan(100);
    expect(max).toBeLessThan(1000);
    expect(refused).toBe(80 - 32);
    console.log(
      `[bounded SSE] 80 non-reading clients: ${refused} refused (limit 32), /healthz ${latencies.length} requests, p50 ${latencies[latencies.length >> 1]!.toFixed(1)} ms, p95 ${p95.toFixed(1)} ms, max ${max.toFixed(1)} ms`,
    );
  });
});

describe('checkpoints', () => {
  it('a refused checkpoint is moved aside, never overwritten; temp files of killed writes are removed', async () => {
    const ckpt = join(dir, 'moved.ckpt');
    const garbage = Buffer.from('SCSNAP\r\nnot really a snapshot of this model');
    await writeFile(ckpt, garbage);
    const orphan = join(dir, '.moved.ckpt.999999999.abc123.tmp'); // no such pid
    await writeFile(orphan, 'half a checkpoint');
    const d = daemon(['--sink', 'jsonl:-', '--checkpoint', ckpt], (argv) => argv.map((a) => (a === 'warn' ? 'info' : a)));
    await d.send(Array.from({ length: 50 }, (_, i) => reading('a', i)));
    d.proc.stdin!.end();
    expect(await d.exited, d.stderr()).toBe(0);
    const aside = readdirSync(dir).filter((n) => n.startsWith('moved.ckpt.refused-'));
    expect(aside).toHaveLength(1);
    expect(readFileSync(join(dir, aside[0]!))).toEqual(garbage);
    expect(readFileSync(ckpt).subarray(0, 8).toString('latin1')).toBe('SCSNAP\r\n');
    expect(readFileSync(ckpt).equals(garbage)).toBe(false);
    expect(existsSync(orphan)).toBe(false);
    expect(d.stderr()).toMatch(/checkpoint refused/);
    expect(d.stderr()).toMatch(/removed the temp file of an interrupted checkpoint/);
  });
});

describe('hostile flags and secrets', () => {
  it('--checkpoint-every outside [1, 604800] s is exit 2 naming the flag', () => {
    for (const v of ['-1', '0', '0.001', '1e9']) {
      const r = runCli(['stream', '--bundle', BUNDLE, '--source', 'sim:imu', '--checkpoint', join(dir, 'x.ckpt'), '--checkpoint-every', v]);
      expect(r.status, v).toBe(2);
      expect(r.stderr).toMatch(/--checkpoint-every/);
    }
  });

  it('a token in the sink URI or shorter than 16 characters is refused; a token file works', async () => {
    let r = runCli(['stream', '--bundle', BUNDLE, '--source', 'sim:imu', '--sink', `http://0.0.0.0:${await freePort()}?token=${TOKEN}`]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/visible/);
    expect(r.stderr).not.toContain(TOKEN);
    r = runCli(['stream', '--bundle', BUNDLE, '--source', 'sim:imu', '--sink', `http://0.0.0.0:${await freePort()}`], { env: { STREAMCELL_HTTP_TOKEN: 'x' } });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/STREAMCELL_HTTP_TOKEN.*at least 16 characters/);
    const file = join(dir, 'token');
    await writeFile(file, `${TOKEN}\n`, { mode: 0o600 });
    const port = await freePort();
    const d = daemon(['--sink', `http://0.0.0.0:${port}`], (argv) => ['env', `STREAMCELL_HTTP_TOKEN_FILE=${file}`, ...argv]);
    const url = `http://127.0.0.1:${port}`;
    // /healthz from this machine needs no token (the health timer, the deploy gate) …
    await waitFor(
      () => health(url).catch(() => ({ status: 0 })),
      (h) => h.status === 200,
      20_000,
      'the daemon to answer',
    );
    // … every other route does.
    expect((await fetch(`${url}/metrics`)).status).toBe(401);
    expect((await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(200);
    const ps = spawnSync('ps', ['-o', 'args=', '-p', String(d.proc.pid)], { encoding: 'utf8' }).stdout;
    expect(ps).not.toContain(TOKEN);
    d.proc.kill('SIGTERM');
    expect(await d.exited).toBe(0);
  });

  it('monotonic time is on by default: a reading older than the previous one of its stream is dropped and counted', async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const d = daemon(['--sink', `http://127.0.0.1:${port}`], (argv) =>
      argv.map((a) => (a === 'stdin:?format=jsonl&stream=stream' ? 'stdin:?format=jsonl&stream=stream&time=t' : a)),
    );
    await waitFor(
      () => health(url).catch(() => ({ status: 0 })),
      (h) => h.status === 200,
      20_000,
      'the daemon to answer',
    );
    const at = (t: number) => JSON.stringify({ stream: 'a', t, ax: 0, ay: 0, az: 1 });
    await d.send([at(1000), at(2000), at(1500), at(3000)]);
    await waitFor(
      () => metric(url, 'streamcell_dropped_total', { reason: 'time-backwards' }),
      (n) => n === 1,
      10_000,
      'the backwards reading dropped',
    );
    // The drop is counted at validation, before the readings around it are predicted: wait for those.
    await waitFor(
      () => metric(url, 'streamcell_predictions_out_total'),
      (n) => n >= 3,
      10_000,
      'the three in-order readings predicted',
    );
    expect(await metric(url, 'streamcell_predictions_out_total')).toBe(3);
    d.proc.kill('SIGTERM');
    expect(await d.exited).toBe(0);
  });
});
