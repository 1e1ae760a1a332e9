/**
 * `streamcell bench`: everything a user wants to know about serving one model on this box.
 * Step mode (StreamPool) against bare onnxruntime, throughput per stream count, memory per
 * 1000 streams, window-mode latency, and optionally tfjs predict on the same window.
 */
import { InputError, isStreamcellError } from '../errors.js';
import { elementCount, MAX_CHECK_STEPS, MAX_GENERATED_ELEMENTS } from '../limits.js';
import { streamifyModel } from '../export/streamify/index.js';
import type { BackendName } from '../runtime/backend.js';
import { benchPool, type BenchPoolResult } from '../runtime/bench.js';
import { readModelInfo } from '../runtime/step-model.js';
import { WindowPool } from '../runtime/window.js';
import type { LoadedArtifacts } from '../export/tfjs-format/load.js';
import { barPlot, esc, htmlPage, htmlTable, linePlot } from '../data/plot.js';

export interface BenchModelOptions {
  streams?: number[];
  steps?: number;
  backend?: BackendName;
  /** Window length for window mode when the model's time is free (default 64). */
  window?: number;
  /** tfjs model.json of the same model, for tfjs predict on the same window. */
  tfjs?: string;
  memoryStreams?: number;
}

export interface WindowLatency {
  window: number;
  p50Us: number;
  p99Us: number;
  n: number;
}

export interface BenchModelResult {
  model: { kind: 'step' | 'sequence'; sha256: string; streamified: boolean };
  step?: BenchPoolResult;
  windowMode?: WindowLatency;
  tfjs?: WindowLatency & { backend: string };
  notes: string[];
}

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}

/** Latency of `fn` in µs, after `warmup` untimed calls. */
async function timeUs(fn: () => Promise<unknown>, n: number, warmup: number): Promise<{ p50Us: number; p99Us: number; n: number }> {
  for (let i = 0; i < warmup; i++) await fn();
  const t: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    await fn();
    t.push(Number(process.hrtime.bigint() - t0) / 1e3);
  }
  t.sort((a, b) => a - b);
  return { p50Us: pct(t, 0.5), p99Us: pct(t, 0.99), n };
}

export async function benchModel(bytes: Uint8Array, opts: BenchModelOptions = {}): Promise<BenchModelResult> {
  const info = readModelInfo(bytes);
  const notes: string[] = [];
  const result: BenchModelResult = { model: { kind: info.kind, sha256: info.sha256, streamified: false }, notes };
  let step: Uint8Array | undefined = info.kind === 'step' ? bytes : undefined;
  const seq = info.kind === 'sequence' ? bytes : undefined;
  if (!step && seq) {
    try {
      step = (await streamifyModel(seq)).model;
      result.model.streamified = true;
    } catch (e) {
      notes.push(`step mode skipped: ${(e as Error).message.split('\n')[0]}`);
    }
  }
  if (step) {
    // Every stream holds its state and one sample row: the most streams asked for must fit.
    const stepInfo = readModelInfo(step);
    const perStream = Math.max(
      1,
      stepInfo.states.reduce((n, s) => n + elementCount(s.shape), 0) +
        stepInfo.sampleInputs.reduce((n, i) => n + elementCount(i.dims.slice(1).map((d) => (typeof d === 'number' ? d : 1))), 0),
    );
    const streams = opts.streams ?? [1, 16, 256, 1024];
    const most = Math.max(...streams);
    if (most * perStream > MAX_GENERATED_ELEMENTS) {
      throw new InputError(
        `${most} streams of this model hold ${(most * perStream).toExponential(2)} floats of state and samples (${perStream} per stream), over streamcell's limit of 2^26 (${MAX_GENERATED_ELEMENTS}) for data it generates`,
        {
          field: '--streams',
          expected: `at most ${Math.floor(MAX_GENERATED_ELEMENTS / perStream)} streams for this model`,
        },
      );
    }
    result.step = await benchPool(step, {
      streams,
      steps: opts.steps ?? 2000,
      backend: opts.backend,
      memoryStreams: Math.min(opts.memoryStreams ?? 10_000, Math.max(1, Math.floor(MAX_GENERATED_ELEMENTS / perStream))),
    });
  }
  if (seq) {
    const input = info.sampleInputs[0];
    if (!input) throw new InputError('the model has no input', { expected: 'a sequence model with one input [batch, time, features]' });
    const fixed = input.dims[1];
    const W = typeof fixed === 'number' ? fixed : (opts.window ?? 64);
    const features = input.dims.slice(2).reduce((a: number, d) => a * (typeof d === 'number' ? d : 1), 1);
    // A declared window of 10⁹ samples is a model for streaming, not one to time in window mode.
    if (W > MAX_CHECK_STEPS || W * features > MAX_GENERATED_ELEMENTS) {
      const why = `input '${input.name}' is [${input.dims.join(', ')}]: a window of ${W} × ${features} is over streamcell's limits for generated data (${MAX_CHECK_STEPS} steps, 2^26 elements)`;
      if (!result.step)
        throw new InputError(`nothing to measure: ${notes.join('; ')}; window mode: ${why}`, {
          field: input.name,
          expected: 'a step model, or a sequence model whose window fits the limits',
        });
      notes.push(`window mode skipped: ${why}`);
      return result;
    }
    const pool = await WindowPool.create(seq, { window: W, hop: 1, backend: opts.backend });
    try {
      const x = Float32Array.from({ length: features }, (_, i) => Math.sin(i));
      for (let i = 0; i < W; i++) await pool.push('w', x);
      const n = Math.max(50, Math.min(500, Math.floor((opts.steps ?? 2000) / 4)));
      result.windowMode = { window: W, ...(await timeUs(() => pool.push('w', x), n, 20)) };
    } finally {
      await pool.close();
    }
    if (opts.tfjs) result.tfjs = await tfjsWindow(opts.tfjs, W, features);
  } else notes.push('window mode skipped: a step model was given (pass the sequence model to measure both)');
  return result;
}

