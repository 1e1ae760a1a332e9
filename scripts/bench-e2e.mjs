/**
 * End-to-end daemon latency over a real pty (socat): a worker thread writes CSV lines into the
 * pty, each carrying its write time; the daemon (same process, main thread) reads the other
 * end as a serial port and a sink records when each prediction arrives.
 * Used by scripts/bench.mjs; returns the figures.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
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

function pct(sorted, p) {
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

/** One run: `rate` lines/s over `streams` streams for `seconds`; latency per prediction. */
export async function runE2e({ model, dir, rate, seconds, streams = 1 }) {
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
  const daemon = await Daemon.create({ model, sources: [source], sinks: [sink], policy: { monotonicTime: false } });
  await daemon.start();
  const total = await new Promise((resolve, reject) => {
    const w = new Worker(WRITER, { eval: true, workerData: { feed: pty.feed, rate, seconds, streams } });
    w.once('message', resolve);
    w.once('error', reject);
  });
  const t0 = Date.now();
  while (received < total && Date.now() - t0 < 3000) await new Promise((r) => setTimeout(r, 20));
  await daemon.stop();
  pty.stop();
  const dropped = (await daemon.metrics.dropped.get()).values.reduce((a, v) => a + v.value, 0);
  lat.sort((a, b) => a - b);
  return {
    rate,
    streams,
    seconds,
    written: total,
    predicted: received,
    dropped,
    p50Ms: pct(lat, 0.5),
    p90Ms: pct(lat, 0.9),
    p95Ms: pct(lat, 0.95),
    p99Ms: pct(lat, 0.99),
    maxMs: lat[lat.length - 1],
  };
}
