/**
 * `verify A B --data F.csv` next to the baselines on the same positions: for forecasters last
 * value and seasonal naive (recomputed here from the CSV) and AR(p), for classifiers the majority class of
 * the first 70% of rows and the logistic baseline; the models' parameters and latency in the same
 * table, in text, --json and the HTML report (read in headless Chromium); bad --season → exit 2.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { column, fillGaps, readCsv } from '../../src/data/csv.js';
import { launchChromium } from '../helpers/browser.js';
import { runCli } from '../helpers/cli.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const CO2 = join(root, 'models', 'co2-weekly-mauna-loa.csv');
const CO2_A = join(root, 'models', 'co2-lstm');
const CO2_B = join(root, 'models', 'co2-lstm64');
const IMU = join(root, 'models', 'imu-activity');
const IMU_CSV = join(IMU, 'data.csv');

interface Metrics {
  n: number;
  rmse?: number;
  mae?: number;
  accuracy?: number;
}
interface Out {
  parameters: { a: number; b: number };
  latencyUs: { a: number; b: number };
  metrics: { a: Metrics; b: Metrics };
  baselines: { name: string; metrics: Metrics; parameters: number; latencyUs: number; note?: string }[];
}

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'streamcell-verify-baselines-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('verify --data baselines', () => {
  it('forecasters: last value and seasonal naive on the models’ positions, equal to a recomputation from the CSV', async () => {
    const report = join(tmp, 'co2.html');
    const r = runCli(['verify', CO2_A, CO2_B, '--data', CO2, '--season', '60', '--report', report, '--json']);
    expect(r.status, r.stderr).toBe(0);
    const out = r.json as Out;
    const co2 = Float64Array.from(column(await readCsv(CO2), 'co2'));
    fillGaps(co2);
    // co2-lstm: window 52, horizon 1 — positions t = 52 … T − 1 predict row t.
    const W = 52;
    const score = (from: number, pred: (t: number) => number) => {
      let se = 0;
      let ae = 0;
      let n = 0;
      for (let t = from; t < co2.length; t++, n++) {
        se += (pred(t) - co2[t]!) ** 2;
        ae += Math.abs(pred(t) - co2[t]!);
      }
      return { n, rmse: Math.sqrt(se / n), mae: ae / n };
    };
    const [last, seasonal, ar] = out.baselines;
    expect(out.baselines.map((b) => b.name)).toEqual(['last value', 'seasonal naive (60)', 'AR(52)']);
    const lastRef = score(W, (t) => co2[t - 1]!);
    expect(last!.metrics.n).toBe(out.metrics.a.n);
    expect(last!.metrics.n).toBe(lastRef.n);
    expect(last!.metrics.rmse).toBeCloseTo(lastRef.rmse, 9);
    expect(last!.metrics.mae).toBeCloseTo(lastRef.mae, 9);
    // A season of 60 > the window: the first 8 positions have no row a season back.
    const seasRef = score(60, (t) => co2[t - 60]!);
    expect(seasonal!.metrics.n).toBe(seasRef.n);
    expect(seasonal!.metrics.n).toBe(out.metrics.a.n - 8);
    expect(seasonal!.metrics.rmse).toBeCloseTo(seasRef.rmse, 9);
    expect(seasonal!.metrics.mae).toBeCloseTo(seasRef.mae, 9);
    expect(seasonal!.note).toMatch(/first 8 positions/);
    // AR(52) on the one channel: 52 coefficients and a bias, fitted on the first 70%, scored on every position.
    expect(ar!.parameters).toBe(53);
    expect(ar!.metrics.n).toBe(out.metrics.a.n);
    expect(ar!.metrics.rmse).toBeLessThan(last!.metrics.rmse!);
    expect(ar!.note).toMatch(/first 70%.*ridge λ/);
    for (const b of [last!, seasonal!]) {
      expect(b.parameters).toBe(0);
      expect(b.latencyUs).toBeGreaterThan(0);
      expect(b.latencyUs).toBeLessThan(out.latencyUs.a);
    }
    console.log(
      `co2: A RMSE ${out.metrics.a.rmse!.toFixed(4)} (${out.parameters.a} parameters, ${out.latencyUs.a.toFixed(1)} µs), ` +
        out.baselines.map((b) => `${b.name} ${b.metrics.rmse!.toFixed(4)} (${b.latencyUs.toFixed(3)} µs)`).join(', '),
    );

    const text = runCli(['verify', CO2_A, CO2_B, '--data', CO2, '--season', '52']);
    expect(text.status, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/on the same \d+ positions\s+RMSE\s+MAE\s+parameters\s+latency per prediction\s+n/);
    expect(text.stdout).toMatch(new RegExp(`\\nA\\s+\\S+\\s+\\S+\\s+${out.parameters.a}\\s`));
    expect(text.stdout).toMatch(/\nlast value\s+\S+\s+\S+\s+0\s/);
    expect(text.stdout).toMatch(/\nseasonal naive \(52\)\s/);
    expect(text.stdout).toMatch(/\nAR\(52\)\s+\S+\s+\S+\s+53\s/);

    const browser = await launchChromium();
    try {
      const page = await browser.newPage();
      await page.goto(`file://${report}`);
      const rows = await page.locator('h2:text("Baselines") + table tbody tr').allTextContents();
      expect(rows).toHaveLength(5);
      expect(rows[2]).toMatch(/^last value/);
      expect(rows[3]).toMatch(/^seasonal naive \(60\)/);
      expect(rows[4]).toMatch(/^AR\(52\)/);
    } finally {
      await browser.close();
    }
  }, 180_000);

  it('classifiers: the majority class of the first 70% of rows, and the logistic baseline, on all evaluated windows', async () => {
    const r = runCli(['verify', IMU, join(root, 'models', 'imu-activity.bundle'), '--data', IMU_CSV, '--json']);
    expect(r.status, r.stderr).toBe(0);
    const out = r.json as Out;
    const labels = (await readCsv(IMU_CSV, { textColumns: ['activity'] })).text.get('activity')!;
    const trainEnd = Math.floor(labels.length * 0.7);
    const counts = new Map<string, number>();
    for (const l of labels.slice(0, trainEnd)) counts.set(l, (counts.get(l) ?? 0) + 1);
    const majority = [...counts].sort((a, b) => b[1] - a[1])[0]![0];
    // Window 32, stride 16: positions t = 32, 48, … label row t − 1.
    let hits = 0;
    let n = 0;
    for (let t = 32; t <= labels.length; t += 16, n++) if (labels[t - 1] === majority) hits++;
    const [maj, logistic] = out.baselines;
    expect(maj!.name).toBe(`majority class (${majority})`);
    expect(maj!.metrics.n).toBe(n);
    expect(maj!.metrics.n).toBe(out.metrics.a.n);
    expect(maj!.metrics.accuracy).toBeCloseTo(hits / n, 12);
    expect(maj!.note).toMatch(/first 70%.*all \d+ positions/);
    expect(logistic!.name).toBe('logistic regression');
    expect(logistic!.parameters).toBe(3 * (5 * 3 + 1));
    expect(logistic!.metrics.accuracy).toBeGreaterThan(maj!.metrics.accuracy! + 0.3);
    console.log(
      `imu: A accuracy ${out.metrics.a.accuracy!.toFixed(4)} (${out.parameters.a} parameters, ${out.latencyUs.a.toFixed(1)} µs), ` +
        out.baselines.map((b) => `${b.name} ${b.metrics.accuracy!.toFixed(4)} (${b.parameters} parameters, ${b.latencyUs.toFixed(2)} µs)`).join(', '),
    );
  }, 120_000);

  it('a bad --season exits 2 naming the flag', () => {
    const bad = (args: string[], re: RegExp) => {
      const r = runCli(args);
      expect(r.status, r.stdout + r.stderr).toBe(2);
      expect(r.stderr).toMatch(re);
    };
    bad(['verify', CO2_A, CO2_B, '--data', CO2, '--season', '0'], /--season.*positive integer/);
    bad(['verify', CO2_A, CO2_B, '--data', CO2, '--season', '2.5'], /--season.*positive integer/);
    bad(['verify', CO2_A, CO2_B, '--season', '52'], /--season needs --data/);
    bad(['verify', IMU, IMU, '--data', IMU_CSV, '--season', '4'], /--season is for forecasters/);
  }, 120_000);
});
