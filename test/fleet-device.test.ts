/**
 * Device side of deployment (issue 7, first part): only signed bundles install, activation is a
 * symlink swap followed by a restart and a health check, a failing bundle rolls back by itself,
 * and a tampered bundle changes nothing.
 */
import { cp, mkdtemp, readFile, readlink, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildBundle } from '../src/bundle/build.js';
import { runCli, runCliAsync } from './helpers/cli.js';

const co2 = fileURLToPath(new URL('../models/co2-lstm', import.meta.url));
let dir: string;
let root: string;
let server: Server;
let health: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'streamcell-device-'));
  root = join(dir, 'root');
  expect(runCli(['keygen', '-o', join(dir, 'keys')]).status).toBe(0);
  for (const v of ['1.0.0', '2.0.0-broken', '1.1.0']) await buildBundle({ modelDir: co2, out: join(dir, `b-${v}`), name: 'co2', version: v, signKey: join(dir, 'keys/streamcell.key') });
  // Stands in for the daemon: healthy unless the active bundle is the broken one.
  server = createServer(async (_req, res) => {
    const target = await readlink(join(root, 'current')).catch(() => '');
    res.statusCode = target.includes('broken') ? 503 : 200;
    res.end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  health = `http://127.0.0.1:${(server.address() as { port: number }).port}/healthz`;
}, 60_000);

afterAll(() => server?.close());

const device = (...args: string[]) => runCliAsync(['device', ...args, '--root', root, '--restart', `echo restarted >> ${join(dir, 'restarts.log')}`, '--health', health, '--deadline', '2', '--json']);

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
