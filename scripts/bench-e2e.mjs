/**
 * End-to-end daemon latency over a real pty (socat): a worker thread writes CSV lines into the
 * pty, each carrying its write time; the daemon (same process, main thread) reads the other
 * end as a serial port and a sink records when each prediction arrives. `runBare` reads the
 * same kind of pty with `serialport` alone (read, split lines, parse the stamp): the floor the
 * daemon's figures are compared with, measured in the same run.
 * Used by scripts/bench.mjs and scripts/bench/daemon-latency.mjs; returns the figures.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { SerialPort } from 'serialport';
import { Daemon } from '../dist/devices/daemon.js';
import { sourceFromUri } from '../dist/devices/uri.js';

const WRITER = `
const { workerData, parentPort } = require('node:worker_threads');
const fs = require('node:fs');
const { feed, rate, seconds, streams } = workerData;
const fd = fs.openSync(feed, 'w');
const now = () => performance.timeOrigin + performance.now();
const period = 1000 / rate;
const total = Math.round(rate * seconds);
const t0 = performance.now();
let i = 0;
const sab = new Int32Array(new SharedArrayBuffer(4));
while (i < total) {
  const due = Math.min(total, Math.floor((performance.now() - t0) / period) + 1);
  let text = '';
  for (; i < due; i++) text += (streams > 1 ? 's' + (i % streams) + ',' : '') + (340 + 10 * Math.sin(i / 26)).toFixed(3) + ',' + now().toFixed(4) + '\\n';
  if (text) fs.writeSync(fd, text);
  const next = t0 + i * period;
  const wait = next - performance.now();
  if (wait > 0.2) Atomics.wait(sab, 0, 0, Math.max(0, wait - 0.1));
}
fs.closeSync(fd);
parentPort.postMessage(total);
`;

export function pct(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

async function startPty(dir, name) {
  const dev = join(dir, `${name}-dev`);
  const feed = join(dir, `${name}-feed`);
  const proc = spawn('socat', [`pty,raw,echo=0,link=${dev}`, `pty,raw,echo=0,link=${feed}`], { stdio: 'ignore' });
  const t0 = Date.now();
  while (!(existsSync(dev) && existsSync(feed))) {
    if (Date.now() - t0 > 5000) throw new Error('socat did not start');
    await new Promise((r) => setTimeout(r, 20));
  }
  return { dev, feed, stop: () => proc.kill('SIGKILL') };
}

function write(pty, rate, seconds, streams) {
  return new Promise((resolve, reject) => {
    const w = new Worker(WRITER, { eval: true, workerData: { feed: pty.feed, rate, seconds, streams } });
    w.once('message', resolve);
    w.once('error', reject);
  });
}

async function waitFor(cond, ms) {
  const t0 = Date.now();
  while (!cond() && Date.now() - t0 < ms) await new Promise((r) => setTimeout(r, 20));
}

function summary(lat) {
  lat.sort((a, b) => a - b);
  return { p50Ms: pct(lat, 0.5), p90Ms: pct(lat, 0.9), p95Ms: pct(lat, 0.95), p99Ms: pct(lat, 0.99), maxMs: lat[lat.length - 1] };
}

function loopDelay() {
  const h = monitorEventLoopDelay({ resolution: 1 });
  h.enable();
  return () => {
    h.disable();
    return { p50Ms: h.percentile(50) / 1e6, p99Ms: h.percentile(99) / 1e6, maxMs: h.max / 1e6 };
  };
}

/**
 * One run: `rate` lines/s over `streams` streams for `seconds`; latency per prediction.
 * `trace`: stamp every reading (the daemon's stage breakdown, `stages`); `keepSamples`: return the latencies (`samples`, ms);
 * `pool`: the daemon's pool options (e.g. `{ workers: 1 }`).
 */
export async function runE2e({ model, dir, rate, seconds, streams = 1, trace = false, keepSamples = false, pool }) {
  const pty = await startPty(dir, `e2e-${rate}-${streams}`);
  const lat = [];
  let received = 0;
  const sink = async () => ({
    uri: 'bench:',
    write(rec) {
      received++;
      lat.push(performance.timeOrigin + performance.now() - rec.t);
    },
    flush: async () => {},
    close: async () => {},
  });
  const q = streams > 1 ? 'format=csv&header=false&stream=0&columns=1&time=2' : 'format=csv&header=false&columns=0&time=1';
  const source = await sourceFromUri(`serial:${pty.dev}?${q}`, { channels: 1 });
  const daemon = await Daemon.create({
    model,
    sources: [source],
    sinks: [sink],
    policy: { monotonicTime: false },
    ...(trace ? { traceEvery: 1 } : {}),
    ...(pool ? { pool } : {}),
  });
  await daemon.start();
  const loop = loopDelay();
  const total = await write(pty, rate, seconds, streams);
  await waitFor(() => received >= total, 3000);
  const eventLoop = loop();
  const stages = daemon.latency?.();
  await daemon.stop();
  pty.stop();
  const dropped = (await daemon.metrics.dropped.get()).values.reduce((a, v) => a + v.value, 0);
  return {
    rate,
    streams,
    seconds,
    written: total,
    predicted: received,
    dropped,
    ...summary(lat),
    eventLoop,
    ...(stages ? { stages } : {}),
    ...(keepSamples ? { samples: lat } : {}),
  };
}

/** The floor: `serialport` alone reading the same kind of pty (read, split lines, parse the stamp); latency per line. */
export async function runBare({ dir, rate, seconds, streams = 1, keepSamples = false }) {
  const pty = await startPty(dir, `bare-${rate}-${streams}`);
  const lat = [];
  const port = new SerialPort({ path: pty.dev, baudRate: 115200, autoOpen: false });
  await new Promise((resolve, reject) => port.open((e) => (e ? reject(e) : resolve())));
  let rest = '';
  port.on('data', (b) => {
    const text = rest + b.toString('utf8');
    let start = 0;
    for (;;) {
      const nl = text.indexOf('\n', start);
      if (nl < 0) break;
      const comma = text.lastIndexOf(',', nl);
      lat.push(performance.timeOrigin + performance.now() - Number(text.slice(comma + 1, nl)));
      start = nl + 1;
    }
    rest = text.slice(start);
  });
  const loop = loopDelay();
  const total = await write(pty, rate, seconds, streams);
  await waitFor(() => lat.length >= total, 3000);
  const eventLoop = loop();
  await new Promise((r) => port.close(() => r()));
  pty.stop();
  return { rate, streams, seconds, written: total, received: lat.length, ...summary(lat), eventLoop, ...(keepSamples ? { samples: lat } : {}) };
}
