/**
 * The way onto a device, on this (x86) machine: scripts/install-on-device.sh into a fresh root
 * (--root: no users or services touched), the installed daemon predicting for --duration 5; the
 * CLI refusing Node 18 with one line; the backend choice seen in every place it is reported;
 * a Jetson recognised from a fake root. (ARM boards: test/arm.)
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { detectDevice } from '../src/devices/detect.js';
import { runCli, runCliAsync } from './helpers/cli.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const BUNDLE = join(ROOT, 'models/imu-activity.bundle');
let tmp: string;
let csv: string;

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'streamcell-device-'));
  csv = join(tmp, 'imu.csv');
  writeFileSync(csv, readFileSync(join(ROOT, 'models/imu-activity/data.csv'), 'utf8').split('\n').slice(0, 201).join('\n') + '\n');
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('install-on-device.sh on a fresh x86 root', () => {
  it('installs only what the daemon needs, and the installed daemon predicts', () => {
    const root = join(tmp, 'root');
    const r = spawnSync('bash', [join(ROOT, 'scripts/install-on-device.sh'), '--root', root, '--no-service'], { encoding: 'utf8', timeout: 300_000 });
    expect(r.status, r.stderr + r.stdout).toBe(0);
    const app = join(root, 'opt/streamcell');
    expect(existsSync(join(app, 'node_modules/@tensorflow'))).toBe(false);
    expect(existsSync(join(app, 'node_modules/typescript'))).toBe(false);
    expect(existsSync(join(app, 'node_modules/onnxruntime-node/bin/napi-v6/linux/arm64'))).toBe(false);
    expect(existsSync(join(app, 'node_modules/onnxruntime-node/bin/napi-v6/linux/x64/onnxruntime_binding.node'))).toBe(true);
    expect(existsSync(join(root, 'etc/streamcell/config.yaml'))).toBe(true);
    expect(existsSync(join(root, 'etc/systemd/system/streamcell.service'))).toBe(true);
    const mb = Number(/installed in \S+ \((\d+(?:\.\d+)?)M, linux-x64/.exec(r.stdout)?.[1]);
    expect(mb).toBeLessThanOrEqual(120);
    const out = join(tmp, 'installed.jsonl');
    const d = spawnSync(
      process.execPath,
      [join(app, 'dist/cli/bin.js'), 'stream', '--bundle', BUNDLE, '--source', `file:${csv}?rate=20`, '--sink', `jsonl:${out}`, '--duration', '5'],
      { encoding: 'utf8', timeout: 60_000, env: { ...process.env, XDG_CACHE_HOME: join(tmp, 'cache') } },
    );
    expect(d.status, d.stderr).toBe(0);
    expect(d.stderr).toMatch(/--duration 5 s reached/);
    expect(readFileSync(out, 'utf8').trim().split('\n').length).toBeGreaterThan(50);
    // Training and export parity need tfjs: a clear exit 2 there, not a crash.
    const t = spawnSync(
      process.execPath,
      [
        join(app, 'dist/cli/bin.js'),
        'train',
        '--data',
        join(ROOT, 'models/imu-activity/data.csv'),
        '--label',
        'activity',
        '--inputs',
        'ax,ay,az',
        '--window',
        '8',
        '--arch',
        'lstm:4',
        '-o',
        join(tmp, 't'),
      ],
      { encoding: 'utf8' },
    );
    expect(t.status, t.stderr).toBe(2);
    expect(t.stderr).toMatch(/@tensorflow\/tfjs is not installed/);
  }, 300_000);

  it('a device package made on the workstation installs with nothing to download', () => {
    const pkg = join(tmp, 'dev.tgz');
    const p = spawnSync('bash', [join(ROOT, 'scripts/device-package.sh'), 'x64', '-o', pkg], { encoding: 'utf8', timeout: 300_000, cwd: ROOT });
    expect(p.status, p.stderr).toBe(0);
    const root = join(tmp, 'root2');
    const r = spawnSync('bash', [join(ROOT, 'scripts/install-on-device.sh'), '--root', root, '--no-service', '--package', pkg], {
      encoding: 'utf8',
      timeout: 300_000,
      env: { ...process.env, npm_config_offline: 'true', NPM: 'false' },
    });
    expect(r.status, r.stderr + r.stdout).toBe(0);
    const v = spawnSync(process.execPath, [join(root, 'opt/streamcell/dist/cli/bin.js'), 'run', BUNDLE, '--input', csv, '-o', join(tmp, 'pkg.jsonl')], {
      encoding: 'utf8',
    });
    expect(v.status, v.stderr).toBe(0);
    // The package says which platform it is for: a package for another board is refused before
    // anything is replaced, and the installed app keeps working.
    const wrong = join(tmp, 'arm.tgz');
    spawnSync('bash', [
      '-c',
      `mkdir -p ${tmp}/w/streamcell/dist && echo linux-arm64 > ${tmp}/w/streamcell/.platform && echo broken > ${tmp}/w/streamcell/dist/cli.js && tar -czf ${wrong} -C ${tmp}/w streamcell`,
    ]);
    const bad = spawnSync('bash', [join(ROOT, 'scripts/install-on-device.sh'), '--root', root, '--no-service', '--package', wrong], { encoding: 'utf8' });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/was made for linux-arm64, this device is linux-x64/);
    expect(existsSync(join(root, 'opt/streamcell/dist/cli.js'))).toBe(false);
    const again = spawnSync(process.execPath, [join(root, 'opt/streamcell/dist/cli/bin.js'), 'run', BUNDLE, '--input', csv, '-o', join(tmp, 'pkg2.jsonl')], {
      encoding: 'utf8',
    });
    expect(again.status, again.stderr).toBe(0);
  }, 300_000);
});

describe('Node.js version', () => {
  it('Node 18 (Debian 12, Pi OS Bookworm) gets one line naming what it needs, exit 2', () => {
    const node18 = join(ROOT, '.arm/node18/bin/node');
    expect(existsSync(node18), 'scripts/arm-sysroot.sh node18 fetches it (.ci/run runs it)').toBe(true);
    const r = spawnSync(node18, [join(ROOT, 'dist/cli/bin.js'), 'stream', '--help'], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^streamcell: needs Node\.js 20 or newer; this is v18\.20\.4\./);
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { engines: { node: string } };
    expect(pkg.engines.node).toBe('>=20.0.0');
  });
});

describe('which backend, and why, everywhere', () => {
  it('run and verify say it; --backend and STREAMCELL_BACKEND force it; a bad value is exit 2', () => {
    const env = { XDG_CACHE_HOME: join(tmp, 'cache-b') };
    const auto = runCli(['run', BUNDLE, '--input', csv, '-o', join(tmp, 'a.jsonl')], { env });
    expect(auto.status, auto.stderr).toBe(0);
    expect(auto.stderr).toMatch(/^backend: onnxruntime-node \S+ \(native probe ok(, cached)?\)$/m);
    const forced = runCli(['run', BUNDLE, '--input', csv, '-o', join(tmp, 'b.jsonl'), '--backend', 'onnxruntime-web'], { env });
    expect(forced.stderr).toMatch(/^backend: onnxruntime-web \S+ \(forced\)$/m);
    const byEnv = runCli(['run', BUNDLE, '--input', csv, '-o', join(tmp, 'c.jsonl')], { env: { ...env, STREAMCELL_BACKEND: 'onnxruntime-web' } });
    expect(byEnv.stderr).toMatch(/backend: onnxruntime-web \S+ \(forced\)/);
    const bad = runCli(['run', BUNDLE, '--input', csv, '-o', join(tmp, 'd.jsonl')], { env: { ...env, STREAMCELL_BACKEND: 'gpu' } });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/STREAMCELL_BACKEND is 'gpu' \(expected onnxruntime-node or onnxruntime-web\)/);
    const step = join(BUNDLE, 'step.onnx');
    const v = runCli(['verify', step, join(BUNDLE, 'step-int8.onnx'), '--backend', 'onnxruntime-web', '--json']);
    expect(v.status, v.stderr).toBe(0);
    expect((v.json as { backend: { name: string; how: string } }).backend).toMatchObject({ name: 'onnxruntime-web', how: 'forced' });
  }, 120_000);

  it('the daemon reports it on /healthz and as streamcell_backend_info on /metrics', async () => {
    const port = 18000 + Math.floor(Math.random() * 900);
    const run = runCliAsync([
      'stream',
      '--bundle',
      BUNDLE,
      '--source',
      'sim:imu?hz=50',
      '--sink',
      `http://127.0.0.1:${port}`,
      '--sink',
      'jsonl:/dev/null',
      '--duration',
      '6',
      '--backend',
      'onnxruntime-web',
    ]);
    let health: { backend?: { name: string; how: string } } | undefined;
    let metrics = '';
    for (let i = 0; i < 100 && !metrics.includes('streamcell_backend_info'); i++) {
      await new Promise((r) => setTimeout(r, 100));
      try {
        health = (await (await fetch(`http://127.0.0.1:${port}/healthz`)).json()) as typeof health;
        metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      } catch {
        /* not listening yet */
      }
    }
    expect(health?.backend).toMatchObject({ name: 'onnxruntime-web', how: 'forced' });
    expect(metrics).toMatch(/streamcell_backend_info\{backend="onnxruntime-web",version="[\d.]+",how="forced",native_probe="not-run"\} 1/);
    expect((await run).status).toBe(0);
  }, 60_000);

  it('an execution provider this onnxruntime lacks is refused with what it has (exit 2)', () => {
    const r = runCli(['stream', '--bundle', BUNDLE, '--source', `file:${csv}`, '--sink', 'jsonl:/dev/null', '--execution-provider', 'rocm', '--duration', '5']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/has no execution provider 'rocm' \(expected one of: cpu/);
  });
});

describe('Jetson', () => {
  it('is recognised from /etc/nv_tegra_release and runs onnxruntime-node (CPU provider)', () => {
    const root = join(tmp, 'jetson/');
    mkdirSync(join(root, 'etc'), { recursive: true });
    mkdirSync(join(root, 'proc/device-tree'), { recursive: true });
    writeFileSync(
      join(root, 'etc/nv_tegra_release'),
      '# R35 (release), REVISION: 4.1, GCID: 33958178, BOARD: t186ref, EABI: aarch64, DATE: Tue Aug  1 19:57:35 UTC 2023\n',
    );
    writeFileSync(join(root, 'proc/device-tree/model'), 'NVIDIA Jetson Orin Nano Developer Kit\0');
    const d = detectDevice(root);
    expect(d.kind).toBe('jetson');
    expect(d.model).toBe('NVIDIA Jetson Orin Nano Developer Kit');
    expect(d.backend).toBe('onnxruntime-node');
  });
});
