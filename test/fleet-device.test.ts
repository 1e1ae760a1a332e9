/**
 * Device side of deployment (issue 7, first part): only signed bundles install, activation is a
 * symlink swap followed by a restart and a health check, a failing bundle rolls back by itself,
 * and a tampered bundle changes nothing.
 */
import { execFileSync } from 'node:child_process';
import { cp, lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildBundle } from '../src/bundle/build.js';
import { runCli, runCliAsync } from './helpers/cli.js';
import { resignedCopy } from './helpers/resign.js';

const co2 = fileURLToPath(new URL('../models/co2-lstm', import.meta.url));
let dir: string;
let root: string;
let server: Server;
let health: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'streamcell-device-'));
  root = join(dir, 'root');
  expect(runCli(['keygen', '-o', join(dir, 'keys')]).status).toBe(0);
  for (const v of ['1.0.0', '2.0.0-broken', '1.1.0'])
    await buildBundle({ modelDir: co2, out: join(dir, `b-${v}`), name: 'co2', version: v, signKey: join(dir, 'keys/streamcell.key') });
  // Stands in for the daemon: healthy unless the active bundle is the broken one.
  server = createServer(async (_req, res) => {
    const target = await readlink(join(root, 'current')).catch(() => '');
    res.statusCode = target.includes('broken') ? 503 : 200;
    res.end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  health = `http://127.0.0.1:${(server.address() as { port: number }).port}/healthz`;
}, 60_000);

afterAll(async () => {
  server?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const device = (...args: string[]) =>
  runCliAsync([
    'device',
    ...args,
    '--root',
    root,
    '--restart',
    `echo restarted >> ${join(dir, 'restarts.log')}`,
    '--health',
    health,
    '--deadline',
    '2',
    '--json',
  ]);

describe('streamcell device', () => {
  it('refuses to install anything before a key is pinned', async () => {
    const r = await device('install', join(dir, 'b-1.0.0'));
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/no public key is pinned/);
  });

  it('installs and activates a signed bundle: current points to it, the daemon was restarted, healthy', async () => {
    expect((await device('trust', join(dir, 'keys/streamcell.pub'))).status).toBe(0);
    const r = await device('install', join(dir, 'b-1.0.0'), '--activate');
    expect(r.status, r.stderr).toBe(0);
    expect(r.json).toMatchObject({ installed: 'co2-1.0.0', activated: { active: 'co2-1.0.0' } });
    expect(await readlink(join(root, 'current'))).toBe('bundles/co2-1.0.0');
    expect(await readFile(join(dir, 'restarts.log'), 'utf8')).toMatch(/restarted/);
  });

  it('a bundle that fails its health check rolls back by itself: exit 1, the previous stays active', async () => {
    expect((await device('install', join(dir, 'b-2.0.0-broken'))).status).toBe(0);
    const r = await device('activate', 'co2-2.0.0-broken');
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/failed its health check \(HTTP 503\).*rolled back to co2-1\.0\.0/);
    expect(await readlink(join(root, 'current'))).toBe('bundles/co2-1.0.0');
    const s = await device('status');
    expect(s.json).toMatchObject({ active: 'co2-1.0.0', installed: ['co2-1.0.0', 'co2-2.0.0-broken'] });
  });

  it('a tampered or unsigned bundle is refused and the active version keeps running', async () => {
    const t = join(dir, 'tampered');
    await cp(join(dir, 'b-1.0.0'), t, { recursive: true });
    const m = join(t, 'manifest.json');
    await writeFile(m, (await readFile(m, 'utf8')).replace('"version": "1.0.0"', '"version": "1.0.9"'));
    const r = await device('install', t);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/signature does not match/);
    const u = join(dir, 'unsigned');
    await buildBundle({ modelDir: co2, out: u, name: 'co2', version: '3.0.0' });
    const r2 = await device('install', u);
    expect(r2.status).toBe(2);
    expect(r2.stderr).toMatch(/not signed/);
    expect(await readlink(join(root, 'current'))).toBe('bundles/co2-1.0.0');
    expect(((await device('list')).json as { installed: string[] }).installed).toEqual(['co2-1.0.0', 'co2-2.0.0-broken']);
  });

  it('activating a newer bundle records the previous one; rollback returns to it', async () => {
    expect((await device('install', join(dir, 'b-1.1.0'), '--activate')).status).toBe(0);
    expect((await device('status')).json).toMatchObject({ active: 'co2-1.1.0', previous: 'co2-1.0.0' });
    const r = await device('rollback');
    expect(r.status, r.stderr).toBe(0);
    expect(await readlink(join(root, 'current'))).toBe('bundles/co2-1.0.0');
    expect((await device('status')).json).toMatchObject({ active: 'co2-1.0.0', previous: 'co2-1.1.0' });
  });
});

