/**
 * `streamcell deploy` / `streamcell fleet status`: drives the Ansible playbooks in
 * scripts/fleet/ (Debian's `ansible` package) — canary first, then batches; a failing device
 * rolls itself back and stops the rollout. Results come back through Ansible's JSON callback and
 * are turned into a per-host table and a JSON report.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { InputError } from '../errors.js';
import { copyBundle, verifyBundle } from '../bundle/bundle.js';
import { bundleId } from '../bundle/manifest.js';

const PLAYBOOKS = fileURLToPath(new URL('../../scripts/fleet/', import.meta.url));

export interface HostResult {
  host: string;
  status: 'activated' | 'failed' | 'unreachable' | 'skipped' | 'ok';
  detail: string;
  active?: string | null;
}

export interface DeployReport {
  bundle: string;
  ok: boolean;
  hosts: HostResult[];
  plan: (number | string)[];
  /** Entries of the bundle folder its manifest does not list: not shipped. */
  ignored: string[];
}

function runAnsible(
  playbook: string,
  inventory: string,
  extra: Record<string, unknown>,
  timeoutS: number,
): Promise<{ code: number; json: any; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn('ansible-playbook', ['-i', inventory, PLAYBOOKS + playbook, '-e', JSON.stringify(extra), '-T', String(timeoutS)], {
      env: { ...process.env, ANSIBLE_STDOUT_CALLBACK: 'json', ANSIBLE_HOST_KEY_CHECKING: 'False', ANSIBLE_RETRY_FILES_ENABLED: 'False', ANSIBLE_NOCOLOR: '1' },
    });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    p.on('error', (e) =>
      reject(new InputError(`cannot run ansible-playbook: ${e.message}`, { expected: "Debian's ansible package (apt-get install ansible)" })),
    );
    p.on('close', (code) => {
      let json: any;
      try {
        json = JSON.parse(out.slice(out.indexOf('{')));
      } catch {
        json = undefined;
      }
      resolve({ code: code ?? -1, json, stderr: err || out.slice(0, 2000) });
    });
  });
}

/** Per-host outcome of the task named `task` across every play run. */
function hostResults(json: any, task: string): Map<string, HostResult> {
  const out = new Map<string, HostResult>();
  for (const play of json?.plays ?? []) {
    for (const t of play.tasks ?? []) {
      const name: string = t.task?.name ?? '';
      for (const [host, r] of Object.entries<any>(t.hosts ?? {})) {
        if (r.unreachable)
          out.set(host, {
            host,
            status: 'unreachable',
            detail: String(r.msg ?? 'unreachable')
              .split('\n')[0]!
              .slice(0, 200),
          });
        else if (name.startsWith(task)) {
          let parsed: any;
          try {
            parsed = JSON.parse(r.stdout ?? '');
          } catch {
            parsed = undefined;
          }
          if (r.failed)
            out.set(host, {
              host,
              status: 'failed',
              detail: String(r.stderr || r.msg || '')
                .split('\n')[0]!
                .replace(/^streamcell: /, '')
                .slice(0, 300),
            });
          else out.set(host, { host, status: 'activated', detail: parsed?.activated?.restart ?? 'ok', active: parsed?.activated?.active ?? parsed?.active });
        } else if (r.failed && !out.has(host))
          out.set(host, {
            host,
            status: 'failed',
            detail: String(r.msg ?? '')
              .split('\n')[0]!
              .slice(0, 300),
          });
      }
    }
  }
  return out;
}

export function servingPlan(canary: string | undefined, batch: number | undefined): (number | string)[] {
  const plan: (number | string)[] = [];
  if (canary) {
    if (!/^\d+%?$/.test(canary)) throw new InputError(`canary '${canary}'`, { option: 'canary', expected: 'a host count or a percentage, e.g. 1 or 10%' });
    plan.push(canary.endsWith('%') ? canary : Number(canary));
  }
  plan.push(batch ?? '100%');
  return plan;
}

