/**
 * Training progress for a terminal: on a TTY one line redrawn in place (epoch n/N, a bar over
 * the whole run, loss, validation loss, ETA); elsewhere (logs, CI, pipes) one plain line per
 * epoch.
 */
import type { TrainProgress } from './train.js';

export interface ProgressStream {
  write(s: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export function fmtDuration(s: number): string {
  if (!Number.isFinite(s)) return '?';
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(Math.round(s - 60 * m)).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

const num = (v: number | undefined) =>
  v === undefined || Number.isNaN(v) ? '-' : Math.abs(v) < 0.001 || Math.abs(v) >= 1e4 ? v.toExponential(2) : v.toFixed(4);

/** The one-line bar, e.g. "epoch 3/20 [#####---------------] 12% loss 0.8123 val 1.0334 ETA 1m05s". */
export function progressLine(p: TrainProgress, width = 20): string {
  const frac = Math.min(1, (p.epoch - 1 + p.batch / Math.max(1, p.batches)) / p.epochs);
  const filled = Math.round(frac * width);
  return (
    `epoch ${p.epoch}/${p.epochs} [${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${String(Math.floor(frac * 100)).padStart(3)}% ` +
    `loss ${num(p.loss)} val ${num(p.valLoss)} ETA ${fmtDuration(p.etaSeconds)}`
  );
}

/** The per-epoch log line for non-TTY output. */
export function epochLine(p: TrainProgress): string {
  return `epoch ${p.epoch}/${p.epochs} loss ${num(p.loss)} val_loss ${num(p.valLoss)} elapsed ${fmtDuration(p.elapsedSeconds)} ETA ${fmtDuration(p.etaSeconds)}`;
}

/**
 * A progress sink for {@link TrainOptions.onProgress}; call `done()` when training ends so the
 * TTY line is closed.
 *
 * @example
 * const progress = progressReporter(process.stderr);
 * await trainModel({ ...opts, onProgress: progress.update });
 * progress.done();
 */
export function progressReporter(stream: ProgressStream, opts: { minIntervalMs?: number } = {}): { update: (p: TrainProgress) => void; done: () => void } {
  const tty = stream.isTTY === true;
  const minInterval = opts.minIntervalMs ?? 100;
  let last = 0;
  let open = false;
  // Batch events carry no validation loss: show the last epoch's while the next one runs.
  let lastValLoss: number | undefined;
  return {
    update: (p) => {
      if (!tty) {
        if (p.epochEnd) stream.write(epochLine(p) + '\n');
        return;
      }
      const now = Date.now();
      if (!p.epochEnd && now - last < minInterval) return;
      last = now;
      if (p.epochEnd) lastValLoss = p.valLoss;
      const line = progressLine({ ...p, valLoss: p.valLoss ?? lastValLoss });
      const cols = stream.columns || 100;
      stream.write(`\r${line.slice(0, Math.max(10, cols - 1))}\x1b[K`);
      open = true;
    },
    done: () => {
      if (open) stream.write('\n');
      open = false;
    },
  };
}
