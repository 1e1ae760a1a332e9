/**
 * The quantization report: a text table for the terminal and a self-contained HTML page
 * (inline SVG, no scripts, no network) with the signal and both models' predictions overlaid,
 * the output-error histogram and the latency comparison.
 */
import type { Metrics } from '../../data/evaluate.js';
import type { PreprocessingJson } from '../../data/preprocessing.js';
import type { Baseline } from '../../train/verify-baselines.js';
import { barPlot, esc, htmlPage, htmlTable, linePlot, num, textTable } from '../../data/plot.js';
import type { Comparison, QuantizeReport } from './index.js';

const kib = (n: number) => `${(n / 1024).toFixed(1)} KiB`;
/** A relative change as text, e.g. "0.42% worse" / "1.10% better". */
const change = (drop: number, worse: string, better: string) =>
  Math.abs(drop) < 5e-5 ? 'unchanged' : drop > 0 ? `${(drop * 100).toFixed(2)}% ${worse}` : `${(-drop * 100).toFixed(2)}% ${better}`;

export function reportRows(q: QuantizeReport | undefined, c: Comparison, names = ['float', 'quantized']): string[][] {
  const rows: string[][] = [['', names[0]!, names[1]!, 'change']];
  rows.push(['file size', kib(c.size.a), kib(c.size.b), `${((c.size.b / c.size.a) * 100).toFixed(1)}%`]);
  rows.push(['parameters (initializer values)', String(c.parameters.a), String(c.parameters.b), '']);
  rows.push(['output error max / mean abs', '', `${num(c.outputError.max)} / ${num(c.outputError.mean)}`, '']);
  if (c.metrics) {
    const { a, b } = c.metrics;
    if (a.task === 'forecast') {
      rows.push(['MAE', num(a.mae), num(b.mae), '']);
      rows.push(['RMSE', num(a.rmse), num(b.rmse), change(c.metrics.drop, 'worse', 'better')]);
    } else {
      rows.push(['accuracy', num(a.accuracy), num(b.accuracy), change(c.metrics.drop, 'lower', 'higher')]);
      rows.push(['macro F1', num(a.f1), num(b.f1), '']);
    }
  }
  rows.push([
    'latency per run (p50, batch 1, interleaved)',
    `${c.latencyUs.a.toFixed(1)} µs`,
    `${c.latencyUs.b.toFixed(1)} µs`,
    `${c.latency.ratio.toFixed(2)}×`,
  ]);
  if (q) {
    rows.push([
      'quantized ops',
      '',
      Object.entries(q.quantized)
        .map(([k, v]) => `${k}×${v}`)
        .join(', '),
      '',
    ]);
    if (q.kernels) rows.push(['int8 kernels', '', q.kernels === 'float' ? 'float (int8 weights folded at load)' : 'integer (dynamic int8)', '']);
    if (q.calibration) rows.push(['calibration', '', `${q.calibration.method}, ${q.calibration.tensors} tensors, ${q.calibration.samples} samples`, '']);
    if (q.clamped !== undefined) rows.push(['fp16 clamped / flushed to 0', '', `${q.clamped} / ${q.flushed}`, '']);
  }
  return rows;
}

export function reportTable(q: QuantizeReport | undefined, c: Comparison, names?: string[]): string {
  const lines = [textTable(reportRows(q, c, names))];
  if (q?.skipped.length) lines.push(...q.skipped.map((s) => `left in float: ${s.op} '${s.node}': ${s.reason}`));
  return lines.join('\n');
}

/** The two models next to the baselines on the same positions: metric, parameters, latency per prediction. */
export function baselineRows(c: Comparison, baselines: Baseline[], names: string[]): string[][] {
  const m = c.metrics!;
  const forecast = m.a.task === 'forecast';
  const cols = (x: Metrics) => (forecast ? [num(x.rmse), num(x.mae)] : [num(x.accuracy), num(x.f1)]);
  const us = (v: number) => `${v < 1 ? v.toFixed(3) : v.toFixed(1)} µs`;
  return [
    [`on the same ${m.a.n} positions`, ...(forecast ? ['RMSE', 'MAE'] : ['accuracy', 'macro F1']), 'parameters', 'latency per prediction', 'n'],
    [names[0]!, ...cols(m.a), String(c.parameters.a), us(c.latencyUs.a), String(m.a.n)],
    [names[1]!, ...cols(m.b), String(c.parameters.b), us(c.latencyUs.b), String(m.b.n)],
    ...baselines.map((b) => [b.name, ...cols(b.metrics), String(b.parameters), us(b.latencyUs), String(b.metrics.n)]),
  ];
}

