/**
 * The daemon's `--rollout K`: over a real pty (socat) with the trained CO₂ model, every
 * prediction carries a K-step trajectory starting at its forecast, /metrics counts them, and
 * the dashboard draws the trajectory ahead of the signal (headless Chromium). `--rollout-every`,
 * and models or values that cannot be rolled out are refused at start (exit 2).
 */
import { createWriteStream } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PNG } from 'pngjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { exportToOnnx } from '../../src/export/exporter.js';
import { streamifyModel } from '../../src/export/streamify/index.js';
import { loadTfjsArtifacts } from '../../src/export/tfjs-format/load.js';
import { launchChromium } from '../helpers/browser.js';
import { runCli } from '../helpers/cli.js';
import { freePort, metric, readJsonl, startDaemon, waitFor } from '../helpers/daemon.js';
import { PtyPair } from '../helpers/pty.js';

const K = 16;
const CLASSIFIER = fileURLToPath(new URL('../../models/imu-activity.bundle/step.onnx', import.meta.url));
let dir: string;
let model: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'streamcell-rollout-'));
  const { model: seq } = await exportToOnnx(await loadTfjsArtifacts(fileURLToPath(new URL('../../models/co2-lstm/model.json', import.meta.url))));
  model = join(dir, 'co2.step.onnx');
  await writeFile(model, (await streamifyModel(seq)).model);
});

/** `site,co2` lines of two interleaved sites: a serial chunk holds several rows of each stream. */
function siteLines(n: number): string[] {
  return Array.from({ length: n }, (_, i) => {
    const s = i % 2;
    const j = i >> 1;
    return `site${s},${(340 + 8 * s + 10 * Math.sin(j / 26) + 0.3 * Math.cos(j * 1.7)).toFixed(3)}`;
  });
}

const relErr = (a: number, b: number) => Math.abs(a - b) / Math.max(1e-12, Math.abs(b));

