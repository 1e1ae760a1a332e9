/**
 * Fleet rollout through Ansible over real sshd test hosts on loopback ports, each with its own
 * install root (issue 7, acceptance 1, 2 and 4).
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readlink } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildBundle } from '../src/bundle/build.js';
import { CLI, runCli, runCliAsync } from './helpers/cli.js';
import { startSshHosts, writeInventory, type SshHost } from './helpers/sshd.js';

const co2 = fileURLToPath(new URL('../models/co2-lstm', import.meta.url));
let dir: string;
let hosts: SshHost[];
let stopHosts: () => void;
let clientKey: string;
let server: Server;
let healthBase: string;
let inventory: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'streamcell-fleet-'));
  expect(runCli(['keygen', '-o', join(dir, 'keys')]).status).toBe(0);
  for (const v of ['1.0.0', '2.0.0-broken'])
    await buildBundle({ modelDir: co2, out: join(dir, `b-${v}`), name: 'co2', version: v, signKey: join(dir, 'keys/streamcell.key') });
  ({ hosts, clientKey, stop: stopHosts } = await startSshHosts(dir, ['h1', 'h2', 'h3']));
  // Pin the key on every device, as install-on-device would.
  for (const h of hosts) expect(runCli(['device', 'trust', join(dir, 'keys/streamcell.pub'), '--root', h.root]).status).toBe(0);
  // Stands in for each device's daemon: unhealthy while the broken bundle is active there.
  server = createServer(async (req, res) => {
    const h = hosts.find((x) => req.url === `/${x.name}`);
    const target = h ? await readlink(join(h.root, 'current')).catch(() => '') : '';
    res.statusCode = !h ? 404 : target.includes('broken') ? 503 : 200;
    res.end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  healthBase = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  inventory = join(dir, 'hosts.yml');
  writeInventory(
    inventory,
    hosts,
    clientKey,
    { streamcell_bin: `${process.execPath} ${CLI}`, streamcell_restart: 'true', streamcell_deadline: 3 },
    Object.fromEntries(hosts.map((h) => [h.name, { streamcell_health: `${healthBase}/${h.name}` }])),
  );
}, 120_000);

afterAll(() => {
  stopHosts?.();
  server?.close();
});

const current = (h: SshHost) => readlink(join(h.root, 'current')).catch(() => null);

describe('streamcell deploy over sshd hosts', () => {
  it('a signed bundle reaches every host through the playbook; all activated; fleet status reports the version', async () => {
    const r = await runCliAsync([
      'deploy',
      '--bundle',
      join(dir, 'b-1.0.0'),
      '--inventory',
      inventory,
      '--canary',
      '1',
      '--json',
      '--report',
      join(dir, 'r1.json'),
    ]);
    expect(r.status, r.stderr + r.stdout.slice(0, 2000)).toBe(0);
    const j = r.json as { ok: boolean; hosts: { host: string; status: string; active: string }[] };
    expect(j.ok).toBe(true);
    expect(j.hosts.map((h) => [h.host, h.status, h.active])).toEqual([
      ['h1', 'activated', 'co2-1.0.0'],
      ['h2', 'activated', 'co2-1.0.0'],
      ['h3', 'activated', 'co2-1.0.0'],
    ]);
    for (const h of hosts) expect(await current(h)).toBe('bundles/co2-1.0.0');
    const s = await runCliAsync(['fleet', 'status', '--inventory', inventory, '--json']);
    expect(s.status, s.stderr).toBe(0);
    expect((s.json as { hosts: { active: string }[] }).hosts.map((h) => h.active)).toEqual(['co2-1.0.0', 'co2-1.0.0', 'co2-1.0.0']);
  }, 120_000);

  it('a bundle whose daemon fails its health check: the canary rolls back by itself, the others are never touched, exit 1 with the reason', async () => {
    const r = await runCliAsync(['deploy', '--bundle', join(dir, 'b-2.0.0-broken'), '--inventory', inventory, '--canary', '1', '--json']);
    expect(r.status).toBe(1);
    const j = r.json as { ok: boolean; hosts: { host: string; status: string; detail: string }[] };
    expect(j.ok).toBe(false);
    expect(j.hosts[0]).toMatchObject({ host: 'h1', status: 'failed' });
    expect(j.hosts[0]!.detail).toMatch(/failed its health check \(HTTP 503\).*rolled back to co2-1\.0\.0/);
    expect(j.hosts.slice(1).map((h) => h.status)).toEqual(['skipped', 'skipped']);
    for (const h of hosts) expect(await current(h)).toBe('bundles/co2-1.0.0');
    // never touched: nothing was even staged on h2 and h3
    for (const h of hosts.slice(1)) expect(existsSync(join(h.root, 'bundles', 'co2-2.0.0-broken'))).toBe(false);
  }, 120_000);

  it('a host unreachable mid-rollout is reported as failed within the timeout and counts against --max-fail', async () => {
    const h3proc = hosts[2]!.proc;
    const gone = new Promise<void>((r) => (h3proc.exitCode !== null || h3proc.signalCode !== null ? r() : h3proc.once('exit', () => r())));
    h3proc.kill('SIGTERM');
    await gone; // sshd -D has exited: its port refuses connections from now on
    const t0 = Date.now();
    // No ssh connection sharing here: a persisted control connection would outlive the killed sshd.
    const r = await runCliAsync(['deploy', '--bundle', join(dir, 'b-1.0.0'), '--inventory', inventory, '--timeout', '3', '--json'], {
      env: { ANSIBLE_SSH_ARGS: '-o ControlMaster=no' },
    });
    const seconds = (Date.now() - t0) / 1000;
    expect(r.status).toBe(1);
    const j = r.json as { ok: boolean; hosts: { host: string; status: string; detail: string }[] };
    const h3 = j.hosts.find((h) => h.host === 'h3')!;
    expect(['failed', 'unreachable'], JSON.stringify(h3)).toContain(h3.status);
    expect(h3.detail).toMatch(/ssh|connect|refused|unreachable|timed out/i);
    expect(j.ok).toBe(false); // --max-fail 0: the failure counts and fails the rollout
    // h1 and h2 already run this very bundle: a re-run is a no-op there, not a failure.
    expect(j.hosts.filter((h) => h.host !== 'h3').map((h) => h.status)).toEqual(['activated', 'activated']);
    expect(seconds).toBeLessThan(60);
  }, 120_000);
});
