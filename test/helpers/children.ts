/**
 * Every child process the tests start (socat, mosquitto, sshd, `streamcell stream` daemons,
 * CLI runs) is tracked twice:
 * - in this worker: `killOwnChildren()` runs in an afterAll of every test file (test/setup.ts),
 *   whatever happened in the file;
 * - in a pid file under the run's directory ($STREAMCELL_TEST_PIDS, made by test/global-setup.ts):
 *   the global teardown kills whatever is still alive when the run ends (a worker killed on a
 *   timeout never runs its afterAll).
 * A pid file holds the child's command line as /proc showed it at the start, so a pid the system
 * has since given to another process is never killed.
 */
import type { ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const PIDS_ENV = 'STREAMCELL_TEST_PIDS';

const own = new Set<ChildProcess>();

function cmdline(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return undefined;
  }
}

/** Tracks a child until it exits; returns it. */
export function track<T extends ChildProcess>(proc: T): T {
  const pid = proc.pid;
  if (pid === undefined || proc.exitCode !== null) return proc;
  own.add(proc);
  const dir = process.env[PIDS_ENV];
  const file = dir ? join(dir, String(pid)) : undefined;
  if (file) {
    try {
      writeFileSync(file, cmdline(pid) ?? '');
    } catch {
      /* the run's directory is gone: only in-worker tracking */
    }
  }
  proc.once('exit', () => {
    own.delete(proc);
    if (file) rmSync(file, { force: true });
  });
  return proc;
}

/** SIGKILLs this worker's children still running; resolves when they have exited. */
export async function killOwnChildren(): Promise<number> {
  const alive = [...own].filter((p) => p.exitCode === null && p.signalCode === null);
  await Promise.all(
    alive.map(
      (p) =>
        new Promise<void>((r) => {
          const t = setTimeout(r, 5_000);
          p.once('exit', () => {
            clearTimeout(t);
            r();
          });
          p.kill('SIGKILL');
        }),
    ),
  );
  own.clear();
  return alive.length;
}

/** For the global teardown: kills the run's children still alive; returns their pids. */
export function killTrackedChildren(dir: string): number[] {
  const killed: number[] = [];
  let names: string[] = [];
  try {
    names = readdirSync(dir);
  } catch {
    return killed;
  }
  for (const name of names) {
    const pid = Number(name);
    if (!Number.isInteger(pid) || pid <= 1) continue;
    const recorded = readFileSync(join(dir, name), 'utf8');
    const now = cmdline(pid);
    if (now === undefined || (recorded && now !== recorded)) continue;
    try {
      process.kill(pid, 'SIGKILL');
      killed.push(pid);
    } catch {
      /* exited meanwhile */
    }
  }
  return killed;
}
