/**
 * `train --report F.html`: a self-contained HTML page (inline SVG, no scripts) with the
 * candidates table and, for a forecaster, the chosen model's forecasts over the test part
 * overlaid on the truth; for a classifier, the test accuracy of every candidate and baseline.
 */
import { writeFile } from 'node:fs/promises';
import { InputError } from '../errors.js';
import { dirname, join } from 'node:path';
import type { PreprocessingJson } from '../data/preprocessing.js';
import { barPlot, esc, htmlPage, htmlTable, linePlot } from '../data/plot.js';
import { baselinesAhead, candidateRows, type Selection } from './select.js';
import type { TrainReport } from './train.js';

/** A forecast series over test rows for the overlay. */
export interface OverlaySeries {
  name: string;
  rows: ArrayLike<number>;
  values: ArrayLike<number>;
}

/** The page for a finished selection (`report.files` point at the chosen model). */
export function selectionHtml(report: TrainReport, s: Selection, overlay: OverlaySeries[] = []): string {
  const table = htmlTable(candidateRows(s));
  const figures: string[] = [];
  const colors = ['#555', '#1f77b4', '#d62728', '#2ca02c'];
  if (report.task === 'forecast' && overlay.length) {
    figures.push(
      linePlot(
        overlay.map((o, i) => ({ name: o.name, color: colors[i % colors.length]!, x: Array.from(o.rows), y: Array.from(o.values), dash: i > 1 })),
        `Test part: ${report.model.inputs[0]} and the forecasts ${report.data.split.valEnd}–${report.data.split.rows - 1}`,
        report.model.inputs[0]!,
        'row',
      ),
    );
  } else if (report.task === 'classify') {
    figures.push(
      barPlot(
        [
          ...s.candidates.map((c) => ({ label: c.arch, value: c.test.accuracy!, color: c.arch === s.chosen.arch ? '#d62728' : '#1f77b4' })),
          ...s.baselineRows.map((b) => ({ label: b.name, value: b.test.accuracy!, color: '#999' })),
        ],
        'Test accuracy',
        '',
        (v) => v.toFixed(3),
      ),
    );
  }
  const title = `streamcell train: ${report.data.file}`;
  const body = `${table}<p><strong>Chosen: ${esc(s.chosen.arch)}</strong> (--select ${s.chosen.select}): ${esc(s.chosen.reason)}. Latency: p50 of one batch-1 step on ${esc(s.cpu)}.${baselinesAhead(s) ? ` <strong>Note: ${esc(baselinesAhead(s))}.</strong>` : ''}</p>${figures.join('\n')}`;
  return htmlPage(title, body);
}

/**
 * Writes {@link selectionHtml}. A forecaster's overlay: the truth, the chosen model and the
 * AR(p) baseline on the test rows, each model exported to ONNX and run over the CSV as `verify` does.
 */
export async function writeSelectionReport(file: string, report: TrainReport, s: Selection): Promise<void> {
  const overlay: OverlaySeries[] = [];
  if (report.task === 'forecast') {
    const { readFile } = await import('node:fs/promises');
    const { exportToOnnx } = await import('../export/exporter.js');
    const { loadTfjsArtifacts } = await import('../export/tfjs-format/load.js');
    const { evaluateModel, loadDataset } = await import('../data/evaluate.js');
    const testPart = async (modelJson: string) => {
      const pre = JSON.parse(await readFile(join(dirname(modelJson), 'preprocessing.json'), 'utf8')) as PreprocessingJson;
      const bytes = (await exportToOnnx(await loadTfjsArtifacts(modelJson))).model;
      const e = await evaluateModel(bytes, pre, await loadDataset(report.data.file, pre));
      // Position t forecasts row t + horizon − 1: keep those in the test part.
      const h = pre.horizon ?? 1;
      const keep = Array.from(e.rows.keys()).filter((i) => e.rows[i]! + h - 1 >= report.data.split.valEnd);
      return { rows: keep.map((i) => e.rows[i]! + h - 1), truth: keep.map((i) => e.truth[i]!), values: keep.map((i) => e.predictions[i]!) };
    };
    const chosen = await testPart(report.files!.modelJson);
    overlay.push({ name: 'truth', rows: chosen.rows, values: chosen.truth }, { name: `${s.chosen.arch} (chosen)`, ...chosen });
    const ar = report.baselines.find((b) => b.modelJson);
    if (ar) overlay.push({ name: `${ar.name} baseline`, ...(await testPart(ar.modelJson!)) });
  }
  await writeFile(file, selectionHtml(report, s, overlay)).catch((e: NodeJS.ErrnoException) => {
    throw new InputError(`cannot write '${file}': ${e.code ?? e.message}`, {
      file,
      field: '--report',
      expected: 'a file path in an existing, writable folder',
    });
  });
}
