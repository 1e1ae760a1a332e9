/**
 * The rollout from the command line: `verify --rollout` (scores per horizon against baselines
 * recomputed here from the CSV, the k = 1 row equal to training's own one-step test RMSE, the
 * HTML plot read in headless Chromium), `train`'s rollout table, and `forecast` (table,
 * --json, terminal plot, bad flags → exit 2 naming them).
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { column, fillGaps, readCsv } from '../../src/data/csv.js';
import { launchChromium } from '../helpers/browser.js';
import { runCli } from '../helpers/cli.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const CO2_MODEL = join(root, 'models', 'co2-lstm');
const CO2 = join(root, 'models', 'co2-weekly-mauna-loa.csv');
let tmp: string;
let step: string;
let co2: Float64Array;

interface Score {
  n: number;
  rmse: number;
  mae: number;
}
interface Row {
  k: number;
  rollout: Score;
  lastValue: Score;
  seasonalNaive?: Score;
}

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'streamcell-rollout-cli-'));
  const seq = join(tmp, 'co2.onnx');
  step = join(tmp, 'co2-step.onnx');
  expect(runCli(['export', CO2_MODEL, '-o', seq]).status).toBe(0);
  expect(runCli(['streamify', seq, '-o', step]).status).toBe(0);
  co2 = Float64Array.from(column(await readCsv(CO2), 'co2'));
  fillGaps(co2);
}, 120_000);

afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** RMSE of predicting row t + k by `pred(t, k)`, origins t from `first` with k rows ahead. */
function rmse(first: number, k: number, pred: (t: number, k: number) => number): number {
  let se = 0;
  let n = 0;
  for (let t = first; t + k < co2.length; t++) {
    se += (pred(t, k) - co2[t + k]!) ** 2;
    n++;
  }
  return Math.sqrt(se / n);
}

describe('verify --rollout on the shipped CO₂ forecaster', () => {
  it('scores k = 1, 4, 13, 52 for the window model and the streamified step model; k = 1 equals the training test RMSE; baselines match a recomputation', async () => {
    const pre = JSON.parse(await readFile(join(CO2_MODEL, 'preprocessing.json'), 'utf8')) as { data: { split: number[] }; metrics: { test_rmse_ppm: number } };
    const from = pre.data.split[1]! - 1;
    const report = join(tmp, 'rollout.html');
    const r = runCli([
      'verify',
      CO2_MODEL,
      step,
      '--data',
      CO2,
      '--rollout',
      '1,4,13,52',
      '--season',
      '52',
      '--from',
      String(from),
      '--report',
      report,
      '--json',
    ]);
    expect(r.status, r.stderr).toBe(0);
    const res = (r.json as { rollout: { mode: string; rows: Row[] }[] }).rollout;
    expect(res.map((x) => x.mode)).toEqual(['window', 'stream']);
    for (const m of res) {
      expect(m.rows.map((x) => x.k)).toEqual([1, 4, 13, 52]);
      // k = 1 is the one-step forecast training scored (tfjs float32 vs onnxruntime float32: far below 1e-4 ppm).
      expect(Math.abs(m.rows[0]!.rollout.rmse - pre.metrics.test_rmse_ppm)).toBeLessThan(1e-4);
      for (const row of m.rows) {
        expect(row.rollout.n).toBe(co2.length - row.k - from);
        expect(row.lastValue.rmse).toBeCloseTo(
          rmse(from, row.k, (t) => co2[t]!),
          9,
        );
        expect(row.seasonalNaive!.rmse).toBeCloseTo(
          rmse(from, row.k, (t, k) => co2[t + k - 52 * Math.ceil(k / 52)]!),
          9,
        );
        // Errors compound: the rollout at k is worse than at 1.
        if (row.k > 1) expect(row.rollout.rmse).toBeGreaterThan(m.rows[0]!.rollout.rmse);
      }
    }
    // Text mode prints the same table, best of each row marked.
    const text = runCli(['verify', step, '--data', CO2, '--rollout', '1,4', '--from', String(from)]);
    expect(text.status).toBe(0);
    expect(text.stdout).toMatch(/k\s+origins\s+rollout RMSE\s+last-value RMSE/);
    const browser = await launchChromium();
    try {
      const page = await browser.newPage();
      await page.goto(`file://${report}`);
      const figures = page.locator('figure');
      const fig = [];
      for (let i = 0; i < (await figures.count()); i++) {
        const f = figures.nth(i);
        fig.push({
          caption: (await f.locator('figcaption').textContent()) ?? '',
          paths: await f.locator('path').count(),
          dots: await f.locator('circle').count(),
          width: (await f.locator('svg').boundingBox())?.width ?? 0,
        });
      }
      expect(fig).toHaveLength(2);
      for (const f of fig) {
        expect(f.caption).toMatch(/RMSE of 'co2' against steps ahead/);
        expect(f.paths).toBe(3); // rollout, last value, seasonal naive
        expect(f.dots).toBe(12); // 4 horizons each
        expect(f.width).toBeGreaterThan(400);
      }
    } finally {
      await browser.close();
    }
  }, 120_000);

  it('bad flags and models that cannot be rolled out exit 2 naming the flag or the reason', () => {
    const bad = (args: string[], re: RegExp) => {
      const r = runCli(args);
      expect(r.status, r.stdout + r.stderr).toBe(2);
      expect(r.stderr).toMatch(re);
    };
    bad(['verify', step, '--data', CO2, '--rollout', '0,4'], /--rollout.*comma-separated integers/);
    bad(['verify', step, '--rollout', '4'], /--rollout needs --data/);
    bad(['verify', step, '--data', CO2, '--rollout', '4', '--season', '0'], /--season/);
    bad(['verify', step, '--data', CO2, '--rollout', '3000'], /no forecast origin/);
    bad(['verify', join(root, 'models', 'imu-activity'), '--data', join(root, 'models', 'imu-activity', 'data.csv'), '--rollout', '4'], /classifier/);
    bad(['verify', step], /name a second model to compare, or score one model with --rollout/);
    bad(['verify', step, '--data', CO2, '--rollout', '1,4', '--from', '99999'], /field '--from'/);
    bad(['verify', step, '--data', CO2, '--rollout', '1', '--report', join(tmp, 'no', 'such', 'r.html')], /field '--report'.*folder does not exist/);
    // Refused before any training, not after it.
    bad(
      ['train', '--data', CO2, '--target', 'co2', '--window', '8', '--arch', 'lstm:2', '--report', join(tmp, 'no', 'r.html'), '-o', join(tmp, 'never')],
      /field '--report'/,
    );
  });
});

