#!/usr/bin/env node
// Device report: install size per platform (the lean device install against the workstation
// install), CLI and daemon start-up time, and per-step latency of the shipped bundle's step model
// on this machine and on emulated ARM boards (qemu user mode: labelled emulated — a real Pi is
// several times faster than its emulation, the numbers only compare backends and builds).
//   npm run bench:device        (needs scripts/arm-sysroot.sh; writes bench-results/device.json)
import { execFileSync, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), 'streamcell-device-report-'));
const STEP = join(ROOT, 'models/imu-activity.bundle/step.onnx');
const CPUINFO = join(tmp, 'cpuinfo');
writeFileSync(
  CPUINFO,
  Array.from(
    { length: 2 },
    (_, i) =>
      `processor\t: ${i}\nFeatures\t: fp asimd evtstrm crc32 cpuid\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: 0xd08\nCPU revision\t: 3\n`,
  ).join('\n') + '\nModel\t\t: Raspberry Pi 4 Model B Rev 1.4\n',
);
const du = (p) => Number(execFileSync('du', ['-sb', p], { encoding: 'utf8' }).split('\t')[0]);
const mb = (b) => `${(b / 2 ** 20).toFixed(0)} MB`;
const result = { date: new Date().toISOString(), host: `${process.platform}-${process.arch} Node ${process.version}`, sizes: {}, startup: {}, stepP50Us: {} };

// 1. Install sizes.
result.sizes.workstation = du(join(ROOT, 'node_modules'));
const apps = {};
for (const cpu of ['x64', 'arm64', 'arm']) {
  const app = join(tmp, `app-${cpu}`);
  mkdirSync(app);
  for (const f of ['package.json', 'package-lock.json', 'dist']) cpSync(join(ROOT, f), join(app, f), { recursive: true });
  execFileSync('bash', [join(ROOT, 'scripts/lean-install.sh'), app, cpu], { stdio: 'ignore' });
  result.sizes[`device-linux-${cpu}`] = du(app);
  apps[cpu] = app;
}

// 2. Start-up: `--version` (the module graph the CLI loads) and daemon start → first prediction.
const median = (xs) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
function timeIt(cmd, args, n = 5) {
  const t = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    execFileSync(cmd, args, { stdio: 'ignore' });
    t.push(performance.now() - t0);
  }
  return median(t);
}
function firstPrediction(cmd, args) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'ignore'] });
    p.stdout.once('data', () => {
      resolve(performance.now() - t0);
      p.kill('SIGTERM');
    });
    p.on('exit', (code) => reject(new Error(`daemon exited ${code} before predicting`)));
  });
}
const csv = join(tmp, 'imu.csv');
writeFileSync(csv, readFileSync(join(ROOT, 'models/imu-activity/data.csv'), 'utf8').split('\n').slice(0, 101).join('\n') + '\n');
const daemonArgs = (app) => [
  join(app, 'dist/cli/bin.js'),
  'stream',
  '--bundle',
  join(ROOT, 'models/imu-activity.bundle'),
  '--source',
  `file:${csv}`,
  '--sink',
  'jsonl:-',
  '--log-level',
  'silent',
];
result.startup.versionMs = timeIt(process.execPath, [join(apps.x64, 'dist/cli/bin.js'), '--version']);
const firsts = [];
for (let i = 0; i < 3; i++) firsts.push(await firstPrediction(process.execPath, daemonArgs(apps.x64)));
result.startup.firstPredictionMs = median(firsts);

// 3. Per-step latency p50 (one stream, batch 1), native and WASM, host and emulated boards.
function bench(prefix, app, backend) {
  const args = [...prefix, join(app, 'dist/cli/bin.js'), 'bench', STEP, '--streams', '1', '--steps', '200', '--backend', backend, '--json'];
  const out = execFileSync(args[0], args.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 600_000 });
  return JSON.parse(out).step.latency.pool.p50Us;
}
const armRun = (arch, extra = []) => [join(ROOT, 'scripts/arm-run.sh'), arch, ...extra, '--'];
result.stepP50Us['host onnxruntime-node'] = bench([process.execPath], apps.x64, 'onnxruntime-node');
result.stepP50Us['host onnxruntime-web'] = bench([process.execPath], apps.x64, 'onnxruntime-web');
if (existsSync(join(ROOT, '.arm/arm64/node/bin/node'))) {
  result.stepP50Us['arm64 Cortex-A72 (emulated) onnxruntime-node'] = bench(
    armRun('arm64', ['--cpu', 'cortex-a72', '--cpuinfo', CPUINFO]),
    apps.arm64,
    'onnxruntime-node',
  );
  result.stepP50Us['arm64 Cortex-A72 (emulated) onnxruntime-web'] = bench(
    armRun('arm64', ['--cpu', 'cortex-a72', '--cpuinfo', CPUINFO]),
    apps.arm64,
    'onnxruntime-web',
  );
  result.startup['arm64 (emulated) versionMs'] = timeIt(join(ROOT, 'scripts/arm-run.sh'), ['arm64', '--', join(apps.arm64, 'dist/cli/bin.js'), '--version'], 3);
}
if (existsSync(join(ROOT, '.arm/armv7/node/bin/node'))) {
  result.stepP50Us['armv7 (emulated) onnxruntime-web'] = bench(armRun('armv7'), apps.arm, 'onnxruntime-web');
  result.startup['armv7 (emulated) versionMs'] = timeIt(join(ROOT, 'scripts/arm-run.sh'), ['armv7', '--', join(apps.arm, 'dist/cli/bin.js'), '--version'], 3);
}
rmSync(tmp, { recursive: true, force: true });

const rows = [
  ...Object.entries(result.sizes).map(([k, v]) => [`install size: ${k}`, mb(v)]),
  ...Object.entries(result.startup).map(([k, v]) => [`start-up: ${k}`, `${v.toFixed(0)} ms`]),
  ...Object.entries(result.stepP50Us).map(([k, v]) => [`step p50, IMU 2×LSTM-64: ${k}`, `${v.toFixed(0)} µs`]),
];
const w = Math.max(...rows.map((r) => r[0].length));
process.stdout.write(`streamcell device report (${result.host}, ${result.date})\n${rows.map(([a, b]) => `${a.padEnd(w)}  ${b}`).join('\n')}\n`);
mkdirSync(join(ROOT, 'bench-results'), { recursive: true });
writeFileSync(join(ROOT, 'bench-results/device.json'), JSON.stringify(result, null, 2) + '\n');
