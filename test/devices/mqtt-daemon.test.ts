/**
 * Acceptance 4 at the daemon level: `streamcell stream` with a simulated sensor and an MQTT
 * sink while the real broker is stopped for 5 s mid-stream and restarted. Every prediction
 * arrives: per stream, seq is contiguous from 0 with nothing lost; copies are marked replay.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportToOnnx } from '../../src/export/exporter.js';
import { streamifyModel } from '../../src/export/streamify/index.js';
import { loadTfjsArtifacts } from '../../src/export/tfjs-format/load.js';
import { startDaemon, waitFor } from '../helpers/daemon.js';
import { startMosquitto, type Mosquitto } from '../helpers/mosquitto.js';

let dir: string;
let model: string;
let broker: Mosquitto;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'streamcell-mqtt-daemon-'));
  const { model: seq } = await exportToOnnx(await loadTfjsArtifacts(fileURLToPath(new URL('../../models/imu-activity/model.json', import.meta.url))));
  model = join(dir, 'imu.step.onnx');
  await writeFile(model, (await streamifyModel(seq)).model);
  broker = await startMosquitto();
});

afterAll(async () => {
  await broker?.dispose();
});

describe('daemon → MQTT with the broker down for 5 s', () => {
  it('every prediction arrives, in order per stream, duplicates marked', async () => {
    const received = new Map<string, { seq: number; replay?: boolean; dup?: boolean }[]>();
    const sub = connect(broker.url, { clientId: 'test-sub', clean: false, reconnectPeriod: 200 });
    await new Promise<void>((r) => sub.once('connect', () => r()));
    await new Promise<void>((r, j) => sub.subscribe('preds/#', { qos: 1 }, (e) => (e ? j(e) : r())));
    sub.on('message', (_t, payload, packet) => {
      const m = JSON.parse(payload.toString()) as { stream: string; seq: number; replay?: boolean };
      const l = received.get(m.stream) ?? [];
      l.push({ seq: m.seq, replay: m.replay, dup: packet.dup });
      received.set(m.stream, l);
    });
    const N = 1200; // per stream, at 100 Hz: 12 s
    const d = startDaemon([
      '--model',
      model,
      '--source',
      `sim:imu?hz=100&streams=2&count=${N}`,
      '--sink',
      `mqtt://127.0.0.1:${broker.port}/preds/#?queue=${join(dir, 'queue')}`,
      '--log-level',
      'warn',
    ]);
    try {
      await waitFor(
        () => [...received.values()].reduce((n, l) => n + l.length, 0),
        (n) => n > 200,
        20000,
        'first predictions',
      );
      await broker.stop();
      await new Promise((r) => setTimeout(r, 5000));
      await broker.start();
      expect(await d.exited).toBe(0); // the simulated sensor ends after N samples; the daemon flushes and exits
      const ok = () => [...received.values()].every((l) => new Set(l.map((x) => x.seq)).size >= N) && received.size === 2;
      await waitFor(
        () => ok(),
        (v) => v,
        20000,
        'all predictions delivered',
      );
      for (const [stream, list] of received) {
        const seqs = [...new Set(list.map((x) => x.seq))].sort((a, b) => a - b);
        expect(seqs, stream).toEqual(Array.from({ length: N }, (_, i) => i));
        const dup = list.length - seqs.length;
        // Every later copy is explained: marked replay by the sink, or a broker redelivery (MQTT DUP flag).
        const unexplained = list.filter((x, i) => list.findIndex((y) => y.seq === x.seq) !== i && !x.replay && !x.dup).length;
        expect(dup).toBeLessThan(N / 10);
        expect(unexplained, stream).toBe(0);
      }
      expect([...received.values()].flat().some((x) => x.replay)).toBe(true); // the outage backlog was replayed
    } finally {
      if (d.proc.exitCode === null) d.proc.kill('SIGTERM');
      sub.end(true);
    }
  }, 90_000);
});
