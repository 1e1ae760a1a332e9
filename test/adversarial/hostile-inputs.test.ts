/**
 * Issue 12: every hostile input a user can hand a command — broken or lying ONNX files,
 * damaged tfjs model.json folders, odd CSVs, absurd sizes in flags — ends in exit 0 or exit 2
 * with a message that names the file (or the flag), never exit 3 (a bug), never a hang, and
 * never a memory blow-up. Each case runs the built CLI in its own process group, capped at
 * 10 s and watched for memory; a summary per command goes to bench-results/adversarial.json.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI } from '../helpers/cli.js';
import { buildCorpus, REPO, type Case } from './corpus.js';

const TIME_LIMIT_MS = 10_000;
const RSS_LIMIT_KB = 500 * 1024;
/** Above this the child is killed at once, so a runaway cannot take the machine down. */
const RSS_KILL_KB = 1024 * 1024;
const POOL = 2;
/** STREAMCELL_CLI runs the corpus against another build (e.g. an older one, for a before/after count). */
const BIN = process.env.STREAMCELL_CLI ?? CLI;

interface Outcome {
  id: string;
  command: string;
  status: number | null;
  signal: string | null;
  killedFor?: 'time' | 'memory';
  wallMs: number;
  peakKb: number;
  stderr: string;
  namesFile: boolean;
  clean: boolean;
  why?: string;
}

let root: string;
let cases: Case[] = [];
const outcomes: Outcome[] = [];
const live = new Set<number>();

function killGroup(pid: number): void {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    /* already gone */
  }
}

/** Peak resident memory (VmHWM) of `pid` and its descendants, in kB, from /proc. */
function treeHwm(pid: number): { hwm: number; rss: number } {
  let hwm = 0;
  let rss = 0;
  const visit = (p: number) => {
    try {
      const s = readFileSync(`/proc/${p}/status`, 'utf8');
      hwm = Math.max(hwm, Number(/VmHWM:\s+(\d+)/.exec(s)?.[1] ?? 0));
      rss += Number(/VmRSS:\s+(\d+)/.exec(s)?.[1] ?? 0);
      for (const t of readFileSync(`/proc/${p}/task/${p}/children`, 'utf8').trim().split(/\s+/).filter(Boolean)) visit(Number(t));
    } catch {
      /* exited */
    }
  };
  visit(pid);
  return { hwm, rss };
}

/** Runs one case under /usr/bin/time (exact peak RSS of the CLI), with a time and memory cap. */
function runCase(c: Case, memFile: string): Promise<Outcome> {
  return new Promise((resolvePromise) => {
    const start = Date.now();
    const p = spawn('/usr/bin/time', ['-f', '%M', '-o', memFile, process.execPath, BIN, ...c.args], {
      cwd: root,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, STREAMCELL_DEBUG: '1', NO_COLOR: '1' },
    });
    const pid = p.pid!;
    live.add(pid);
    let stderr = '';
    let killedFor: Outcome['killedFor'];
    let polledPeak = 0;
    p.stdout.on('data', () => {});
    p.stderr.on('data', (d) => {
      if (stderr.length < 64 * 1024) stderr += d;
    });
    const timer = setTimeout(() => {
      killedFor = 'time';
      killGroup(pid);
    }, TIME_LIMIT_MS);
    const poll = setInterval(() => {
      const m = treeHwm(pid);
      polledPeak = Math.max(polledPeak, m.hwm);
      if (m.rss > RSS_KILL_KB) {
        killedFor = 'memory';
        killGroup(pid);
      }
    }, 50);
    p.on('close', async (code, signal) => {
      clearTimeout(timer);
      clearInterval(poll);
      live.delete(pid);
      killGroup(pid); // anything the CLI left behind in its group
      const wallMs = Date.now() - start;
      let peakKb = polledPeak;
      const timeOut = await readFile(memFile, 'utf8').catch(() => '');
      const measured = Number(/(\d+)\s*$/.exec(timeOut.trim())?.[1]);
      if (Number.isFinite(measured)) peakKb = Math.max(peakKb, measured);
      // /usr/bin/time reports a child killed by a signal as "Command terminated by signal N".
      const sig = /terminated by signal (\d+)/.exec(timeOut)?.[1];
      const status = killedFor || sig ? null : code;
      const named = c.file ? basename(c.file) : (c.args.find((a) => a.startsWith('--') && c.id.includes(a)) ?? '');
      const namesFile = named !== '' && stderr.includes(named === 'model.json' ? basename(join(c.file, '..')) : named);
      let why: string | undefined;
      if (killedFor) why = `killed: over ${killedFor === 'time' ? `${TIME_LIMIT_MS / 1000} s` : `${RSS_KILL_KB / 1024} MB`}`;
      else if (sig) why = `killed by signal ${sig}`;
      else if (!c.expect.includes(status!)) why = `exit ${status}, expected ${c.expect.join(' or ')}`;
      else if (status === 2 && !namesFile) why = `exit 2 without naming ${named}`;
      else if (wallMs > TIME_LIMIT_MS) why = `took ${wallMs} ms`;
      else if (peakKb > RSS_LIMIT_KB) why = `peak RSS ${Math.round(peakKb / 1024)} MB`;
      resolvePromise({
        id: c.id,
        command: c.command,
        status,
        signal: signal ?? (sig ? `signal ${sig}` : null),
        killedFor,
        wallMs,
        peakKb,
        stderr,
        namesFile,
        clean: !why,
        why,
      });
    });
  });
}

