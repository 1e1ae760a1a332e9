/**
 * Daemon latency tail and 64-stream backlog over a real pty (socat), against the floor: a bare
 * `serialport` reader of the same kind of pty (read, split lines, parse the stamp; no daemon)
 * measured in the same run, interleaved with the daemon runs.
 *
 * - 1 stream at 1 kHz: line written → prediction on the sink, p50/p99; goal p99 ≤ max(2 ms,
 *   1.2 × the bare reader's p99). Runs alternate bare / daemon (`reps` pairs) and each
 *   variant's samples are pooled. The daemon traces every reading (`traceEvery: 1`): the
 *   p50/p99 per stage (line in → framed → validated → pushed → predicted → written) and the
 *   event-loop delay p99.
 * - 64 streams at 32k / 64k lines/s: backlog p50 (line written → predicted); goal ≤ 20 ms at
 *   64k, nothing lost (every line predicted, nothing dropped).
 *
 *   node --expose-gc scripts/bench/daemon-latency.mjs [--quick]
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { exportToOnnx, loadTfjsArtifacts, streamifyModel } from '../../dist/index.js';
import { loadTfjs } from '../../dist/export/tfjs-backend.js';
import { runBare, runE2e } from '../bench-e2e.mjs';
import { saveTfjsModel } from './save-model.mjs';

/** The LSTM-64 step model of the end-to-end bench (scripts/bench.mjs section 5). */
async function stepModel(tmp) {
  const { tf } = await loadTfjs();
  const m = tf.sequential({
    layers: [tf.layers.lstm({ units: 64, inputShape: [null, 1], recurrentInitializer: 'glorotUniform' }), tf.layers.dense({ units: 1 })],
  });
  const file = await saveTfjsModel(tf, m, join(tmp, 'lstm64'));
  m.dispose();
  const { model: seq } = await exportToOnnx(await loadTfjsArtifacts(file));
  return (await streamifyModel(seq)).model;
}

const ms = (x) => (x === undefined ? '–' : x < 10 ? x.toFixed(2) : x.toFixed(1));
const pick = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];

/** p50/p99 of the pooled per-line latencies of several runs. */
function pooled(runs) {
  const all = runs.flatMap((r) => r.samples).sort((a, b) => a - b);
  return { n: all.length, p50Ms: pick(all, 0.5), p99Ms: pick(all, 0.99), maxMs: all[all.length - 1] };
}