/** {@link baselineRows} as text, each baseline's note below. */
export function baselineTable(c: Comparison, baselines: Baseline[], names: string[]): string {
  return [textTable(baselineRows(c, baselines, names)), ...baselines.filter((b) => b.note).map((b) => `${b.name}: ${b.note}`)].join('\n');
}

/** The self-contained HTML report. */
export function reportHtml(opts: {
  title: string;
  q?: QuantizeReport;
  c: Comparison;
  pre?: PreprocessingJson;
  names?: string[];
  verdict?: string;
  baselines?: Baseline[];
}): string {
  const { c, q, pre } = opts;
  const names = opts.names ?? ['float', 'quantized'];
  const figures: string[] = [];
  if (c.evaluations && pre) {
    const { a, b } = c.evaluations;
    const N = Math.min(a.rows.length, 400);
    const start = a.rows.length - N;
    const x = Array.from(a.rows.slice(start));
    if (pre.task === 'forecast') {
      figures.push(
        linePlot(
          [
            { name: 'signal (truth)', color: '#555', x, y: Array.from(a.truth.slice(start)) },
            { name: `${names[0]} prediction`, color: '#1f77b4', x, y: Array.from(a.predictions.slice(start)) },
            { name: `${names[1]} prediction`, color: '#d62728', x, y: Array.from(b.predictions.slice(start)) },
          ],
          `Last ${N} forecasts: signal, ${names[0]} and ${names[1]} overlaid`,
          pre.target ?? pre.channels[0]!,
        ),
      );
    } else {
      figures.push(
        linePlot(
          [
            { name: 'true class', color: '#555', x, y: Array.from(a.truth.slice(start)) },
            { name: `${names[0]} class`, color: '#1f77b4', x, y: Array.from(a.predictions.slice(start), (v) => v + 0.05) },
            { name: `${names[1]} class`, color: '#d62728', x, y: Array.from(b.predictions.slice(start), (v) => v - 0.05) },
          ],
          `Last ${N} windows: predicted class index (${(pre.classes ?? []).join(' / ')})`,
          'class',
        ),
      );
    }
  }
  const h = c.outputError.histogram;
  figures.push(
    barPlot(
      h.counts.map((n, i) => ({ label: `${num(h.edges[i]!, 5)} – ${num(h.edges[i + 1]!, 5)}`, value: n, color: '#9467bd' })).filter((_, i) => i < 20),
      `Histogram of |${names[1]} − ${names[0]}| over ${h.counts.reduce((a, b) => a + b, 0)} outputs`,
      'outputs',
      (v) => String(Math.round(v)),
    ),
  );
  figures.push(
    barPlot(
      [
        { label: names[0]!, value: c.latencyUs.a, color: '#1f77b4' },
        { label: names[1]!, value: c.latencyUs.b, color: '#d62728' },
      ],
      'Latency per run (p50, batch 1)',
      'µs',
    ),
  );
  let table = htmlTable(reportRows(q, c, names));
  if (opts.baselines && c.metrics)
    table += `<h2>Baselines</h2>${htmlTable(baselineRows(c, opts.baselines, names))}${opts.baselines
      .filter((b) => b.note)
      .map((b) => `<p>${esc(b.name)}: ${esc(b.note!)}</p>`)
      .join('')}`;
  return htmlPage(
    opts.title,
    `${table}${opts.verdict ? `<p><strong>${esc(opts.verdict)}</strong> (${esc(c.latency.cpu)})</p>` : ''}${figures.join('\n')}\n<p>Generated by streamcell.</p>`,
  );
}
