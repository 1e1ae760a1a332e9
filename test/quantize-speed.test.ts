/**
 * Quantized models that are faster, not only smaller — without asserting any timing:
 * - what onnxruntime runs (its optimised graph, with streamcell's session options): fp16 weights
 *   and int8 weights on float kernels are folded to float32 initializers when the session loads
 *   (no Cast, Mul or DequantizeLinear left on a weight), to exactly q·scale;
 * - `quantize` reports float vs quantized latency (measured interleaved) and a verdict;
 * - the bundle's default step model is chosen by a measured comparison (injected here, so the
 *   choice is deterministic), recorded in the manifest and loaded by `run`.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildBundle } from '../src/bundle/build.js';
import { chooseStep, type StepCandidate } from '../src/bundle/choose.js';
import { checkManifest } from '../src/bundle/manifest.js';
import { resolveModel } from '../src/cli/model-source.js';
import { speedVerdict } from '../src/export/quantize/latency.js';
import { exportToOnnx } from '../src/export/exporter.js';
import { inspectBundle } from '../src/export/inspect.js';
import { quantizeModel } from '../src/export/quantize/index.js';
import { latencyVerdict, noSlower, SAME_SPEED, type Latencies, type MeasureLatencies } from '../src/export/quantize/latency.js';
import { streamifyModel } from '../src/export/streamify/index.js';
import { loadTfjsArtifacts } from '../src/export/tfjs-format/load.js';
import { decodeModel, tensorValues } from '../src/onnx/proto.js';
import { resolveBackend } from '../src/runtime/backend-impl.js';
import { runCli } from './helpers/cli.js';
import { saveModel } from './helpers/tfjs-save.js';

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
let dir: string;
const steps: Record<string, Uint8Array> = {};

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'streamcell-qspeed-'));
  for (const kind of ['lstm', 'gru'] as const) {
    const m = tf.sequential({ layers: [tf.layers[kind]({ units: 64, inputShape: [null, 8] }), tf.layers.dense({ units: 1 })] });
    const p = await saveModel(m, join(dir, kind));
    m.dispose();
    steps[kind] = (await streamifyModel((await exportToOnnx(await loadTfjsArtifacts(p))).model)).model;
  }
}, 120_000);

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** The graph onnxruntime-node runs for `model` with streamcell's default session options (or `level`). */
async function optimized(model: Uint8Array, name: string, level?: 'basic' | 'all') {
  const path = join(dir, `${name}.opt.onnx`);
  const { backend } = await resolveBackend(['onnxruntime-node']);
  const s = await backend.createSession(model, { optimizedModelPath: path, ...(level ? { graphOptimization: level } : {}) });
  await s.release();
  return decodeModel(new Uint8Array(await readFile(path))).graph!;
}

const DTYPE = { float: 1, int8: 3, float16: 10 };

describe('what onnxruntime runs: weights folded when the session loads', () => {
  it.each(['lstm', 'gru'])('%s fp16: every Cast reads an initializer, and none is left at basic or all (float32 weights only)', async (kind) => {
    const { model } = await quantizeModel(steps[kind]!, { mode: 'fp16' });
    const g = decodeModel(model).graph!;
    const inits = new Set((g.initializer ?? []).map((t) => t.name));
    const casts = (g.node ?? []).filter((n) => n.opType === 'Cast');
    expect(casts.length).toBeGreaterThan(0);
    for (const c of casts) expect(inits.has(c.input![0]!), c.input![0]!).toBe(true);
    for (const level of [undefined, 'basic'] as const) {
      const o = await optimized(model, `${kind}-fp16-${level ?? 'default'}`, level);
      expect((o.node ?? []).map((n) => n.opType)).not.toContain('Cast');
      expect((o.initializer ?? []).filter((t) => t.dataType === DTYPE.float16).map((t) => t.name)).toEqual([]);
    }
  });

  it.each([
    ['lstm', 'float'],
    ['gru', 'float'],
    ['gru', 'integer'],
  ] as const)('%s int8, %s kernels: the recurrent weights run as float32 q·scale, no DequantizeLinear per run', async (kind, kernels) => {
    const { model, report } = await quantizeModel(steps[kind]!, { mode: 'int8', kernels });
    expect(report.kernels).toBe(kernels);
    const g = decodeModel(model).graph!;
    const byName = new Map((g.initializer ?? []).map((t) => [t.name!, t]));
    const o = await optimized(model, `${kind}-int8-${kernels}`);
    const ops = (o.node ?? []).map((n) => n.opType);
    expect(ops).not.toContain('DequantizeLinear');
    expect(ops).not.toContain('Cast');
    const rnn = (o.node ?? []).find((n) => n.opType === kind.toUpperCase())!;
    expect(rnn, ops.join(', ')).toBeDefined();
    if (kernels === 'float') expect(ops).not.toContain('DynamicQuantizeMatMul');
    const folded = new Map((o.initializer ?? []).map((t) => [t.name!, t]));
    for (const w of [rnn.input![1]!, rnn.input![2]!]) {
      const f = folded.get(w)!;
      expect(f?.dataType, w).toBe(DTYPE.float);
      // The folded values are exactly what DequantizeLinear (zero point 0) would compute: fround(q · s).
      const q = tensorValues(byName.get(`${w}_int8`)!).data as Int8Array;
      const s = tensorValues(byName.get(`${w}_scale`)!).data as Float32Array;
      const v = tensorValues(f).data as Float32Array;
      const perRow = q.length / s.length; // scale per gate row [D, rows, 1] over [D, rows, K]
      expect(v.length).toBe(q.length);
      let exact = 0;
      for (let i = 0; i < q.length; i++) if (v[i] === Math.fround(q[i]! * s[Math.floor(i / perRow)]!)) exact++;
      expect(exact).toBe(q.length);
      expect(byName.get(`${w}_int8`)!.dataType).toBe(DTYPE.int8);
    }
  });
});

