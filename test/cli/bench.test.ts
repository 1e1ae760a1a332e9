/** `streamcell bench` runs end to end on the shipped model and reports every figure. */
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { pathToFileURL } from 'node:url';
import { hasChromium, launchChromium } from '../helpers/browser.js';
import { runCli } from '../helpers/cli.js';

const shipped = fileURLToPath(new URL('../../models/co2-lstm/model.json', import.meta.url));

describe('streamcell bench', () => {
  it('measures step mode, throughput, memory, window mode and tfjs on a sequence model', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'streamcell-bench-cli-'));
    const onnx = join(dir, 'co2.onnx');
    expect(runCli(['export', shipped, '-o', onnx, '--no-verify']).status).toBe(0);
    const out = join(dir, 'bench.json');
    const r = runCli(['bench', onnx, '--steps', '100', '--streams', '1,8', '--tfjs', shipped, '--out', out]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/pool overhead \(paired ratio\)\s+\d+\.\d+×/);
    expect(r.stdout).toMatch(/throughput at 8 streams\s+[\d,]+ steps\/s/);
    expect(r.stdout).toMatch(/window mode \(64 steps\)/);
    expect(r.stdout).toMatch(/tfjs predict \(64 steps\)/);
    const j = JSON.parse(await readFile(out, 'utf8'));
    expect(j.model).toMatchObject({ kind: 'sequence', streamified: true });
    expect(j.step.throughput.map((t: { streams: number }) => t.streams)).toEqual([1, 8]);
    expect(j.step.latency.pool.n).toBeGreaterThan(0);
    expect(j.windowMode.window).toBe(64);
  });

  it.skipIf(!hasChromium())('--report: a self-contained HTML page whose tables and charts match the --json result', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'streamcell-bench-report-'));
    const onnx = join(dir, 'co2.onnx');
    expect(runCli(['export', shipped, '-o', onnx, '--no-verify']).status).toBe(0);
    const out = join(dir, 'bench.json');
    const report = join(dir, 'bench.html');
    const r = runCli(['bench', onnx, '--steps', '60', '--streams', '1,4', '--out', out, '--report', report]);
    expect(r.status, r.stderr).toBe(0);
    const j = JSON.parse(await readFile(out, 'utf8'));
    const html = await readFile(report, 'utf8');
    expect(html).not.toMatch(/<script|https?:\/\//);
    const browser = await launchChromium();
    try {
      const page = await browser.newPage({ viewport: { width: 1000, height: 800 } });
      const requests: string[] = [];
      page.on('request', (req) => requests.push(req.url()));
      await page.goto(pathToFileURL(report).href);
      // Tables: rows of cell texts, after each section heading.
      const table = (id: string) =>
        page
          .locator(`h2#${id} + table tbody tr`)
          .evaluateAll((trs) => trs.map((tr) => Array.from(tr.querySelectorAll('td'), (td) => (td as { textContent: string | null }).textContent)));
      const lat = await table('latency');
      expect(lat[0]).toEqual([
        'step, 1 stream: StreamPool push',
        String(j.step.latency.pool.n),
        j.step.latency.pool.p50Us.toFixed(1),
        j.step.latency.pool.p99Us.toFixed(1),
      ]);
      expect(lat[1]!.slice(2)).toEqual([j.step.latency.bare.p50Us.toFixed(1), j.step.latency.bare.p99Us.toFixed(1)]);
      expect(lat[2]).toEqual(['window mode (64 steps)', String(j.windowMode.n), j.windowMode.p50Us.toFixed(1), j.windowMode.p99Us.toFixed(1)]);
      const thr = await table('throughput');
      expect(thr).toEqual(
        j.step.throughput.map((t: Record<string, number>) => [
          String(t.streams),
          String(Math.round(t.manyStreamStepsPerSec!)),
          String(Math.round(t.streamStepsPerSec!)),
          String(Math.round(t.bareStreamStepsPerSec!)),
          t.manyVsBare!.toFixed(2),
          t.meanBatchSize!.toFixed(1),
        ]),
      );
      const mem = await table('memory');
      expect(mem[0]).toEqual([
        String(j.step.memory.streams),
        String(Math.round(j.step.memory.heapBytesPer1000)),
        String(Math.round(j.step.memory.rssBytesPer1000)),
        String(Math.round(j.step.memory.stateBytesPerStream)),
      ]);
      // Charts: the shared SVG builders, each a captioned figure; the throughput line has a dot per stream count.
      const captions = await page.locator('figure figcaption').allTextContents();
      expect(captions).toEqual(['Latency per call (µs)', 'Throughput per stream count (stream-steps/s)', 'Memory per 1000 streams (KiB)']);
      expect(await page.locator('figure svg.plot').count()).toBe(3);
      expect(await page.locator('figure').nth(0).locator('rect[height="24"]').count()).toBe(6);
      expect(await page.locator('figure').nth(1).locator('circle').count()).toBe(3 * 2);
      const box = await page.locator('figure svg.plot').first().boundingBox();
      expect(box!.width).toBeGreaterThan(500);
      expect(requests.filter((u) => !u.startsWith('file:'))).toEqual([]);
      await page.screenshot({ path: join(fileURLToPath(new URL('../../test-artifacts', import.meta.url)), 'bench-report.png'), fullPage: true });
    } finally {
      await browser.close();
    }
  });

  it('rejects bad --streams with exit 2', () => {
    const r = runCli(['bench', shipped, '--streams', '1,x']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--streams/);
  });
});