export async function run({ quick = false } = {}) {
  try {
    execFileSync('socat', ['-V'], { stdio: 'ignore' });
  } catch {
    return { json: { skipped: 'socat not installed' }, lines: ['Daemon latency: skipped (socat not installed)'] };
  }
  const tmp = await mkdtemp(join(tmpdir(), 'streamcell-latency-'));
  try {
    const model = await stepModel(tmp);
    const seconds = quick ? 2 : 5;
    const reps = quick ? 1 : 2;
    // 1 stream at 1 kHz: bare and daemon alternate, so both see the same machine load.
    const bare = [];
    const daemon = [];
    for (let k = 0; k < reps; k++) {
      bare.push(await runBare({ dir: tmp, rate: 1000, seconds, keepSamples: true }));
      daemon.push(await runE2e({ model, dir: tmp, rate: 1000, seconds, trace: true, keepSamples: true }));
    }
    const b1 = pooled(bare);
    const d1 = pooled(daemon);
    const goal1 = Math.max(2, 1.2 * b1.p99Ms);
    const lost1 = daemon.reduce((n, r) => n + r.written - r.predicted + r.dropped, 0);
    // The breakdown of the last daemon run (its trace keeps the last 4096 readings).
    const last = daemon[daemon.length - 1];
    const stages = last.stages;
    const loop = { daemonP99Ms: Math.max(...daemon.map((r) => r.eventLoop.p99Ms)), bareP99Ms: Math.max(...bare.map((r) => r.eventLoop.p99Ms)) };

    // 64 streams: backlog (line written → predicted) at 32k and 64k lines/s, with the bare reader of the same rate before each.
    const multi = [];
    for (const rate of [32000, 64000]) {
      const rb = await runBare({ dir: tmp, rate, seconds: 2, streams: 64 });
      const rd = await runE2e({ model, dir: tmp, rate, seconds: 2, streams: 64, trace: true });
      multi.push({ rate, bare: rb, daemon: rd, lost: rd.written - rd.predicted + rd.dropped });
    }
    const at64 = multi.find((m) => m.rate === 64000);
    const strip = (r) => {
      const { samples: _s, ...rest } = r;
      return rest;
    };
    const json = {
      model: 'LSTM-64 step model, 1 channel',
      single: {
        rate: 1000,
        seconds,
        reps,
        bare: b1,
        daemon: d1,
        ratioP99: d1.p99Ms / b1.p99Ms,
        lost: lost1,
        stages: stages?.stages,
        eventLoop: loop,
        runs: { bare: bare.map(strip), daemon: daemon.map(strip) },
      },
      multi: multi.map((m) => ({ rate: m.rate, bare: strip(m.bare), daemon: strip(m.daemon), lost: m.lost, backlogP50Ms: m.daemon.p50Ms })),
      goals: {
        p99MsAt1kHz: goal1,
        p99Ok: d1.p99Ms <= goal1 && lost1 === 0,
        backlogP50MsAt64k: 20,
        backlogOk: at64.daemon.p50Ms <= 20 && at64.lost === 0,
      },
    };
    const lines = [
      `Daemon latency over a pty (LSTM-64 step model), ${reps} × ${seconds} s interleaved with a bare serialport reader of the same pty:`,
      `  1 stream at 1 kHz: daemon p50 ${ms(d1.p50Ms)} ms, p99 ${ms(d1.p99Ms)} ms; bare reader p50 ${ms(b1.p50Ms)} ms, p99 ${ms(b1.p99Ms)} ms` +
        ` (daemon/bare p99 ${(d1.p99Ms / b1.p99Ms).toFixed(2)}×); goal p99 ≤ max(2 ms, 1.2× bare) = ${ms(goal1)} ms: ${json.goals.p99Ok ? 'OK' : 'MISSED'}` +
        (lost1 ? `; ${lost1} lost` : ''),
    ];
    if (stages) {
      lines.push(
        `  where the time goes (every reading traced, last ${stages.stages.total.n}): ` +
          Object.entries(stages.stages)
            .map(([k, v]) => `${k} ${ms(v.p50Ms)}/${ms(v.p99Ms)}`)
            .join(', ') +
          ' ms (p50/p99); before line in = the pty and the serial read, not traced',
      );
    }
    lines.push(`  event-loop delay p99 (1 ms resolution): daemon ${ms(loop.daemonP99Ms)} ms, bare reader ${ms(loop.bareP99Ms)} ms`);
    for (const m of multi) {
      lines.push(
        `  64 streams at ${m.rate / 1000}k lines/s: backlog p50 ${ms(m.daemon.p50Ms)} ms, p99 ${ms(m.daemon.p99Ms)} ms (bare reader p50 ${ms(m.bare.p50Ms)}, p99 ${ms(m.bare.p99Ms)}); ` +
          `${m.daemon.predicted}/${m.daemon.written} predicted, ${m.daemon.dropped} dropped` +
          (m.daemon.stages
            ? `; in daemon (line in → written) p50 ${ms(m.daemon.stages.stages.total.p50Ms)}, p99 ${ms(m.daemon.stages.stages.total.p99Ms)}`
            : '') +
          (m.rate === 64000 ? `; goal p50 ≤ 20 ms, nothing lost: ${json.goals.backlogOk ? 'OK' : 'MISSED'}` : ''),
      );
    }
    return { json, lines };
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const { lines } = await run({ quick: process.argv.includes('--quick') });
  for (const l of lines) console.log(l);
  process.exit(0);
}
