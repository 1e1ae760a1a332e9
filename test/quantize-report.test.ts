/**
 * The HTML report opens in headless Chromium (Debian's, through playwright-core) with no
 * console errors, and its plots are visible and not empty: a screenshot of each plot is
 * decoded and must show drawn pixels in the plot colours.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PNG } from 'pngjs';
import { describe, expect, it } from 'vitest';
import { exportToOnnx } from '../src/export/exporter.js';
import { loadTfjsArtifacts } from '../src/export/tfjs-format/load.js';
import { launchChromium } from './helpers/browser.js';
import { runCli } from './helpers/cli.js';
import { writeFile } from 'node:fs/promises';

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));

/** Count of pixels close to an RGB colour. */
function countColour(png: PNG, [r, g, b]: [number, number, number], tol = 40): number {
  let n = 0;
  for (let i = 0; i < png.data.length; i += 4) {
    if (Math.abs(png.data[i]! - r) + Math.abs(png.data[i + 1]! - g) + Math.abs(png.data[i + 2]! - b) < tol) n++;
  }
  return n;
}

describe('quantization HTML report in Chromium', () => {
  it('renders the table and three non-empty plots without console errors', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'streamcell-report-'));
    const onnx = join(dir, 'co2.onnx');
    await writeFile(onnx, (await exportToOnnx(await loadTfjsArtifacts(here('../models/co2-lstm64/model.json')))).model);
    const html = join(dir, 'report.html');
    const r = runCli([
      'quantize',
      onnx,
      '-o',
      join(dir, 'co2.int8.onnx'),
      '--mode',
      'int8',
      '--eval',
      here('../models/co2-weekly-mauna-loa.csv'),
      '--report',
      html,
    ]);
    expect(r.status, r.stderr).toBe(0);

    const browser = await launchChromium();
    try {
      const page = await browser.newPage({ viewport: { width: 1000, height: 900 } });
      const errors: string[] = [];
      page.on('console', (m) => {
        if (m.type() === 'error') errors.push(m.text());
      });
      page.on('pageerror', (e) => errors.push(String(e)));
      const requests: string[] = [];
      page.on('request', (q) => {
        if (!q.url().startsWith('file://')) requests.push(q.url());
      });
      await page.goto(`file://${html}`);
      expect(await page.locator('table tr').count()).toBeGreaterThanOrEqual(6);
      expect(await page.locator('td', { hasText: 'RMSE' }).count()).toBe(1);
      const plots = page.locator('svg.plot');
      expect(await plots.count()).toBe(3);
      const shots = [];
      for (let i = 0; i < 3; i++) {
        const box = await plots.nth(i).boundingBox();
        expect(box!.width).toBeGreaterThan(500);
        expect(box!.height).toBeGreaterThan(50);
        shots.push(PNG.sync.read(await plots.nth(i).screenshot()));
      }
      // Forecast plot: the truth (grey), float (blue) and quantized (red) lines overlap, red on top.
      expect(countColour(shots[0]!, [214, 39, 40])).toBeGreaterThan(500);
      expect(countColour(shots[0]!, [85, 85, 85]) + countColour(shots[0]!, [31, 119, 180])).toBeGreaterThan(50);
      // Error histogram bars (purple) and latency bars (blue and red).
      expect(countColour(shots[1]!, [148, 103, 189])).toBeGreaterThan(1000);
      expect(countColour(shots[2]!, [31, 119, 180])).toBeGreaterThan(1000);
      expect(countColour(shots[2]!, [214, 39, 40])).toBeGreaterThan(1000);
      await page.screenshot({ path: join(dir, 'report.png'), fullPage: true });
      expect(errors).toEqual([]);
      expect(requests).toEqual([]); // self-contained: nothing fetched
    } finally {
      await browser.close();
    }
  });
});
