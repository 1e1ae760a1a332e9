/**
 * Fleet rollout onto real daemons (issue 12): every sshd test host runs the built
 * `streamcell stream` on its own `current` bundle, restarted by the host's restart command
 * (pidfile, own process group, detached so ssh returns), with its own HTTP port and JSONL file;
 * the canary h1 runs in token mode (STREAMCELL_HTTP_TOKEN_FILE), where /healthz still answers
 * the device's own health gate. A good bundle makes every daemon healthy and predicting; a
 * signed bundle whose step model does not load makes the canary's daemon fail, and the rollback
 * brings the previous bundle back with a daemon predicting on it.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, readFile, readlink, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildBundle } from '../src/bundle/build.js';
import { loadPrivateKey, writeBundle } from '../src/bundle/bundle.js';
import { CLI, runCli, runCliAsync } from './helpers/cli.js';
import { freePort, readJsonl, waitFor } from './helpers/daemon.js';
import { startSshHosts, writeInventory, type SshHost } from './helpers/sshd.js';

const co2 = fileURLToPath(new URL('../models/co2-lstm', import.meta.url));
const TOKEN = 'fleet-test-token-0123456789abcdef';
let dir: string;
let hosts: SshHost[] = [];
let stopHosts: (() => void) | undefined;
let inventory: string;
const port = new Map<string, number>();
const hdir = (h: SshHost) => join(dir, h.name);
const jsonl = (h: SshHost) => join(hdir(h), 'predictions.jsonl');
const pidOf = (h: SshHost) => Number(readFileSync(join(hdir(h), 'daemon.pid'), 'utf8').trim());

/** The restart command each host runs (through DeviceStore, over ssh): stop the daemon of the pidfile, start one on ROOT/current. */
function restartScript(h: SshHost, p: number, token: boolean): string {
  const d = hdir(h);
  return `#!/bin/sh
# Stop the previous daemon: SIGTERM its process group, wait until it is gone (a zombie counts as gone).
alive() { [ -r /proc/$1/stat ] && [ "$(awk '{print $3}' /proc/$1/stat 2>/dev/null)" != Z ]; }
if [ -s ${d}/daemon.pid ]; then
  old=$(cat ${d}/daemon.pid)
  kill -TERM -- -"$old" 2>/dev/null || kill -TERM "$old" 2>/dev/null
  i=0
  while alive "$old" && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
  alive "$old" && kill -KILL -- -"$old" 2>/dev/null
fi
${token ? `export STREAMCELL_HTTP_TOKEN_FILE=${d}/token\n` : ''}export STREAMCELL_STATE_DIR=${d}
echo "start $(readlink ${h.root}/current)" >> ${d}/restarts.log
# Its own session and process group (pgid = pid), no terminal, every stream redirected: ssh returns.
setsid /bin/sh -c 'echo $$ > ${d}/daemon.pid; echo $$ >> ${d}/pids.log; exec ${process.execPath} ${CLI} stream --bundle ${h.root}/current --source "sim:sine?hz=20" --sink http://127.0.0.1:${p} --sink jsonl:${d}/predictions.jsonl --log-level warn' </dev/null >>${d}/daemon.log 2>&1 &
# Wait for the pidfile of this start (a fresh pid in it).
i=0
while [ $i -lt 50 ]; do [ -s ${d}/daemon.pid ] && [ "$(cat ${d}/daemon.pid)" != "\${old:-}" ] && exit 0; sleep 0.1; i=$((i+1)); done
echo "the daemon did not write its pidfile" >&2
exit 1
`;
}

const alive = (pid: number) => {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(' ')[2] !== 'Z';
  } catch {
    return false;
  }
};

/** Every daemon any restart started, by process group: SIGTERM, poll, then SIGKILL. */
async function killDaemons(): Promise<void> {
  const pids = new Set<number>();
  for (const h of hosts) {
    const f = join(hdir(h), 'pids.log');
    if (existsSync(f))
      readFileSync(f, 'utf8')
        .split('\n')
        .filter(Boolean)
        .forEach((p) => pids.add(Number(p)));
  }
  const signal = (sig: NodeJS.Signals) =>
    pids.forEach((p) => {
      try {
        process.kill(-p, sig);
      } catch {
        try {
          process.kill(p, sig);
        } catch {
          /* gone */
        }
      }
    });
  signal('SIGTERM');
  const t0 = Date.now();
  while ([...pids].some(alive) && Date.now() - t0 < 10_000) await new Promise((r) => setTimeout(r, 100));
  signal('SIGKILL');
}

