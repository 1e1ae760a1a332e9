/**
 * Architecture selection (`train --arch A --arch B …`): every candidate is trained with the same
 * options, seed and chronological split into OUT/candidates/<arch>/, measured (parameters, float
 * ONNX and int8 size, batch-1 step latency of its streamified model, all candidates and the
 * deployable AR(p) baseline in the same interleaved latency rounds), and one is picked on the validation part: the best validation
 * metric (`metric`), or the smallest ONNX file (`size`) / fastest step (`latency`) among the
 * candidates whose validation metric is within `tolerance` (relative) of the best. The chosen
 * candidate's files are copied to OUT, so OUT/model.json and preprocessing.json are what
 * export, bundle and stream expect, and OUT/training-report.json carries the candidates table.
 */
import { copyFile, cp, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { InputError, isStreamcellError } from '../errors.js';
import { textTable } from '../data/plot.js';
import { measureLatencies } from '../export/quantize/latency.js';
import { formatArch, parseArch } from './arch.js';
import { trainModel, type BaselineReport, type Score, type TrainOptions, type TrainReport, type TrainResult } from './train.js';

export const SELECT_BY = ['metric', 'size', 'latency'] as const;
export type SelectBy = (typeof SELECT_BY)[number];

/** `--tolerance`: relative distance from the best validation metric that still counts as as good. */
export const DEFAULT_TOLERANCE = 0.02;

/** One trained candidate: its sizes, latency and scores. */
export interface Candidate {
  arch: string;
  /** Where it was trained to (model.json, weights.bin, preprocessing.json, training-report.json). */
  dir: string;
  parameters: number;
  onnxBytes: number;
  /** Absent when int8 quantization has nothing to quantize (a tiny model). */
  int8Bytes?: number;
  /** p50 of one batch-1 run, µs: a step of the streamified model, or a whole window when it does not streamify (`latencyOf`). */
  latencyUs: number;
  latencyOf: 'step' | 'window';
  /** Absent without a validation part (possible with a single candidate only). */
  validation?: Score;
  test: Score;
  epochs: number;
  seconds: number;
}

/** A baseline's row next to the candidates: the deployable AR(p) measured like a candidate, the naive ones scores only. */
export type BaselineRow = Pick<BaselineReport, 'name' | 'kind' | 'parameters' | 'validation' | 'test'> &
  Partial<Pick<Candidate, 'onnxBytes' | 'int8Bytes' | 'latencyUs' | 'latencyOf'>>;

/** The candidates and the pick (in training-report.json as `candidates`, `baselineRows` and `chosen`). */
export interface Selection {
  candidates: Candidate[];
  /** The report's baselines (the same for every candidate: same split and windows). */
  baselineRows: BaselineRow[];
  chosen: {
    arch: string;
    select: SelectBy;
    tolerance: number;
    /** The validation metric picked on: 'rmse' (lower is better) or 'accuracy'. */
    metric: 'rmse' | 'accuracy';
    reason: string;
  };
  /** The CPU the latencies were measured on. */
  cpu: string;
}

/** Options of {@link trainCandidates}. */
export interface SelectOptions {
  select?: SelectBy;
  tolerance?: number;
  /** Called before each candidate trains (1-based). */
  onCandidate?: (arch: string, index: number, count: number) => void;
}

/** OUT/candidates/<slug>: "conv1d:16:3,lstm:32" → "conv1d-16-3_lstm-32". */
export const archSlug = (arch: string) => arch.replace(/:/g, '-').replace(/,/g, '_');

/**
 * Trains each architecture in `archs` (same options otherwise), measures them and copies the
 * chosen one to `opts.outDir`. Returns the chosen candidate's training result (its report's
 * files point into `outDir`) and the selection.
 *
 * @example
 * const { selection } = await trainCandidates({ data: 'co2.csv', target: 'co2', window: 52, arch: 'lstm:32', outDir: 'out' },
 *   ['lstm:16', 'gru:16'], { select: 'size', tolerance: 0.02 });
 * console.log(selection.chosen.arch, selection.chosen.reason);
 */
export async function trainCandidates(
  opts: Omit<TrainOptions, 'arch'> & { outDir: string },
  archs: string[],
  sel: SelectOptions = {},
): Promise<{ result: TrainResult; selection: Selection }> {
  const select = sel.select ?? 'metric';
  const tolerance = sel.tolerance ?? DEFAULT_TOLERANCE;
  if (!SELECT_BY.includes(select)) throw new InputError(`select '${String(select)}'`, { option: 'select', expected: SELECT_BY.join(' | ') });
  if (!(tolerance >= 0 && Number.isFinite(tolerance)))
    throw new InputError(`tolerance ${tolerance}`, { option: 'tolerance', expected: 'a relative tolerance ≥ 0, e.g. 0.02 for 2%' });
  const names = archs.map((a) => formatArch(parseArch(a)));
  if (names.length === 0) throw new InputError('no architecture', { option: 'arch', expected: 'at least one --arch' });
  const dup = names.find((a, i) => names.indexOf(a) !== i);
  if (dup) throw new InputError(`arch '${dup}' given twice`, { option: 'arch', expected: 'distinct architectures' });
  if (names.length > 1 && (opts.split?.[1] ?? 0.15) <= 0)
    throw new InputError(`split ${opts.split!.join(',')} has no validation part to pick on`, {
      option: 'split',
      expected: 'a validation fraction above 0 when choosing among architectures, e.g. 0.7,0.15',
    });
  const out = resolve(opts.outDir);
  const results: TrainResult[] = [];
  for (const [i, arch] of names.entries()) {
    sel.onCandidate?.(arch, i + 1, names.length);
    results.push(await trainModel({ ...opts, arch, outDir: join(out, 'candidates', archSlug(arch)) }));
  }

  const { exportToOnnx } = await import('../export/exporter.js');
  const { loadTfjsArtifacts } = await import('../export/tfjs-format/load.js');
  const { quantizeModel } = await import('../export/quantize/index.js');
  const { streamifyModel } = await import('../export/streamify/index.js');
  const orSkip = async <T>(f: () => Promise<T>): Promise<T | undefined> => {
    try {
      return await f();
    } catch (e) {
      if (!isStreamcellError(e)) throw e;
      return undefined;
    }
  };
  // Sizes, and the model whose batch-1 run is timed: the step model, or the window model when it does not streamify.
  const measureFiles = async (modelJson: string) => {
    const float = (await exportToOnnx(await loadTfjsArtifacts(modelJson))).model;
    const int8 = await orSkip(() => quantizeModel(float, { mode: 'int8' }));
    const step = await orSkip(() => streamifyModel(float, { tolerance: 1e-4 }));
    return {
      onnxBytes: float.byteLength,
      int8Bytes: int8?.model.byteLength,
      timed: step?.model ?? float,
      latencyOf: step ? ('step' as const) : ('window' as const),
    };
  };
  const measured: Awaited<ReturnType<typeof measureFiles>>[] = [];
  for (const r of results) measured.push(await measureFiles(r.report.files!.modelJson));
  const ar = results[0]!.report.baselines.find((b) => b.modelJson);
  const arMeasured = ar ? await measureFiles(ar.modelJson!) : undefined;
  const lat = await measureLatencies([...measured.map((m) => m.timed), ...(arMeasured ? [arMeasured.timed] : [])], { pre: results[0]!.preprocessing });

  const candidates: Candidate[] = results.map(({ report: r }, i) => ({
    arch: names[i]!,
    dir: join(out, 'candidates', archSlug(names[i]!)),
    parameters: r.model.parameters,
    onnxBytes: measured[i]!.onnxBytes,
    ...(measured[i]!.int8Bytes !== undefined ? { int8Bytes: measured[i]!.int8Bytes } : {}),
    latencyUs: lat.us[i]!,
    latencyOf: measured[i]!.latencyOf,
    ...(r.validation ? { validation: r.validation } : {}),
    test: r.test,
    epochs: r.training.epochs,
    seconds: r.seconds,
  }));
  const chosen = pick(candidates, results[0]!.report.primary.name, select, tolerance);
  const baselineRows: BaselineRow[] = results[0]!.report.baselines.map(({ name, kind, parameters, validation, test }) => ({
    name,
    kind,
    parameters,
    ...(validation ? { validation } : {}),
    test,
    ...(kind === 'ar' && arMeasured
      ? {
          onnxBytes: arMeasured.onnxBytes,
          ...(arMeasured.int8Bytes !== undefined ? { int8Bytes: arMeasured.int8Bytes } : {}),
          latencyUs: lat.us[candidates.length]!,
          latencyOf: arMeasured.latencyOf,
        }
      : {}),
  }));
  const selection: Selection = { candidates, baselineRows, chosen, cpu: lat.cpu };

  const winner = results[names.indexOf(chosen.arch)]!;
  const from = winner.report.files!;
  const files = {
    modelJson: join(out, 'model.json'),
    weightsBin: join(out, 'weights.bin'),
    preprocessing: join(out, 'preprocessing.json'),
    report: join(out, 'training-report.json'),
  };
  await copyFile(from.modelJson, files.modelJson);
  await copyFile(from.weightsBin, files.weightsBin);
  await copyFile(from.preprocessing, files.preprocessing);
  // The deployable AR(p) baseline (the same fit for every candidate) moves along to OUT/ar/.
  const baselines = await Promise.all(
    winner.report.baselines.map(async (b) => {
      if (!b.modelJson) return b;
      await cp(join(b.modelJson, '..'), join(out, 'ar'), { recursive: true });
      return { ...b, modelJson: join(out, 'ar', 'model.json') };
    }),
  );
  const report: TrainReport = { ...winner.report, baselines, files };
  await writeFile(files.report, JSON.stringify({ ...report, ...selection }, null, 2) + '\n');
  return { result: { ...winner, report }, selection };
}

/** The pick (see the module comment); ties go to the candidate listed first. */
export function pick(candidates: Candidate[], metric: 'rmse' | 'accuracy', select: SelectBy, tolerance: number): Selection['chosen'] {
  if (candidates.length === 1) return { arch: candidates[0]!.arch, select, tolerance, metric, reason: 'the only candidate' };
  const v = (c: Candidate) => c.validation![metric]!;
  const higher = metric === 'accuracy';
  const bestValue = higher ? Math.max(...candidates.map(v)) : Math.min(...candidates.map(v));
  const best = candidates.find((c) => v(c) === bestValue)!;
  const name = metric === 'rmse' ? 'RMSE' : 'accuracy';
  if (select === 'metric') return { arch: best.arch, select, tolerance, metric, reason: `best validation ${name} (${fmt(bestValue)})` };
  const within = candidates.filter((c) => (higher ? v(c) >= bestValue * (1 - tolerance) : v(c) <= bestValue * (1 + tolerance)));
  const key = (c: Candidate) => (select === 'size' ? c.onnxBytes : c.latencyUs);
  const c = within.reduce((a, b) => (key(b) < key(a) ? b : a));
  const what = select === 'size' ? 'the smallest ONNX file' : 'the fastest step';
  return {
    arch: c.arch,
    select,
    tolerance,
    metric,
    reason: `${what} among the ${within.length} candidate${within.length === 1 ? '' : 's'} within ${fmt(tolerance * 100)}% of the best validation ${name} (${fmt(bestValue)}, ${best.arch}): ${fmt(v(c))}`,
  };
}

const fmt = (v: number) => String(Number(v.toPrecision(4)));

const kib = (b: number) => (b / 1024).toFixed(1);

/** Rows of the candidates table (header first; the chosen row's first cell is '*'), then the baselines' rows; used by the text and HTML reports. */
export function candidateRows(s: Selection): string[][] {
  const m = s.chosen.metric;
  const val = (sc: Score | undefined) => (sc?.[m] === undefined ? '–' : m === 'rmse' ? sc[m].toPrecision(4) : sc[m].toFixed(3));
  type Measured = Pick<Candidate, 'parameters' | 'test'> & Partial<Pick<Candidate, 'onnxBytes' | 'int8Bytes' | 'latencyUs' | 'latencyOf' | 'validation'>>;
  const row = (mark: string, name: string, r: Measured) => [
    mark,
    name,
    String(r.parameters),
    r.onnxBytes === undefined ? '–' : kib(r.onnxBytes),
    r.int8Bytes === undefined ? '–' : kib(r.int8Bytes),
    r.latencyUs === undefined ? '–' : r.latencyUs.toFixed(1) + (r.latencyOf === 'window' ? ' (window)' : ''),
    val(r.validation),
    val(r.test),
  ];
  return [
    ['', 'candidate', 'params', 'ONNX KiB', 'int8 KiB', 'step µs', `val ${m}`, `test ${m}`],
    ...s.candidates.map((c) => row(c.arch === s.chosen.arch ? '*' : '', c.arch, c)),
    ...s.baselineRows.map((b) => row('', `${b.name} (baseline)`, b)),
  ];
}

/** Baselines with a better validation metric than the chosen candidate, as a sentence (empty when none). */
export function baselinesAhead(s: Selection): string {
  const m = s.chosen.metric;
  const chosen = s.candidates.find((c) => c.arch === s.chosen.arch)!.validation?.[m];
  if (chosen === undefined) return '';
  const ahead = s.baselineRows.filter((b) => b.validation?.[m] !== undefined && (m === 'rmse' ? b.validation[m] < chosen : b.validation[m] > chosen));
  return ahead.length ? `${ahead.map((b) => b.name).join(', ')} ${ahead.length === 1 ? 'has' : 'have'} a better validation ${m} than ${s.chosen.arch}` : '';
}

/** The candidates table as aligned text with the pick's reason under it. */
export function candidatesTable(s: Selection): string {
  const ahead = baselinesAhead(s);
  return `${textTable(candidateRows(s))}\nchosen (--select ${s.chosen.select}): ${s.chosen.arch}, ${s.chosen.reason}; latency p50 batch 1 on ${s.cpu}${ahead ? `\nNOTE: ${ahead}` : ''}`;
}