describe('int8 on float kernels', () => {
  it("a stream's result does not depend on the other streams in its batch (no per-call activation scale)", async () => {
    const { model } = await quantizeModel(steps.gru!, { mode: 'int8', kernels: 'float' });
    const { backend } = await resolveBackend(['onnxruntime-node']);
    const s = await backend.createSession(model);
    try {
      const feeds = (batch: number, other: number) => {
        const f: Record<string, { type: 'float32'; data: Float32Array; dims: number[] }> = {};
        for (const name of s.inputNames) {
          const n = name.startsWith('state_in.') ? 64 : 8;
          // Row 0 is the same stream every time; the other rows are 'other' streams, scaled up.
          const data = Float32Array.from({ length: batch * n }, (_, i) => (i < n ? Math.sin(i) * 0.5 : Math.cos(i) * other));
          f[name] = { type: 'float32', data, dims: name.startsWith('state_in.') ? [batch, 64] : [batch, 1, 8] };
        }
        return f;
      };
      const out = s.outputNames.find((o) => !o.startsWith('state_out.'))!;
      const alone = (await s.run(feeds(1, 0)))[out]!.data as Float32Array;
      for (const other of [0.1, 50]) {
        const batched = (await s.run(feeds(4, other)))[out]!.data as Float32Array;
        // Float kernels only: the same products and sums; a different GEMM blocking for 1 vs 4
        // rows may reorder a 72-term float32 sum (|terms| < 1): ≤ 72 · 2^-24 ≈ 4.3e-6.
        expect(Math.abs(batched[0]! - alone[0]!)).toBeLessThanOrEqual(72 * 2 ** -24);
      }
    } finally {
      await s.release();
    }
  });
});