/**
 * tfjs predict on one [1, W, features] window of `file`. The tfjs model must take the ONNX
 * model's window: a mismatch, or a model.json tfjs refuses to build, is the user's input.
 */
async function tfjsWindow(file: string, W: number, features: number): Promise<WindowLatency & { backend: string }> {
  const { loadTfjsArtifacts } = await import('../export/tfjs-format/load.js');
  const { buildLayerGraph } = await import('../export/topology.js');
  const art = await loadTfjsArtifacts(file);
  const spec = buildLayerGraph(art).inputs[0];
  const want = [null, W, features];
  const shape = spec?.shape ?? [];
  if (shape.length !== 3 || shape.some((d, k) => d !== null && d !== want[k])) {
    throw new InputError(`the tfjs model takes [${shape.map((d) => d ?? '?').join(', ')}], not the ONNX model's window [1, ${W}, ${features}]`, {
      file: art.modelJsonPath,
      field: '--tfjs',
      expected: 'the tfjs model.json of the same model',
    });
  }
  try {
    return await tfjsPredict(file, art, W, features);
  } catch (e) {
    if (isStreamcellError(e)) throw e;
    throw new InputError(`tfjs cannot load or run it: ${(e as Error).message.split('\n')[0]}`, {
      file: art.modelJsonPath,
      field: '--tfjs',
      expected: 'a tfjs LayersModel model.json tfjs can load',
    });
  }
}

async function tfjsPredict(file: string, art: LoadedArtifacts, W: number, features: number): Promise<WindowLatency & { backend: string }> {
  const { loadTfjs } = await import('../export/tfjs-backend.js');
  const { tf, backend } = await loadTfjs();
  const model = await tf.loadLayersModel(`file://${file}`).catch(() => {
    const weightData = new Uint8Array(art.weights.reduce((s, w) => s + w.data.byteLength, 0));
    let off = 0;
    for (const w of art.weights) {
      weightData.set(new Uint8Array(w.data.buffer, w.data.byteOffset, w.data.byteLength), off);
      off += w.data.byteLength;
    }
    return tf.loadLayersModel(
      tf.io.fromMemory({
        modelTopology: art.topology as object,
        weightSpecs: art.weights.map((w) => ({ name: w.name, shape: w.shape, dtype: w.dtype })),
        weightData: weightData.buffer,
      }),
    );
  });
  const xt = tf.randomNormal([1, W, features]);
  try {
    const r = await timeUs(
      async () => {
        const y = model.predict(xt) as import('@tensorflow/tfjs').Tensor;
        await y.data();
        y.dispose();
      },
      30,
      3,
    );
    return { window: W, backend, ...r };
  } finally {
    xt.dispose();
    model.dispose();
  }
}

