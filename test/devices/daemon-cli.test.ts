/** The daemon's config file, stdin and simulated sources, through the real CLI. */
import { spawnSync } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { exportToOnnx } from '../../src/export/exporter.js';
import { streamifyModel } from '../../src/export/streamify/index.js';
import { loadTfjsArtifacts } from '../../src/export/tfjs-format/load.js';
import { CLI, runCli } from '../helpers/cli.js';
import { readJsonl } from '../helpers/daemon.js';

let dir: string;
let imu: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'streamcell-daemon-cli-'));
  const { model } = await exportToOnnx(await loadTfjsArtifacts(fileURLToPath(new URL('../../models/imu-activity/model.json', import.meta.url))));
  imu = join(dir, 'imu.step.onnx');
  await writeFile(imu, (await streamifyModel(model)).model);
});

type StreamRecord = { stream: string; seq: number; outputs: Record<string, number[]>; label?: string };

/** `streamcell stream` on the IMU step model with JSON lines on stdin; the records it prints. */
function streamStdin(lines: string, extra: string[] = []): StreamRecord[] {
  const r = spawnSync(
    process.execPath,
    [CLI, 'stream', '--model', imu, '--source', 'stdin:?format=jsonl', '--sink', 'jsonl:-', '--log-level', 'silent', ...extra],
    {
      input: lines,
      encoding: 'utf8',
      timeout: 60000,
    },
  );
  expect(r.status, r.stderr).toBe(0);
  return r.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as StreamRecord);
}

describe('streamcell stream (CLI)', () => {
  it('a YAML config with a simulated 3-axis IMU: labels on the JSONL sink, stops after --duration', async () => {
    const cfg = join(dir, 'sim.yaml');
    const out = join(dir, 'sim.jsonl');
    await writeFile(cfg, `model: ${imu}\nsources: ["sim:imu?hz=200&streams=2"]\nsinks: ["jsonl:${out}"]\nlog_level: warn\n`);
    const r = runCli(['stream', '--config', cfg, '--duration', '2']);
    expect(r.status, r.stderr).toBe(0);
    const recs = readJsonl(out);
    expect(recs.length).toBeGreaterThan(300);
    expect(new Set(recs.map((x) => x.stream))).toEqual(new Set(['sim0', 'sim1']));
    expect(recs.every((x) => ['still', 'walk', 'run'].includes(x.label))).toBe(true);
  });

  it('config errors name the file and the field', async () => {
    const cfg = join(dir, 'bad.yaml');
    await writeFile(cfg, `model: ${imu}\nsources: []\n`);
    let r = runCli(['stream', '--config', cfg]);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(cfg);
    expect(r.stderr).toMatch(/config field 'sources'/);
    await writeFile(cfg, `model: ${imu}\nsources: ["sim:imu"]\npolicy: { non_finite: ignore }\n`);
    r = runCli(['stream', '--config', cfg]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/config field 'policy\.non_finite'.*skip, hold or reset/);
    await writeFile(cfg, `model: ${imu}\nsources: ["sim:imu"]\nsurprise: 1\n`);
    r = runCli(['stream', '--config', cfg]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/surprise|Unrecognized/);
  });

  it('a bad source URI is exit 2 naming the parameter', () => {
    const r = runCli(['stream', '--model', imu, '--source', 'serial:/dev/ttyX?baud=fast']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/baud is 'fast'/);
  });

  it('stdin JSON lines → predictions on stdout, then exits when stdin ends', () => {
    const lines =
      Array.from({ length: 64 }, (_, i) => JSON.stringify({ stream: i % 2 ? 'b' : 'a', ax: Math.sin(i), ay: 0.1, az: 1 })).join('\n') +
      '\n{"stream":"a","ax":1}\n';
    const recs = streamStdin(lines);
    expect(recs.length).toBe(64);
    expect(recs.filter((x) => x.stream === 'a').map((x) => x.seq)).toEqual(Array.from({ length: 32 }, (_, i) => i));
  });

  it('--workers 2 runs the model in worker threads with the same predictions; a bad --workers is exit 2', () => {
    const lines = Array.from({ length: 96 }, (_, i) => JSON.stringify({ stream: `s${i % 6}`, ax: Math.sin(i), ay: Math.cos(i / 3), az: 1 })).join('\n') + '\n';
    const records = (workers: string[]) => {
      const recs = streamStdin(lines, workers);
      // Per stream, in order: arrival times (t) differ between runs.
      return Object.fromEntries(
        ['s0', 's1', 's2', 's3', 's4', 's5'].map((id) => [id, recs.filter((x) => x.stream === id).map((x) => [x.seq, x.label, x.outputs])]),
      );
    };
    const inThread = records([]);
    expect(inThread.s0!.length).toBe(16);
    expect(records(['--workers', '2'])).toEqual(inThread);
    const bad = runCli(['stream', '--model', imu, '--source', 'sim:imu', '--workers', '1.5']);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('--workers');
  });
});
