/**
 * The offline fast path of `streamcell run` (src/devices/offline.ts, src/runtime/chunked.ts)
 * against the streaming path (the daemon: pipeline → StreamPool, one step per reading), which
 * is the reference: the same records at every step of every stream, the same drops by reason,
 * for LSTM and GRU step models; chunk boundaries invisible; models without a chunked form
 * refused with a reason (and `run` then takes the streaming path and says so).
 *
 * Tolerance 1e-5 (the issue's): both paths run onnxruntime's float32 LSTM/GRU kernels on the
 * same numbers; the chunked form feeds the head [T, H] rows instead of [1, H], which a GEMM may
 * sum in another order — rounding of a few float32 ulps on outputs of order 1, far below 1e-5.
 */
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { Daemon } from '../../src/devices/daemon.js';
import type { DaemonMetrics } from '../../src/devices/metrics.js';
import { OfflineRun } from '../../src/devices/offline.js';
import type { StreamPolicy } from '../../src/devices/pipeline.js';
import type { DropReason, PredictionRecord, Reading, Sink, Source, SourceEvents } from '../../src/devices/types.js';
import type { SinkFactory } from '../../src/devices/uri.js';
import { exportToOnnx } from '../../src/export/exporter.js';
import { streamifyModel } from '../../src/export/streamify/index.js';
import { loadTfjsArtifacts } from '../../src/export/tfjs-format/load.js';
import { decodeModel, encodeModel } from '../../src/onnx/proto.js';
import { chunkedStepModel } from '../../src/runtime/chunked.js';
import { readModelInfo } from '../../src/runtime/step-model.js';
import { runCli } from '../helpers/cli.js';
import { setSeededWeights } from '../helpers/models.js';
import { saveModel } from '../helpers/tfjs-save.js';

const C = 3;
const names = ['a', 'b', 'c'];
let dir: string;
let lstm: Uint8Array; // 2 stacked LSTMs, forecaster with a `delta` output
let gru: Uint8Array; // GRU classifier (softmax over 3 classes)
let lstmSeq: Uint8Array; // the LSTM's sequence model (no chunked form: it is windowed)

async function build(name: string, layers: tf.layers.Layer[], pre: object): Promise<{ step: Uint8Array; seq: Uint8Array }> {
  const m = tf.sequential({ layers });
  setSeededWeights(m, 11);
  const d = join(dir, name);
  const json = await saveModel(m, d);
  await writeFile(join(d, 'preprocessing.json'), JSON.stringify(pre));
  const { model: seq } = await exportToOnnx(await loadTfjsArtifacts(json));
  return { step: (await streamifyModel(seq)).model, seq };
}

// c has std 0.25: a finite reading of 1e308 normalises to Infinity (the pool refuses it).
const normalization = { a: { mean: 0.5, std: 2 }, b: { mean: -1, std: 1.5 }, c: { mean: 0, std: 0.25 } };

beforeAll(async () => {
  await tf.setBackend('cpu');
  dir = await mkdtemp(join(tmpdir(), 'streamcell-offline-'));
  const l = await build(
    'lstm',
    [tf.layers.lstm({ units: 12, returnSequences: true, inputShape: [null, C] }), tf.layers.lstm({ units: 8 }), tf.layers.dense({ units: 1 })],
    { task: 'forecast', target: 'b', channels: names, window: 8, horizon: 1, normalization, output: { kind: 'delta', mean: 0.05, std: 0.3 } },
  );
  lstm = l.step;
  lstmSeq = l.seq;
  gru = (
    await build('gru', [tf.layers.gru({ units: 10, inputShape: [null, C] }), tf.layers.dense({ units: 3, activation: 'softmax' })], {
      task: 'classify',
      channels: names,
      window: 8,
      label: 'level',
      classes: ['low', 'mid', 'high'],
      normalization,
    })
  ).step;
}, 120_000);