describe('quantize reports float vs quantized latency', () => {
  it('verdicts: faster, the same within noise, SLOWER with the way out for integer kernels', () => {
    expect(latencyVerdict('int8', 0.8)).toMatch(/^int8: 0\.80× float latency on this CPU \(faster\)$/);
    expect(latencyVerdict('fp16', 1 + SAME_SPEED / 2)).toMatch(/the same speed/);
    // Decided on the printed ratio: 1.034 prints as 1.03, the same speed; 1.036 as 1.04, slower.
    expect(latencyVerdict('int8', 1.034)).toMatch(/1\.03× float latency .*the same speed/);
    expect(latencyVerdict('int8', 1.036)).toMatch(/1\.04× SLOWER/);
    expect([noSlower(1.034), noSlower(1.036)]).toEqual([true, false]);
    expect(speedVerdict({ mode: 'int8' }, 1.2)).toMatch(
      /^int8 \(integer kernels\) is 1\.20× SLOWER than float on this CPU: use it for size only, or --kernels float/,
    );
    expect(speedVerdict({ mode: 'int8', kernels: 'float' }, 1.2)).not.toMatch(/--kernels float/);
    expect(speedVerdict({ mode: 'fp16' }, 1.5)).toMatch(/^fp16 is 1\.50× SLOWER/);
  });

  it('--json has latency.floatUs, quantizedUs, ratio, rounds, cpu, verdict; the text names them', async () => {
    const f = join(dir, 'gru-step.onnx');
    await writeFile(f, steps.gru!);
    const r = runCli(['quantize', f, '-o', join(dir, 'gru-int8.onnx'), '--mode', 'int8', '--json']);
    expect(r.status, r.stderr).toBe(0);
    const l = (r.json as { latency: Record<string, unknown> }).latency;
    expect(l.floatUs).toBeGreaterThan(0);
    expect(l.quantizedUs).toBeGreaterThan(0);
    expect(l.ratio).toBeGreaterThan(0);
    expect(l.rounds).toBeGreaterThanOrEqual(3);
    expect(typeof l.cpu).toBe('string');
    expect(l.slower).toBe(!noSlower(l.ratio as number));
    expect(l.verdict).toBe(speedVerdict({ mode: 'int8', kernels: 'integer' }, l.ratio as number));
    const t = runCli(['quantize', f, '-o', join(dir, 'gru-int8f.onnx'), '--mode', 'int8', '--kernels', 'float']);
    expect(t.status, t.stderr).toBe(0);
    expect(t.stdout).toMatch(/latency per run \(p50, batch 1, interleaved\)\s+[\d.]+ µs\s+[\d.]+ µs\s+[\d.]+×/);
    expect(t.stdout).toMatch(/^int8 \(float kernels\)(:| is) [\d.]+× .*float/m);
    const bad = runCli(['quantize', f, '-o', join(dir, 'x.onnx'), '--mode', 'fp16', '--kernels', 'float']);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/applies to mode int8 only/);
  }, 60_000);
});

/** A measurement that returns fixed ratios (float first), so the choice is deterministic. */
function fixed(ratios: number[], calls: Uint8Array[][] = []): MeasureLatencies {
  return async (models): Promise<Latencies> => {
    calls.push(models);
    expect(models.length).toBe(ratios.length);
    return { us: ratios.map((r) => 20 * r), ratios, rounds: 5, cpu: 'test CPU' };
  };
}

