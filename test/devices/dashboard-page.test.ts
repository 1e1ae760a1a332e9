/**
 * The dashboard page against a real daemon (`streamcell stream`, the IMU classifier bundle: 3
 * input channels, a simulated source with 4 streams, an HTTP sink and a JSONL sink) in headless
 * Chromium: every channel's small chart plots the JSONL records' inputs for the same seq numbers,
 * the stream table sorts and selects, the connection state follows the daemon (stopped →
 * "disconnected", restarted on the same port → "live"), and screenshots at 1280 and 390 px wide
 * go to test-artifacts/. The panels (from the `status` event) show the same drops by reason and
 * predictions as `/metrics`, and the model, sources and sinks.
 */
import { createWriteStream, existsSync, mkdirSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Page } from 'playwright-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { hasChromium, launchChromium } from '../helpers/browser.js';
import { freePort, metric, readJsonl, startDaemon, waitFor, type DaemonProc } from '../helpers/daemon.js';
import { PtyPair } from '../helpers/pty.js';

const BUNDLE = fileURLToPath(new URL('../../models/imu-activity.bundle', import.meta.url));
/** The server side of the `status` event (src/devices/status.ts); the panel test waits for it. */
const HAS_STATUS = existsSync(fileURLToPath(new URL('../../src/devices/status.ts', import.meta.url)));
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
      // Named from the model's preprocessing (the status event), not "ch 0".
      for (const [c, name] of ['ax', 'ay', 'az'].entries()) await page.locator(`#channels .channel[data-channel="${c}"][data-name="${name}"]`).waitFor();
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

  it.skipIf(!HAS_STATUS)(
    'panels from the status event: drops by reason and predictions equal /metrics; model, sources, sinks, latency; per-stream drops in the table',
    async () => {
      const pty = new PtyPair(dir, 'pn');
      await pty.start();
      const out = join(dir, 'pn.jsonl');
      const url = `http://127.0.0.1:${await freePort()}`;
      const d = startDaemon([
        '--model',
        BUNDLE,
        '--source',
        `serial:${pty.dev}?format=csv&stream=stream`,
        '--sink',
        `jsonl:${out}`,
        '--sink',
        url,
        '--log-level',
        'warn',
      ]);
      const browser = await launchChromium();
      try {
        await pty.openedBy(d.proc.pid!);
        const ws = createWriteStream(pty.feed);
        const per = 100;
        const lines = ['stream,ax,ay,az'];
        for (let i = 0; i < per; i++)
          for (const [k, s] of ['a', 'b', 'c', 'd'].entries())
            lines.push(`${s},${Math.sin(i / 5 + k).toFixed(4)},${(0.3 * Math.cos(i / 3)).toFixed(4)},${(1 + 0.1 * k).toFixed(4)}`);
        // Bad lines: 2 column-count, 2 non-finite (an empty cell) of streams b and c, 1 malformed.
        const bad = ['b,1', 'c', 'b,0.1,,1', 'c,0.1,0.2,', 'c,0.1,xyz,1'];
        ws.write(lines.slice(0, 200).join('\n') + '\n' + bad.join('\n') + '\n' + lines.slice(200).join('\n') + '\n');
        const good = 4 * per;
        await waitFor(
          () => readJsonl(out).length,
          (n) => n >= good,
          30_000,
          `${good} predictions`,
        );
        const page = await browser.newPage({ viewport: { width: 1280, height: 1000 }, deviceScaleFactor: 1 });
        const errors: string[] = [];
        page.on('pageerror', (e) => errors.push(String(e)));
        await page.goto(`${url}/`);
        await page.locator('#panels').waitFor({ state: 'visible', timeout: 20_000 });
        await poll(
          'every prediction in the panel',
          async () => page.locator('#predictions').textContent(),
          (t) => t === String(good),
        );
        expect(Number(await page.locator('#predictions').textContent())).toBe(await metric(url, 'streamcell_predictions_out_total'));
        // Drops by reason: the page's counts are /metrics' counts.
        const reasons = await page.locator('#drops-list li[data-reason]').evaluateAll((els) => els.map((e) => e.getAttribute('data-reason')!));
        expect(reasons).toEqual(expect.arrayContaining(['column-count', 'malformed', 'non-finite']));
        let total = 0;
        for (const reason of reasons) {
          const shown = Number(await page.locator(`#drops-list li[data-reason="${reason}"] b`).textContent());
          expect(shown, reason).toBe(await metric(url, 'streamcell_dropped_total', { reason }));
          total += shown;
        }
        expect(Number(await page.locator('#drops-list li[data-reason="non-finite"]').getAttribute('data-count'))).toBe(2);
        expect(Number(await page.locator('#drops').getAttribute('data-total'))).toBe(total);
        expect(Number(await page.locator('#drops-total').textContent())).toBe(total);
        // Model, backend, sources, sinks, latency, uptime.
        const sha = (await page.locator('#model').getAttribute('data-sha256'))!;
        expect(sha).toMatch(/^[0-9a-f]{64}$/);
        expect(await page.locator('#model').textContent()).toContain(sha.slice(0, 12));
        expect(await page.locator('#model').textContent()).toMatch(/imu-activity .* v1\.0\.0/);
        expect(await page.locator('#backend').textContent()).not.toBe('–');
        await page.locator('#sources tbody tr', { hasText: 'yes' }).waitFor();
        expect(await page.locator('#sources tbody tr').count()).toBe(1);
        expect(await page.locator('#sinks tbody tr').count()).toBe(2);
        expect(await page.locator('#uptime').textContent()).toMatch(/\d+ s/);
        await poll(
          'latency quantiles',
          async () => [await page.locator('#lat-p50').textContent(), await page.locator('#lat-p99').textContent()],
          (q) => q.every((t) => Number(t) > 0),
        );
        // The drops sparkline and latency histogram are the shared SVG builders of the reports
        // (src/data/plot.ts): an SVG line and one column per histogram bucket.
        await page.locator('#drops-spark svg.plot path').first().waitFor({ state: 'attached' });
        await poll(
          'latency histogram columns',
          () => page.locator('#latency-hist svg.plot rect[height]').count(),
          (n) => n > 2,
        );
        // The stream table from status.streams: per-stream drops (the non-finite ones: b 1, c 1).
        await poll(
          'the table from the status event',
          () =>
            page
              .locator('#streams tbody tr')
              .evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-stream') + '=' + tr.querySelector('[data-key="drops"]')!.textContent).join(' ')),
          (t) => t === 'a=0 b=1 c=1 d=0',
        );
        await page.locator('#streams th[data-key="drops"]').click();
        expect((await tableIds(page)).slice(0, 2)).toEqual(['b', 'c']);
        await page.screenshot({ path: join(ARTIFACTS, 'dashboard-panels-1280.png'), fullPage: true });
        await page.setViewportSize({ width: 390, height: 844 });
        await poll(
          'the page at 390 px',
          () => page.evaluate('document.documentElement.scrollWidth').then(Number),
          (w) => w <= 390,
        );
        await page.screenshot({ path: join(ARTIFACTS, 'dashboard-panels-390.png'), fullPage: true });
        expect(errors).toEqual([]);
        ws.end();
      } finally {
        await browser.close();
        d.proc.kill('SIGTERM');
        await d.exited;
        await pty.kill();
      }
    },
    120_000,
  );
});
