/**
 * Vitest globalSetup, run once per `vitest run` (npm test, npx vitest run FILE...):
 *
 * 1. Preflight: the system tools the selected test files need (Debian packages). A missing one
 *    is one line naming the package to install, before any test runs, instead of a failure deep
 *    inside a test. `npm run test:all` installs them all (scripts/install-test-deps.sh).
 * 2. Build: `npm run build` once, so the 15 files that run dist/ never test a stale build.
 * 3. Children: a directory for pid files (test/helpers/children.ts); the teardown kills every
 *    child of the run still alive (socat, mosquitto, sshd, daemons left by a timed-out test).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { killTrackedChildren, PIDS_ENV } from './helpers/children.js';

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));

interface Requirement {
  /** What is missing, in the user's words. */
  what: string;
  /** How to get it. */
  install: string;
  /** Test files (paths relative to the repository root) that need it. */
  files: RegExp;
  present: () => boolean;
}

const debianPython = (mod: string) => () => {
  try {
    execFileSync('/usr/bin/python3', ['-c', `import ${mod}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
};
const file = (p: string) => () => existsSync(p);
const onPath = (cmd: string) => () => (process.env.PATH ?? '').split(':').some((d) => d && existsSync(join(d, cmd)));

const ONNX_CHECKED =
  /^test\/(keras-origin|parity-matrix|export-foreign|streamify-torch|quantize|streamify-foreign|streamify-matrix|cli\/export-inspect)\.test\.ts$/;

export const REQUIREMENTS: Requirement[] = [
  { what: 'python3-onnx (/usr/bin/python3 cannot import onnx)', install: 'apt-get install python3-onnx', files: ONNX_CHECKED, present: debianPython('onnx') },
  { what: 'python3-numpy', install: 'apt-get install python3-numpy', files: ONNX_CHECKED, present: debianPython('numpy') },
  { what: 'python3-torch', install: 'apt-get install python3-torch', files: /^test\/streamify-torch\.test\.ts$/, present: debianPython('torch') },
  {
    what: 'qemu-x86_64-static',
    install: 'apt-get install qemu-user-static',
    files: /^test\/(quantize-cpu|arm\/arm)\.test\.ts$/,
    present: onPath('qemu-x86_64-static'),
  },
  {
    what: '/usr/share/libonnx-testdata',
    install: 'apt-get install libonnx-testdata',
    files: /^test\/(cli\/streamify|streamify-foreign)\.test\.ts$/,
    present: file('/usr/share/libonnx-testdata/data/node'),
  },
  {
    what: '/usr/bin/chromium',
    install: 'apt-get install chromium',
    files: /^test\/(quantize-report|devices\/http-sink)\.test\.ts$/,
    present: file('/usr/bin/chromium'),
  },
  {
    what: 'socat',
    install: 'apt-get install socat',
    files: /^test\/(cli\/demo|devices\/bundle-stream|devices\/serial-daemon)\.test\.ts$/,
    present: onPath('socat'),
  },
  {
    what: 'mosquitto',
    install: 'apt-get install mosquitto',
    files: /^test\/(adversarial\/daemon-faults|devices\/mqtt|devices\/mqtt-daemon)\.test\.ts$/,
    present: () =>
      Boolean(process.env.MOSQUITTO_BIN) ||
      ['/usr/sbin/mosquitto', '/usr/local/sbin/mosquitto', '/usr/bin/mosquitto', '/usr/local/bin/mosquitto'].some(existsSync),
  },
  {
    what: 'ansible-playbook',
    install: 'apt-get install ansible',
    files: /^test\/(fleet-deploy|fleet-real-daemon)\.test\.ts$/,
    present: onPath('ansible-playbook'),
  },
  {
    what: '/usr/sbin/sshd',
    install: 'apt-get install openssh-server',
    files: /^test\/(fleet-deploy|fleet-real-daemon)\.test\.ts$/,
    present: file('/usr/sbin/sshd'),
  },
  {
    what: 'ssh, ssh-keygen',
    install: 'apt-get install openssh-client',
    files: /^test\/(fleet-deploy|fleet-real-daemon)\.test\.ts$/,
    present: () => onPath('ssh')() && onPath('ssh-keygen')(),
  },
  {
    what: '.arm/ (Node for arm64/armv7/18 and the ARM sysroots)',
    install: 'bash scripts/arm-sysroot.sh',
    files: /^test\/(quantize-cpu|device-install|arm\/arm)\.test\.ts$/,
    present: () => ['arm64/node/bin/node', 'armv7/node/bin/node', 'node18/bin/node'].every((p) => existsSync(join(ROOT, '.arm', p))),
  },
];

/** Test files vitest will run, as far as the command line tells: undefined means all. */
function selected(filters: string[] | undefined, all: string[]): string[] {
  if (!filters?.length) return all;
  return all.filter((f) => filters.some((p) => f.includes(p.replace(/^\.\//, '')) || resolve(ROOT, f).includes(p)));
}

function testFiles(): string[] {
  const out = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard', 'test'], { cwd: ROOT, encoding: 'utf8' });
  return out.split('\n').filter((f) => f.endsWith('.test.ts'));
}

function preflight(filters: string[] | undefined): void {
  if (process.env.STREAMCELL_SKIP_PREFLIGHT === '1') return;
  let files: string[];
  try {
    files = selected(filters, testFiles());
  } catch {
    files = [];
  }
  const missing = REQUIREMENTS.filter((r) => files.some((f) => r.files.test(f)) && !r.present());
  if (!missing.length) return;
  const lines = missing.map((r) => `missing ${r.what}: ${r.install}`);
  const e = new Error(
    `${missing.length} tool(s) the selected tests need are missing:\n${lines.join('\n')}\n` +
      `'npm run test:all' installs them all (apt, via sudo when not root); STREAMCELL_SKIP_PREFLIGHT=1 runs anyway.`,
  );
  e.stack = e.message; // the lines are the whole story: no stack trace under them
  throw e;
}

function build(): void {
  if (process.env.STREAMCELL_SKIP_BUILD === '1') return;
  const t0 = Date.now();
  try {
    execFileSync('npm', ['run', '--silent', 'build'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
  } catch (e) {
    const x = e as { stdout?: string; stderr?: string };
    throw new Error(`npm run build failed, the tests would run a stale dist/:\n${x.stdout ?? ''}${x.stderr ?? ''}`);
  }
  process.stderr.write(`globalSetup: built dist/ in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
}

let pidDir: string | undefined;

export default function setup(project: { vitest?: { filenamePattern?: string[] } }): () => void {
  preflight(project?.vitest?.filenamePattern);
  build();
  pidDir = mkdtempSync(join(tmpdir(), 'streamcell-test-pids-'));
  // Workers (forks) inherit this process's environment.
  process.env[PIDS_ENV] = pidDir;
  return () => {
    if (!pidDir) return;
    const killed = killTrackedChildren(pidDir);
    if (killed.length) process.stderr.write(`globalTeardown: killed ${killed.length} leftover test child process(es): ${killed.join(', ')}\n`);
    rmSync(pidDir, { recursive: true, force: true });
    delete process.env[PIDS_ENV];
  };
}