const status = async (url: string, headers: Record<string, string> = {}) => {
  try {
    return (await fetch(url, { headers, signal: AbortSignal.timeout(2000) })).status;
  } catch {
    return 0;
  }
};
const healthz = (h: SshHost) => status(`http://127.0.0.1:${port.get(h.name)}/healthz`);
const count = (h: SshHost) => readJsonl(jsonl(h)).length;
/** The daemon writes predictions: the JSONL grows by `n` lines from now. */
async function grows(h: SshHost, n = 20): Promise<void> {
  const n0 = count(h);
  await waitFor(
    () => count(h),
    (c) => c >= n0 + n,
    30_000,
    `${h.name}'s JSONL to grow by ${n} lines (from ${n0})`,
  );
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'streamcell-fleet-real-'));
  expect(runCli(['keygen', '-o', join(dir, 'keys')]).status).toBe(0);
  const key = join(dir, 'keys/streamcell.key');
  await buildBundle({ modelDir: co2, out: join(dir, 'b-1.0.0'), name: 'co2', version: '1.0.0', signKey: key });
  // Genuinely broken, properly signed: its models are bytes that are no ONNX model, under correct checksums.
  const good = JSON.parse(await readFile(join(dir, 'b-1.0.0/manifest.json'), 'utf8'));
  const garbage = Buffer.from('this is not an ONNX model\n'.repeat(200));
  await writeBundle(
    join(dir, 'b-2.0.0'),
    { name: 'co2', version: '2.0.0', preprocessing: good.preprocessing, models: { float: garbage, step: garbage }, sourceSha256: good.source_sha256 },
    loadPrivateKey(await readFile(key, 'utf8'), key),
  );
  const started = await startSshHosts(dir, ['h1', 'h2', 'h3']);
  ({ hosts } = started);
  stopHosts = started.stop;
  const extra: Record<string, Record<string, unknown>> = {};
  for (const h of hosts) {
    const p = await freePort();
    port.set(h.name, p);
    const token = h.name === 'h1';
    if (token) writeFileSync(join(hdir(h), 'token'), TOKEN + '\n', { mode: 0o600 });
    writeFileSync(join(hdir(h), 'restart.sh'), restartScript(h, p, token), { mode: 0o755 });
    expect(runCli(['device', 'trust', join(dir, 'keys/streamcell.pub'), '--root', h.root]).status).toBe(0);
    extra[h.name] = { streamcell_health: `http://127.0.0.1:${p}/healthz`, streamcell_restart: `/bin/sh ${join(hdir(h), 'restart.sh')}` };
  }
  inventory = join(dir, 'hosts.yml');
  writeInventory(inventory, hosts, started.clientKey, { streamcell_bin: `${process.execPath} ${CLI}`, streamcell_deadline: 15 }, extra);
}, 180_000);

afterAll(async () => {
  await killDaemons();
  stopHosts?.();
  if (dir) await rm(dir, { recursive: true, force: true });
}, 30_000);

describe('deploy onto real daemons', () => {
  it('a good bundle: every host runs a daemon on it, /healthz 200 (token mode on h1 too), predictions flow', async () => {
    const r = await runCliAsync(['deploy', '--bundle', join(dir, 'b-1.0.0'), '--inventory', inventory, '--canary', '1', '--json']);
    expect(r.status, r.stderr + r.stdout.slice(0, 3000)).toBe(0);
    expect((r.json as { hosts: { status: string; active: string }[] }).hosts.map((h) => [h.status, h.active])).toEqual(
      Array(3).fill(['activated', 'co2-1.0.0']),
    );
    for (const h of hosts) {
      expect(await readlink(join(h.root, 'current'))).toBe('bundles/co2-1.0.0');
      expect(alive(pidOf(h)), `${h.name}'s daemon`).toBe(true);
      expect(await healthz(h)).toBe(200);
      await grows(h);
      expect(readJsonl(jsonl(h)).at(-1)).toHaveProperty('outputs');
    }
    // h1 really is in token mode: everything but the local /healthz wants the token.
    const m = `http://127.0.0.1:${port.get('h1')}/metrics`;
    expect(await status(m)).toBe(401);
    expect(await status(m, { authorization: `Bearer ${TOKEN}` })).toBe(200);
    expect(await status(`http://127.0.0.1:${port.get('h2')}/metrics`)).toBe(200);
  }, 240_000);

  it('a signed bundle whose model does not load: the canary daemon fails, the rollback restores v1 and a daemon predicting on it; the others are untouched', async () => {
    const before = new Map(hosts.map((h) => [h.name, pidOf(h)]));
    const r = await runCliAsync(['deploy', '--bundle', join(dir, 'b-2.0.0'), '--inventory', inventory, '--canary', '1', '--json']);
    expect(r.status, r.stderr + r.stdout.slice(0, 3000)).toBe(1);
    const j = r.json as { ok: boolean; hosts: { host: string; status: string; detail: string }[] };
    expect(j.ok).toBe(false);
    expect(j.hosts[0]).toMatchObject({ host: 'h1', status: 'failed' });
    expect(j.hosts[0]!.detail).toMatch(/co2-2\.0\.0 failed its health check .*rolled back to co2-1\.0\.0/);
    expect(j.hosts.slice(1).map((h) => h.status)).toEqual(['skipped', 'skipped']);
    const h1 = hosts[0]!;
    // The broken bundle was tried (installed, verified, started) and v1 was started again after it.
    expect((await readFile(join(hdir(h1), 'restarts.log'), 'utf8')).trim().split('\n')).toEqual([
      'start bundles/co2-1.0.0',
      'start bundles/co2-2.0.0',
      'start bundles/co2-1.0.0',
    ]);
    expect(await readFile(join(hdir(h1), 'daemon.log'), 'utf8')).toMatch(/streamcell: .*not an ONNX model/);
    expect(await readlink(join(h1.root, 'current'))).toBe('bundles/co2-1.0.0');
    const s = runCli(['device', 'status', '--root', h1.root, '--json']);
    expect(s.json).toMatchObject({ active: 'co2-1.0.0', installed: ['co2-1.0.0', 'co2-2.0.0'] });
    // A new daemon, on v1, healthy and predicting again.
    const pid = pidOf(h1);
    expect(pid).not.toBe(before.get('h1'));
    expect(alive(pid)).toBe(true);
    await waitFor(
      () => healthz(h1),
      (c) => c === 200,
      20_000,
      "h1's /healthz after the rollback",
    );
    await grows(h1);
    // h2 and h3: the same daemons as before, still predicting on v1; nothing staged there.
    for (const h of hosts.slice(1)) {
      expect(pidOf(h)).toBe(before.get(h.name));
      expect(alive(pidOf(h))).toBe(true);
      expect(existsSync(join(h.root, 'bundles/co2-2.0.0'))).toBe(false);
      expect(await healthz(h)).toBe(200);
      await grows(h);
    }
  }, 240_000);
});
