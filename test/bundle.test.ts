/**
 * Bundles: build (float, int8, step, step-int8, preprocessing, signed manifest), run from a
 * bundle, and every tampering refused with exit 2 naming the file: a changed byte in the int8
 * model, an edited manifest, a wrong key, a missing signature.
 */
import { cp, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { runCli } from './helpers/cli.js';

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
let dir: string;
let bundle: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'streamcell-bundle-'));
  expect(runCli(['keygen', '-o', join(dir, 'keys')]).status).toBe(0);
  expect(runCli(['keygen', '-o', join(dir, 'other')]).status).toBe(0);
  bundle = join(dir, 'b');
  const r = runCli(['bundle', '--model', here('../models/co2-lstm'), '-o', bundle, '--sign', join(dir, 'keys/streamcell.key'), '--calibration', here('../models/co2-weekly-mauna-loa.csv'), '--json']);
  expect(r.status, r.stderr).toBe(0);
}, 120_000);

async function variant(name: string, damage: (d: string) => Promise<void>): Promise<string> {
  const d = join(dir, name);
  await cp(bundle, d, { recursive: true });
  await damage(d);
  return d;
}

const runBundle = (b: string, key = join(dir, 'keys/streamcell.pub')) =>
  runCli(['run', b, '--input', here('../models/co2-weekly-mauna-loa.csv'), '-o', join(dir, 'out.jsonl'), '--public-key', key]);

describe('bundles', () => {
  it('holds four models and preprocessing, each with its SHA-256, and a signature; keygen refuses to overwrite', async () => {
    const m = JSON.parse(await readFile(join(bundle, 'manifest.json'), 'utf8'));
    expect(Object.keys(m.files).sort()).toEqual(['float', 'int8', 'preprocessing', 'step', 'step_int8']);
    for (const f of Object.values(m.files) as { sha256: string }[]) expect(f.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(m.channels).toEqual(['co2']);
    expect(m.min_streamcell_version).toMatch(/^\d+\.\d+\.\d+/);
    expect((await readFile(join(bundle, 'manifest.sig'), 'utf8')).trim()).toMatch(/^[A-Za-z0-9+/]{86}==$/);
    const again = runCli(['keygen', '-o', join(dir, 'keys')]);
    expect(again.status).toBe(2);
    expect(again.stderr).toMatch(/refusing to overwrite/);
  });

  it('run accepts the verified bundle (float step model and its int8 twin)', () => {
    const r = runBundle(bundle);
    expect(r.status, r.stderr).toBe(0);
    const q = runCli(['run', bundle, '--int8', '--input', here('../models/co2-weekly-mauna-loa.csv'), '-o', join(dir, 'out8.jsonl')]);
    expect(q.status, q.stderr).toBe(0);
  });

  it('one byte of the int8 model changed → exit 2 naming int8.onnx', async () => {
    const b = await variant('byte', async (d) => {
      const f = join(d, 'int8.onnx');
      const bytes = await readFile(f);
      bytes[bytes.length >> 1] ^= 0x01;
      await writeFile(f, bytes);
    });
    const r = runBundle(b);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(join(b, 'int8.onnx'));
    expect(r.stderr).toMatch(/checksum mismatch/);
  });

  it('manifest edited → the signature no longer matches: exit 2 naming manifest.sig', async () => {
    const b = await variant('edited', async (d) => {
      const f = join(d, 'manifest.json');
      await writeFile(f, (await readFile(f, 'utf8')).replace('"version": "1.0.0"', '"version": "1.0.1"'));
    });
    const r = runBundle(b);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(join(b, 'manifest.sig'));
    expect(r.stderr).toMatch(/signature does not match the manifest/);
  });

  it('signed with another key → exit 2', () => {
    const r = runBundle(bundle, join(dir, 'other/streamcell.pub'));
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/signature does not match/);
  });

  it('unsigned bundle where a key is pinned → exit 2', async () => {
    const b = await variant('unsigned', async (d) => {
      const { rm } = await import('node:fs/promises');
      await rm(join(d, 'manifest.sig'));
    });
    const r = runBundle(b);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/the bundle is not signed/);
  });

  it('a manifest that lists a file outside the bundle is refused', async () => {
    const b = await variant('escape', async (d) => {
      const f = join(d, 'manifest.json');
      const m = JSON.parse(await readFile(f, 'utf8'));
      m.files.step.path = '../../etc/passwd';
      await writeFile(f, JSON.stringify(m));
    });
    const r = runCli(['run', b, '--input', here('../models/co2-weekly-mauna-loa.csv')]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/lies outside the bundle/);
  });
});
