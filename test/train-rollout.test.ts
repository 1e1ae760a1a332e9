/**
 * Multi-step training (`rolloutLoss`): the rolled-out graph equals the model applied step by
 * step with each prediction fed back as streaming does it; its targets are the next steps'
 * changes; training with it runs, is reported, and is refused where it cannot apply.
 */
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadTfjs } from '../src/export/tfjs-backend.js';
import { parseArch } from '../src/train/arch.js';
import { forecastWindows, rolloutWindows } from '../src/train/data.js';
import { buildModel, rolloutModel } from '../src/train/model.js';
import { trainModel } from '../src/train/train.js';

const CO2 = join(fileURLToPath(new URL('..', import.meta.url)), 'models', 'co2-weekly-mauna-loa.csv');
let small: string;

beforeAll(async () => {
  const tmp = await mkdtemp(join(tmpdir(), 'streamcell-train-rollout-'));
  small = join(tmp, 'co2-small.csv');
  await writeFile(small, (await readFile(CO2, 'utf8')).split('\n').slice(0, 301).join('\n') + '\n');
});

describe('rolloutModel', () => {
  it('equals the model applied step by step, each output fed back into the target channel, the other channel held', async () => {
    const { tf } = await loadTfjs('train');
    const W = 6;
    const C = 2;
    const model = buildModel(tf, { arch: parseArch('lstm:5'), task: 'forecast', channels: C, outputs: 1, seed: 3, dropout: 0 });
    const o = { steps: 5, window: W, channels: C, add: 0.03, scale: 0.7 };
    const rolled = rolloutModel(tf, model, o);
    const x = Float32Array.from({ length: 3 * W * C }, (_, i) => Math.sin(i * 0.37));
    const got = (await (rolled.predict(tf.tensor3d(x, [3, W, C])) as ReturnType<typeof tf.tensor>).data()) as Float32Array;
    for (let b = 0; b < 3; b++) {
      const win = Array.from({ length: W }, (_, t) => [x[(b * W + t) * C]!, x[(b * W + t) * C + 1]!]);
      for (let j = 0; j < o.steps; j++) {
        const y = (await (model.predict(tf.tensor3d(win.flat(), [1, W, C])) as ReturnType<typeof tf.tensor>).data())[0]!;
        // float32 through the same kernels, window rebuilt in float64 here: 1e-5 covers the rounding.
        expect(Math.abs(got[b * o.steps + j]! - y)).toBeLessThan(1e-5);
        const last = win[W - 1]!;
        win.shift();
        win.push([last[0]! + o.add + o.scale * y, last[1]!]);
      }
    }
  });

  it('rolloutWindows: the one-step windows with steps rows ahead, each step’s standardised change as a target', () => {
    const z = [Float32Array.from({ length: 40 }, (_, i) => i / 10)];
    const v = Float64Array.from({ length: 40 }, (_, i) => i * i);
    const out = { mean: 1, std: 2 };
    const one = forecastWindows(z, v, out, 5, 1, 10, 30);
    const four = rolloutWindows(z, v, out, 5, 4, 10, 30);
    expect(Array.from(four.positions)).toEqual(Array.from(one.positions).filter((t) => t + 3 < 30));
    four.positions.forEach((t, i) => {
      for (let j = 0; j < 4; j++) expect(four.y[i * 4 + j]).toBeCloseTo((v[t + j]! - v[t + j - 1]! - 1) / 2, 5);
      expect(four.y[i * 4]).toBeCloseTo(one.y[i]!, 6);
    });
  });
});

describe('trainModel({ rolloutLoss })', () => {
  it('trains on the K-step loss and reports it; refused for a horizon other than 1 or a bad count', async () => {
    const { report } = await trainModel({ data: small, target: 'co2', window: 12, arch: 'lstm:6', epochs: 2, rolloutLoss: 4, seed: 1 });
    expect(report.training.rolloutLoss).toBe(4);
    expect(report.training.history.every((e) => Number.isFinite(e.loss) && Number.isFinite(e.valLoss!))).toBe(true);
    const e = await trainModel({ data: small, target: 'co2', window: 12, arch: 'lstm:6', epochs: 1, rolloutLoss: 4, horizon: 2 }).catch((x: unknown) => x);
    expect(e).toMatchObject({ message: "option 'rolloutLoss' is 4", context: { expected: '1 unless forecasting one step ahead (horizon 1)' } });
    await expect(trainModel({ data: small, target: 'co2', window: 12, arch: 'lstm:6', epochs: 1, rolloutLoss: 0 })).rejects.toThrow(/rolloutLoss/);
  }, 60_000);
});
