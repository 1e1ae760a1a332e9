/**
 * The dashboard's `status` event on `/events`: the HTTP sink sends it after the snapshot and
 * every second; a real daemon over a socat pty fills it from the same counters `/metrics`
 * serves (drops by reason, predictions, reconnects), with the model's SHA-256 and per-stream rows.
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DaemonMetrics } from '../../src/devices/metrics.js';
import { HttpSink } from '../../src/devices/sinks/http.js';
import { histogramQuantile, STATUS_MAX_STREAMS } from '../../src/devices/status.js';
import { exportToOnnx } from '../../src/export/exporter.js';
import { streamifyModel } from '../../src/export/streamify/index.js';
import { loadTfjsArtifacts } from '../../src/export/tfjs-format/load.js';
import { freePort, metric, readJsonl, startDaemon, waitFor } from '../helpers/daemon.js';
import { PtyPair } from '../helpers/pty.js';

interface SseEvent {
  event: string;
  data: string;
}

/** Reads `/events` in the background, collecting events; `close()` aborts it. */
function readEvents(url: string, query = ''): { events: SseEvent[]; close: () => void } {
  const events: SseEvent[] = [];
  const ac = new AbortController();
  void (async () => {
    const res = await fetch(`${url}/events${query}`, { signal: ac.signal });
    const reader = res.body!.getReader();
    const dec = new TextDecoder();
    let buf = '';
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      buf += dec.decode(value, { stream: true });
      let i: number;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        let event = 'message';
        const data: string[] = [];
        for (const line of block.split('\n')) {
          if (line.startsWith('event: ')) event = line.slice(7);
          else if (line.startsWith('data: ')) data.push(line.slice(6));
        }
        if (data.length) events.push({ event, data: data.join('\n') });
      }
    }
  })().catch(() => undefined);
  return { events, close: () => ac.abort() };
}

const statuses = (evs: SseEvent[]): Record<string, any>[] => evs.filter((e) => e.event === 'status').map((e) => JSON.parse(e.data));

describe('status event: HttpSink', () => {
  let sink: HttpSink | undefined;
  afterEach(async () => {
    await sink?.close();
    sink = undefined;
  });

  it('sends status right after the snapshot, then about every second to every client', async () => {
    let n = 0;
    sink = await HttpSink.start({ metrics: new DaemonMetrics(), health: () => ({ ok: true }), status: () => ({ n: ++n }) });
    sink.write({ stream: 'a', seq: 0, t: 1, input: [1], outputs: { y: [2] }, forecast: 2 });
    const r = readEvents(sink.url);
    try {
      const evs = await waitFor(
        () => r.events,
        (e) => statuses(e).length >= 3,
        10_000,
        'three status events',
      );
      expect(evs[0]!.event).toBe('snapshot');
      expect(evs[1]!.event).toBe('status');
      const ns = statuses(evs).map((s) => s.n);
      expect(ns).toEqual([...ns].sort((a, b) => a - b));
    } finally {
      r.close();
    }
  });

  it('sends status behind the token (?token= on /events)', async () => {
    const token = 'a-token-of-enough-length';
    sink = await HttpSink.start({ metrics: new DaemonMetrics(), health: () => ({ ok: true }), token, status: () => ({ ok: 1 }) });
    expect((await fetch(`${sink.url}/events`)).status).toBe(401);
    const r = readEvents(`${sink.url}`, `?token=${token}`);
    try {
      await waitFor(
        () => statuses(r.events),
        (s) => s.length >= 1,
        5000,
        'a status event',
      );
    } finally {
      r.close();
    }
  });

  it('sends no status event without a status callback', async () => {
    sink = await HttpSink.start({ metrics: new DaemonMetrics(), health: () => ({ ok: true }) });
    const r = readEvents(sink.url);
    try {
      await waitFor(
        () => r.events.length,
        (n) => n >= 1,
        5000,
        'the snapshot',
      );
      expect(r.events.map((e) => e.event)).toEqual(['snapshot']);
    } finally {
      r.close();
    }
  });
});

