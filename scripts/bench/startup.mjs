#!/usr/bin/env node
/**
 * CLI startup: wall time from spawn to exit of `streamcell --version`, `--help` and `inspect`,
 * and from spawn to the first prediction of the daemon (`streamcell stream` on the shipped
 * activity bundle, a CSV file source, JSONL on stdout), with the native probe's verdict cached
 * (every start after the first) and not (a fresh state dir: the first start on a board). Each
 * variant runs N times, interleaved with the others and with the floors — `node -e 0` and
 * `import('onnxruntime-node')` alone — so the ratios compare runs under the same load. Also
 * counts the modules each one loads (scripts/bench/record-modules.mjs).
 *
 *   node --expose-gc scripts/bench/startup.mjs [--quick]
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { VERSION } from '../../dist/version.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const BIN = join(ROOT, 'dist', 'cli', 'bin.js');
const RECORDER = join(ROOT, 'scripts', 'bench', 'record-modules.mjs');
const BUNDLE = join(ROOT, 'models', 'imu-activity.bundle');
/** Goals on the issue's machine (AMD EPYC): `--version` was 0.73 s, daemon start → first prediction ≈ 1.2 s. */
const GOAL_VERSION_S = 0.25;
const GOAL_DAEMON_S = 0.6;
/** The daemon's packages, each loaded as src/ loads it (onnx-proto with require(): src/onnx/proto.ts says why). */
const DAEMON_PACKAGES = ['yargs', 'onnxruntime-node', 'onnx-proto', 'prom-client', 'pino'];
const loadPackages = [
  "import { createRequire } from 'node:module';",
  ...DAEMON_PACKAGES.map((p) => (p === 'onnx-proto' ? `createRequire(process.cwd() + '/')('${p}');` : `await import('${p}');`)),
].join(' ');

/** Runs `node ...args` once: ms to exit, or to the first stdout data with `untilOutput`. */
function once(args, { env = {}, untilOutput = false, expect } = {}) {
  return new Promise((done, fail) => {
    const t0 = performance.now();
    const p = spawn(process.execPath, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let first;
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => {
      first ??= performance.now() - t0;
      if (out.length < 4096) out += d;
    });
    p.stderr.on('data', (d) => (err = (err + d).slice(-2000)));
    p.on('error', fail);
    p.on('close', (code) => {
      if (code !== 0) return fail(new Error(`node ${args.join(' ')} exited ${code}: ${err}`));
      if (expect && !expect(out)) return fail(new Error(`node ${args.join(' ')}: unexpected output ${JSON.stringify(out.slice(0, 200))}`));
      if (untilOutput && first === undefined) return fail(new Error(`node ${args.join(' ')} wrote nothing`));
      done(untilOutput ? first : performance.now() - t0);
    });
  });
}