/** Deterministic readings of `streams` interleaved streams (uneven: stream k gets every (k+1)-th turn), with bad ones mixed in. */
function readings(n: number, streams: number, bad: boolean): Reading[] {
  const out: Reading[] = [];
  const t = new Map<string, number>();
  let a = 99;
  const rnd = () => ((a = (Math.imul(a, 1103515245) + 12345) >>> 0) / 2 ** 32) * 4 - 2;
  for (let i = 0; out.length < n; i++) {
    for (let k = 0; k < streams && out.length < n; k++) {
      if (i % (k + 1) !== 0) continue;
      const s = `s${k}`;
      const ts = (t.get(s) ?? 1000) + 20;
      t.set(s, ts);
      const r: Reading = { stream: s, t: ts, values: [rnd(), rnd(), rnd()] };
      const j = out.length;
      if (bad && j % 37 === 5) r.values[1] = NaN;
      if (bad && j % 53 === 7) r.values[0] = -Infinity;
      if (bad && j % 41 === 9) r.values[2] = -9; // out of range (min -5)
      if (bad && j % 59 === 11) r.values = r.values.slice(0, 2); // column count
      if (bad && j % 67 === 13) r.t = ts - 1000; // time backwards
      if (bad && j % 71 === 17) r.values[2] = 1e308; // normalises to Infinity: the pool rejects it
      out.push(r);
    }
  }
  return out;
}

/** A finite source handing over readings in bursts of `burst`, honouring backpressure like the file source. */
function arraySource(rs: Reading[], burst = 97): Source {
  let resolveDone!: () => void;
  const done = new Promise<void>((r) => (resolveDone = r));
  return {
    uri: 'test:',
    done,
    async start(ev: SourceEvents) {
      ev.status('connected');
      void (async () => {
        for (let i = 0; i < rs.length; i += burst) {
          for (const r of rs.slice(i, i + burst)) ev.reading({ ...r, values: [...r.values] });
          const p = ev.pressure?.();
          if (p) await p;
          // Let the streaming path's batches run between bursts, as file reads do.
          await new Promise((r) => setImmediate(r));
        }
        resolveDone();
      })();
    },
    async stop() {},
  };
}

function memSink(recs: PredictionRecord[]): SinkFactory {
  return async (): Promise<Sink> => ({ uri: 'mem:', write: (r) => recs.push(structuredClone(r)), flush: async () => {}, close: async () => {} });
}

async function counts(m: DaemonMetrics) {
  const byLabel = async (c: { get(): Promise<{ values: { labels: Record<string, string | number | undefined>; value: number }[] }> }, label: string) =>
    Object.fromEntries((await c.get()).values.map((v) => [String(v.labels[label]), v.value]));
  return {
    dropped: await byLabel(m.dropped, 'reason'),
    samplesIn: await byLabel(m.samplesIn, 'stream'),
    predictionsOut: await byLabel(m.predictionsOut, 'stream'),
  };
}

async function streaming(model: Uint8Array, rs: Reading[], policy?: Partial<StreamPolicy>) {
  const recs: PredictionRecord[] = [];
  const d = await Daemon.create({ model, sources: [arraySource(rs)], sinks: [memSink(recs)], policy });
  await d.start();
  await d.finished();
  await d.stop();
  return { recs, counts: await counts(d.metrics) };
}

async function fast(model: Uint8Array, rs: Reading[], policy?: Partial<StreamPolicy>, chunk?: number) {
  const recs: PredictionRecord[] = [];
  const made = await OfflineRun.create({ model, source: arraySource(rs), sinks: [memSink(recs)], policy, chunk });
  if (!made.ok) throw new Error(made.reason);
  await made.run.run();
  return { recs, counts: await counts(made.run.metrics), stats: made.run.stats };
}

function byStream(recs: PredictionRecord[]): Map<string, PredictionRecord[]> {
  const m = new Map<string, PredictionRecord[]>();
  for (const r of recs) (m.get(r.stream) ?? m.set(r.stream, []).get(r.stream)!).push(r);
  return m;
}

/** Every stream's records equal at every step: seq, t, input and label exactly, outputs and forecast within 1e-5. */
function expectSame(got: PredictionRecord[], want: PredictionRecord[]): number {
  const g = byStream(got);
  const w = byStream(want);
  expect([...g.keys()].sort()).toEqual([...w.keys()].sort());
  let err = 0;
  for (const [s, ws] of w) {
    const gs = g.get(s)!;
    expect(gs.length, `stream ${s}`).toBe(ws.length);
    ws.forEach((x, i) => {
      const y = gs[i]!;
      expect({ seq: y.seq, t: y.t, input: y.input, label: y.label, keys: Object.keys(y.outputs) }).toEqual({
        seq: x.seq,
        t: x.t,
        input: x.input,
        label: x.label,
        keys: Object.keys(x.outputs),
      });
      for (const k of Object.keys(x.outputs)) x.outputs[k]!.forEach((v, j) => (err = Math.max(err, Math.abs(v - y.outputs[k]![j]!))));
      if (x.forecast !== undefined) err = Math.max(err, Math.abs(x.forecast - y.forecast!));
    });
  }
  expect(err).toBeLessThanOrEqual(1e-5);
  return err;
}

