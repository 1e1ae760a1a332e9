/**
 * The daemon with a real pseudo-terminal from socat as its serial port (acceptance 1, 2, 3, 5):
 * 10,000 lines → 10,000 predictions equal to offline `streamcell run`; unplug and replug;
 * garbage counted by reason; SIGTERM + restart restores the state from the checkpoint.
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { exportToOnnx } from '../../src/export/exporter.js';
import { streamifyModel } from '../../src/export/streamify/index.js';
import { loadTfjsArtifacts } from '../../src/export/tfjs-format/load.js';
import { runCli } from '../helpers/cli.js';
import { freePort, metric, readJsonl, startDaemon, waitFor } from '../helpers/daemon.js';
import { PtyPair } from '../helpers/pty.js';

let dir: string;
let model: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'streamcell-serial-'));
  const { model: seq } = await exportToOnnx(await loadTfjsArtifacts(fileURLToPath(new URL('../../models/co2-lstm/model.json', import.meta.url))));
  model = join(dir, 'co2.step.onnx');
  await writeFile(model, (await streamifyModel(seq)).model);
});

function sensorLines(n: number, offset = 0): string[] {
  return Array.from({ length: n }, (_, i) => (340 + 10 * Math.sin((i + offset) / 26) + 0.3 * Math.cos((i + offset) * 1.7)).toFixed(3));
}

/** Writes lines into the pty at about `perSecond`, honouring backpressure. */
async function feed(ws: WriteStream, lines: string[], perSecond = 4000): Promise<void> {
  const chunk = Math.max(1, Math.floor(perSecond / 50));
  for (let i = 0; i < lines.length; i += chunk) {
    const ok = ws.write(
      lines
        .slice(i, i + chunk)
        .map((l) => l + '\n')
        .join(''),
    );
    if (!ok) await new Promise<void>((r) => ws.once('drain', () => r()));
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function offline(lines: string[], name: string): Promise<Record<string, any>[]> {
  const csv = join(dir, `${name}.csv`);
  await writeFile(csv, 'co2\n' + lines.join('\n') + '\n');
  const out = join(dir, `${name}.offline.jsonl`);
  const r = runCli(['run', model, '--input', csv, '-o', out]);
  expect(r.status, r.stderr).toBe(0);
  return readJsonl(out);
}

describe('sensor-stream daemon over a real pty (socat)', () => {
  it('10,000 CSV lines → 10,000 predictions in order, equal to offline streamcell run (≤ 1e-5)', async () => {
    const pty = new PtyPair(dir, 'a');
    await pty.start();
    const out = join(dir, 'a.jsonl');
    const d = startDaemon(['--model', model, '--source', `serial:${pty.dev}?baud=115200&format=csv`, '--sink', `jsonl:${out}`, '--log-level', 'warn']);
    try {
      await pty.openedBy(d.proc.pid!); // the daemon holds the port open
      const lines = sensorLines(10000);
      const ws = createWriteStream(pty.feed);
      ws.write('co2\n');
      await feed(ws, lines);
      const got = await waitFor(
        () => readJsonl(out),
        (r) => r.length >= 10000,
        60000,
        '10,000 predictions',
      );
      ws.end();
      expect(got.length).toBe(10000);
      expect(got.map((r) => r.seq)).toEqual(Array.from({ length: 10000 }, (_, i) => i));
      const want = await offline(lines, 'a');
      expect(want.length).toBe(10000);
      let err = 0;
      for (let i = 0; i < 10000; i++) {
        expect(got[i]!.input[0]).toBe(want[i]!.input[0]);
        err = Math.max(err, Math.abs(got[i]!.outputs.delta[0] - want[i]!.outputs.delta[0]), Math.abs(got[i]!.forecast - want[i]!.forecast));
      }
      expect(err).toBeLessThanOrEqual(1e-5);
    } finally {
      d.proc.kill('SIGTERM');
      await d.exited;
      await pty.kill();
    }
  });

  it('unplug: the pty disappears mid-stream and comes back 2 s later; the daemon reconnects by itself, counts it, continues', async () => {
    const pty = new PtyPair(dir, 'b');
    await pty.start();
    const out = join(dir, 'b.jsonl');
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const d = startDaemon(['--model', model, '--source', `serial:${pty.dev}?format=csv`, '--sink', `jsonl:${out}`, '--sink', url, '--log-level', 'warn']);
    try {
      await waitFor(
        () =>
          fetch(`${url}/healthz`)
            .then((r) => r.status)
            .catch(() => 0),
        (s) => s === 200,
        10000,
        'healthz',
      );
      let ws = createWriteStream(pty.feed);
      ws.write('co2\n');
      await feed(ws, sensorLines(1000));
      await waitFor(
        () => readJsonl(out).length,
        (n) => n >= 1000,
        20000,
        'first 1000 predictions',
      );
      ws.destroy();
      await pty.kill();
      await waitFor(
        () => fetch(`${url}/healthz`).then((r) => r.status),
        (s) => s === 503,
        5000,
        'healthz to report the lost source',
      );
      await new Promise((r) => setTimeout(r, 2000));
      await pty.start();
      await waitFor(
        () => metric(url, 'streamcell_reconnects_total'),
        (n) => n >= 1,
        10000,
        'a counted reconnect',
      );
      ws = createWriteStream(pty.feed);
      await feed(ws, sensorLines(1000, 1000));
      const got = await waitFor(
        () => readJsonl(out).length,
        (n) => n >= 2000,
        20000,
        '2000 predictions after the replug',
      );
      ws.destroy();
      expect(got).toBe(2000);
      expect(d.proc.exitCode).toBeNull(); // no crash
      expect((await fetch(`${url}/healthz`)).status).toBe(200);
      expect(await metric(url, 'streamcell_reconnects_total')).toBe(1);
    } finally {
      d.proc.kill('SIGTERM');
      await d.exited;
      await pty.kill();
    }
  }, 120_000); // its waits add up to 67 s when the machine is loaded: let a wait, not the test, report a timeout

  it('garbage (random bytes, overlong, partial lines, NaN, wrong column counts) is counted by reason; every valid line is predicted', async () => {
    const pty = new PtyPair(dir, 'c');
    await pty.start();
    const out = join(dir, 'c.jsonl');
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const d = startDaemon([
      '--model',
      model,
      '--source',
      `serial:${pty.dev}?format=csv&maxLength=256`,
      '--sink',
      `jsonl:${out}`,
      '--sink',
      url,
      '--log-level',
      'warn',
    ]);
    try {
      await waitFor(
        () =>
          fetch(`${url}/healthz`)
            .then((r) => r.status)
            .catch(() => 0),
        (s) => s === 200,
        10000,
        'healthz',
      );
      const ws = createWriteStream(pty.feed);
      ws.write('co2\n');
      const valid = sensorLines(600);
      const expected = { malformed: 0, 'column-count': 0, 'non-finite': 0, overlong: 0 };
      let seed = 3;
      const rand = () => (seed = (seed * 1664525 + 1013904223) >>> 0) / 4294967296;
      const parts: (string | Buffer)[] = [];
      valid.forEach((v, i) => {
        parts.push(v + '\n');
        if (i % 10 === 3) {
          parts.push(Buffer.concat([Buffer.from(Array.from({ length: 12 }, () => 0x80 + Math.floor(rand() * 0x7f))), Buffer.from('\n')]));
          expected.malformed++;
        }
        if (i % 10 === 5) {
          parts.push('1.0,2.0,3.0\n');
          expected['column-count']++;
        }
        if (i % 10 === 7) {
          parts.push('NaN\n');
          expected['non-finite']++;
        }
        if (i % 50 === 9) {
          parts.push('9'.repeat(1000) + '\n');
          expected.overlong++;
        }
        if (i % 50 === 11) {
          parts.push('34'); // partial line: the next valid line is glued to it and is no longer a number
          parts.push('x\n');
          expected.malformed++;
        }
      });
      for (let i = 0; i < parts.length; i += 40) {
        ws.write(Buffer.concat(parts.slice(i, i + 40).map((p) => (typeof p === 'string' ? Buffer.from(p) : p))));
        await new Promise((r) => setTimeout(r, 10));
      }
      const got = await waitFor(
        () => readJsonl(out).length,
        (n) => n >= valid.length,
        20000,
        'all valid lines predicted',
      );
      // The drops are counted as the garbage is read: wait until the counts reach what was sent.
      const total = Object.values(expected).reduce((a, b) => a + b, 0);
      await waitFor(
        () => metric(url, 'streamcell_dropped_total'),
        (n) => n >= total,
        20000,
        'every drop counted',
      );
      ws.destroy();
      expect(got).toBe(valid.length);
      for (const [reason, n] of Object.entries(expected)) expect(await metric(url, 'streamcell_dropped_total', { reason }), reason).toBe(n);
      expect(await metric(url, 'streamcell_predictions_out_total')).toBe(valid.length);
    } finally {
      d.proc.kill('SIGTERM');
      await d.exited;
      await pty.kill();
    }
  });

  it('SIGTERM then restart: the state comes back from the checkpoint; the next predictions equal an uninterrupted run', async () => {
    const lines = sensorLines(1000, 77);
    const want = await offline(lines, 'd');
    const cp = join(dir, 'd.checkpoint');
    const runPart = async (part: string[], name: string, header: boolean) => {
      const pty = new PtyPair(dir, name);
      await pty.start();
      const out = join(dir, `${name}.jsonl`);
      const d = startDaemon([
        '--model',
        model,
        '--source',
        `serial:${pty.dev}?format=csv&header=${header}&columns=0`,
        '--sink',
        `jsonl:${out}`,
        '--checkpoint',
        cp,
        '--checkpoint-every',
        '3600',
        '--log-level',
        'warn',
      ]);
      // socat and the daemon go whatever happens (a failed wait used to leave both running).
      let ws: ReturnType<typeof createWriteStream> | undefined;
      try {
        await pty.openedBy(d.proc.pid!);
        ws = createWriteStream(pty.feed);
        await feed(ws, part);
        const got = await waitFor(
          () => readJsonl(out),
          (r) => r.length >= part.length,
          20000,
          `${part.length} predictions`,
        );
        d.proc.kill('SIGTERM');
        expect(await d.exited).toBe(0);
        return got;
      } finally {
        ws?.destroy();
        if (d.proc.exitCode === null) d.proc.kill('SIGKILL');
        await pty.kill();
      }
    };
    const first = await runPart(lines.slice(0, 500), 'd1', false);
    const second = await runPart(lines.slice(500), 'd2', false);
    expect(first.map((r) => r.seq)).toEqual(Array.from({ length: 500 }, (_, i) => i));
    expect(second.map((r) => r.seq)).toEqual(Array.from({ length: 500 }, (_, i) => 500 + i));
    let err = 0;
    [...first, ...second].forEach((r, i) => (err = Math.max(err, Math.abs(r.outputs.delta[0] - want[i]!.outputs.delta[0]))));
    expect(err).toBeLessThanOrEqual(1e-5);
  });
});