const p50 = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Modules one run loads: all distinct ones, ours (dist/), ours under export/ or train/, and packages. */
async function moduleCount(args, env, tmp) {
  const file = join(tmp, `modules-${Math.random().toString(36).slice(2)}.txt`);
  writeFileSync(file, '');
  await once(['--import', pathToFileURL(RECORDER).href, ...args], { env: { ...env, RECORD_MODULES: file } });
  const urls = [...new Set(readFileSync(file, 'utf8').split('\n').filter(Boolean))].map((u) => fileURLToPath(u));
  const dist = urls.filter((u) => u.startsWith(join(ROOT, 'dist') + '/')).map((u) => u.slice(ROOT.length + 1));
  const pkgs = new Set(
    urls
      .filter((u) => u.includes('/node_modules/'))
      .map((u) => {
        const p = u.slice(u.lastIndexOf('/node_modules/') + 14).split('/');
        return p[0].startsWith('@') ? `${p[0]}/${p[1]}` : p[0];
      }),
  );
  return {
    modules: urls.length,
    ours: dist.length,
    exportTrain: dist.filter((d) => /^dist\/(export|train)\//.test(d)).length,
    packages: [...pkgs].sort(),
  };
}

export async function run({ quick = false } = {}) {
  const n = quick ? 5 : 15;
  const tmp = mkdtempSync(join(tmpdir(), 'streamcell-startup-'));
  try {
    const csv = join(tmp, 'imu.csv');
    // 64 readings of the shipped activity data: the first prediction comes from the first reading.
    writeFileSync(
      csv,
      readFileSync(join(ROOT, 'models', 'imu-activity', 'data.csv'), 'utf8')
        .split('\n')
        .slice(0, 65)
        .join('\n') + '\n',
    );
    const warmState = join(tmp, 'state-warm');
    const stream = ['stream', '--bundle', BUNDLE, '--source', `file:${csv}`, '--sink', 'jsonl:-', '--log-level', 'warn'];
    // The same daemon as the systemd unit starts it: from a YAML config (zod validates it).
    const config = join(tmp, 'config.yaml');
    writeFileSync(config, `model: ${JSON.stringify(BUNDLE)}\nsources: [${JSON.stringify(`file:${csv}`)}]\nsinks: ["jsonl:-"]\nlog_level: warn\n`);
    let fresh = 0;
    const variants = {
      node: () => once(['-e', '0']),
      ort: () => once(['--input-type=module', '-e', "await import('onnxruntime-node')"]),
      // What the daemon cannot start without: the argument parser, the inference runtime, the ONNX
      // decoder (model metadata), metrics and the logger, each imported and nothing run.
      pkgs: () => once(['--input-type=module', '-e', loadPackages]),
      version: () => once([BIN, '--version'], { expect: (o) => o === `${VERSION}\n` }),
      help: () => once([BIN, '--help'], { expect: (o) => o.includes('streamcell stream') }),
      inspect: () => once([BIN, 'inspect', join(BUNDLE, 'step.onnx')], { expect: (o) => o.includes('state tensors') }),
      daemonWarm: () => once([BIN, ...stream], { env: { STREAMCELL_STATE_DIR: warmState }, untilOutput: true }),
      daemonYaml: () => once([BIN, 'stream', '--config', config], { env: { STREAMCELL_STATE_DIR: warmState }, untilOutput: true }),
      daemonCold: () => once([BIN, ...stream], { env: { STREAMCELL_STATE_DIR: join(tmp, `state-${fresh++}`) }, untilOutput: true }),
    };
    await variants.daemonWarm(); // fills the warm cache (and the disk cache) before timing
    const ms = Object.fromEntries(Object.keys(variants).map((k) => [k, []]));
    for (let i = 0; i < n; i++) for (const [k, f] of Object.entries(variants)) ms[k].push(await f());
    const t = Object.fromEntries(Object.entries(ms).map(([k, xs]) => [k, p50(xs)]));

    const counts = {
      version: await moduleCount([BIN, '--version'], {}, tmp),
      help: await moduleCount([BIN, '--help'], {}, tmp),
      inspect: await moduleCount([BIN, 'inspect', join(BUNDLE, 'step.onnx')], {}, tmp),
      stream: await moduleCount([BIN, ...stream], { STREAMCELL_STATE_DIR: warmState }, tmp),
    };

    const s = (x) => `${(x / 1000).toFixed(3)} s`;
    const r = (a, b) => `${(a / b).toFixed(2)}×`;
    const verdict = (x, goal) => (x / 1000 <= goal ? 'OK' : 'MISSED');
    const c = (k) => `${counts[k].modules} modules (${counts[k].ours} ours, ${counts[k].exportTrain} export/train)`;
    const lines = [
      `CLI startup (p50 of ${n} interleaved runs each; spawn → exit, daemon: spawn → first prediction on stdout)`,
      `  floor: node -e 0                          ${s(t.node)}`,
      `  floor: import('onnxruntime-node') alone   ${s(t.ort)}  (${r(t.ort, t.node)} node -e 0)`,
      `  streamcell --version                      ${s(t.version)}  (${r(t.version, t.node)} node -e 0)  ${c('version')}  goal ≤ ${GOAL_VERSION_S} s: ${verdict(t.version, GOAL_VERSION_S)}`,
      `  streamcell --help                         ${s(t.help)}  (${r(t.help, t.node)} node -e 0)  ${c('help')}`,
      `  streamcell inspect step.onnx              ${s(t.inspect)}  (${r(t.inspect, t.node)} node -e 0)  ${c('inspect')}`,
      `  floor: the daemon's packages alone        ${s(t.pkgs)}  (load ${DAEMON_PACKAGES.join(', ')})`,
      `  stream → first prediction, probe cached   ${s(t.daemonWarm)}  (${r(t.daemonWarm, t.pkgs)} its packages alone)  ${c('stream')}  goal ≤ ${GOAL_DAEMON_S} s: ${verdict(t.daemonWarm, GOAL_DAEMON_S)}`,
      `  stream --config F.yaml, probe cached      ${s(t.daemonYaml)}  (${r(t.daemonYaml, t.daemonWarm)} flags alone: loading yaml and zod, validating)`,
      `  stream → first prediction, first start    ${s(t.daemonCold)}  (${r(t.daemonCold, t.daemonWarm)} cached: the native probe's child process)`,
      `  stream packages: ${counts.stream.packages.join(', ')}`,
    ];
    if (t.version / 1000 > GOAL_VERSION_S && t.node / 1000 > GOAL_VERSION_S / 2)
      lines.push(`  note: node -e 0 alone takes ${s(t.node)} here: --version cannot be much below the floor of Node's own start`);
    if (t.daemonWarm / 1000 > GOAL_DAEMON_S)
      lines.push(
        `  note: starting Node and importing the daemon's packages alone take ${s(t.pkgs)} here, ${((100 * t.pkgs) / t.daemonWarm).toFixed(0)}% of the daemon's start`,
      );
    const json = {
      runs: n,
      p50Ms: t,
      samplesMs: ms,
      ratios: {
        versionVsNode: t.version / t.node,
        helpVsNode: t.help / t.node,
        inspectVsNode: t.inspect / t.node,
        daemonVsOrt: t.daemonWarm / t.ort,
        daemonVsPackages: t.daemonWarm / t.pkgs,
        daemonColdVsWarm: t.daemonCold / t.daemonWarm,
        daemonYamlVsFlags: t.daemonYaml / t.daemonWarm,
      },
      modules: counts,
      goals: {
        versionS: { goal: GOAL_VERSION_S, p50: t.version / 1000, ok: t.version / 1000 <= GOAL_VERSION_S },
        daemonFirstPredictionS: { goal: GOAL_DAEMON_S, p50: t.daemonWarm / 1000, ok: t.daemonWarm / 1000 <= GOAL_DAEMON_S },
      },
    };
    return { json, lines };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { lines } = await run({ quick: process.argv.includes('--quick') });
  console.log(lines.join('\n'));
}
