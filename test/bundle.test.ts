/**
 * Bundles: build (float, int8, step, step-int8, preprocessing, signed manifest), run from a
 * bundle, and every tampering refused with exit 2 naming the file: a changed byte in the int8
 * model, an edited manifest, a wrong key, a missing signature.
 */
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from './helpers/cli.js';
import { resignedCopy } from './helpers/resign.js';

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
let dir: string;
let bundle: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'streamcell-bundle-'));
  expect(runCli(['keygen', '-o', join(dir, 'keys')]).status).toBe(0);
  expect(runCli(['keygen', '-o', join(dir, 'other')]).status).toBe(0);
  bundle = join(dir, 'b');
  const r = runCli([
    'bundle',
    '--model',
    here('../models/co2-lstm'),
    '-o',
    bundle,
    '--sign',
    join(dir, 'keys/streamcell.key'),
    '--calibration',
    here('../models/co2-weekly-mauna-loa.csv'),
    '--json',
  ]);
  expect(r.status, r.stderr).toBe(0);
}, 120_000);

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

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

  it('run accepts the verified bundle (float step model, its int8 twin, the default): the predictions of its step models run directly', async () => {
    const csv = here('../models/co2-weekly-mauna-loa.csv');
    const rows = (await readFile(csv, 'utf8')).trim().split('\n').length - 1; // less the header
    // Predictions without the wall-clock field: everything else must match line for line.
    const predictions = async (f: string) =>
      (await readFile(f, 'utf8'))
        .trim()
        .split('\n')
        .map((l) => {
          const { t, ...rest } = JSON.parse(l) as Record<string, unknown>;
          expect(typeof t).toBe('number');
          return rest;
        });
    const dropped = (stderr: string) => Number(/^dropped: non-finite (\d+)$/m.exec(stderr)?.[1] ?? 0);
    // With no flag, run loads the manifest's step_default (chosen by bundle --prefer).
    const m = JSON.parse(await readFile(join(bundle, 'manifest.json'), 'utf8'));
    expect(['step', 'step_int8']).toContain(m.step_default);
    for (const [flag, step] of [
      [['--float'], 'step.onnx'],
      [['--int8'], 'step-int8.onnx'],
      [[], m.files[m.step_default].path as string],
    ] as const) {
      const out = join(dir, `via-bundle${flag.join('')}.jsonl`);
      const r = runCli(['run', bundle, ...flag, '--input', csv, '-o', out, '--public-key', join(dir, 'keys/streamcell.pub')]);
      expect(r.status, r.stderr).toBe(0);
      const direct = join(dir, `direct-${step}${flag.join('')}.jsonl`);
      const d = runCli(['run', join(bundle, step), '--input', csv, '-o', direct]);
      expect(d.status, d.stderr).toBe(0);
      const got = await predictions(out);
      const want = await predictions(direct);
      expect(got.length, step).toBe(rows - dropped(r.stderr));
      expect(dropped(r.stderr)).toBe(dropped(d.stderr));
      expect(got, step).toEqual(want);
      expect(got[0]).toMatchObject({ stream: 'default', seq: 0 });
      expect(Number.isFinite((got[0]!.outputs as { delta: number[] }).delta[0])).toBe(true);
    }
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

describe('malformed manifests (signed, so only the structure is under test): exit 2 naming the manifest and the field, never 3', () => {
  const cases: [string, (m: any) => unknown, string, RegExp][] = [
    ['entry null', (m) => void (m.files.step = null), 'files.step', /files\.step is null, not an object/],
    ['sha256 missing', (m) => void delete m.files.step.sha256, 'files.step.sha256', /files\.step\.sha256 is missing/],
    ['sha256 not hex', (m) => void (m.files.int8.sha256 = 'abc'), 'files.int8.sha256', /files\.int8\.sha256 is the string/],
    ['path a number', (m) => void (m.files.step.path = 123), 'files.step.path', /files\.step\.path is number, not a string/],
    ['path in a subfolder', (m) => void (m.files.step.path = 'sub/step.onnx'), 'files.step.path', /not a plain file name/],
    ['path the manifest', (m) => void (m.files.step.path = 'manifest.json'), 'files.step.path', /is the manifest itself/],
    ['bytes negative', (m) => void (m.files.step.bytes = -1), 'files.step.bytes', /files\.step\.bytes is number -1/],
    ['files a string', (m) => void (m.files = 'x'), 'files', /'files' is the string "x", not an object/],
    ['files null', (m) => void (m.files = null), 'files', /'files' is null, not an object/],
    ['files an array', (m) => void (m.files = []), 'files', /'files' is an array, not an object/],
    ['files empty', (m) => void (m.files = {}), 'files', /lists no file/],
    ['format 2', (m) => void (m.format = 2), 'format', /unsupported bundle format 2/],
    ['name missing', (m) => void delete m.name, 'name', /the bundle name is undefined, not a string/],
    ['not JSON', () => 'not json {', '(manifest)', /manifest is not valid JSON/],
    ['an array', () => '[1, 2]', '(manifest)', /the manifest is an array, not a JSON object/],
    ['huge (2 MiB)', (m) => void (m.padding = 'x'.repeat(2 << 20)), 'manifest.json', /the file has \d+ bytes, more than 1048576/],
  ];
  for (const [name, edit, field, why] of cases) {
    it(name, async () => {
      const b = await resignedCopy(bundle, join(dir, `m-${name.replace(/\W+/g, '-')}`), join(dir, 'keys/streamcell.key'), edit);
      const r = runBundle(b);
      expect(r.status, r.stderr).toBe(2);
      expect(r.stderr).toContain(`${join(b, 'manifest.json')}, field '${field}'`);
      expect(r.stderr).toMatch(why);
    });
  }

  it('bundle refuses a name or version that cannot name a folder, before any work', () => {
    for (const [flag, value] of [
      ['--name', '.hidden'],
      ['--bundle-version', '1/2'],
      ['--name', 'a b'],
      ['--bundle-version', 'v'.repeat(101)],
    ]) {
      const r = runCli(['bundle', '--model', here('../models/co2-lstm'), '-o', join(dir, 'never'), '--sign', join(dir, 'keys/streamcell.key'), flag!, value!]);
      expect(r.status, r.stderr).toBe(2);
      expect(r.stderr).toContain(`field '${flag}'`);
    }
    expect(existsSync(join(dir, 'never'))).toBe(false);
  });
});
