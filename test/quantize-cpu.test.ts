/**
 * int8 results must not depend on the CPU. onnxruntime's u8×s8 integer kernels on x86 CPUs
 * without VNNI (AVX2 `vpmaddubsw`) add pairs of products into a saturating int16: with
 * full-range int8 weights (2·255·127 > 32767) they overflow and results differ from VNNI, ARM
 * and WASM (measured here: 0.025 on the IMU classifier). streamcell quantizes weights for
 * integer kernels to 7 bits, so every CPU computes the same integers.
 *
 * The AVX2-only CPUs are emulated: Debian's qemu-user-static runs this machine's Node with
 * `-cpu EPYC-Rome` (AMD Zen 2: AVX2, no VNNI) and `-cpu Haswell`; ARM boards run Node for arm64
 * (scripts/arm-sysroot.sh) under qemu-aarch64 as a Cortex-A72 (Raspberry Pi 4), a Cortex-A76
 * (Raspberry Pi 5) and `max` (SVE, SME: onnxruntime's KleidiAI kernels, which streamcell turns
 * off); onnxruntime-native arm64 needs an ARM /proc/cpuinfo, bind-mounted in a private mount
 * namespace. The host (whatever it is) and onnxruntime-web (WASM: plain integer arithmetic) are
 * compared with them.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PI4_CPUINFO } from './helpers/arm.js';
import { loadDataset } from '../src/data/evaluate.js';
import { exportToOnnx } from '../src/export/exporter.js';
import { modelPreprocessing, quantizeModel } from '../src/export/quantize/index.js';
import { loadTfjsArtifacts } from '../src/export/tfjs-format/load.js';

const QEMU = '/usr/bin/qemu-x86_64-static';
const QEMU_ARM = '/usr/bin/qemu-aarch64-static';
const ARM = fileURLToPath(new URL('../.arm/arm64/', import.meta.url));
const RUNNER = fileURLToPath(new URL('./helpers/run-onnx.mjs', import.meta.url));
const IMU = fileURLToPath(new URL('../models/imu-activity/model.json', import.meta.url));
const IMU_CSV = fileURLToPath(new URL('../models/imu-activity/data.csv', import.meta.url));
/** Same integers everywhere; what may differ is float32 rounding in the dequantizing epilogue. */
const CROSS_CPU_TOLERANCE = 1e-5;

let dir: string;
let files: string[];

function run(prefix: string[], backend: string, node = process.execPath): Record<string, number[]> {
  const cmd = prefix.length ? prefix[0]! : node;
  const args = [...(prefix.length ? [...prefix.slice(1), node] : []), RUNNER, backend, '32', '3', ...files];
  return JSON.parse(execFileSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20, timeout: 300_000, stdio: ['ignore', 'pipe', 'pipe'] })) as Record<
    string,
    number[]
  >;
}

/** Node for arm64 under qemu-aarch64 as `cpu`, with an ARM /proc/cpuinfo in a private mount namespace. */
function runArm(cpu: string): Record<string, number[]> {
  const script = 'mount --bind "$1" /proc/cpuinfo && shift && exec "$@"';
  return run(
    [
      'unshare',
      '--user',
      '--map-root-user',
      '--mount',
      '--propagation',
      'private',
      'sh',
      '-c',
      script,
      'sh',
      join(dir, 'cpuinfo'),
      QEMU_ARM,
      '-cpu',
      cpu,
      '-L',
      join(ARM, 'sysroot'),
    ],
    'onnxruntime-node',
    join(ARM, 'node/bin/node'),
  );
}

function maxDiff(a: number[], b: number[]): number {
  expect(a.length).toBe(b.length);
  return a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0);
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'streamcell-qcpu-'));
  const float = (await exportToOnnx(await loadTfjsArtifacts(IMU))).model;
  const pre = modelPreprocessing(float)!;
  const data = await loadDataset(IMU_CSV, pre);
  await writeFile(join(dir, 'cpuinfo'), PI4_CPUINFO);
  files = [];
  for (const mode of ['int8', 'int8-static'] as const) {
    const { model } = await quantizeModel(float, { mode, calibration: { pre, data, method: 'minmax' } });
    const f = join(dir, `imu.${mode}.onnx`);
    await writeFile(f, model);
    files.push(f);
  }
}, 120_000);

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('int8 gives the same results on every CPU', () => {
  it('finds qemu-x86_64-static (.ci/run installs qemu-user-static)', () => {
    expect(existsSync(QEMU)).toBe(true);
  });

  it('host native, WASM, and emulated AVX2-without-VNNI CPUs (EPYC-Rome, Haswell) agree', () => {
    const host = run([], 'onnxruntime-node');
    const wasm = run([], 'onnxruntime-web');
    const cpus = Object.fromEntries(['EPYC-Rome', 'Haswell'].map((cpu) => [cpu, run([QEMU, '-cpu', cpu], 'onnxruntime-node')]));
    for (const f of files) {
      expect(maxDiff(host[f]!, wasm[f]!), `${f}: host vs WASM`).toBeLessThanOrEqual(CROSS_CPU_TOLERANCE);
      for (const [cpu, r] of Object.entries(cpus)) expect(maxDiff(r[f]!, wasm[f]!), `${f}: ${cpu} vs WASM`).toBeLessThanOrEqual(CROSS_CPU_TOLERANCE);
    }
  }, 600_000);

  it('finds Node for arm64 and its sysroot (.ci/run runs scripts/arm-sysroot.sh)', () => {
    expect(existsSync(QEMU_ARM)).toBe(true);
    expect(existsSync(join(ARM, 'node/bin/node'))).toBe(true);
  });

  it('ARM boards agree too: Cortex-A72 (Pi 4), Cortex-A76 (Pi 5), and SVE/SME (`max`)', () => {
    const wasm = run([], 'onnxruntime-web');
    for (const cpu of ['cortex-a72', 'cortex-a76', 'max']) {
      const r = runArm(cpu);
      for (const f of files) expect(maxDiff(r[f]!, wasm[f]!), `${f}: arm64 ${cpu} vs WASM`).toBeLessThanOrEqual(CROSS_CPU_TOLERANCE);
    }
  }, 600_000);
});
