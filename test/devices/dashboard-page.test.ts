/**
 * The dashboard page against a real daemon (`streamcell stream`, the IMU classifier bundle: 3
 * input channels, a simulated source with 4 streams, an HTTP sink and a JSONL sink) in headless
 * Chromium: every channel's small chart plots the JSONL records' inputs for the same seq numbers,
 * the stream table sorts and selects, the connection state follows the daemon (stopped →
 * "disconnected", restarted on the same port → "live"), and screenshots at 1280 and 390 px wide
 * go to test-artifacts/.
 */
import { mkdirSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Page } from 'playwright-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { hasChromium, launchChromium } from '../helpers/browser.js';
import { freePort, readJsonl, startDaemon, waitFor, type DaemonProc } from '../helpers/daemon.js';

const BUNDLE = fileURLToPath(new URL('../../models/imu-activity.bundle', import.meta.url));
const ARTIFACTS = fileURLToPath(new URL('../../test-artifacts', import.meta.url));
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'streamcell-dashpage-'));
  mkdirSync(ARTIFACTS, { recursive: true });
});

async function poll<T>(what: string, fn: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 20_000): Promise<T> {
  return waitFor(fn, ok, timeoutMs, what);
}

/** What a `.channel` element says it plots: seq → value. */
async function plotted(page: Page, c: number): Promise<Map<number, number>> {
  const el = page.locator(`#channels .channel[data-channel="${c}"]`);
  const seqs = ((await el.getAttribute('data-seq')) ?? '').split(',').filter(Boolean).map(Number);
  const vals = ((await el.getAttribute('data-values')) ?? '').split(',');
  return new Map(seqs.map((s, i) => [s, Number(vals[i])]));
}

async function tableIds(page: Page): Promise<string[]> {
  return page.locator('#streams tbody tr').evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-stream') ?? ''));
}

describe.skipIf(!hasChromium())('dashboard page with a real daemon', () => {
  it('3 channels × 4 streams: channel charts match the JSONL sink, the table sorts and selects, the state follows the daemon; screenshots at 1280 and 390 px', async () => {
    const out = join(dir, 'p.jsonl');
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const args = ['--model', BUNDLE, '--source', 'sim:imu?hz=40&streams=4', '--sink', `jsonl:${out}`, '--sink', url, '--log-level', 'warn'];
    let d: DaemonProc = startDaemon(args);
    const browser = await launchChromium();
    try {
      await poll(
        'the http sink',
        () =>
          fetch(`${url}/healthz`).then(
            (r) => r.status,
            () => 0,
          ),
        (s) => s === 200,
      );
      const page = await browser.newPage({ viewport: { width: 1280, height: 1000 }, deviceScaleFactor: 1 });
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(String(e)));
      await page.goto(`${url}/`);
      await page.locator('#channels[data-count="3"] .channel[data-values]').nth(2).waitFor({ timeout: 20_000 });
      const stream = (await page.locator('#channels').getAttribute('data-stream'))!;
      expect(stream).toMatch(/^sim[0-3]$/);

      // Every channel's chart holds the JSONL records' inputs for the same seq numbers.
      await poll(
        '60 plotted points',
        () => plotted(page, 0),
        (m) => m.size >= 60,
      );
      const recs = await poll(
        'the JSONL records',
        async () => readJsonl(out).filter((r) => r.stream === stream),
        (r) => r.length >= 60,
      );
      const bySeq = new Map(recs.map((r) => [r.seq as number, r.input as number[]]));
      for (let c = 0; c < 3; c++) {
        const m = await plotted(page, c);
        let compared = 0;
        for (const [seq, v] of m) {
          const input = bySeq.get(seq);
          if (!input) continue; // newer than the JSONL file read
          expect(v, `channel ${c} seq ${seq}`).toBe(input[c]);
          compared++;
        }
        expect(compared, `channel ${c}`).toBeGreaterThanOrEqual(50);
      }
      // The classifier's probabilities as a stacked band, and the predicted class on the main chart.
      expect(Number(await page.locator('#probs').getAttribute('data-classes'))).toBe(3);
      expect(await page.locator('#probs').isVisible()).toBe(true);
      await page.locator('#chart .u-legend .u-label', { hasText: 'predicted class' }).waitFor();

      // The stream table: 4 rows, sorted by clicking the headers.
      await poll(
        '4 table rows',
        () => tableIds(page),
        (ids) => ids.length === 4,
      );
      expect(await tableIds(page)).toEqual(['sim0', 'sim1', 'sim2', 'sim3']);
      await page.locator('#streams th[data-key="id"]').click();
      expect(await tableIds(page)).toEqual(['sim3', 'sim2', 'sim1', 'sim0']);
      expect(await page.locator('#streams th[data-key="id"]').getAttribute('aria-sort')).toBe('descending');
      await page.locator('#streams th[data-key="id"]').click();
      expect(await tableIds(page)).toEqual(['sim0', 'sim1', 'sim2', 'sim3']);
      await page.locator('#streams th[data-key="rate"]').click();
      expect(await page.locator('#streams').getAttribute('data-sort')).toBe('rate desc');
      expect((await tableIds(page)).sort()).toEqual(['sim0', 'sim1', 'sim2', 'sim3']);
      // Clicking a row selects its stream.
      const other = stream === 'sim2' ? 'sim1' : 'sim2';
      await page.locator(`#streams tbody tr[data-stream="${other}"]`).click();
      await page.locator(`#channels[data-stream="${other}"]`).waitFor();
      expect(await page.locator('#stream').inputValue()).toBe(other);
      await page.locator('#status', { hasText: `stream ${other}` }).waitFor();
      await page.locator(`#streams tr.selected[data-stream="${other}"]`).waitFor();

      await page.locator('#status[data-state="live"]').waitFor();
      await page.screenshot({ path: join(ARTIFACTS, 'dashboard-1280.png'), fullPage: true });
      await page.setViewportSize({ width: 390, height: 844 });
      // Phone width: the layout stacks, nothing wider than the screen (the table scrolls in its box).
      await poll(
        'the charts at 390 px',
        () => page.locator('#chart canvas').boundingBox(),
        (b) => b !== null && b.width <= 390,
      );
      expect(Number(await page.evaluate('document.documentElement.scrollWidth'))).toBeLessThanOrEqual(390);
      const boxes = await page.locator('#channels .channel').evaluateAll((els) => els.map((e) => e.getBoundingClientRect().top));
      expect(boxes[1]).toBeGreaterThan(boxes[0]!); // one per row
      await page.screenshot({ path: join(ARTIFACTS, 'dashboard-390.png'), fullPage: true });
      await page.setViewportSize({ width: 1280, height: 1000 });

      // The daemon stops: "disconnected"; it starts again on the same port: "live" again.
      d.proc.kill('SIGTERM');
      await d.exited;
      await poll(
        'disconnected',
        async () => (await page.locator('#status').textContent()) ?? '',
        (t) => /disconnected, retrying in \d+ s/.test(t),
      );
      expect(await page.locator('#status').getAttribute('data-state')).toBe('down');
      d = startDaemon(args);
      await poll(
        'live again',
        async () => page.locator('#status').getAttribute('data-state'),
        (s) => s === 'live',
        45_000,
      );
      await page.locator('#channels[data-count="3"] .channel[data-values]').nth(2).waitFor({ timeout: 20_000 });
      expect(errors).toEqual([]);
    } finally {
      await browser.close();
      d.proc.kill('SIGTERM');
      await d.exited;
    }
  }, 150_000);
});