/** The table `streamcell bench` and `npm run bench` print. */
export function benchTable(r: BenchModelResult): string {
  const us = (v: number) => (v >= 1000 ? `${(v / 1000).toFixed(2)} ms` : `${v.toFixed(1)} µs`);
  const rows: string[][] = [['measure', 'value', 'note']];
  if (r.step) {
    const s = r.step;
    rows.push(['step, 1 stream: StreamPool p50 / p99', `${us(s.latency.pool.p50Us)} / ${us(s.latency.pool.p99Us)}`, s.backend.name]);
    rows.push(['step, 1 stream: bare session.run p50 / p99', `${us(s.latency.bare.p50Us)} / ${us(s.latency.bare.p99Us)}`, '']);
    rows.push(['pool overhead (paired ratio)', `${s.latency.ratioPaired.toFixed(2)}×`, 'goal ≤ 1.05×']);
    const k = (v: number) => Math.round(v).toLocaleString('en-US');
    for (const t of s.throughput)
      rows.push([
        `throughput at ${t.streams} streams`,
        `${k(t.manyStreamStepsPerSec)} steps/s pushMany`,
        `${t.manyVsBare.toFixed(2)}× bare (${k(t.bareStreamStepsPerSec)}); push ${k(t.streamStepsPerSec)}; mean batch ${t.meanBatchSize.toFixed(0)}`,
      ]);
    rows.push([
      'memory per 1000 streams',
      `${(s.memory.heapBytesPer1000 / 1024).toFixed(0)} KiB heap`,
      `RSS ${(s.memory.rssBytesPer1000 / 1024).toFixed(0)} KiB; state ${s.memory.stateBytesPerStream} B/stream`,
    ]);
  }
  if (r.windowMode)
    rows.push([`window mode (${r.windowMode.window} steps) p50 / p99`, `${us(r.windowMode.p50Us)} / ${us(r.windowMode.p99Us)}`, 'WindowPool, hop 1']);
  if (r.tfjs) rows.push([`tfjs predict (${r.tfjs.window} steps) p50 / p99`, `${us(r.tfjs.p50Us)} / ${us(r.tfjs.p99Us)}`, r.tfjs.backend]);
  const w = rows[0]!.map((_, c) => Math.max(...rows.map((row) => row[c]!.length)));
  const lines = rows.map((row) =>
    row
      .map((v, c) => v.padEnd(w[c]!))
      .join('  ')
      .trimEnd(),
  );
  lines.splice(1, 0, w.map((n) => '-'.repeat(n)).join('  '));
  return [...lines, ...r.notes.map((n) => `note: ${n}`)].join('\n');
}

/**
 * `streamcell bench --report`: a self-contained HTML page (no scripts, no network) of what
 * {@link benchModel} measured, drawn with the same SVG builders as the verify/quantize reports
 * and the live dashboard (src/data/plot.ts). Tables carry the numbers of the `--json` result,
 * rounded as written: µs to 0.1, steps/s and bytes to integers, ratios to 0.01.
 */
