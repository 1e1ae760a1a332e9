/**
 * The durable disk queue (src/devices/queue) on its own, no broker: recovery after a torn write.
 */
import { appendFileSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DiskQueue } from '../../src/devices/queue/disk-queue.js';
import type { PredictionRecord } from '../../src/devices/types.js';

function prediction(stream: string, seq: number): PredictionRecord {
  return { stream, seq, t: 1_717_000_000_000 + seq * 5, input: [seq * 0.01, -seq * 0.02], outputs: { y: [Math.sin(seq / 10)] }, forecast: seq * 0.5 };
}

describe('DiskQueue (no broker)', () => {
  it('recovers after a torn write: pending records kept in order, the torn line counted, appends continue', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'streamcell-diskqueue-'));
    try {
      const a = new DiskQueue(dir, { maxBytes: 1 << 20 });
      for (let s = 0; s < 20; s++) a.append('x', JSON.stringify(prediction('x', s)));
      for (let q = 0; q < 5; q++) a.ack(q);
      await a.sync();
      // A crash: no close(), and half a line at the end of the segment.
      const seg = readdirSync(dir).find((f) => f.startsWith('seg-'))!;
      appendFileSync(join(dir, seg), '{"q":20,"r":{"stream":"x","se');
      let corrupt = 0;
      const b = new DiskQueue(dir, { onCorrupt: (n) => (corrupt += n) });
      expect(corrupt).toBe(1);
      expect([b.acked, b.nextQ, b.depth]).toEqual([5, 20, 15]);
      b.append('x', JSON.stringify(prediction('x', 20)));
      const drain = async (from: number, stopAt = Infinity) => {
        const got: number[] = [];
        for (;;) {
          const n = b.next(from);
          if (!n || got.length >= stopAt) return got;
          if ('load' in n) {
            await b.load(n.load);
            continue;
          }
          got.push((JSON.parse(n.entry.json) as PredictionRecord).seq);
          from = n.entry.q + 1;
        }
      };
      expect(await drain(0, 8)).toEqual([5, 6, 7, 8, 9, 10, 11, 12]);
      // A reconnect restarts delivery from the oldest unacknowledged record.
      expect(await drain(0)).toEqual(Array.from({ length: 16 }, (_, k) => k + 5));
      expect(corrupt).toBe(1);
      await b.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