describe('daemon --rollout over a real pty', () => {
  it(`--rollout ${K}: every prediction carries ${K} steps starting at its forecast; /metrics counts them; the dashboard draws them ahead of the signal`, async () => {
    const pty = new PtyPair(dir, 'r');
    await pty.start();
    const out = join(dir, 'r.jsonl');
    const url = `http://127.0.0.1:${await freePort()}`;
    const d = startDaemon([
      '--model',
      model,
      '--source',
      `serial:${pty.dev}?format=csv&stream=site`,
      '--sink',
      `jsonl:${out}`,
      '--sink',
      url,
      '--rollout',
      String(K),
      '--log-level',
      'warn',
    ]);
    const browser = await launchChromium();
    try {
      await pty.openedBy(d.proc.pid!);
      const lines = siteLines(1200);
      const ws = createWriteStream(pty.feed);
      ws.write('site,co2\n');
      // 40 lines a write: each serial chunk holds rows of both sites, several of each.
      for (let i = 0; i < lines.length; i += 40) {
        ws.write(lines.slice(i, i + 40).join('\n') + '\n');
        await new Promise((r) => setTimeout(r, 10));
      }
      const got = await waitFor(
        () => readJsonl(out),
        (r) => r.length >= lines.length,
        60_000,
        `${lines.length} predictions`,
      );
      ws.end();
      expect(got.length).toBe(lines.length);
      for (const site of ['site0', 'site1']) {
        const recs = got.filter((r) => r.stream === site);
        expect(recs.map((r) => r.seq)).toEqual(Array.from({ length: lines.length / 2 }, (_, i) => i));
        for (const r of recs) {
          expect(r.rollout, `${site} seq ${r.seq}`).toHaveLength(K);
          expect(relErr(r.rollout[0], r.forecast)).toBeLessThanOrEqual(1e-9);
          for (const v of r.rollout) expect(Number.isFinite(v)).toBe(true);
        }
      }
      // A trajectory follows the signal: its first steps stay near the site's level.
      expect(Math.abs(got.at(-1)!.rollout[K - 1] - got.at(-1)!.input[0])).toBeLessThan(30);

      const predictions = await metric(url, 'streamcell_predictions_out_total');
      expect(predictions).toBe(lines.length);
      expect(await metric(url, 'streamcell_rollouts_total')).toBe(predictions);
      expect(await metric(url, 'streamcell_rollout_steps_total')).toBe(K * predictions);
      expect(await metric(url, 'streamcell_rollouts_skipped_total')).toBe(0);

      const page = await browser.newPage({ viewport: { width: 1000, height: 600 }, deviceScaleFactor: 1 });
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      await page.goto(`${url}/`);
      const chart = page.locator(`#chart[data-rollout-points="${K}"]`);
      await chart.waitFor({ timeout: 20_000 });
      // Fading with the steps ahead: alpha 1 at the first, 0.15 at the last.
      expect(await chart.getAttribute('data-rollout-alpha')).toBe('1.000,0.150');
      const [lastX, x0, x1] = (await chart.getAttribute('data-rollout-x'))!.split(',').map(Number) as [number, number, number];
      expect(x0).toBeGreaterThan(lastX);
      expect(x1).toBeGreaterThan(x0);
      // The canvas ahead of the last sample holds the trajectory's colour, and nothing behind it does
      // (device pixel ratio 1: canvas pixels are screenshot pixels).
      const shot = PNG.sync.read(await page.locator('#chart canvas').screenshot());
      const px = { ahead: 0, behind: 0 };
      for (let y = 0; y < shot.height; y++)
        for (let x = 0; x < shot.width; x++) {
          const i = (y * shot.width + x) * 4;
          const [r, g, b] = [shot.data[i]!, shot.data[i + 1]!, shot.data[i + 2]!];
          if (r > 200 && g > 90 && g < 170 && b < 80) {
            if (x > lastX + 4) px.ahead++;
            else if (x < lastX - 4) px.behind++;
          }
        }
      expect(px.ahead).toBeGreaterThan(50);
      expect(px.behind).toBe(0);
      expect(errors).toEqual([]);
    } finally {
      await browser.close();
      d.proc.kill('SIGTERM');
      await d.exited;
      await pty.kill();
    }
  }, 120_000);

  it('--rollout-every 4 (from the config, --rollout overriding its steps): only the 1st, 5th, 9th… prediction of each stream carries a trajectory', async () => {
    const csv = join(dir, 'every.csv');
    const lines = siteLines(400);
    await writeFile(csv, 'site,co2\n' + lines.join('\n') + '\n');
    const out = join(dir, 'every.jsonl');
    const config = join(dir, 'every.json');
    await writeFile(config, JSON.stringify({ model, sources: [`file:${csv}?stream=site`], sinks: [`jsonl:${out}`], rollout: { steps: 4, every: 4 } }));
    const r = runCli(['stream', '--config', config, '--rollout', '8', '--log-level', 'warn']);
    expect(r.status, r.stderr).toBe(0);
    const got = readJsonl(out);
    expect(got.length).toBe(lines.length);
    for (const site of ['site0', 'site1']) {
      const recs = got.filter((x) => x.stream === site);
      recs.forEach((x, i) => {
        if (i % 4 === 0) expect(x.rollout, `${site} record ${i}`).toHaveLength(8);
        else expect(x.rollout, `${site} record ${i}`).toBeUndefined();
      });
    }
  });

  it('refused at start with exit 2, naming the flag: --rollout 0, --rollout on a classifier, --hold of a predicted channel, --rollout-every alone', async () => {
    const csv = join(dir, 'bad.csv');
    await writeFile(csv, 'co2\n340\n341\n');
    const base = ['stream', '--source', `file:${csv}`, '--sink', 'jsonl:-'];
    const cases: [string[], RegExp][] = [
      [['--model', model, '--rollout', '0'], /--rollout.*from 1 to 100000/s],
      [['--model', CLASSIFIER, '--rollout', String(K)], /classifier.*--rollout|--rollout.*classifier/s],
      [['--model', model, '--rollout', '4', '--hold', 'co2'], /--hold/],
      [['--model', model, '--rollout-every', '4'], /--rollout-every without --rollout/],
    ];
    for (const [args, want] of cases) {
      const r = runCli([...base, ...args]);
      expect(r.status, `${args.join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(want);
      expect(r.stdout).toBe('');
    }
  });
});