describe('offline fast path == streaming path', () => {
  // No max: a finite 1e308 must reach normalisation (and the pool's refusal).
  const policy: Partial<StreamPolicy> = { min: -5 };

  it('LSTM (stacked, delta forecaster): every step of 4 interleaved streams, and every drop by reason', async () => {
    const rs = readings(3000, 4, true);
    // Chunks of 256 readings: states carried across chunks of every stream.
    const [f, s] = [await fast(lstm, rs, policy, 256), await streaming(lstm, rs, policy)];
    expect(f.recs.length).toBeGreaterThan(2500);
    expect(f.stats.laneCalls).toBeGreaterThan(f.stats.chunks);
    expect(f.stats.lockstepCalls).toBe(0);
    expectSame(f.recs, s.recs);
    expect(f.recs.every((r) => r.forecast !== undefined && Number.isFinite(r.forecast))).toBe(true);
    expect(f.counts).toEqual(s.counts);
    const reasons: DropReason[] = ['non-finite', 'out-of-range', 'column-count', 'time-backwards', 'rejected'];
    for (const reason of reasons) expect(f.counts.dropped[reason], `${reason} in ${JSON.stringify(f.counts.dropped)}`).toBeGreaterThan(0);
    // The fast path writes in the order readings came (the streaming path may interleave streams otherwise).
    const accepted = rs.filter((r) => f.recs.some((x) => x.stream === r.stream && x.t === r.t && x.input[0] === r.values[0]));
    expect(f.recs.map((r) => `${r.stream}@${r.t}`)).toEqual(accepted.map((r) => `${r.stream}@${r.t}`));
  });

  it('GRU classifier under the `hold` policy: the same labels and outputs at every step', async () => {
    const rs = readings(2000, 3, true);
    const p = { ...policy, nonFinite: 'hold' as const };
    const [f, s] = [await fast(gru, rs, p, 100), await streaming(gru, rs, p)];
    expectSame(f.recs, s.recs);
    expect(f.counts).toEqual(s.counts);
    expect(new Set(f.recs.map((r) => r.label)).size).toBeGreaterThan(1);
  });

  it('many streams with few readings each: lockstep calls (the step model batched across streams), the same records', async () => {
    const rs = readings(2400, 60, true);
    const [f, s] = [await fast(lstm, rs, policy, 300), await streaming(lstm, rs, policy)];
    expect(f.stats.lockstepCalls).toBeGreaterThan(0);
    expectSame(f.recs, s.recs);
    expect(f.counts).toEqual(s.counts);
    expect(byStream(f.recs).size).toBe(60);
  });

  it('chunk boundaries do not show: chunks of 7 readings give what chunks of 4096 give', async () => {
    const rs = readings(1500, 3, true);
    const [small, big] = [await fast(lstm, rs, policy, 7), await fast(lstm, rs, policy)];
    expect(small.recs).toEqual(big.recs);
    expect(small.counts).toEqual(big.counts);
  });

  it('`reset` starts the stream afresh after its earlier readings: what follows equals a run from the reset on', async () => {
    const rs = readings(600, 1, false);
    rs[300]!.values[0] = NaN;
    const f = await fast(lstm, rs, { nonFinite: 'reset' });
    expect(f.counts.dropped['non-finite']).toBe(1);
    // A reset alone in its chunk (chunks of 10 readings, the reset the chunk's first) too.
    expect((await fast(lstm, rs, { nonFinite: 'reset' }, 10)).recs).toEqual(f.recs);
    const before = await fast(lstm, rs.slice(0, 300));
    const after = await fast(lstm, rs.slice(301));
    expect(f.recs.map((r) => r.seq)).toEqual([...before.recs.map((r) => r.seq), ...after.recs.map((r) => r.seq)]);
    expectSame(f.recs.slice(0, 300), before.recs);
    expectSame(f.recs.slice(300), after.recs);
  });

  it('a model without a chunked form is refused with the reason', async () => {
    const info = readModelInfo(lstmSeq);
    const plan = chunkedStepModel(lstmSeq, info);
    expect(plan.ok).toBe(false);
    const made = await OfflineRun.create({ model: lstmSeq, source: arraySource([]), sinks: [] });
    expect(made.ok).toBe(false);
    if (!made.ok) expect(made.reason).toMatch(/sequence model/);
    // A reverse-running recurrence, and a state that is not a recurrent layer's: refused by name.
    const reverse = decodeModel(gru);
    const node = reverse.graph!.node!.find((n) => n.opType === 'GRU')!;
    node.attribute!.find((x) => x.name === 'direction')!.s = new TextEncoder().encode('reverse');
    const rev = encodeModel(reverse);
    expect(chunkedStepModel(rev, readModelInfo(rev))).toEqual({ ok: false, reason: expect.stringMatching(/runs reverse/) });
    const relay = decodeModel(gru);
    const out = relay.graph!.node!.find((n) => n.output?.[0]?.startsWith('state_out.'))!;
    relay.graph!.node = relay.graph!.node!.map((n) =>
      n === out
        ? {
            opType: 'Identity',
            input: [n.input![0]!.startsWith('state_in.') ? n.input![0]! : 'state_in.' + out.output![0]!.slice('state_out.'.length)],
            output: out.output,
          }
        : n,
    );
    const rl = encodeModel(relay);
    expect(chunkedStepModel(rl, readModelInfo(rl))).toEqual({
      ok: false,
      reason: expect.stringMatching(/is not a recurrent layer's last hidden or cell state/),
    });
    // The rewrite itself on the step models: the time axis freed, the head fed every step.
    for (const m of [lstm, gru]) {
      const p = chunkedStepModel(m, readModelInfo(m));
      expect(p.ok).toBe(true);
      if (p.ok) expect(readModelInfo(p.model).sampleInputs[0]!.dims[1]).toBe('streamcell_chunk');
    }
  });
});

describe('streamcell run: fast path by default, --no-fast streams', () => {
  it('the same JSONL (but arrival times), the same drops, and stderr names the path', async () => {
    const model = join(dir, 'lstm.step.onnx');
    await writeFile(model, lstm);
    const rs = readings(1200, 3, false);
    const lines = ['sid,a,b,c'];
    rs.forEach((r, i) => {
      const v = r.values.map((x) => x.toFixed(4));
      if (i % 50 === 3) v[1] = 'nan';
      if (i % 70 === 5) v.push('1'); // a field too many: the framing drops it
      lines.push([r.stream, ...v].join(','));
    });
    const csv = join(dir, 'rows.csv');
    await writeFile(csv, lines.join('\n') + '\n');
    const out = (p: string) => join(dir, `${p}.jsonl`);
    const rf = runCli(['run', model, '--input', csv, '--stream', 'sid', '-o', out('fast')]);
    const rsx = runCli(['run', model, '--input', csv, '--stream', 'sid', '-o', out('slow'), '--no-fast']);
    expect(rf.status, rf.stderr).toBe(0);
    expect(rsx.status, rsx.stderr).toBe(0);
    expect(rf.stderr).toMatch(/offline fast path/);
    expect(rsx.stderr).toMatch(/streaming path \(one step per reading\): --no-fast/);
    const dropsOf = (s: string) => s.split('\n').find((l) => l.startsWith('dropped:'));
    expect(dropsOf(rf.stderr)).toMatch(/non-finite \d+/);
    expect(dropsOf(rf.stderr)).toBe(dropsOf(rsx.stderr));
    const read = async (p: string) =>
      (await readFile(out(p), 'utf8'))
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as PredictionRecord);
    const [a, b] = [await read('fast'), await read('slow')];
    // No time column: t is the arrival time, which differs between runs.
    const noT = (rs: PredictionRecord[]) => rs.map((r) => ({ ...r, t: 0 }));
    expectSame(noT(a), noT(b));

    // A windowed sequence model has no chunked form: run streams, and says why.
    const seqFile = join(dir, 'lstm.seq.onnx');
    await writeFile(seqFile, lstmSeq);
    const rq = runCli(['run', seqFile, '--input', csv, '--stream', 'sid', '-o', out('seq')]);
    expect(rq.status, rq.stderr).toBe(0);
    expect(rq.stderr).toMatch(/streaming path \(one step per reading\): a sequence model/);
  }, 120_000);
});