export async function deploy(opts: {
  bundle: string;
  inventory: string;
  canary?: string;
  batch?: number;
  maxFail?: number;
  timeoutS?: number;
  hosts: string[];
}): Promise<DeployReport> {
  if (!existsSync(opts.inventory)) throw new InputError('inventory not found', { file: opts.inventory, expected: 'an Ansible inventory (YAML or INI)' });
  const plan = servingPlan(opts.canary, opts.batch);
  // Ship a clean copy: the manifest, its signature and the listed regular files, checked as
  // they are copied — no links, no unlisted files (each device verifies again with its key).
  const stage = await mkdtemp(join(tmpdir(), 'streamcell-deploy-'));
  try {
    const copy = await copyBundle(opts.bundle, join(stage, 'bundle'));
    const b = await verifyBundle(join(stage, 'bundle'));
    const id = bundleId(b.manifest);
    const maxFailPct = opts.maxFail && opts.batch ? Math.floor((100 * opts.maxFail) / opts.batch) : 0;
    const r = await runAnsible(
      'deploy.yml',
      opts.inventory,
      { bundle_dir: b.dir, bundle_id: id, serial_plan: plan, max_fail_pct: maxFailPct },
      opts.timeoutS ?? 10,
    );
    if (!r.json)
      throw new InputError(`ansible-playbook gave no result: ${r.stderr.split('\n').slice(0, 3).join(' ')}`, {
        file: opts.inventory,
        expected: 'a working inventory',
      });
    const res = hostResults(r.json, 'install, activate');
    const hosts = opts.hosts.map((h) => res.get(h) ?? { host: h, status: 'skipped' as const, detail: 'not reached: the rollout stopped before this batch' });
    return { bundle: id, ok: hosts.every((h) => h.status === 'activated'), hosts, plan, ignored: copy.ignored };
  } finally {
    await rm(stage, { recursive: true, force: true });
  }
}

export async function fleetStatus(opts: { inventory: string; hosts: string[]; timeoutS?: number }): Promise<HostResult[]> {
  const r = await runAnsible('status.yml', opts.inventory, {}, opts.timeoutS ?? 10);
  const out = new Map<string, HostResult>();
  for (const play of r.json?.plays ?? []) {
    for (const t of play.tasks ?? []) {
      for (const [host, v] of Object.entries<any>(t.hosts ?? {})) {
        if (v.unreachable) out.set(host, { host, status: 'unreachable', detail: String(v.msg ?? '').slice(0, 200) });
        else if (v.failed) out.set(host, { host, status: 'failed', detail: String(v.stderr || v.msg || '').slice(0, 200) });
        else {
          const s = JSON.parse(v.stdout ?? '{}');
          out.set(host, { host, status: 'ok', detail: `installed ${(s.installed ?? []).join(', ')}`, active: s.active ?? null });
        }
      }
    }
  }
  return opts.hosts.map((h) => out.get(h) ?? { host: h, status: 'unreachable', detail: 'no answer' });
}

/** Host names of an inventory, through `ansible-inventory --list`. */
export function inventoryHosts(inventory: string): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const p = spawn('ansible-inventory', ['-i', inventory, '--list'], { env: { ...process.env, ANSIBLE_NOCOLOR: '1' } });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    p.on('error', (e) => reject(new InputError(`cannot run ansible-inventory: ${e.message}`, { expected: "Debian's ansible package" })));
    p.on('close', () => {
      try {
        const j = JSON.parse(out) as { _meta?: { hostvars?: Record<string, unknown> } };
        const hosts = Object.keys(j._meta?.hostvars ?? {}).sort();
        if (!hosts.length) throw new Error('no hosts');
        resolve(hosts);
      } catch {
        reject(
          new InputError(`inventory lists no hosts${err ? `: ${err.split('\n')[0]}` : ''}`, {
            file: inventory,
            expected: 'an Ansible inventory with at least one host',
          }),
        );
      }
    });
  });
}
