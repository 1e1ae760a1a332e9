/**
 * The goals table of `npm run bench`, built from `bench-results/bench.json`: one row per goal
 * with the measured figure, the same-run reference it is compared with (bare onnxruntime, a
 * bare pty reader, the cpu backend, …) and the verdict. `scripts/bench.mjs` prints it;
 * `node scripts/bench/summary.mjs --readme` writes it into README.md between the markers
 * `<!-- bench:goals -->` and `<!-- /bench:goals -->`, so the README's table is the JSON's.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const k = (v) => `${Math.round(v / 1000).toLocaleString('en-US')}k`;
const us = (v) => `${v.toFixed(1)} µs`;
const ms = (v) => `${v.toFixed(v < 10 ? 2 : 0)} ms`;
const x = (v) => `${v.toFixed(2)}×`;
const ok = (b) => (b ? 'met' : 'missed');

/** Rows [goal, measured, same-run reference, result] from a bench.json object; rows whose benchmark did not run are left out. */
export function goalRows(results) {
  const b = results.benchmarks;
  const rows = [];
  const e = b.export_1m_lstm;
  if (e) rows.push([`export of a ${(e.params / 1e6).toFixed(2)}M-parameter stacked LSTM (load + convert): < 3 s`, ms(e.ms.p50), '', ok(e.meetsGoal)]);
  const w = b.window64_lstm64x2;
  if (w)
    rows.push([
      '2×LSTM-64 on a 64-step window, onnxruntime vs tfjs `predict`: ≥ 50×',
      `${w.speedupP50.toFixed(0)}× (${ms(w.onnxruntime.p50)})`,
      `tfjs ${results.tfjs}: ${ms(w.tfjs.p50)}`,
      ok(w.meetsGoal),
    ]);
  const s = b.streaming_lstm64?.step;
  if (s) {
    const r = s.latency.ratioPaired;
    rows.push([
      'StreamPool vs bare `session.run`, 1 stream, per step: ≤ 1.05×',
      `${x(r)} (${us(s.latency.pool.p50Us)})`,
      `bare ${us(s.latency.bare.p50Us)}`,
      ok(r <= 1.05),
    ]);
    for (const n of [256, 1024]) {
      const t = s.throughput.find((v) => v.streams === n);
      if (t)
        rows.push([
          `pushMany throughput at ${n} streams vs bare: ≥ 0.95×`,
          `${x(t.manyVsBare)} (${k(t.manyStreamStepsPerSec)} stream-steps/s)`,
          `bare ${k(t.bareStreamStepsPerSec)}`,
          ok(t.manyVsBare >= 0.95),
        ]);
    }
  }
  const f = b.floor;
  if (f) {
    const at = (n) => f.many.find((m) => m.streams === n)?.streamStepsPerSec ?? {};
    const best = Object.entries({ ...at(256), ...at(1024) }).filter(([name]) => name !== 'bare');
    const top = best.sort((p, q) => q[1] - p[1])[0];
    rows.push([
      'stream-steps/s at 256+ streams on all cores: ≥ 1M',
      `${k(f.goals.best)} (${top?.[0] ?? '?'})`,
      `bare, 1 thread: ${k(at(256).bare ?? 0)} / ${k(at(1024).bare ?? 0)} at 256 / 1024`,
      ok(f.goals.met),
    ]);
    rows.push([
      'per-step floor (side by side, batch 1)',
      `pool ${us(f.step.nodePool)}`,
      `native session ${us(f.step.nativeSync)}, session.run ${us(f.step.nodeRun)}, onnxruntime-web ${us(f.step.webRun)}`,
      '',
    ]);
  }
  const ro = b.rollout;
  if (ro) {
    const worst = ro.rows.filter((r) => r.streams >= ro.goals.streamsMin).sort((p, q) => q.ratio - p.ratio)[0];
    rows.push([
      `forecastMany K-step rollout vs K batched \`pushMany\` steps, per stream, ${ro.goals.streamsMin}+ streams: ≤ ${ro.goals.maxRatio}×`,
      `${x(worst.ratio)} worst (${worst.streams} streams, K ${worst.k}: ${us(worst.rolloutUsPerStream)})`,
      `K×pushMany ${us(worst.stepsUsPerStream)}; (K−1)/K ${worst.expectedRatio.toFixed(2)}`,
      ok(ro.goals.met),
    ]);
  }
  const d = b.daemon_e2e;
  if (d?.single) {
    rows.push([
      'daemon, 1 stream at 1 kHz over a pty, p99: ≤ max(2 ms, 1.2× bare reader)',
      ms(d.single.daemon.p99Ms),
      `bare reader p99 ${ms(d.single.bare.p99Ms)}`,
      ok(d.goals.p99Ok),
    ]);
    const m64 = d.multi.find((m) => m.rate === 64000);
    if (m64)
      rows.push([
        '64 streams at 64k lines/s, backlog p50: ≤ 20 ms, nothing lost',
        `${ms(m64.daemon.p50Ms)}, ${m64.daemon.predicted}/${m64.daemon.written} predicted`,
        `bare reader p50 ${ms(m64.bare.p50Ms)}`,
        ok(d.goals.backlogOk),
      ]);
  }
  const o = b.offline_run;
  if (o?.['fast, 1 stream']) {
    const f1 = o['fast, 1 stream'];
    const st = o['fast, 1 stream, 200k rows'];
    rows.push([
      '`run` offline, LSTM-48, CPU per row: ≤ 14 µs (20× under 280)',
      `${us(f1.cpuUsPerRowAfterStartup)} at 20k rows${st ? `, ${us(st.cpuUsPerRowAfterStartup)} at 200k` : ''} (after start-up)`,
      `streaming path ${us(o['streaming, 1 stream'].cpuUsPerRowAfterStartup)}`,
      `${ok(o.goalOk)} at 20k, ${ok(o.goalOkSteady)} at 200k`,
    ]);
  }
  const q = b.quantized_step?.models;
  if (q) {
    for (const [name, r] of Object.entries(q)) {
      const fast = Math.min(r.int8VsFloat, r.int8FloatKernelsVsFloat);
      rows.push([
        `int8 step vs float, ${name.toUpperCase()}-64: no slower`,
        `${x(fast)} (float kernels ${x(r.int8FloatKernelsVsFloat)}, integer ${x(r.int8VsFloat)}); fp16 ${x(r.fp16VsFloat)}`,
        `float ${us(r.float.p50Us)}; float vs float ${x(r.floatAgainVsFloat)}`,
        ok(r.int8Ok && r.fp16Ok),
      ]);
    }
  }
  const tr = b.training;
  if (tr?.variants) {
    rows.push([
      'training, CO₂ LSTM-32: ≥ 5× the cpu backend',
      `${x(tr.ratioFastVsCpu)} (${Math.round(tr.variants.fast.windowsPerSecond)} windows/s, ${tr.variants.fast.backend.split(' ')[0]}, batch ${tr.variants.fast.batchSize})`,
      `cpu, batch 32: ${Math.round(tr.variants.cpu_b32.windowsPerSecond)} windows/s`,
      ok(tr.meetsGoal),
    ]);
  }
  const st = b.startup?.goals;
  if (st) {
    rows.push([
      '`streamcell --version`: ≤ 0.25 s',
      `${st.versionS.p50.toFixed(2)} s`,
      `node -e 0: ${(b.startup.p50Ms.node / 1000).toFixed(2)} s`,
      ok(st.versionS.ok),
    ]);
    rows.push([
      'daemon start → first prediction: ≤ 0.6 s',
      `${st.daemonFirstPredictionS.p50.toFixed(2)} s`,
      `its packages alone: ${(b.startup.p50Ms.pkgs / 1000).toFixed(2)} s`,
      ok(st.daemonFirstPredictionS.ok),
    ]);
  }
  return rows;
}

