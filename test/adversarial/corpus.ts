/**
 * A corpus of hostile inputs, generated into a temp folder from the small valid fixtures the
 * repository ships (`models/co2-lstm`, `models/imu-activity.bundle`, `models/imu-activity/data.csv`),
 * and the command lines that feed each one to every command that takes it.
 */
import { cp, mkdir, readFile, truncate, writeFile } from 'node:fs/promises';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CLI } from '../helpers/cli.js';
import { decodeModel, encodeModel, onnx, type ModelProto, type ValueInfoProto } from '../../src/onnx/proto.js';

export const REPO = fileURLToPath(new URL('../../', import.meta.url));
export const MODELS = join(REPO, 'models');
const BUNDLE = join(MODELS, 'imu-activity.bundle');
const FLOAT = join(BUNDLE, 'float.onnx');
const STEP = join(BUNDLE, 'step.onnx');
const INT8 = join(BUNDLE, 'int8.onnx');
const IMU_CSV = join(MODELS, 'imu-activity', 'data.csv');
const CO2 = join(MODELS, 'co2-lstm');

/** One command line run against one hostile file. */
export interface Case {
  /** `<command> <file-label>`, unique. */
  id: string;
  command: string;
  /** The hostile file (or folder): a clean exit 2 names it (its basename at least). */
  file: string;
  args: string[];
  /**
   * Exit statuses that count as handled: [2] for input that is broken for this command (0
   * would be a silent wrong answer), [0] for input that is valid, [0, 2] where either a
   * result or a clear refusal is right.
   */
  expect: number[];
}

/** Deterministic bytes (xorshift) so a failing case reproduces. */
function noise(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

/** A one-node graph X → op → Y, float32 [batch, 4]. */
function tinyModel(op: string, opset: number, extra: (m: ModelProto) => void = () => {}): Uint8Array {
  const vi = (name: string, dims: (number | string)[]) => ({
    name,
    type: { tensorType: { elemType: 1, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } },
  });
  const m: ModelProto = {
    irVersion: 8,
    opsetImport: [{ domain: '', version: opset }],
    producerName: 'adversarial',
    graph: { name: 'g', node: [{ opType: op, input: ['X'], output: ['Y'], name: 'n0' }], input: [vi('X', ['batch', 4])], output: [vi('Y', ['batch', 4])] },
  };
  extra(m);
  return encodeModel(m);
}

/** float.onnx ([batch, time, 3] → [batch, 3]) with an edit applied. */
async function editFloat(edit: (m: ReturnType<typeof decodeModel>) => void): Promise<Uint8Array> {
  const m = decodeModel(new Uint8Array(await readFile(FLOAT)));
  edit(m);
  return onnx.ModelProto.encode(m).finish();
}

function setDims(vi: ValueInfoProto, dims: (number | string)[]): void {
  vi.type!.tensorType!.shape!.dim = dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d }));
}

/** Writes the hostile ONNX files; returns label → path. */
async function onnxFiles(dir: string): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  const put = async (name: string, bytes: Uint8Array | string) => {
    const p = join(dir, name);
    await writeFile(p, bytes);
    files.set(name, p);
  };
  const good = new Uint8Array(await readFile(FLOAT));
  await put('empty.onnx', new Uint8Array(0));
  for (const at of [1, 17, Math.floor(good.length / 2), good.length - 7]) await put(`truncated-${at}.onnx`, good.subarray(0, at));
  await put('random.onnx', noise(4096, 12));
  // A valid protobuf message that is not a model: a TensorProto.
  await put('tensor-not-model.onnx', onnx.TensorProto.encode({ name: 'w', dims: [2, 2], dataType: 1, floatData: [1, 2, 3, 4] }).finish());
  await put('text.onnx', 'this is not an ONNX model\n'.repeat(20));
  await put('unknown-op.onnx', tinyModel('FrobnicateV2', 17));
  await put('wrong-opset.onnx', tinyModel('Relu', 999));
  await put('huge-time-dim.onnx', await editFloat((m) => setDims(m.graph!.input![0], ['batch', 1_000_000_000, 3])));
  // Long but generatable: 50 000 fixed steps (a check runs a bounded prefix on the freed model).
  await put('long-time-dim.onnx', await editFloat((m) => setDims(m.graph!.input![0], ['batch', 50_000, 3])));
  await put('huge-feature-dim.onnx', await editFloat((m) => setDims(m.graph!.input![0], ['batch', 'time', 1_000_000_000])));
  await put('huge-batch-dim.onnx', await editFloat((m) => setDims(m.graph!.input![0], [2_000_000_000, 'time', 3])));
  await put('negative-dim.onnx', await editFloat((m) => setDims(m.graph!.input![0], ['batch', -5, 3])));
  await put(
    'dangling-input.onnx',
    await editFloat((m) => {
      m.graph!.node![0].input![0] = 'no_such_tensor';
    }),
  );
  await put(
    'huge-initializer.onnx',
    await editFloat((m) => {
      const t = m.graph!.initializer![0];
      t.dims = [1_000_000, 1_000_000];
    }),
  );
  return files;
}

