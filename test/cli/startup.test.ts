/**
 * What the CLI loads at start. `main.js` imports every command module to register it, so a
 * command module may import only light modules at its top and loads its work in its handler;
 * the daemon's commands (`stream`, `run`, `device`) never reach the exporter or training, even
 * through their lazy imports. Checked on the built files (dist/), statically, and by watching a
 * real process load its modules (scripts/bench/record-modules.mjs). No timing is asserted here:
 * scripts/bench/startup.mjs measures it.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { CLI } from '../helpers/cli.js';
import { chain, importsOf, walk } from '../helpers/import-graph.js';

const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const DIST = join(ROOT, 'dist');
const RECORDER = join(ROOT, 'scripts', 'bench', 'record-modules.mjs');
const COMMANDS = [
  'bench',
  'bundle',
  'demo',
  'deploy',
  'device',
  'export',
  'fleet',
  'inspect',
  'keygen',
  'quantize',
  'run',
  'stream',
  'streamify',
  'train',
  'verify',
];
const HEAVY = /^(onnxruntime-|@tensorflow\/|mqtt|pino|serialport|@serialport\/|prom-client|onnx-proto|protobufjs|yaml|zod)/;

const rel = (f: string) => f.slice(ROOT.length + 1);
const under = (dirs: string[]) => new RegExp(`^dist/(${dirs.join('|')})/`);

describe('static imports of the CLI entry points', () => {
  const g = walk([join(DIST, 'cli', 'main.js'), join(DIST, 'cli', 'bin.js')], { dynamic: false });

  it('reach every command module (the walk sees what main.js registers)', () => {
    for (const c of COMMANDS) expect(g.files.has(join(DIST, 'cli', 'commands', `${c}.js`)), c).toBe(true);
  });

  it('reach nothing of export or train', () => {
    const bad = [...g.files].filter((f) => under(['export', 'train']).test(rel(f)));
    expect(bad.map((f) => chain(g, f, DIST))).toEqual([]);
  });

  it('reach no package but yargs', () => {
    const pkgs = [...g.packages.keys()].filter((p) => !p.startsWith('node:'));
    expect(pkgs.sort()).toEqual(['yargs', 'yargs/helpers']);
  });

  it('bin.js imports nothing before its Node version check', () => {
    const imp = importsOf(join(DIST, 'cli', 'bin.js'));
    expect(imp.static).toEqual([]);
    expect(imp.dynamic.sort()).toEqual(['../version.js', './main.js']);
  });
});

describe('everything the daemon commands may load (static and lazy imports)', () => {
  for (const [cmd, mustReach] of [
    ['stream', ['devices/daemon.js', 'runtime/backend-impl.js', 'devices/config.js']],
    ['run', ['devices/daemon.js', 'runtime/backend-impl.js']],
    ['device', ['fleet/device.js', 'bundle/bundle.js']],
  ] as const) {
    it(`${cmd}: no export, no train, no tfjs`, () => {
      const g = walk([join(DIST, 'cli', 'commands', `${cmd}.js`)], { dynamic: true });
      // The walk follows the lazy imports (else this test would pass on an empty graph).
      for (const m of mustReach) expect(g.files.has(join(DIST, m)), m).toBe(true);
      const bad = [...g.files].filter((f) => under(['export', 'train']).test(rel(f)));
      expect(bad.map((f) => chain(g, f, DIST))).toEqual([]);
      expect([...g.packages.keys()].filter((p) => p.startsWith('@tensorflow/'))).toEqual([]);
      // An import(expression) could load anything: none on these paths.
      expect([...g.files].filter((f) => importsOf(f).computed > 0).map(rel)).toEqual([]);
    });
  }

  it('the same walk does find the exporter behind `export` (it can fail)', () => {
    const g = walk([join(DIST, 'cli', 'commands', 'export.js')], { dynamic: true });
    expect([...g.files].some((f) => rel(f).startsWith('dist/export/'))).toBe(true);
  });
});

describe('modules a real process loads', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'streamcell-startup-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));
  let n = 0;

  /** Runs the CLI with the recorder; returns its result and the modules it loaded, relative to the repo (packages as `node_modules/...`). */
  function loaded(args: string[], env: Record<string, string> = {}) {
    const file = join(tmp, `modules-${n++}.txt`);
    writeFileSync(file, '');
    const r = spawnSync(process.execPath, ['--import', RECORDER, CLI, ...args], {
      encoding: 'utf8',
      env: { ...process.env, ...env, RECORD_MODULES: file },
      timeout: 120_000,
    });
    const modules = [...new Set(readFileSync(file, 'utf8').split('\n').filter(Boolean))].map((u) => {
      const p = fileURLToPath(u);
      const nm = p.lastIndexOf('/node_modules/');
      return nm >= 0 ? p.slice(nm + 1) : p.startsWith(ROOT) ? rel(p) : p;
    });
    return { r, modules };
  }
  const pkgOf = (m: string) => {
    const parts = m.split('/');
    return parts[1]!.startsWith('@') ? `${parts[1]}/${parts[2]}` : parts[1]!;
  };

  it('--version: the version, without yargs, onnxruntime or any command', () => {
    const { r, modules } = loaded(['--version']);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(`${JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version}\n`);
    expect(modules.filter((m) => m.startsWith('node_modules/'))).toEqual([]);
    expect(modules.filter((m) => m.startsWith('dist/')).sort()).toEqual(['dist/cli/bin.js', 'dist/version.js']);
  });

  it('--help: yargs and the command modules, nothing heavy', () => {
    const { r, modules } = loaded(['--help']);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('streamcell stream');
    // The recorder sees these (else the checks below would pass on an empty list).
    expect(modules).toContain('dist/cli/commands/stream.js');
    expect(modules.some((m) => m.startsWith('node_modules/yargs/'))).toBe(true);
    expect(modules.filter((m) => under(['export', 'train']).test(m))).toEqual([]);
    expect([...new Set(modules.filter((m) => m.startsWith('node_modules/')).map(pkgOf))].filter((p) => HEAVY.test(p))).toEqual([]);
  });

  it('stream: the daemon runs to its first predictions without loading export or train', () => {
    const csv = join(tmp, 'imu.csv');
    writeFileSync(
      csv,
      readFileSync(join(ROOT, 'models', 'imu-activity', 'data.csv'), 'utf8')
        .split('\n')
        .slice(0, 41)
        .join('\n') + '\n',
    );
    const out = join(tmp, 'out.jsonl');
    const { r, modules } = loaded(
      ['stream', '--bundle', join(ROOT, 'models', 'imu-activity.bundle'), '--source', `file:${csv}`, '--sink', `jsonl:${out}`, '--log-level', 'warn'],
      { STREAMCELL_STATE_DIR: join(tmp, 'state') },
    );
    expect(r.status, r.stderr).toBe(0);
    expect(readFileSync(out, 'utf8').split('\n').filter(Boolean).length).toBeGreaterThan(0);
    expect(modules.some((m) => m.startsWith('node_modules/onnxruntime-'))).toBe(true);
    expect(modules).toContain('dist/devices/daemon.js');
    expect(modules.filter((m) => under(['export', 'train']).test(m))).toEqual([]);
    expect(modules.filter((m) => m.startsWith('node_modules/@tensorflow/'))).toEqual([]);
    // No --config: the config file's parser and schema stay unloaded.
    expect([...new Set(modules.filter((m) => m.startsWith('node_modules/')).map(pkgOf))].filter((p) => p === 'yaml' || p === 'zod')).toEqual([]);
  });
});
