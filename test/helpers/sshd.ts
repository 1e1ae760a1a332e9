/**
 * Real sshd test hosts on loopback ports, each with its own host key and config, all accepting
 * one client key for the user running the tests (root in CI; an unprivileged sshd serves its own
 * user). Each test host gets its own install root for streamcell.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { track } from './children.js';
import { freePort } from './daemon.js';

export interface SshHost {
  name: string;
  port: number;
  root: string;
  proc: ChildProcess;
}

async function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ port, host: '127.0.0.1' });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

export async function startSshHosts(dir: string, names: string[]): Promise<{ hosts: SshHost[]; clientKey: string; stop: () => void }> {
  mkdirSync('/run/sshd', { recursive: true }); // sshd's privilege-separation directory
  const clientKey = join(dir, 'client_ed25519');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', clientKey]);
  const authorized = join(dir, 'authorized_keys');
  writeFileSync(authorized, readFileSync(`${clientKey}.pub`), { mode: 0o600 });
  const hosts: SshHost[] = [];
  for (const name of names) {
    const hd = join(dir, name);
    mkdirSync(hd, { recursive: true });
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(hd, 'host_key')]);
    const port = await freePort();
    const cfg = join(hd, 'sshd_config');
    writeFileSync(
      cfg,
      [
        `Port ${port}`,
        'ListenAddress 127.0.0.1',
        `HostKey ${join(hd, 'host_key')}`,
        `PidFile ${join(hd, 'sshd.pid')}`,
        `AuthorizedKeysFile ${authorized}`,
        'PermitRootLogin prohibit-password',
        'PasswordAuthentication no',
        'KbdInteractiveAuthentication no',
        'UsePAM no',
        'StrictModes no',
        'Subsystem sftp internal-sftp',
        'LogLevel ERROR',
      ].join('\n') + '\n',
    );
    const proc = track(spawn('/usr/sbin/sshd', ['-D', '-e', '-f', cfg], { stdio: 'ignore' }));
    const t0 = Date.now();
    while (!(await listening(port))) {
      if (Date.now() - t0 > 5000) throw new Error(`sshd for ${name} did not listen on ${port}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    hosts.push({ name, port, root: join(hd, 'root'), proc });
  }
  return { hosts, clientKey, stop: () => hosts.forEach((h) => h.proc.kill('SIGTERM')) };
}

/** An Ansible YAML inventory for the hosts; `extra` adds per-host variables. */
export function writeInventory(
  file: string,
  hosts: { name: string; port: number; root: string }[],
  clientKey: string,
  vars: Record<string, unknown>,
  extra: Record<string, Record<string, unknown>> = {},
): void {
  const lines = [
    'all:',
    '  vars:',
    `    ansible_user: ${userInfo().username}`,
    `    ansible_host: 127.0.0.1`,
    `    ansible_ssh_private_key_file: ${clientKey}`,
    `    ansible_python_interpreter: /usr/bin/python3`,
    `    ansible_ssh_common_args: "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null"`,
    // An unprivileged sshd (tests run by a user other than root) cannot hand a pseudo-terminal
    // to the session (chown of /dev/pts fails): Ansible must not ask for one then.
    ...(process.getuid?.() === 0 ? [] : [`    ansible_ssh_use_tty: false`]),
  ];
  for (const [k, v] of Object.entries(vars)) lines.push(`    ${k}: ${JSON.stringify(v)}`);
  lines.push('  hosts:');
  for (const h of hosts) {
    lines.push(`    ${h.name}:`, `      ansible_port: ${h.port}`, `      streamcell_root: ${h.root}`);
    for (const [k, v] of Object.entries(extra[h.name] ?? {})) lines.push(`      ${k}: ${JSON.stringify(v)}`);
  }
  writeFileSync(file, lines.join('\n') + '\n');
}