describe('status event: helpers', () => {
  it('histogramQuantile interpolates like Prometheus and is null without observations', () => {
    const b: [number, number][] = [
      [1, 0],
      [2, 10],
      [4, 20],
    ];
    expect(histogramQuantile(b, 20, 0.5)).toBe(2);
    expect(histogramQuantile(b, 20, 0.75)).toBe(3);
    expect(histogramQuantile(b, 25, 0.99)).toBe(4); // beyond the last finite bound
    expect(histogramQuantile(b, 0, 0.5)).toBeNull();
  });

  it('streamRates lists at most the labelled streams (never "(other)") and at most the bound asked', () => {
    const m = new DaemonMetrics(300);
    for (let i = 0; i < 400; i++) m.streamCounts(`s${i}`).in += 5;
    expect(m.streamRates(STATUS_MAX_STREAMS).length).toBe(256);
    expect(m.streamRates(1000).length).toBe(300);
    expect(m.streamRates(1000).some((r) => r.c.label === '(other)')).toBe(false);
  });
});

describe('status event: a real daemon over a pty', () => {
  let dir: string;
  let model: string;
  let sha: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'streamcell-status-'));
    const { model: seq } = await exportToOnnx(await loadTfjsArtifacts(fileURLToPath(new URL('../../models/co2-lstm/model.json', import.meta.url))));
    model = join(dir, 'co2.step.onnx');
    await writeFile(model, (await streamifyModel(seq)).model);
    sha = createHash('sha256')
      .update(await readFile(model))
      .digest('hex');
  });

  it('drops by reason and predictions equal /metrics; 4 streams listed; source connected; model sha', async () => {
    const pty = new PtyPair(dir, 'st');
    await pty.start();
    const out = join(dir, 'st.jsonl');
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const d = startDaemon([
      '--model',
      model,
      '--source',
      `serial:${pty.dev}?format=csv&stream=stream`,
      '--sink',
      `jsonl:${out}`,
      '--sink',
      url,
      '--log-level',
      'warn',
    ]);
    let r: ReturnType<typeof readEvents> | undefined;
    try {
      await pty.openedBy(d.proc.pid!);
      const ws = createWriteStream(pty.feed);
      const lines = ['stream,co2'];
      const per = 200;
      for (let i = 0; i < per; i++)
        for (const s of ['a', 'b', 'c', 'd']) lines.push(`${s},${(340 + 10 * Math.sin(i / 26) + (s.charCodeAt(0) - 97)).toFixed(3)}`);
      // Bad lines: 3 column-count (too few fields), 2 non-finite (empty cells) of streams b and c, 1 malformed.
      const bad = ['b', 'b', 'c', 'b,', 'c,', 'c,xyz'];
      ws.write(lines.slice(0, 400).join('\n') + '\n' + bad.join('\n') + '\n' + lines.slice(400).join('\n') + '\n');
      const good = 4 * per;
      await waitFor(
        () => readJsonl(out).length,
        (n) => n >= good,
        30_000,
        `${good} predictions`,
      );
      await waitFor(
        () =>
          fetch(`${url}/healthz`)
            .then((x) => x.status)
            .catch(() => 0),
        (s) => s === 200,
        10_000,
        'healthz',
      );
      r = readEvents(url);
      const st = (
        await waitFor(
          () => statuses(r!.events),
          (ss) => ss.some((s) => s.predictions === good),
          10_000,
          'a status event with every prediction',
        )
      ).find((s) => s.predictions === good)!;

      // The same counters as /metrics.
      expect(st.predictions).toBe(await metric(url, 'streamcell_predictions_out_total'));
      const reasons = Object.keys(st.drops).sort();
      expect(reasons).toEqual(expect.arrayContaining(['column-count', 'malformed', 'non-finite']));
      for (const reason of reasons) expect(st.drops[reason], reason).toBe(await metric(url, 'streamcell_dropped_total', { reason }));
      expect(st.drops['non-finite']).toBe(2);
      expect(st.drops['column-count']).toBe(3);
      expect(st.drops.malformed).toBe(1);

      expect(st.model.sha256).toBe(sha);
      expect(st.model).toMatchObject({ channels: ['co2'], target: 'co2' });
      expect(st.model.bundleVersion).toBeNull();
      expect(typeof st.backend.name).toBe('string');
      expect(st.sources).toEqual([{ name: expect.stringContaining(`serial:${pty.dev}`), connected: true, reconnects: 0 }]);
      expect(st.sources[0].reconnects).toBe(await metric(url, 'streamcell_reconnects_total'));
      expect(st.sinks.map((s: any) => s.uri)).toEqual([`jsonl:${out}`, url].map((u) => expect.stringContaining(u.replace(/^jsonl:/, ''))));
      expect(st.checkpoint).toEqual({ file: null, ageS: null });
      expect(st.uptimeS).toBeGreaterThanOrEqual(0);
      expect(st.latencyMs.count).toBe(await metric(url, 'streamcell_stage_seconds_count', { stage: 'total' }));
      expect(st.latencyMs.count).toBeGreaterThan(0); // 806 lines, one in 64 traced
      expect(st.latencyMs.p99).toBeGreaterThanOrEqual(st.latencyMs.p50);
      // Each traced reading also lands in its stream's ring.
      const p99s = st.streams.map((s: any) => s.latencyP99Ms).filter((x: unknown) => x !== null);
      expect(p99s.length).toBeGreaterThan(0);
      for (const x of p99s) expect(x).toBeGreaterThan(0);

      // Streams: the four ids (bounded), their drops, last prediction = the JSONL's last forecast.
      expect(st.streams.length).toBeLessThanOrEqual(STATUS_MAX_STREAMS);
      expect(st.streams.map((s: any) => s.id).sort()).toEqual(['a', 'b', 'c', 'd']);
      const byId = Object.fromEntries(st.streams.map((s: any) => [s.id, s]));
      // Framing drops happen before a stream is known; the non-finite ones are the streams'.
      expect([byId.a.drops, byId.b.drops, byId.c.drops, byId.d.drops]).toEqual([0, 1, 1, 0]);
      const jsonl = readJsonl(out);
      for (const id of ['a', 'b', 'c', 'd']) {
        const last = jsonl.filter((x) => x.stream === id).at(-1)!;
        expect(byId[id].last).toBeCloseTo(last.forecast, 4);
        expect(byId[id].rate).toBeGreaterThan(0);
        expect(Math.abs(byId[id].lastSeenMs - Date.now())).toBeLessThan(60_000);
      }
      ws.end();
    } finally {
      r?.close();
      d.proc.kill('SIGTERM');
      await d.exited;
      await pty.kill();
    }
  });

  it("with --bundle and --checkpoint: the bundle name and version, the checkpoint age, a classifier's label as `last`", async () => {
    const bundle = fileURLToPath(new URL('../../models/imu-activity.bundle', import.meta.url));
    const manifest = JSON.parse(await readFile(join(bundle, 'manifest.json'), 'utf8'));
    const rows = (await readFile(fileURLToPath(new URL('../../models/imu-activity/data.csv', import.meta.url)), 'utf8')).trim().split('\n');
    const pty = new PtyPair(dir, 'imu');
    await pty.start();
    const out = join(dir, 'imu.jsonl');
    const cp = join(dir, 'imu.state');
    const url = `http://127.0.0.1:${await freePort()}`;
    const d = startDaemon([
      '--bundle',
      bundle,
      '--source',
      `serial:${pty.dev}?format=csv`,
      '--sink',
      `jsonl:${out}`,
      '--sink',
      url,
      '--checkpoint',
      cp,
      '--checkpoint-every',
      '1',
      '--log-level',
      'warn',
    ]);
    let r: ReturnType<typeof readEvents> | undefined;
    try {
      await pty.openedBy(d.proc.pid!);
      const ws = createWriteStream(pty.feed);
      ws.write(rows.slice(0, 301).join('\n') + '\n');
      await waitFor(
        () => readJsonl(out).length,
        (n) => n >= 300,
        30_000,
        '300 predictions',
      );
      r = readEvents(url);
      const st = (
        await waitFor(
          () => statuses(r!.events),
          (ss) => ss.some((s) => s.predictions === 300 && s.checkpoint?.ageS !== null),
          15_000,
          'a status event after a checkpoint was written',
        )
      ).find((s) => s.predictions === 300 && s.checkpoint.ageS !== null)!;
      expect(st.model).toEqual({
        sha256: expect.stringMatching(/^[0-9a-f]{64}$/),
        bundleVersion: manifest.version,
        name: manifest.name,
        // A classifier: its channels, no target.
        channels: ['ax', 'ay', 'az'],
        target: null,
      });
      expect(st.checkpoint.file).toBe(cp);
      expect(st.checkpoint.ageS).toBeGreaterThanOrEqual(0);
      expect(st.checkpoint.ageS).toBeLessThan(30);
      const last = readJsonl(out).at(-1)!;
      expect(st.streams).toEqual([expect.objectContaining({ id: 'default', drops: 0, last: last.label })]);
      ws.end();
    } finally {
      r?.close();
      d.proc.kill('SIGTERM');
      await d.exited;
      await pty.kill();
    }
  });
});