export function benchReportHtml(r: BenchModelResult, title: string): string {
  const us = (v: number) => v.toFixed(1);
  const int = (v: number) => String(Math.round(v));
  const parts: string[] = [];
  parts.push(
    `<p>Model sha256 <code>${esc(r.model.sha256)}</code> (${esc(r.model.kind)}${r.model.streamified ? ', streamified for step mode' : ''})${
      r.step ? `; backend ${esc(r.step.backend.name)} ${esc(r.step.backend.version)} (${esc(r.step.backend.how)})` : ''
    }.</p>`,
  );
  const lat: string[][] = [['measure', 'n', 'p50 µs', 'p99 µs']];
  const bars: { label: string; value: number; color: string }[] = [];
  if (r.step) {
    const s = r.step;
    lat.push(['step, 1 stream: StreamPool push', String(s.latency.pool.n), us(s.latency.pool.p50Us), us(s.latency.pool.p99Us)]);
    lat.push(['step, 1 stream: bare session.run', String(s.latency.bare.n), us(s.latency.bare.p50Us), us(s.latency.bare.p99Us)]);
    bars.push(
      { label: 'pool p50', value: s.latency.pool.p50Us, color: '#1f77b4' },
      { label: 'pool p99', value: s.latency.pool.p99Us, color: '#aec7e8' },
      { label: 'bare p50', value: s.latency.bare.p50Us, color: '#ff7f0e' },
      { label: 'bare p99', value: s.latency.bare.p99Us, color: '#ffbb78' },
    );
  }
  if (r.windowMode) {
    lat.push([`window mode (${r.windowMode.window} steps)`, String(r.windowMode.n), us(r.windowMode.p50Us), us(r.windowMode.p99Us)]);
    bars.push({ label: `window p50`, value: r.windowMode.p50Us, color: '#2ca02c' }, { label: `window p99`, value: r.windowMode.p99Us, color: '#98df8a' });
  }
  if (r.tfjs) {
    lat.push([`tfjs predict (${r.tfjs.window} steps, ${r.tfjs.backend})`, String(r.tfjs.n), us(r.tfjs.p50Us), us(r.tfjs.p99Us)]);
    bars.push({ label: `tfjs p50`, value: r.tfjs.p50Us, color: '#9467bd' }, { label: `tfjs p99`, value: r.tfjs.p99Us, color: '#c5b0d5' });
  }
  parts.push('<h2 id="latency">Latency</h2>', htmlTable(lat));
  if (bars.length) parts.push(barPlot(bars, 'Latency per call (µs)', 'µs', us));
  if (r.step) {
    const s = r.step;
    parts.push(
      `<h2 id="overhead">Pool overhead</h2><p>StreamPool / bare session.run: paired ${s.latency.ratioPaired.toFixed(2)}×, p50 ${s.latency.ratioP50.toFixed(2)}×, mean ${s.latency.ratioMean.toFixed(2)}× (goal ≤ 1.05× paired).</p>`,
    );
    parts.push(
      '<h2 id="throughput">Throughput</h2>',
      htmlTable([
        ['streams', 'pushMany steps/s', 'push steps/s', 'bare steps/s', 'pushMany / bare', 'mean batch'],
        ...s.throughput.map((t) => [
          String(t.streams),
          int(t.manyStreamStepsPerSec),
          int(t.streamStepsPerSec),
          int(t.bareStreamStepsPerSec),
          t.manyVsBare.toFixed(2),
          t.meanBatchSize.toFixed(1),
        ]),
      ]),
    );
    const x = s.throughput.map((t) => Math.log2(t.streams));
    parts.push(
      linePlot(
        [
          { name: 'pushMany', color: '#1f77b4', x, y: s.throughput.map((t) => t.manyStreamStepsPerSec), dots: true },
          { name: 'push', color: '#2ca02c', x, y: s.throughput.map((t) => t.streamStepsPerSec), dots: true },
          { name: 'bare session.run', color: '#ff7f0e', x, y: s.throughput.map((t) => t.bareStreamStepsPerSec), dash: true, dots: true },
        ],
        'Throughput per stream count (stream-steps/s)',
        'stream-steps/s',
        `log2(streams): ${s.throughput.map((t) => t.streams).join(', ')}`,
      ),
    );
    parts.push(
      '<h2 id="memory">Memory</h2>',
      htmlTable([
        ['streams opened', 'heap bytes / 1000 streams', 'RSS bytes / 1000 streams', 'state bytes / stream'],
        [String(s.memory.streams), int(s.memory.heapBytesPer1000), int(s.memory.rssBytesPer1000), int(s.memory.stateBytesPerStream)],
      ]),
      barPlot(
        [
          { label: 'heap', value: s.memory.heapBytesPer1000 / 1024, color: '#1f77b4' },
          { label: 'RSS', value: s.memory.rssBytesPer1000 / 1024, color: '#ff7f0e' },
        ],
        'Memory per 1000 streams (KiB)',
        'KiB',
        (v) => v.toFixed(0),
      ),
    );
  }
  if (r.notes.length) parts.push('<h2 id="notes">Notes</h2><ul>' + r.notes.map((n) => `<li>${esc(n)}</li>`).join('') + '</ul>');
  return htmlPage(title, parts.join('\n'));
}