/** A copy of bundle v1.0.0 with its manifest changed by `edit` and signed again with the trusted key, then `damage`d. */
const resigned = (name: string, edit: (m: any) => void, damage?: (d: string) => Promise<void>) =>
  resignedCopy(join(dir, 'b-1.0.0'), join(dir, name), join(dir, 'keys/streamcell.key'), (m) => void edit(m), damage);

describe('the device store holds real copies of listed regular files only', () => {
  let store: string;
  const dev = (...args: string[]) => runCliAsync(['device', ...args, '--root', store, '--restart', 'true', '--health', health, '--deadline', '2', '--json']);
  /** The store's bundles/ holds real directories of regular files, no link, no temp folder. */
  async function storeIsClean(): Promise<string[]> {
    const names = await readdir(join(store, 'bundles'));
    for (const n of names) {
      expect(n.endsWith('.tmp'), `leftover ${n}`).toBe(false);
      const st = await lstat(join(store, 'bundles', n));
      expect(st.isDirectory() && !st.isSymbolicLink(), `${n} is a real directory`).toBe(true);
      for (const f of await readdir(join(store, 'bundles', n)))
        expect((await lstat(join(store, 'bundles', n, f))).isFile(), `${n}/${f} is a regular file`).toBe(true);
    }
    return names.sort();
  }

  beforeAll(async () => {
    store = join(dir, 'store');
    expect((await dev('trust', join(dir, 'keys/streamcell.pub'))).status).toBe(0);
  });

  it('a symlinked bundle folder is installed as a real copy: the source deleted, it still verifies and activates', async () => {
    const src = await resigned('linked-src', (m) => (m.version = '4.0.0'));
    const link = join(dir, 'linked');
    await symlink(src, link);
    const r = await dev('install', link);
    expect(r.status, r.stderr).toBe(0);
    expect(r.json).toMatchObject({ installed: 'co2-4.0.0', ignored: [] });
    await rm(src, { recursive: true });
    expect(await storeIsClean()).toEqual(['co2-4.0.0']);
    const a = await dev('activate', 'co2-4.0.0');
    expect(a.status, a.stderr).toBe(0);
    expect(
      runCli([
        'run',
        join(store, 'current'),
        '--input',
        fileURLToPath(new URL('../models/co2-weekly-mauna-loa.csv', import.meta.url)),
        '-o',
        join(dir, 'store-run.jsonl'),
        '--public-key',
        join(dir, 'keys/streamcell.pub'),
      ]).status,
    ).toBe(0);
  });

  it('unlisted files and links are neither copied nor trusted, and reported', async () => {
    const b = await resigned(
      'extras',
      (m) => (m.version = '4.1.0'),
      async (d) => {
        await writeFile(join(d, 'evil.sh'), '#!/bin/sh\necho pwned\n', { mode: 0o755 });
        await symlink('/etc', join(d, 'etc-link'));
        await mkdir(join(d, 'sub'));
      },
    );
    const r = await dev('install', b);
    expect(r.status, r.stderr).toBe(0);
    expect((r.json as { ignored: string[] }).ignored).toEqual(['etc-link (a symbolic link)', 'evil.sh', 'sub (a directory)']);
    expect(r.stderr).toMatch(/ignored 3 file\(s\) the manifest does not list \(not copied\): etc-link \(a symbolic link\), evil\.sh, sub/);
    expect((await readdir(join(store, 'bundles/co2-4.1.0'))).sort()).toEqual([
      'float.onnx',
      'int8.onnx',
      'manifest.json',
      'manifest.sig',
      'preprocessing.json',
      'step-int8.onnx',
      'step.onnx',
    ]);
    await storeIsClean();
  });

  it('a listed file that is a symlink (even to the right bytes), a FIFO or a padded file is refused naming it; nothing is left behind', async () => {
    const outside = join(dir, 'outside-step.onnx');
    await cp(join(dir, 'b-1.0.0/step.onnx'), outside);
    const cases: [string, (d: string) => Promise<void>, RegExp, string][] = [
      [
        'symlink',
        async (d) => {
          await rm(join(d, 'step.onnx'));
          await symlink(outside, join(d, 'step.onnx'));
        },
        /is a symbolic link to .*outside-step\.onnx/,
        'step.onnx',
      ],
      [
        'fifo',
        async (d) => {
          await rm(join(d, 'int8.onnx'));
          execFileSync('mkfifo', [join(d, 'int8.onnx')]);
        },
        /is a FIFO/,
        'int8.onnx',
      ],
      [
        'padded',
        async (d) => {
          await writeFile(join(d, 'float.onnx'), Buffer.alloc(64 << 20), { flag: 'a' }); // 64 MiB appended
        },
        /size mismatch: the file has \d+ bytes, the manifest says \d+/,
        'float.onnx',
      ],
    ];
    for (const [name, damage, why, file] of cases) {
      const b = await resigned(`bad-${name}`, (m) => (m.version = `5.0.0-${name}`), damage);
      const t0 = Date.now();
      const r = await dev('install', b);
      expect(r.status, `${name}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toContain(join(b, file));
      expect(r.stderr).toMatch(why);
      expect(Date.now() - t0, `${name} refused promptly`).toBeLessThan(10_000);
      // run/stream refuse the same bundle
      expect(runCli(['run', b, '--input', fileURLToPath(new URL('../models/co2-weekly-mauna-loa.csv', import.meta.url))]).stderr).toMatch(why);
    }
    expect(await storeIsClean()).toEqual(['co2-4.0.0', 'co2-4.1.0']);
  });

  it('a temp folder of an install that was killed is removed by the next install', async () => {
    const orphan = join(store, 'bundles', '.install.999999.tmp'); // above pid_max: no such process
    await mkdir(orphan);
    await writeFile(join(orphan, 'step.onnx'), 'half a copy');
    const r = await dev('install', await resigned('after-kill', (m) => (m.version = '4.2.0')));
    expect(r.status, r.stderr).toBe(0);
    expect(await storeIsClean()).toEqual(['co2-4.0.0', 'co2-4.1.0', 'co2-4.2.0']);
  });

  it('names and versions that cannot name a folder are refused, naming the field', async () => {
    const bad: [string, string][] = [
      ['name', '.hidden'],
      ['name', 'a/b'],
      ['version', '..'],
      ['version', '1.0\u0000x'],
      ['name', 'two words'],
      ['name', 'x'.repeat(101)],
      ['version', '1..2'],
    ];
    for (const [field, value] of bad) {
      const b = await resigned('badname', (m) => (m[field] = value));
      const r = await dev('install', b);
      expect(r.status, `${field}=${JSON.stringify(value)}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toContain(`${join(b, 'manifest.json')}, field '${field}'`);
    }
    expect(await storeIsClean()).toEqual(['co2-4.0.0', 'co2-4.1.0', 'co2-4.2.0']);
  });
});
