/**
 * The durable disk queue (src/devices/queue) on its own, no broker: recovery after a torn write.
 */
import { spawnSync } from 'node:child_process';
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

describe('DiskQueue on a disk that fills up', () => {
  it('a batch bigger than the free space fails with ENOSPC (not a silent short write), and the segment keeps whole records only', () => {
    const dir = mkdtempSync(join(tmpdir(), 'streamcell-diskqueue-full-'));
    const mod = new URL('../../dist/devices/queue/disk-queue.js', import.meta.url).href;
    // One tick writes ~200 KB into a 32 KiB tmpfs (a private mount namespace, as in daemon-faults).
    const script = `
      const { DiskQueue } = await import(${JSON.stringify(mod)});
      const fs = await import('node:fs');
      const q = new DiskQueue(process.argv[1], { maxBytes: 1 << 24 });
      for (let i = 0; i < 1000; i++) q.append('x', JSON.stringify({ stream: 'x', seq: i, t: i, input: [i], outputs: { y: [i / 7, 'p'.repeat(150)] } }));
      let code = 'none';
      try { q.tick(q.nextQ); } catch (e) { code = e.code; }
      const seg = fs.readdirSync(process.argv[1]).find((f) => f.startsWith('seg-'));
      const text = fs.readFileSync(process.argv[1] + '/' + seg, 'utf8');
      const lines = text.split('\\n');
      const whole = text === '' || (text.endsWith('\\n') && lines.slice(0, -1).every((l) => { try { JSON.parse(l); return true; } catch { return false; } }));
      console.log(JSON.stringify({ code, whole, bytes: text.length, depth: q.depth }));
    `;
    try {
      const r = spawnSync(
        'unshare',
        [
          '--user',
          '--map-root-user',
          '--mount',
          'sh',
          '-c',
          `mount -t tmpfs -o size=32k tmpfs "$1" && exec "${process.execPath}" --input-type=module -e "$2" "$1"`,
          'sh',
          dir,
          script,
        ],
        { encoding: 'utf8', timeout: 30_000 },
      );
      expect(r.status, r.stderr).toBe(0);
      const got = JSON.parse(r.stdout.trim().split('\n').pop()!) as { code: string; whole: boolean; bytes: number; depth: number };
      expect(got.code).toBe('ENOSPC');
      expect(got.whole).toBe(true);
      // Nothing was marked written: every record is still held (in memory) for the next tick.
      expect(got.depth).toBe(1000);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