/** Writes the hostile tfjs model folders (each a copy of models/co2-lstm, damaged); returns label → model.json. */
async function modelJsonFiles(dir: string): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  const text = await readFile(join(CO2, 'model.json'), 'utf8');
  const variant = async (name: string, damage: (d: string, json: Record<string, any>) => Promise<string | void> | string | void) => {
    const d = join(dir, name);
    await cp(CO2, d, { recursive: true });
    const json = JSON.parse(text);
    const replaced = await damage(d, json);
    await writeFile(join(d, 'model.json'), typeof replaced === 'string' ? replaced : JSON.stringify(json));
    files.set(name, join(d, 'model.json'));
  };
  const lstm = (j: Record<string, any>) => j.modelTopology.config.layers[0].config;
  await variant('mj-not-json', () => text.slice(0, 200));
  await variant('mj-empty', () => '');
  await variant('mj-array', () => '[1, 2, 3]');
  await variant('mj-no-topology', (_d, j) => void delete j.modelTopology);
  await variant('mj-layers-not-array', (_d, j) => void (j.modelTopology.config.layers = 'lstm'));
  await variant('mj-units-string', (_d, j) => void (lstm(j).units = 'sixteen'));
  await variant('mj-negative-units', (_d, j) => void (lstm(j).units = -4));
  await variant('mj-huge-time', (_d, j) => void (lstm(j).batch_input_shape = [null, 1e9, 1]));
  await variant('mj-huge-batch', (_d, j) => void (lstm(j).batch_input_shape = [1e9, null, 1]));
  await variant('mj-huge-features', (_d, j) => void (lstm(j).batch_input_shape = [null, null, 1e9]));
  await variant('mj-fractional-dim', (_d, j) => void (lstm(j).batch_input_shape = [null, 2.5, 1]));
  await variant('mj-no-manifest', (_d, j) => void delete j.weightsManifest);
  await variant('mj-manifest-paths-string', (_d, j) => void (j.weightsManifest[0].paths = 'weights.bin'));
  await variant(
    'mj-missing-weights',
    async (d) => void (await writeFile(join(d, 'weights.bin.gone'), ''), await import('node:fs/promises').then((f) => f.rm(join(d, 'weights.bin')))),
  );
  await variant('mj-short-weights', async (d) => void (await truncate(join(d, 'weights.bin'), 100)));
  await variant('mj-traversal', (_d, j) => void (j.weightsManifest[0].paths = ['../../../../../../../../etc/passwd']));
  await variant('mj-huge-weight-shape', (_d, j) => void (j.weightsManifest[0].weights[0].shape = [1e6, 1e6]));
  return files;
}

