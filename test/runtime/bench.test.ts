/** benchPool runs end to end and reports sane figures (the numbers themselves are machine-bound). */
import { describe, expect, it } from 'vitest';
import { benchPool } from '../../src/runtime/bench.js';
import { lstmStepModel } from './models.js';

describe('benchPool', () => {
  it('measures latency against bare session.run, throughput per stream count, memory per 1000 streams', async () => {
    const r = await benchPool(lstmStepModel({ hidden: 8 }), { streams: [1, 4], steps: 40, memoryStreams: 200 });
    expect(r.backend.name).toBe('onnxruntime-node');
    expect(r.states.map((s) => s.name)).toEqual(['lstm.h', 'lstm.c']);
    expect(r.latency.pool.n).toBe(40);
    expect(r.latency.bare.n).toBe(40);
    expect(r.latency.pool.p50Us).toBeGreaterThan(0);
    expect(r.latency.pool.p99Us).toBeGreaterThanOrEqual(r.latency.pool.p50Us);
    expect(Number.isFinite(r.latency.ratioPaired)).toBe(true);
    expect(r.throughput.map((t) => [t.streams, t.meanBatchSize])).toEqual([
      [1, 1],
      [4, 4],
    ]);
    expect(r.throughput.every((t) => t.streamStepsPerSec > 0 && t.bareStreamStepsPerSec > 0)).toBe(true);
    expect(r.memory.streams).toBe(200);
    expect(r.memory.stateBytesPerStream).toBe(64);
  });

  it('refuses bad options with a RangeError naming the option', async () => {
    await expect(benchPool(lstmStepModel(), { streams: [0], steps: 10 })).rejects.toThrow(/'streams'/);
    await expect(benchPool(lstmStepModel(), { streams: [1], steps: 0 })).rejects.toThrow(/'steps'/);
  });
});
