#!/usr/bin/env node
/**
 * Reliability figures of the daemon and `run`, measured with the built CLI as child processes:
 *
 * - `run` offline on R and R/10 rows of a 3-channel CSV through the shipped IMU step model:
 *   peak RSS and time (linear time: the per-row cost at R over the per-row cost at R/10);
 * - 100,000 unique stream ids into a daemon: pool streams, /metrics bytes, checkpoint bytes, peak RSS;
 * - 80 dashboard clients that never read while predictions flow: /healthz latency (p50/p95/max).
 *
 * Usage: node scripts/bench-reliability.mjs [--rows 1000000] [--only run,ids,sse] [--cli dist/cli/bin.js] [--json OUT]
 * (`--cli` measures another build, e.g. an older checkout, for a before/after comparison.)
 * Prints a table and writes bench-results/reliability.json.
 */
import { spawn } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : dflt;
};
const ROWS = Number(arg('rows', '1000000'));
const CLI = resolve(arg('cli', join(root, 'dist/cli/bin.js')));
const BUNDLE = join(root, 'models/imu-activity.bundle');
const ONLY = new Set(arg('only', 'run,ids,sse').split(','));
const OUT = resolve(arg('json', join(root, 'bench-results/reliability.json')));
if (!Number.isInteger(ROWS) || ROWS < 1000 || ROWS > 1e8) throw new Error(`--rows must be an integer in [1000, 1e8], got ${arg('rows')}`);
if (!existsSync(CLI)) throw new Error(`${CLI} is missing: npm run build`);

const dir = mkdtempSync(join(tmpdir(), 'streamcell-bench-rel-'));
const children = new Set();
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const reading = (stream, i) => JSON.stringify({ stream, ax: Math.sin(i / 7), ay: Math.cos(i / 5), az: 1 + 0.1 * Math.sin(i / 3) });

async function writeCsv(file, rows) {
  const out = createWriteStream(file);
  out.write('time,ax,ay,az\n');
  for (let i = 0; i < rows; i += 1000) {
    let b = '';
    for (let k = i; k < Math.min(rows, i + 1000); k++)
      b += `${(k * 0.02).toFixed(2)},${Math.sin(k / 7).toFixed(4)},${Math.cos(k / 5).toFixed(4)},${(1 + 0.1 * Math.sin(k / 3)).toFixed(4)}\n`;
    if (!out.write(b)) await new Promise((r) => out.once('drain', r));
  }
  await new Promise((r) => out.end(r));
}