/** Hostile CSVs derived from the IMU recording (time,ax,ay,az,activity); returns label → path. */
async function csvFiles(dir: string): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  const text = await readFile(IMU_CSV, 'utf8');
  const lines = text
    .split('\n')
    .filter((l) => l.length > 0)
    .slice(0, 600);
  const put = async (name: string, body: string | Uint8Array) => {
    const p = join(dir, name);
    await writeFile(p, body);
    files.set(name, p);
  };
  await put('empty.csv', '');
  await put('header-only.csv', lines[0] + '\n');
  await put(
    'missing-column.csv',
    lines
      .map((l) =>
        l
          .split(',')
          .filter((_c, i) => i !== 3)
          .join(','),
      )
      .join('\n') + '\n',
  );
  await put('non-numeric.csv', [lines[0], ...lines.slice(1).map((l) => l.replace(/-?\d+\.\d+/g, 'abc'))].join('\n') + '\n');
  await put('one-10mb-line.csv', 'x,'.repeat(5 * 1024 * 1024));
  await put('nul-bytes.csv', Buffer.from(lines.join('\n').replace(/,/g, ',\0'), 'utf8'));
  await put('crlf.csv', lines.join('\r\n') + '\r\n');
  await put('bom.csv', '\ufeff' + lines.join('\n') + '\n');
  return files;
}

/**
 * Generates the corpus under `dir` and lists every (file, command) case. Outputs go to
 * `dir/out`, so nothing is written beside the fixtures.
 */
