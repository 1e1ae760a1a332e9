/**
 * `train --arch A --arch B`: on a synthetic series where one candidate is clearly better (a
 * sine of period 12 needs a two-dimensional state; a 1-unit GRU cannot hold its phase, a
 * 16-unit GRU can), the selection picks the better one on validation, copies it to OUT, and
 * reports every candidate; `--select size` with a tolerance picks the smaller one when it is
 * within the tolerance; the HTML report opens in headless Chromium; bad flags exit 2.
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { pick, type Selection } from '../src/train/select.js';
import { launchChromium } from './helpers/browser.js';
import { runCli } from './helpers/cli.js';

let tmp: string;
let sine: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'streamcell-select-'));
  sine = join(tmp, 'sine.csv');
  let r = 1;
  const noise = () => ((r = (r * 16807) % 2147483647) / 2147483647 - 0.5) * 0.02;
  const rows = Array.from({ length: 600 }, (_, t) => `${t},${(Math.sin((2 * Math.PI * t) / 12) + noise()).toFixed(5)}`);
  await writeFile(sine, `t,y\n${rows.join('\n')}\n`);
});

const countColour = (png: PNG, [r, g, b]: number[]) => {
  let n = 0;
  for (let i = 0; i < png.data.length; i += 4) if (Math.abs(png.data[i]! - r!) + Math.abs(png.data[i + 1]! - g!) + Math.abs(png.data[i + 2]! - b!) < 30) n++;
  return n;
};

describe('train --arch gru:1 --arch gru:16 on a sine (the wider GRU is clearly better)', () => {
  let out: string;
  let html: string;
  let sel: Selection & { task: string; files: { modelJson: string } };

  beforeAll(() => {
    out = join(tmp, 'out');
    html = join(tmp, 'report.html');
    const r = runCli([
      'train',
      '--data',
      sine,
      '--target',
      'y',
      '--window',
      '16',
      '--arch',
      'gru:1',
      '--arch',
      'gru:16',
      '--epochs',
      '8',
      '--rollout',
      'none',
      '--report',
      html,
      '--json',
      '-o',
      out,
    ]);
    expect(r.status, r.stderr).toBe(0);
    sel = r.json as typeof sel;
  }, 120_000);

  it('picks gru:16 on validation RMSE and reports both candidates', () => {
    expect(sel.candidates.map((c) => c.arch)).toEqual(['gru:1', 'gru:16']);
    const [small, wide] = sel.candidates;
    console.log(sel.candidates.map((c) => `${c.arch}: val RMSE ${c.validation!.rmse}, test ${c.test.rmse}, ${c.onnxBytes} B, ${c.latencyUs} µs`).join('\n'));
    expect(wide!.validation!.rmse!).toBeLessThan(small!.validation!.rmse! / 3);
    expect(sel.chosen).toMatchObject({ arch: 'gru:16', select: 'metric', metric: 'rmse' });
    expect(small!.parameters).toBeLessThan(wide!.parameters);
    expect(small!.onnxBytes).toBeLessThan(wide!.onnxBytes);
    for (const c of sel.candidates) {
      expect(c.latencyOf).toBe('step');
      expect(c.latencyUs).toBeGreaterThan(0);
      expect(c.test.n).toBe(90);
    }
    expect(wide!.int8Bytes).toBeGreaterThan(0);
    // The baselines ride along: last value (scores only) and the deployable AR(p), measured like a candidate.
    expect(sel.baselineRows.map((b) => b.kind)).toEqual(['last-value', 'ar']);
    const ar = sel.baselineRows[1]!;
    expect(ar.validation!.rmse).toBeGreaterThan(0);
    expect(ar.onnxBytes).toBeGreaterThan(0);
    expect(ar.latencyOf).toBe('step');
    expect(ar.latencyUs).toBeGreaterThan(0);
  });

  it('OUT holds the chosen candidate (what export and bundle read) and training-report.json the table', () => {
    expect(sel.files.modelJson).toBe(join(out, 'model.json'));
    expect(readFileSync(join(out, 'model.json'), 'utf8')).toBe(readFileSync(join(out, 'candidates', 'gru-16', 'model.json'), 'utf8'));
    expect(readFileSync(join(out, 'weights.bin'))).toEqual(readFileSync(join(out, 'candidates', 'gru-16', 'weights.bin')));
    expect(existsSync(join(out, 'candidates', 'gru-1', 'model.json'))).toBe(true);
    expect(existsSync(join(out, 'ar', 'model.json'))).toBe(true);
    const saved = JSON.parse(readFileSync(join(out, 'training-report.json'), 'utf8')) as Selection & {
      model: { arch: string };
      baselines: { modelJson?: string }[];
    };
    expect(saved.baselines[1]!.modelJson).toBe(join(out, 'ar', 'model.json'));
    expect(saved.model.arch).toBe('gru:16');
    expect(saved.chosen.arch).toBe('gru:16');
    expect(saved.candidates).toHaveLength(2);
  });

  it('--select size|latency: the smallest / fastest within the tolerance of the best validation metric', () => {
    const c = sel.candidates;
    const ratio = c[0]!.validation!.rmse! / c[1]!.validation!.rmse!;
    // Within 2%: only gru:16 qualifies. With a tolerance past the ratio, gru:1 does and is smaller.
    expect(pick(c, 'rmse', 'size', 0.02).arch).toBe('gru:16');
    const loose = pick(c, 'rmse', 'size', ratio);
    expect(loose.arch).toBe('gru:1');
    expect(loose.reason).toMatch(/smallest ONNX file among the 2 candidates within/);
    const fast = [...c].sort((a, b) => a.latencyUs - b.latencyUs)[0]!.arch;
    expect(pick(c, 'rmse', 'latency', ratio).arch).toBe(fast);
    // Accuracy: higher is better, the tolerance is relative to it.
    const acc = (arch: string, accuracy: number, onnxBytes: number) => ({ ...c[0]!, arch, onnxBytes, validation: { n: 10, accuracy } });
    const three = [acc('a', 0.9, 300), acc('b', 0.885, 200), acc('c', 0.7, 100)];
    expect(pick(three, 'accuracy', 'metric', 0.02).arch).toBe('a');
    expect(pick(three, 'accuracy', 'size', 0.02).arch).toBe('b');
  });

  it('the HTML report: candidates and baselines table, chosen row, forecast overlay (truth, chosen, AR(p)) on the test part; self-contained', async () => {
    const browser = await launchChromium();
    try {
      const page = await browser.newPage({ viewport: { width: 1000, height: 900 } });
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(String(e)));
      const requests: string[] = [];
      page.on('request', (q) => {
        if (!q.url().startsWith('file://')) requests.push(q.url());
      });
      await page.goto(`file://${html}`);
      expect(await page.locator('tbody tr').count()).toBe(4); // two candidates, last value, AR(p)
      expect(await page.locator('tr.chosen td', { hasText: 'gru:16' }).count()).toBe(1);
      const plot = page.locator('svg.plot');
      expect(await plot.count()).toBe(1);
      expect(await plot.locator('path').count()).toBe(3); // truth, chosen, AR(p)
      const shot = PNG.sync.read(await plot.screenshot());
      expect(countColour(shot, [31, 119, 180])).toBeGreaterThan(500); // the chosen model's forecasts
      expect(countColour(shot, [85, 85, 85])).toBeGreaterThan(50); // the truth under them
      expect(countColour(shot, [214, 39, 40])).toBeGreaterThan(200); // AR(p), dashed
      await page.screenshot({ path: join(tmp, 'report.png'), fullPage: true });
      expect(errors).toEqual([]);
      expect(requests).toEqual([]);
    } finally {
      await browser.close();
    }
  });
});

describe('one --arch', () => {
  it('with --report: the table of one candidate and the page; without: no candidates folder (as before)', () => {
    const out = join(tmp, 'one');
    const r = runCli([
      'train',
      '--data',
      sine,
      '--target',
      'y',
      '--window',
      '16',
      '--arch',
      'gru:4',
      '--epochs',
      '2',
      '--rollout',
      'none',
      '--report',
      join(tmp, 'one.html'),
      '-o',
      out,
    ]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/chosen \(--select metric\): gru:4, the only candidate/);
    expect(existsSync(join(out, 'model.json')) && existsSync(join(tmp, 'one.html'))).toBe(true);
    const plain = join(tmp, 'plain');
    expect(
      runCli(['train', '--data', sine, '--target', 'y', '--window', '16', '--arch', 'gru:4', '--epochs', '1', '--rollout', 'none', '-o', plain]).status,
    ).toBe(0);
    expect(existsSync(join(plain, 'candidates'))).toBe(false);
  }, 60_000);
});

describe('bad selection flags exit 2 naming the flag', () => {
  const train = (...a: string[]) => runCli(['train', '--data', sine, '--target', 'y', '--window', '16', '-o', join(tmp, 'bad'), ...a]);
  it.each([
    [['--arch', 'gru:4', '--arch', 'gru:4'], /field '--arch'.*given twice/],
    [['--arch', 'gru:4', '--arch', 'lstm:4', '--split', '0.85,0'], /field '--split'.*no validation part/],
    [['--arch', 'gru:4', '--arch', 'lstm:4', '--select', 'size', '--tolerance', '-1'], /field '--tolerance'.*expected a relative tolerance/],
  ])('%j', (args, msg) => {
    const r = train(...args);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(msg);
    expect(existsSync(join(tmp, 'bad', 'candidates'))).toBe(false);
  });
});