/** Runs a command, sampling VmHWM; resolves with exit code, seconds and peak RSS (MB). */
function measured(argv, { stdin } = {}) {
  const t0 = performance.now();
  const p = spawn(process.execPath, argv, { stdio: [stdin ? 'pipe' : 'ignore', 'ignore', 'pipe'] });
  children.add(p);
  let peak = 0;
  let err = '';
  p.stderr.on('data', (d) => (err += d));
  const sample = () => {
    try {
      const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${p.pid}/status`, 'utf8'));
      if (m) peak = Math.max(peak, Number(m[1]) / 1024);
    } catch {
      // exited
    }
  };
  const timer = setInterval(sample, 100);
  const done = new Promise((r) =>
    p.once('exit', (code) => {
      clearInterval(timer);
      children.delete(p);
      r({ code, seconds: (performance.now() - t0) / 1000, peakMb: peak, stderr: err });
    }),
  );
  return { proc: p, done, sample: () => (sample(), peak) };
}

async function http(url) {
  const t0 = performance.now();
  try {
    const r = await fetch(url, { signal: AbortSignal.timeout(20_000) });
    const body = await r.text();
    return { status: r.status, body, ms: performance.now() - t0 };
  } catch {
    return { status: 0, body: '', ms: performance.now() - t0 };
  }
}

async function metric(base, name) {
  const t = (await http(`${base}/metrics`)).body;
  return t
    .split('\n')
    .filter((l) => l.startsWith(name + ' ') || l.startsWith(name + '{'))
    .reduce((a, l) => a + Number(l.split(' ').at(-1)), 0);
}

let portSeq = 20_000 + Math.floor(Math.random() * 20_000);
function daemon(extra) {
  const port = portSeq++;
  const m = measured(
    [CLI, 'stream', '--bundle', BUNDLE, '--source', 'stdin:?format=jsonl&stream=stream', '--sink', `http://127.0.0.1:${port}`, '--log-level', 'warn', ...extra],
    { stdin: true },
  );
  m.proc.stdin.on('error', () => undefined);
  const send = async (lines) => {
    for (let i = 0; i < lines.length; i += 500)
      if (!m.proc.stdin.write(lines.slice(i, i + 500).join('\n') + '\n')) await new Promise((r) => m.proc.stdin.once('drain', r));
  };
  return { ...m, base: `http://127.0.0.1:${port}`, send };
}

async function until(fn, ok, ms, what) {
  const t0 = Date.now();
  for (;;) {
    const v = await fn();
    if (ok(v)) return v;
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

const results = { rows: ROWS, cli: CLI };

// 1. run: bounded memory, linear time.
for (const rows of ONLY.has('run') ? [Math.round(ROWS / 10), ROWS] : []) {
  const csv = join(dir, `rows-${rows}.csv`);
  await writeCsv(csv, rows);
  const out = join(dir, `rows-${rows}.jsonl`);
  const r = await measured([CLI, 'run', BUNDLE, '--input', csv, '--output', out]).done;
  const lines = readFileSync(out, 'utf8').split('\n').length - 1;
  results[`run_${rows}`] = {
    exit: r.code,
    seconds: +r.seconds.toFixed(1),
    peak_rss_mb: Math.round(r.peakMb),
    predictions: lines,
    us_per_row: +((r.seconds * 1e6) / rows).toFixed(1),
  };
  rmSync(out);
  rmSync(csv);
}
const small = results[`run_${Math.round(ROWS / 10)}`];
const big = results[`run_${ROWS}`];
if (small && big) results.run_linearity = +(big.us_per_row / small.us_per_row).toFixed(2);

// 2. 100,000 unique ids.
if (ONLY.has('ids')) {
  const ckpt = join(dir, 'ids.ckpt');
  const d = daemon(['--checkpoint', ckpt, '--checkpoint-every', '1']);
  await until(
    () => http(`${d.base}/healthz`),
    (h) => h.status === 200,
    30_000,
    'daemon',
  );
  const N = 100_000;
  await d.send(Array.from({ length: N }, (_, i) => reading(`id-${i}`, i)));
  await until(
    () => metric(d.base, 'streamcell_predictions_out_total'),
    (n) => n === N,
    120_000,
    'predictions',
  );
  await until(
    () => (existsSync(ckpt) ? 1 : 0),
    (n) => n === 1,
    10_000,
    'checkpoint',
  );
  const metricsBytes = (await http(`${d.base}/metrics`)).body.length;
  results.unique_ids = {
    ids: N,
    pool_streams: await metric(d.base, 'streamcell_streams'),
    evicted: await metric(d.base, 'streamcell_streams_evicted'),
    metrics_bytes: metricsBytes,
    checkpoint_bytes: statSync(ckpt).size,
    peak_rss_mb: Math.round(d.sample()),
  };
  d.proc.kill('SIGTERM');
  await d.done;
}

// 3. 80 dashboard clients that never read.
if (ONLY.has('sse')) {
  const d = daemon([]);
  await until(
    () => http(`${d.base}/healthz`),
    (h) => h.status === 200,
    30_000,
    'daemon',
  );
  await d.send(Array.from({ length: 50_000 }, (_, i) => reading(`h${i % 100}`, i)));
  await until(
    () => metric(d.base, 'streamcell_predictions_out_total'),
    (n) => n === 50_000,
    120_000,
    'history',
  );
  const port = Number(new URL(d.base).port);
  const statuses = [];
  const socks = [];
  for (let i = 0; i < 80; i++) {
    const s = connect(port, '127.0.0.1');
    s.pause();
    s.once('connect', () => s.write(`GET /events HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`));
    s.once('readable', () => statuses.push(String(s.read(16) ?? '')));
    socks.push(s);
  }
  const burst = (await http(`${d.base}/healthz`)).ms;
  await until(
    () => statuses.length,
    (n) => n === 80,
    30_000,
    'clients answered',
  );
  const lat = [];
  const sending = d.send(Array.from({ length: 20_000 }, (_, i) => reading(`h${i % 100}`, i)));
  const t0 = Date.now();
  while (Date.now() - t0 < 4000) lat.push((await http(`${d.base}/healthz`)).ms);
  await sending;
  lat.sort((a, b) => a - b);
  results.sse_80_clients = {
    refused_503: statuses.filter((s) => s.includes(' 503 ')).length,
    healthz_during_connect_ms: +burst.toFixed(1),
    healthz_requests: lat.length,
    healthz_p50_ms: +lat[lat.length >> 1].toFixed(1),
    healthz_p95_ms: +lat[Math.floor(lat.length * 0.95)].toFixed(1),
    healthz_max_ms: +lat.at(-1).toFixed(1),
  };
  for (const s of socks) s.destroy();
  d.proc.kill('SIGTERM');
  await d.done;
}

const rows = [];
if (small && big) {
  rows.push([`run, ${small.predictions.toLocaleString('en-US')} rows`, `${small.seconds} s, ${small.us_per_row} µs/row`, `peak RSS ${small.peak_rss_mb} MB`]);
  rows.push([
    `run, ${big.predictions.toLocaleString('en-US')} rows`,
    `${big.seconds} s, ${big.us_per_row} µs/row`,
    `peak RSS ${big.peak_rss_mb} MB; per-row time ×${results.run_linearity} of the small run`,
  ]);
}
const ids = results.unique_ids;
if (ids)
  rows.push([
    '100,000 unique stream ids',
    `pool ${ids.pool_streams}, evicted ${ids.evicted}`,
    `/metrics ${ids.metrics_bytes} B, checkpoint ${(ids.checkpoint_bytes / 2 ** 20).toFixed(1)} MiB, peak RSS ${ids.peak_rss_mb} MB`,
  ]);
const sse = results.sse_80_clients;
if (sse)
  rows.push([
    '80 silent dashboard clients',
    `${sse.refused_503} refused (503)`,
    `/healthz p50 ${sse.healthz_p50_ms} ms, p95 ${sse.healthz_p95_ms} ms, max ${sse.healthz_max_ms} ms (${sse.healthz_during_connect_ms} ms while they connect)`,
  ]);
const w = [0, 1, 2].map((c) => Math.max(...rows.map((r) => r[c].length)));
console.log(rows.map((r) => r.map((c, i) => c.padEnd(w[i])).join(' | ')).join('\n'));
mkdirSync(dirname(OUT), { recursive: true });
writeFileSync(OUT, JSON.stringify(results, null, 2) + '\n');
console.log(`\nwritten ${OUT}`);
