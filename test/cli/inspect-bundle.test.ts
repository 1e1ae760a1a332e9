/**
 * `streamcell inspect BUNDLE_DIR`: manifest, signature state, verified checksums and each model's
 * ONNX summary, as text and --json; tampering and a wrong key are exit 2 like `run`.
 */
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { resignedCopy } from '../helpers/resign.js';

const BUNDLE = fileURLToPath(new URL('../../models/imu-activity.bundle', import.meta.url));
let dir: string;

interface Report {
  format: string;
  name: string;
  version: string;
  created: string;
  files: { role: string; path: string; bytes: number; sha256: string }[];
  signature: { present: boolean; verified: boolean };
  checksumsVerified: boolean;
  models: {
    role: string;
    format: string;
    inputs: { name: string }[];
    outputs: { name: string }[];
    ops: Record<string, number>;
    parameters: number;
    states: unknown[];
  }[];
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'streamcell-inspect-bundle-'));
  expect(runCli(['keygen', '-o', join(dir, 'keys')]).status).toBe(0);
  expect(runCli(['keygen', '-o', join(dir, 'other')]).status).toBe(0);
  // The shipped bundle is unsigned: a signed copy, the manifest unchanged.
  await resignedCopy(BUNDLE, join(dir, 'signed'), join(dir, 'keys/streamcell.key'), (m) => m);
});

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('inspect a bundle directory', () => {
  it('--json: manifest, file sizes, unsigned, checksums verified, the four models summarised', async () => {
    const r = runCli(['inspect', BUNDLE, '--json']);
    expect(r.status, r.stderr).toBe(0);
    const j = r.json as Report;
    const manifest = JSON.parse(await readFile(join(BUNDLE, 'manifest.json'), 'utf8'));
    expect(j).toMatchObject({ format: 'bundle', name: manifest.name, version: manifest.version, created: manifest.created, checksumsVerified: true });
    expect(j.signature).toEqual({ present: false, verified: false });
    expect(j.files.map((f) => f.role).sort()).toEqual(Object.keys(manifest.files).sort());
    for (const f of j.files) expect(f.bytes).toBe(manifest.files[f.role].bytes);
    expect(j.models.map((m) => m.role)).toEqual(['float', 'int8', 'step', 'step_int8']);
    // Each model's summary is the one `inspect FILE.onnx` gives.
    const step = runCli(['inspect', join(BUNDLE, 'step.onnx'), '--json']).json as Report['models'][number];
    const inBundle = j.models.find((m) => m.role === 'step')!;
    expect({ ...inBundle, role: undefined }).toEqual({ ...step, role: undefined });
    expect(inBundle.states.length).toBeGreaterThan(0);
  });

  it('text: name, version, signature state, files with sizes, each model', () => {
    const r = runCli(['inspect', BUNDLE]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^\S+imu-activity\.bundle \(bundle imu-activity 1\.0\.0, created \S+\)$/m);
    expect(r.stdout).toMatch(/^ {2}signature: not signed$/m);
    expect(r.stdout).toMatch(/^ {2}checksums: all 5 files verified$/m);
    expect(r.stdout).toMatch(/^ {4}step_int8 +step-int8\.onnx +[\d.]+ KiB/m);
    for (const role of ['float', 'int8', 'step', 'step_int8']) expect(r.stdout).toContain(`\nmodel ${role}:\n`);
  });

  it('signed: verified with --public-key or STREAMCELL_PUBLIC_KEY, not checked without, refused with another key (exit 2)', () => {
    const signed = join(dir, 'signed');
    const withKey = runCli(['inspect', signed, '--public-key', join(dir, 'keys/streamcell.pub'), '--json']);
    expect(withKey.status, withKey.stderr).toBe(0);
    expect((withKey.json as Report).signature).toEqual({ present: true, verified: true });
    const byEnv = runCli(['inspect', signed], { env: { STREAMCELL_PUBLIC_KEY: join(dir, 'keys/streamcell.pub') } });
    expect(byEnv.stdout).toMatch(/signature: signed, signature verified/);
    const noKey = runCli(['inspect', signed]);
    expect(noKey.status).toBe(0);
    expect(noKey.stdout).toMatch(/signature: signed, signature NOT checked/);
    const wrong = runCli(['inspect', signed, '--public-key', join(dir, 'other/streamcell.pub')]);
    expect(wrong.status).toBe(2);
    expect(wrong.stderr).toMatch(/signature does not match the manifest/);
    const unsigned = runCli(['inspect', BUNDLE, '--public-key', join(dir, 'keys/streamcell.pub')]);
    expect(unsigned.status).toBe(2);
    expect(unsigned.stderr).toMatch(/the bundle is not signed/);
  });

  it('a changed byte in a model: exit 2 naming the file', async () => {
    const d = join(dir, 'damaged');
    await cp(BUNDLE, d, { recursive: true });
    const f = join(d, 'int8.onnx');
    const bytes = await readFile(f);
    bytes[bytes.length >> 1] ^= 0x01;
    await writeFile(f, bytes);
    const r = runCli(['inspect', d]);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(f);
    expect(r.stderr).toMatch(/checksum mismatch/);
  });
});
