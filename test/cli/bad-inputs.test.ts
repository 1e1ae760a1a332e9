/**
 * Acceptance 3: every malformed model a user can hand `streamcell export` stops with exit 2
 * and a message naming the file and the cause; nothing is written.
 */
import { cp, mkdtemp, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { setSeededWeights } from '../helpers/models.js';
import { saveModel } from '../helpers/tfjs-save.js';

let good: string;
let root: string;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'streamcell-bad-'));
  good = join(root, 'good');
  const m = tf.sequential({ layers: [tf.layers.lstm({ units: 4, inputShape: [null, 3], name: 'lstm' }), tf.layers.dense({ units: 1, name: 'head' })] });
  await saveModel(setSeededWeights(m), good);
});

/** Copies the good model to a fresh directory and lets the test damage it. */
async function variant(name: string, damage: (dir: string) => Promise<void>): Promise<string> {
  const dir = join(root, name);
  await cp(good, dir, { recursive: true });
  await damage(dir);
  return dir;
}

async function editJson(dir: string, edit: (j: Record<string, any>) => void): Promise<void> {
  const p = join(dir, 'model.json');
  const j = JSON.parse(await readFile(p, 'utf8'));
  edit(j);
  await writeFile(p, JSON.stringify(j));
}

function exportFails(dir: string, ...extra: string[]) {
  const out = join(dir, 'out.onnx');
  const r = runCli(['export', join(dir, 'model.json'), '-o', out, ...extra]);
  return { ...r, wrote: existsSync(out) };
}

describe('export refuses bad models with exit 2 naming file and cause', () => {
  it('the undamaged model exports (control)', () => {
    const r = runCli(['export', join(good, 'model.json'), '-o', join(root, 'good.onnx')]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/parity vs tfjs predict.*OK/);
  });

  it('missing weight file', async () => {
    const dir = await variant('missing', (d) => rm(join(d, 'weights.bin')));
    const r = exportFails(dir);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(join(dir, 'weights.bin'));
    expect(r.stderr).toMatch(/cannot be read: ENOENT/);
    expect(r.wrote).toBe(false);
  });

  it('truncated weight file', async () => {
    const dir = await variant('truncated', (d) => truncate(join(d, 'weights.bin'), 40));
    const r = exportFails(dir);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('weights.bin');
    expect(r.stderr).toMatch(/hold 40 bytes but the manifest's weights need \d+: the file is truncated/);
    expect(r.wrote).toBe(false);
  });

  it('wrong weight shape in the manifest (same byte count)', async () => {
    const dir = await variant('shape', (d) =>
      editJson(d, (j) => {
        const k = j.weightsManifest[0].weights.find((w: { name: string }) => w.name === 'lstm/kernel');
        k.shape = [...k.shape].reverse();
      }),
    );
    const r = exportFails(dir);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(join(dir, 'model.json'));
    expect(r.stderr).toMatch(/weight 'lstm\/kernel' has shape \[16,3\].*expected \[3,16\] for layer 'lstm' \(LSTM\)/);
    expect(r.wrote).toBe(false);
  });

  it('wrong weight shape in the manifest (byte count differs)', async () => {
    const dir = await variant('shape2', (d) =>
      editJson(d, (j) => {
        j.weightsManifest[0].weights.find((w: { name: string }) => w.name === 'head/kernel').shape = [4, 2];
      }),
    );
    const r = exportFails(dir);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/need \d+: the file is truncated or the manifest's shapes are wrong/);
  });

  it('unknown layer class', async () => {
    const dir = await variant('unknown', (d) =>
      editJson(d, (j) => {
        j.modelTopology.config.layers[1].class_name = 'FancyAttention';
      }),
    );
    const r = exportFails(dir);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(join(dir, 'model.json'));
    expect(r.stderr).toMatch(/layer 'head' \(FancyAttention\): layer class 'FancyAttention' is not supported/);
    expect(r.stderr).toMatch(/Supported: .*Bidirectional.*LSTM/);
    expect(r.wrote).toBe(false);
  });

  it('unsupported option names the layer and option', async () => {
    const dir = await variant('option', (d) =>
      editJson(d, (j) => {
        j.modelTopology.config.layers[0].config.activation = 'crelu';
      }),
    );
    const r = exportFails(dir);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/layer 'lstm' \(LSTM\): activation 'crelu' is not supported/);
    expect(r.stderr).toMatch(/Supported: linear, relu/);
  });

  it('model.json that is not JSON', async () => {
    const dir = await variant('notjson', (d) => writeFile(join(d, 'model.json'), '{"modelTopology": {"class_name": "Sequential",'));
    const r = exportFails(dir);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(join(dir, 'model.json'));
    expect(r.stderr).toMatch(/model.json is not valid JSON/);
  });

  it('NaN weights are refused (a NaN weight makes every prediction NaN); --allow-nan overrides', async () => {
    const dir = await variant('nan', async (d) => {
      const buf = await readFile(join(d, 'weights.bin'));
      new DataView(buf.buffer, buf.byteOffset).setFloat32(8, NaN, true);
      await writeFile(join(d, 'weights.bin'), buf);
    });
    const r = exportFails(dir);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/weights 'lstm\/kernel' contain NaN or Infinity/);
    expect(r.stderr).toContain('--allow-nan');
    expect(r.wrote).toBe(false);
    const forced = runCli(['export', join(dir, 'model.json'), '-o', join(dir, 'forced.onnx'), '--allow-nan', '--no-verify']);
    expect(forced.status).toBe(0);
    expect(existsSync(join(dir, 'forced.onnx'))).toBe(true);
  });

  it('--json reports the error as a JSON document', async () => {
    const dir = await variant('json', (d) => rm(join(d, 'weights.bin')));
    const r = runCli(['export', join(dir, 'model.json'), '-o', join(dir, 'o.onnx'), '--json']);
    expect(r.status).toBe(2);
    expect(r.json).toMatchObject({ ok: false, exitCode: 2, error: { name: 'InputError', file: join(dir, 'weights.bin') } });
  });

  it('bad usage (missing -o) exits 2', () => {
    const r = runCli(['export', join(good, 'model.json')]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/Missing required argument: output/);
  });
});