beforeAll(async () => {
  if (!existsSync(BIN)) throw new Error(`${BIN} is missing: run 'npm run build'`);
  root = await mkdtemp(join(tmpdir(), 'streamcell-adversarial-'));
  cases = await buildCorpus(root);
  const queue = [...cases];
  let k = 0;
  await Promise.all(
    Array.from({ length: POOL }, async () => {
      for (let c = queue.shift(); c; c = queue.shift()) outcomes.push(await runCase(c, join(root, `time-${k++}.txt`)));
    }),
  );
}, 600_000);

afterAll(async () => {
  for (const pid of live) killGroup(pid);
  if (root) await rm(root, { recursive: true, force: true });
  if (!outcomes.length) return;
  const per: Record<string, { tried: number; clean: number }> = {};
  for (const o of outcomes) {
    const s = (per[o.command.split(' ')[0]!] ??= { tried: 0, clean: 0 });
    s.tried++;
    if (o.clean) s.clean++;
  }
  const summary = {
    tried: outcomes.length,
    clean: outcomes.filter((o) => o.clean).length,
    perCommand: per,
    slowestMs: Math.max(...outcomes.map((o) => o.wallMs)),
    peakRssMb: Math.round(Math.max(...outcomes.map((o) => o.peakKb)) / 1024),
    failures: outcomes
      .filter((o) => !o.clean)
      .map((o) => ({ id: o.id, why: o.why, stderr: o.stderr.split('\n').filter(Boolean).slice(0, 3).join(' | ').slice(0, 400) })),
    cases: outcomes.map((o) => ({
      id: o.id,
      status: o.status,
      wallMs: o.wallMs,
      peakMb: Math.round(o.peakKb / 1024),
      clean: o.clean,
      message: /streamcell: (.*)/.exec(o.stderr)?.[1]?.slice(0, 300),
    })),
  };
  await mkdir(join(REPO, 'bench-results'), { recursive: true });
  await writeFile(join(REPO, 'bench-results', 'adversarial.json'), JSON.stringify(summary, null, 2) + '\n');
  console.log(
    `adversarial corpus: ${summary.clean}/${summary.tried} cases handled cleanly (exit 0, or exit 2 naming the file); ` +
      Object.entries(per)
        .map(([c, s]) => `${c} ${s.clean}/${s.tried}`)
        .join(', ') +
      `; slowest ${summary.slowestMs} ms, peak RSS ${summary.peakRssMb} MB`,
  );
});

describe('hostile inputs end in exit 0 or 2 naming the file, within 10 s and 500 MB', () => {
  it('the corpus is generated and covers every command', () => {
    const commands = new Set(cases.map((c) => c.command.split(' ')[0]));
    for (const c of ['inspect', 'export', 'streamify', 'quantize', 'verify', 'bench', 'run', 'stream', 'train']) expect(commands).toContain(c);
    expect(outcomes.length).toBe(cases.length);
  });

  it('every case is handled cleanly', () => {
    const bad = outcomes
      .filter((o) => !o.clean)
      .map((o) => `${o.id}: ${o.why}\n    ${o.stderr.split('\n').filter(Boolean).slice(0, 2).join('\n    ').slice(0, 300)}`);
    expect(bad, bad.join('\n')).toEqual([]);
  });

  it('the messages say what was expected: the column, the limit, the loader', () => {
    const said = (id: string) => {
      const o = outcomes.find((x) => x.id === id);
      expect(o, id).toBeDefined();
      return o!.stderr;
    };
    expect(said('run missing-column.csv')).toMatch(/lacks column 'az' \(it has: time, ax, ay, activity\)/);
    expect(said('run header-only.csv')).toMatch(/header line but no readings/);
    expect(said('run empty.csv')).toMatch(/the input file is empty/);
    expect(said('run non-numeric.csv')).toMatch(/no predictions: 0 readings accepted, lines dropped: malformed \d+/);
    expect(said('bench unknown-op.onnx')).toMatch(/onnxruntime cannot load \S*unknown-op\.onnx: .*No Op registered for FrobnicateV2/);
    expect(said('run dangling-input.onnx')).toMatch(/onnxruntime cannot load .*no_such_tensor/);
    expect(said('run mj-not-json')).toMatch(/it looks like a JSON file/);
    expect(said('bench --streams 1e8')).toMatch(/--streams.*from 1 to 1000000/);
    expect(said('export mj-huge-time')).toMatch(/fixes its time dimension at 1000000000 steps.*at most 10000 steps.*--no-verify/);
    expect(said('quantize huge-batch-dim.onnx')).toMatch(/over streamcell's limit of 2\^26/);
    expect(said('inspect mj-traversal')).toMatch(/not a file inside the model's folder/);
    expect(said('verify mj-huge-time')).toMatch(/A is \S*mj-huge-time.*B is \S*float\.onnx/);
  });

  it('the valid control inputs in the corpus still succeed (exit 0)', () => {
    // A CRLF or BOM recording is a normal CSV: it must predict, not merely fail cleanly.
    // A fixed time axis of 50 000 or 10⁹ steps streams: the step check runs a bounded prefix on the freed model.
    for (const id of [
      'run crlf.csv',
      'run bom.csv',
      'train crlf.csv',
      'inspect huge-time-dim.onnx',
      'inspect mj-huge-time',
      'streamify long-time-dim.onnx',
      'streamify huge-time-dim.onnx',
      'bench huge-time-dim.onnx',
    ]) {
      const o = outcomes.find((x) => x.id === id);
      expect(o, id).toBeDefined();
      expect(o!.status, `${id}: ${o!.stderr}`).toBe(0);
    }
  });
});
