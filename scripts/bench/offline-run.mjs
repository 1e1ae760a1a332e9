/**
 * `streamcell run` offline: the fast path (the step model's chunked form, T readings of a
 * stream per call) against the streaming path (`--no-fast`: one pool push per reading), in
 * the same run, on 20,000 rows through an LSTM-48 step model (3 channels, forecaster), one
 * stream, 10 and 1000 interleaved streams (and 200,000 rows of one stream on the fast path,
 * past the warm-up). Each variant is a child `node dist/cli/bin.js run …`; its
 * CPU time (process.cpuUsage at exit, every thread) and peak RSS come back through a preload.
 * Startup (node, the CLI, onnxruntime, the session) is measured by the same command on 10 rows
 * and subtracted for the per-row cost. Variants are interleaved, medians of the repeats.
 *
 *   node --expose-gc scripts/bench/offline-run.mjs [--quick] [--million]
 *
 * Goal (issue): ≥ 20× faster than 280 µs CPU per row, i.e. ≤ 14 µs/row.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeCsv, makeStepModel } from './offline-model.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const BIN = join(ROOT, 'dist', 'cli', 'bin.js');
const GOAL_US = 280 / 20;

const PRELOAD = `process.on('exit', () => {
  const u = process.cpuUsage();
  require('fs').writeFileSync(process.env.STREAMCELL_BENCH_REPORT, JSON.stringify({ cpuUs: u.user + u.system, maxRssKb: process.resourceUsage().maxRSS }));
});\n`;

/** One child run: CPU µs (whole process), wall ms, peak RSS (KiB). */
async function runCli(dir, model, csv, extra, out) {
  const report = join(dir, `report-${process.hrtime.bigint()}.json`);
  await rm(out, { force: true }); // the JSONL sink appends
  const t0 = performance.now();
  const child = spawn(process.execPath, ['--require', join(dir, 'preload.cjs'), BIN, 'run', model, '--input', csv, '-o', out, ...extra], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, STREAMCELL_BENCH_REPORT: report },
  });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const code = await new Promise((r) => child.on('close', r));
  const wallMs = performance.now() - t0;
  if (code !== 0) throw new Error(`run ${extra.join(' ')} exited ${code}: ${stderr.slice(-500)}`);
  const r = JSON.parse(await readFile(report, 'utf8'));
  return { ...r, wallMs, stderr };
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** Largest difference between two JSONL outputs, stream by stream (the streaming path may interleave streams differently); -1 when records differ otherwise. */
async function compare(a, b) {
  const read = async (f) =>
    (await readFile(f, 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
  const group = (recs) => {
    const m = new Map();
    for (const r of recs) (m.get(r.stream) ?? m.set(r.stream, []).get(r.stream)).push(r);
    return m;
  };
  const [ra, rb] = [group(await read(a)), group(await read(b))];
  let err = 0;
  if (ra.size !== rb.size) return -1;
  for (const [s, xs] of ra) {
    const ys = rb.get(s);
    if (!ys || ys.length !== xs.length) return -1;
    for (let i = 0; i < xs.length; i++) {
      const x = xs[i];
      const y = ys[i];
      if (x.seq !== y.seq || JSON.stringify(x.input) !== JSON.stringify(y.input)) return -1;
      for (const k of Object.keys(y.outputs)) x.outputs[k].forEach((v, j) => (err = Math.max(err, Math.abs(v - y.outputs[k][j]))));
      if (y.forecast !== undefined) err = Math.max(err, Math.abs(x.forecast - y.forecast));
    }
  }
  return err;
}

export async function run({ quick = false, million = false } = {}) {
  const dir = await mkdtemp(join(tmpdir(), 'streamcell-bench-offline-'));
  try {
    await writeFile(join(dir, 'preload.cjs'), PRELOAD);
    const model = await makeStepModel(join(dir, 'lstm48'), { cell: 'lstm', units: 48, channels: 3 });
    const ROWS = 20_000;
    const one = join(dir, 'one.csv');
    const ten = join(dir, 'ten.csv');
    const tiny = join(dir, 'tiny.csv');
    await writeFile(one, makeCsv(ROWS));
    await writeFile(ten, makeCsv(ROWS, { streams: 10 }));
    await writeFile(tiny, makeCsv(10));
    const many = join(dir, 'many.csv');
    await writeFile(many, makeCsv(ROWS, { streams: 1000 }));
    const long = join(dir, 'long.csv');
    await writeFile(long, makeCsv(10 * ROWS));
    const variants = {
      startup: [tiny, []],
      'fast, 1 stream': [one, []],
      'streaming, 1 stream': [one, ['--no-fast']],
      'fast, 10 streams': [ten, ['--stream', 'sid']],
      'streaming, 10 streams': [ten, ['--stream', 'sid', '--no-fast']],
      'fast, 1000 streams': [many, ['--stream', 'sid']],
      'streaming, 1000 streams': [many, ['--stream', 'sid', '--no-fast']],
      'fast, 1 stream, 200k rows': [long, []],
    };
    const repeats = quick ? 1 : 3;
    const res = Object.fromEntries(Object.keys(variants).map((k) => [k, []]));
    for (let r = 0; r < repeats; r++) {
      for (const [name, [csv, extra]] of Object.entries(variants))
        res[name].push(await runCli(dir, model, csv, extra, join(dir, `${name.replace(/\W+/g, '-')}.jsonl`)));
    }
    const startupUs = median(res.startup.map((x) => x.cpuUs));
    const stat = (name) => {
      const xs = res[name];
      const cpu = median(xs.map((x) => x.cpuUs));
      const rows = name.includes('200k') ? 10 * ROWS : ROWS;
      return {
        cpuUsPerRow: cpu / rows,
        cpuUsPerRowAfterStartup: (cpu - startupUs) / rows,
        wallUsPerRow: (median(xs.map((x) => x.wallMs)) * 1000) / rows,
        maxRssMb: Math.max(...xs.map((x) => x.maxRssKb)) / 1024,
        path: /offline fast path/.test(xs[0].stderr) ? 'fast' : 'streaming',
      };
    };
    const json = { rows: ROWS, model: 'LSTM-48, 3 channels, forecast', repeats, startupCpuMs: startupUs / 1000, goalUsPerRow: GOAL_US };
    const lines = [
      `offline run: ${ROWS} rows, LSTM-48 step model, ${repeats} interleaved repeat(s), medians; startup (10 rows) ${(startupUs / 1000).toFixed(0)} ms CPU`,
    ];
    lines.push('  variant                     path       CPU µs/row  after startup  wall µs/row  peak RSS');
    for (const name of Object.keys(variants).slice(1)) {
      const s = stat(name);
      json[name] = s;
      lines.push(
        `  ${name.padEnd(26)}  ${s.path.padEnd(9)}  ${s.cpuUsPerRow.toFixed(1).padStart(10)}  ${s.cpuUsPerRowAfterStartup.toFixed(1).padStart(13)}  ${s.wallUsPerRow.toFixed(1).padStart(11)}  ${s.maxRssMb.toFixed(0).padStart(5)} MB`,
      );
    }
    for (const k of ['1 stream', '10 streams', '1000 streams']) {
      const f = json[`fast, ${k}`];
      const s = json[`streaming, ${k}`];
      const err = await compare(join(dir, `fast-${k.replace(/\W+/g, '-')}.jsonl`), join(dir, `streaming-${k.replace(/\W+/g, '-')}.jsonl`));
      const ratio = s.cpuUsPerRowAfterStartup / f.cpuUsPerRowAfterStartup;
      const ratioTotal = s.cpuUsPerRow / f.cpuUsPerRow;
      json[`ratio, ${k}`] = { afterStartup: ratio, total: ratioTotal, maxAbsDiff: err };
      lines.push(
        `  ${k}: streaming/fast CPU ×${ratio.toFixed(1)} after startup (×${ratioTotal.toFixed(1)} whole process); outputs ${err < 0 ? 'DIFFER' : `max |Δ| ${err.toExponential(1)}`}`,
      );
    }
    const f1 = json['fast, 1 stream'];
    const ok = f1.cpuUsPerRowAfterStartup <= GOAL_US;
    lines.push(
      `  goal ≤ ${GOAL_US} µs/row (20× vs 280): fast, 1 stream ${f1.cpuUsPerRowAfterStartup.toFixed(1)} µs/row after startup → ${ok ? 'OK' : 'MISSED'} (×${(280 / f1.cpuUsPerRowAfterStartup).toFixed(0)}); whole process incl. startup ${f1.cpuUsPerRow.toFixed(1)} µs/row → ${f1.cpuUsPerRow <= GOAL_US ? 'OK' : 'MISSED'}`,
    );
    const steady = json['fast, 1 stream, 200k rows'];
    lines.push(
      `  steady state (200k rows, 1 stream): ${steady.cpuUsPerRowAfterStartup.toFixed(1)} µs/row after startup → ${steady.cpuUsPerRowAfterStartup <= GOAL_US ? 'OK' : 'MISSED'} (×${(280 / steady.cpuUsPerRowAfterStartup).toFixed(0)} vs 280)`,
    );
    json.goalOkSteady = steady.cpuUsPerRowAfterStartup <= GOAL_US;
    json.goalOk = ok;
    json.goalOkWholeProcess = f1.cpuUsPerRow <= GOAL_US;
    if (million) {
      // Bounded memory: 10⁶ rows (about 36 MB of CSV) on the fast path.
      const big = join(dir, 'million.csv');
      await writeFile(big, makeCsv(1_000_000));
      const r = await runCli(dir, model, big, [], join(dir, 'million.jsonl'));
      json.million = { cpuUsPerRow: (r.cpuUs - startupUs) / 1e6, wallS: r.wallMs / 1000, maxRssMb: r.maxRssKb / 1024 };
      lines.push(
        `  10⁶ rows, fast: ${json.million.cpuUsPerRow.toFixed(1)} µs/row after startup, ${json.million.wallS.toFixed(1)} s wall, peak RSS ${json.million.maxRssMb.toFixed(0)} MB`,
      );
    }
    return { json, lines };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { lines } = await run({ quick: process.argv.includes('--quick'), million: process.argv.includes('--million') });
  for (const l of lines) console.log(l);
}