describe('forecast', () => {
  it('prints K steps after --from with the truth ahead and a terminal plot; --json carries the same values', () => {
    const r = runCli(['forecast', step, '--input', CO2, '--steps', '13', '--from', '2200']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/13 steps after row 2200/);
    expect(r.stdout).toMatch(/\(· history, \* forecast, o truth\)/);
    const j = runCli(['forecast', step, '--input', CO2, '--steps', '13', '--from', '2200', '--json']).json as {
      values: number[][];
      truth: number[];
      step: number;
      channels: string[];
    };
    expect(j.step).toBe(2200);
    expect(j.channels).toEqual(['co2']);
    expect(j.values).toHaveLength(13);
    expect(j.truth).toEqual(Array.from(co2.subarray(2201, 2214)));
    // The table shows the JSON's values (7 significant digits).
    const first = r.stdout.split('\n').find((l) => /^\s+1\s/.test(l))!;
    expect(Number(first.trim().split(/\s+/)[1])).toBeCloseTo(j.values[0]![0]!, 3);
    // The window model (tfjs folder) and the step model agree: the LSTM carries nothing useful beyond 52 weeks.
    const w = runCli(['forecast', CO2_MODEL, '--input', CO2, '--steps', '13', '--from', '2200', '--json']).json as { values: number[][] };
    for (let i = 0; i < 13; i++) expect(w.values[i]![0]!).toBeCloseTo(j.values[i]![0]!, 2);
  }, 60_000);

  it('refuses bad flags and a multichannel model without --hold, naming them (exit 2)', async () => {
    const bad = (args: string[], re: RegExp) => {
      const r = runCli(args);
      expect(r.status, r.stdout + r.stderr).toBe(2);
      expect(r.stderr).toMatch(re);
    };
    bad(['forecast', step, '--input', CO2, '--steps', '0'], /--steps/);
    bad(['forecast', step, '--input', CO2, '--steps', '4', '--from', '99999'], /--from.*a data row from 0 to 2283/);
    bad(['forecast', step, '--input', join(tmp, 'missing.csv'), '--steps', '4'], /missing\.csv/);
    bad(['forecast', join(root, 'models', 'imu-activity.bundle'), '--input', join(root, 'models', 'imu-activity', 'data.csv'), '--steps', '4'], /classifier/);
    // A two-channel forecaster trained here: only the target is predicted.
    const csv = join(tmp, 'two.csv');
    const rows = ['level,flow'];
    for (let t = 0; t < 300; t++) rows.push(`${(50 + 3 * Math.sin(t / 9)).toFixed(4)},${(5 + Math.cos(t / 7)).toFixed(4)}`);
    await writeFile(csv, rows.join('\n') + '\n');
    const out = join(tmp, 'two');
    const t = runCli([
      'train',
      '--data',
      csv,
      '--target',
      'level',
      '--inputs',
      'flow',
      '--window',
      '8',
      '--arch',
      'lstm:4',
      '--epochs',
      '1',
      '-o',
      out,
      '--json',
    ]);
    expect(t.status, t.stderr).toBe(0);
    // train's own rollout table holds the other input.
    const tj = t.json as { rollout: { rows: Row[] } };
    expect(tj.rollout.rows.map((x) => x.k)).toEqual([1, 4, 16]);
    expect(JSON.parse(await readFile(join(out, 'training-report.json'), 'utf8')).rollout.rows).toHaveLength(3);
    bad(['forecast', out, '--input', csv, '--steps', '4'], /channels 'flow' would have no next value.*--hold flow/);
    const ok = runCli(['forecast', out, '--input', csv, '--steps', '4', '--hold', 'flow', '--json']);
    expect(ok.status, ok.stderr).toBe(0);
    expect((ok.json as { channels: string[] }).channels).toEqual(['level']);
    // A channel index on the command line holds the same channel; the error names the flag.
    const byIndex = runCli(['forecast', out, '--input', csv, '--steps', '4', '--hold', '1', '--json']);
    expect(byIndex.status, byIndex.stderr).toBe(0);
    expect((byIndex.json as { values: number[][] }).values).toEqual((ok.json as { values: number[][] }).values);
    bad(['forecast', out, '--input', csv, '--steps', '4', '--hold', 'wind'], /field '--hold'/);
  }, 120_000);
});