/** A Markdown table of the rows. */
export function goalsMarkdown(results) {
  const rows = goalRows(results);
  const m = results.machine;
  return [
    `Goals, one \`npm run bench\` run (${results.date.slice(0, 10)}, ${m.cpus}× ${m.cpu}, Node ${m.node.replace(/^v/, '')}, ${results.onnxruntime}):`,
    '',
    '| goal | measured | same run, for reference | result |',
    '| --- | --- | --- | --- |',
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ].join('\n');
}

/** The rows as aligned text for the terminal. */
export function goalsText(results) {
  const rows = [['goal', 'measured', 'same run, for reference', 'result'], ...goalRows(results)];
  const w = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  const line = (r) =>
    r
      .map((v, c) => v.padEnd(w[c]))
      .join('  ')
      .trimEnd();
  return [line(rows[0]), w.map((n) => '-'.repeat(n)).join('  '), ...rows.slice(1).map(line)].join('\n');
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const file = process.argv.includes('--json') ? process.argv[process.argv.indexOf('--json') + 1] : join(root, 'bench-results', 'bench.json');
  const results = JSON.parse(await readFile(file, 'utf8'));
  if (process.argv.includes('--readme')) {
    const readme = join(root, 'README.md');
    const text = await readFile(readme, 'utf8');
    const start = '<!-- bench:goals -->';
    const end = '<!-- /bench:goals -->';
    const a = text.indexOf(start);
    const z = text.indexOf(end);
    if (a < 0 || z < a) throw new Error(`README.md has no ${start} … ${end} block`);
    await writeFile(readme, `${text.slice(0, a + start.length)}\n${goalsMarkdown(results)}\n${text.slice(z)}`);
    console.log(`README.md: goals table from ${file}`);
  } else console.log(goalsText(results));
}