export async function buildCorpus(dir: string): Promise<Case[]> {
  const out = join(dir, 'out');
  await mkdir(out, { recursive: true });
  await mkdir(join(dir, 'onnx'), { recursive: true });
  await mkdir(join(dir, 'tfjs'), { recursive: true });
  await mkdir(join(dir, 'csv'), { recursive: true });
  const onnxs = await onnxFiles(join(dir, 'onnx'));
  const jsons = await modelJsonFiles(join(dir, 'tfjs'));
  const csvs = await csvFiles(join(dir, 'csv'));
  // A short good recording for the commands that need one beside the hostile model.
  const goodCsv = join(dir, 'good.csv');
  await writeFile(goodCsv, (await readFile(IMU_CSV, 'utf8')).split('\n').slice(0, 200).join('\n') + '\n');

  // The co2 model as ONNX, for `bench --tfjs` with its damaged model.json variants.
  const co2Onnx = join(dir, 'co2.onnx');
  const r = spawnSync(process.execPath, [CLI, 'export', CO2, '-o', co2Onnx, '--no-verify'], { encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) throw new Error(`exporting ${CO2} for the corpus failed: ${r.stderr}`);

  const cases: Case[] = [];
  const add = (command: string, label: string, file: string, args: string[], expect = [2]) =>
    cases.push({ id: `${command} ${label}`, command, file, args, expect });
  let n = 0;
  const o = (ext = '.onnx') => join(out, `o${n++}${ext}`);

  // inspect describes what a file declares without running it: a graph onnxruntime refuses, or
  // one declaring huge sizes, may be described. A declared 10⁹-step time axis may stream.
  const describable = /unknown-op|wrong-opset|huge-|long-|dangling|^mj-(huge|units|negative|no-manifest|fractional)/;
  for (const [label, f] of onnxs) {
    add('inspect', label, f, ['inspect', f], describable.test(label) ? [0, 2] : [2]);
    // A declared time axis of 50 000 or 10⁹ steps streams: the step check and the benchmark use
    // a bounded number of steps on the model with its time freed.
    const streams = /(huge|long)-time-dim/.test(label) ? [0] : [2];
    add('streamify', label, f, ['streamify', f, '-o', o()], streams);
    add('quantize', label, f, ['quantize', f, '-o', o(), '--mode', 'int8'], label === 'huge-time-dim.onnx' ? [0, 2] : [2]);
    add('verify', label, f, ['verify', FLOAT, f]);
    add('bench', label, f, ['bench', f, '--steps', '10', '--streams', '1,2', '--window', '8'], streams);
    add('run', label, f, ['run', f, '--input', goodCsv, '-o', o('.jsonl')]);
    add('stream', label, f, ['stream', '--model', f, '--source', `file:${goodCsv}`, '--sink', `jsonl:${o('.jsonl')}`, '--duration', '5']);
  }
  for (const [label, f] of jsons) {
    add('inspect', label, f, ['inspect', f], describable.test(label) ? [0, 2] : [2]);
    add('export', label, f, ['export', f, '-o', o()]);
    add('export --streaming', label, f, ['export', f, '-o', o(), '--streaming']);
    add('verify', label, f, ['verify', f, FLOAT]);
    add('bench --tfjs', label, f, ['bench', co2Onnx, '--tfjs', f, '--steps', '10', '--streams', '1', '--window', '8']);
    add('run', label, f, ['run', f, '--input', goodCsv, '-o', o('.jsonl')]);
    add('streamify', label, f, ['streamify', f, '-o', o()]);
    add('quantize', label, f, ['quantize', f, '-o', o(), '--mode', 'int8']);
  }
  for (const [label, f] of csvs) {
    // CRLF line ends and a BOM are ordinary CSVs: they must work.
    const valid = /crlf|bom/.test(label) ? [0] : [2];
    add('run', label, f, ['run', BUNDLE, '--input', f, '-o', o('.jsonl')], valid);
    add(
      'train',
      label,
      f,
      [
        'train',
        '--data',
        f,
        '--label',
        'activity',
        '--inputs',
        'ax,ay,az',
        '--window',
        '16',
        '--arch',
        'lstm:4',
        '--epochs',
        '1',
        '-o',
        join(out, `train${n++}`),
      ],
      valid,
    );
    add('verify --data', label, f, ['verify', FLOAT, INT8, '--data', f], valid);
    add('quantize --eval', label, f, ['quantize', FLOAT, '-o', o(), '--mode', 'int8', '--eval', f], valid);
    // The daemon keeps serving through lines it drops (counted in its metrics).
    add('stream', label, f, ['stream', '--model', STEP, '--source', `file:${f}`, '--sink', `jsonl:${o('.jsonl')}`, '--duration', '5'], [0, 2]);
  }
  // Sizes from flags.
  const flag = (label: string, args: string[]) => add(args[0]!, label, '', args);
  const trainCsv = IMU_CSV;
  flag('--streams 1e8', ['bench', STEP, '--streams', '100000000', '--steps', '10']);
  flag('--steps 1e9', ['bench', STEP, '--streams', '1', '--steps', '1000000000']);
  flag('--window 1e9', ['bench', FLOAT, '--streams', '1', '--steps', '10', '--window', '1000000000']);
  flag('--steps 1e9', ['streamify', FLOAT, '-o', o(), '--steps', '1000000000']);
  flag('--window 1e9', ['stream', '--model', FLOAT, '--source', `file:${goodCsv}`, '--sink', `jsonl:${o('.jsonl')}`, '--window', '1000000000']);
  flag('--window 1e9', [
    'train',
    '--data',
    trainCsv,
    '--label',
    'activity',
    '--inputs',
    'ax,ay,az',
    '--window',
    '1000000000',
    '--epochs',
    '1',
    '-o',
    join(out, 'trainw'),
  ]);
  add(
    'train',
    '--batch-size 1e9',
    '',
    [
      'train',
      '--data',
      trainCsv,
      '--label',
      'activity',
      '--inputs',
      'ax,ay,az',
      '--window',
      '16',
      '--arch',
      'lstm:4',
      '--batch-size',
      '1000000000',
      '--epochs',
      '1',
      '-o',
      join(out, 'trainb'),
    ],
    [0, 2],
  ); // tfjs takes one batch of all
  // Overlapping windows of 2000 steps at stride 1 over 12 000 rows: ~7e7 values before training starts.
  flag('--window 2000 --stride 1', [
    'train',
    '--data',
    trainCsv,
    '--label',
    'activity',
    '--inputs',
    'ax,ay,az',
    '--window',
    '2000',
    '--stride',
    '1',
    '--split',
    '0.6,0.2',
    '--arch',
    'lstm:4',
    '--epochs',
    '1',
    '-o',
    join(out, 'trains'),
  ]);
  flag('--arch lstm:1e9', [
    'train',
    '--data',
    trainCsv,
    '--label',
    'activity',
    '--inputs',
    'ax,ay,az',
    '--window',
    '16',
    '--arch',
    'lstm:1000000000',
    '--epochs',
    '1',
    '-o',
    join(out, 'traina'),
  ]);
  return cases;
}