describe('the bundle picks its default step model by a measured comparison', () => {
  const float = new Uint8Array(100);
  const a: StepCandidate = { name: 'int8_float_kernels', label: 'A', bytes: new Uint8Array(40) };
  const b: StepCandidate = { name: 'int8_integer_kernels', label: 'B', bytes: new Uint8Array(30) };

  it('measures float and every candidate in one call, float first', async () => {
    const calls: Uint8Array[][] = [];
    await chooseStep(float, [a, b], 'speed', fixed([1, 1, 1], calls));
    expect(calls).toEqual([[float, a.bytes, b.bytes]]);
  });

  it('speed: the faster int8 candidate; int8 by default when no slower than float, float when slower', async () => {
    let c = await chooseStep(float, [a, b], 'speed', fixed([1, 1.0, 0.7]));
    expect([c.int8.name, c.defaultRole]).toEqual(['int8_integer_kernels', 'step_int8']);
    expect(c.latencyUs).toEqual({ float: 20, int8_float_kernels: 20, int8_integer_kernels: 14 });
    c = await chooseStep(float, [a, b], 'speed', fixed([1, 1.2, 1.3]));
    expect([c.int8.name, c.defaultRole]).toEqual(['int8_float_kernels', 'step']);
    expect(c.reason).toMatch(/^--prefer speed: A runs at 1\.20× float's latency on test CPU, slower than float/);
    // Within SAME_SPEED of each other: the first listed; within SAME_SPEED of float: int8.
    c = await chooseStep(float, [a, b], 'speed', fixed([1, 1 + SAME_SPEED * 0.9, 1 + SAME_SPEED * 0.5]));
    expect([c.int8.name, c.defaultRole]).toEqual(['int8_float_kernels', 'step_int8']);
    c = await chooseStep(float, [a], 'speed', fixed([1, 1 + SAME_SPEED * 2]));
    expect(c.defaultRole).toBe('step');
  });

  it('size, float and int8 override the measurement', async () => {
    let c = await chooseStep(float, [a, b], 'size', fixed([1, 0.5, 2]));
    expect([c.int8.name, c.defaultRole]).toEqual(['int8_integer_kernels', 'step_int8']);
    c = await chooseStep(float, [a, b], 'float', fixed([1, 0.5, 0.6]));
    expect([c.int8.name, c.defaultRole]).toEqual(['int8_float_kernels', 'step']);
    c = await chooseStep(float, [a, b], 'int8', fixed([1, 1.5, 1.4]));
    expect([c.int8.name, c.defaultRole]).toEqual(['int8_integer_kernels', 'step_int8']);
  });

  it('buildBundle records the choice in the manifest; runtimes load step_default', async () => {
    for (const [ratios, want] of [
      [[1, 1.3, 1.4], 'step'],
      [[1, 0.9, 1.2], 'step_int8'],
    ] as const) {
      const out = join(dir, `bundle-${want}`);
      const r = await buildBundle({ modelDir: here('../models/co2-lstm'), out, measure: fixed([...ratios]) });
      const m = checkManifest(JSON.parse(await readFile(join(out, 'manifest.json'), 'utf8')), 'manifest.json');
      expect(m.step_default).toBe(want);
      expect(m.step_choice).toMatchObject({
        prefer: 'speed',
        cpu: 'test CPU',
        ratio_vs_float: { int8_float_kernels: ratios[1], int8_integer_kernels: ratios[2] },
      });
      expect(r.stepChoice).toEqual(m.step_choice);
      expect((await inspectBundle(out)).stepDefault).toBe(want);
      const loaded = await resolveModel(out);
      expect(Buffer.from(loaded.bytes).equals(await readFile(join(out, want === 'step' ? 'step.onnx' : 'step-int8.onnx')))).toBe(true);
      expect(Buffer.from((await resolveModel(out, { role: 'step' })).bytes).equals(await readFile(join(out, 'step.onnx')))).toBe(true);
    }
  }, 60_000);

  it('a manifest whose step_default is not a listed step role is refused, naming the field', () => {
    const base = { format: 1, name: 'x', version: '1', files: { step: { path: 'step.onnx', sha256: 'a'.repeat(64) } } };
    expect(() => checkManifest({ ...base, step_default: 'float' }, 'm.json')).toThrow(/step_default/);
    expect(() => checkManifest({ ...base, step_default: 'step_int8' }, 'm.json')).toThrow(/does not list/);
    expect(checkManifest({ ...base, step_default: 'step' }, 'm.json').step_default).toBe('step');
  });

  it('end to end: bundle measures for real, its manifest follows the rule on what it measured, run loads that model', async () => {
    const out = join(dir, 'real');
    const r = runCli(['bundle', '--model', here('../models/co2-lstm'), '-o', out, '--json']);
    expect(r.status, r.stderr).toBe(0);
    const m = JSON.parse(await readFile(join(out, 'manifest.json'), 'utf8'));
    const ch = m.step_choice;
    expect(Object.keys(ch.latency_us).sort()).toEqual(['float', 'int8_float_kernels', 'int8_integer_kernels']);
    for (const v of Object.values(ch.latency_us)) expect(v).toBeGreaterThan(0);
    const ratios = ch.ratio_vs_float as Record<string, number>;
    const best = Math.min(...Object.values(ratios));
    const twin = ratios.int8_float_kernels! <= best + SAME_SPEED ? 'int8_float_kernels' : 'int8_integer_kernels';
    expect(ch.step_int8).toMatch(twin === 'int8_float_kernels' ? /float kernels/ : /integer kernels/);
    expect(m.step_default).toBe(noSlower(ratios[twin]!) ? 'step_int8' : 'step');
    const csv = here('../models/co2-weekly-mauna-loa.csv');
    const strip = async (f: string) =>
      (await readFile(f, 'utf8'))
        .trim()
        .split('\n')
        .map((l) => {
          const { t: _t, ...rest } = JSON.parse(l) as Record<string, unknown>;
          return rest;
        });
    const viaBundle = runCli(['run', out, '--input', csv, '-o', join(dir, 'real.jsonl')]);
    expect(viaBundle.status, viaBundle.stderr).toBe(0);
    const direct = runCli(['run', join(out, m.files[m.step_default].path), '--input', csv, '-o', join(dir, 'real-direct.jsonl')]);
    expect(direct.status, direct.stderr).toBe(0);
    expect(await strip(join(dir, 'real.jsonl'))).toEqual(await strip(join(dir, 'real-direct.jsonl')));
    const both = runCli(['run', out, '--int8', '--float', '--input', csv, '-o', join(dir, 'x.jsonl')]);
    expect(both.status).toBe(2);
  }, 120_000);
});
