/**
 * A bundle gives the same predictions offline (`streamcell run`) and live (`streamcell stream
 * --bundle` over a real pty) on the same rows.
 */
import { createWriteStream } from 'node:fs';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { readJsonl, startDaemon, waitFor } from '../helpers/daemon.js';
import { PtyPair } from '../helpers/pty.js';

const bundle = fileURLToPath(new URL('../../models/imu-activity.bundle', import.meta.url));
const data = fileURLToPath(new URL('../../models/imu-activity/data.csv', import.meta.url));

describe('bundle: run == stream over a pty', () => {
  it('the same 3,000 rows give the same labels and outputs offline and live', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'streamcell-bundle-stream-'));
    const rows = (await readFile(data, 'utf8')).trim().split('\n');
    const csv = [rows[0], ...rows.slice(1, 3001)];
    const file = join(dir, 'rows.csv');
    await (await import('node:fs/promises')).writeFile(file, csv.join('\n') + '\n');
    const offline = join(dir, 'offline.jsonl');
    const r = runCli(['run', bundle, '--input', file, '-o', offline]);
    expect(r.status, r.stderr).toBe(0);
    const want = readJsonl(offline);
    expect(want.length).toBe(3000);

    const pty = new PtyPair(dir, 'imu');
    await pty.start();
    const live = join(dir, 'live.jsonl');
    const d = startDaemon(['--bundle', bundle, '--source', `serial:${pty.dev}?format=csv`, '--sink', `jsonl:${live}`, '--log-level', 'warn']);
    try {
      await new Promise((res) => setTimeout(res, 1500));
      const ws = createWriteStream(pty.feed);
      for (let i = 0; i < csv.length; i += 100) {
        ws.write(csv.slice(i, i + 100).join('\n') + '\n');
        await new Promise((res) => setTimeout(res, 15));
      }
      const got = await waitFor(
        () => readJsonl(live),
        (x) => x.length >= 3000,
        30000,
        '3000 live predictions',
      );
      ws.destroy();
      expect(got.map((x) => x.label)).toEqual(want.map((x) => x.label));
      let err = 0;
      got.forEach((x, i) => x.outputs.activity.forEach((v: number, k: number) => (err = Math.max(err, Math.abs(v - want[i]!.outputs.activity[k])))));
      expect(err).toBeLessThanOrEqual(1e-5);
      // and the labels make sense: the model recognises the recorded activities
      const truth = csv.slice(1).map((l) => l.split(',')[4]);
      const acc = got.filter((x, i) => i >= 32 && x.label === truth[i]).length / (got.length - 32);
      expect(acc).toBeGreaterThan(0.9);
    } finally {
      d.proc.kill('SIGTERM');
      await d.exited;
      await pty.kill();
    }
  });
});
