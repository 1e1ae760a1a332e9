/**
 * The sensor-stream daemon: sources → pipeline → stream pool → sinks, with Prometheus metrics,
 * health, periodic state checkpoints (restored on start when the model hash matches) and a
 * clean shutdown that drains the pipeline, checkpoints and flushes every sink.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, readFile, rename, stat, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { readPreprocessing, type PreprocessingJson } from '../model-format/index.js';
import { InputError, isInputError } from '../errors.js';
import type { BackendName, BackendRecord } from '../runtime/backend.js';
import { MAX_ROLLOUT } from '../runtime/forecast.js';
import type { Pool, PoolOptions, Prediction } from '../runtime/pool-types.js';
import { StreamPool } from '../runtime/pool.js';
import { snapshotTempPid } from '../runtime/pool-core.js';
import { readModelInfo, type ModelInfo } from '../runtime/step-model.js';
import { WindowPool } from '../runtime/window.js';
import { DaemonMetrics } from './metrics.js';
import { DEFAULT_MAX_STREAMS, Pipeline, type RolloutOptions, type StreamPolicy } from './pipeline.js';
import { statusReport, type StatusReport } from './status.js';
import { LatencyTrace, type LatencyBreakdown } from './trace.js';
import type { SinkFactory } from './uri.js';
import type { Sink, Source } from './types.js';

/** The logger the daemon writes to (pino-compatible): an object of fields and a message. */
export interface Logger {
  info(o: object, msg: string): void;
  warn(o: object, msg: string): void;
  error(o: object, msg: string): void;
}

const silent: Logger = { info() {}, warn() {}, error() {} };

/** Options of {@link Daemon.create}: the model, sources and sinks, checkpoint, stream policy, resampling, window, pool and backend settings, HTTP token and logger. */
export interface DaemonOptions {
  model: Uint8Array;
  sources: Source[];
  sinks: SinkFactory[];
  /**
   * State checkpoint file, written every `checkpointEveryS` seconds (when something changed)
   * and on stop. One that cannot be restored (damaged, another model's) is moved aside to
   * `FILE.refused-<sha256 prefix>` and kept.
   */
  checkpoint?: string;
  /** Seconds between checkpoints, ≥ 1 (default: only on stop). */
  checkpointEveryS?: number;
  policy?: Partial<StreamPolicy>;
  resampleHz?: number;
  /** Window length for a sequence model with a free time dimension (default: its preprocessing's). */
  window?: number;
  pool?: PoolOptions;
  /** Force this backend (no fallback). */
  backend?: BackendName;
  /** Without `backend`: the order to try (the detected board's preference); native is probed first. */
  preferBackends?: readonly BackendName[];
  token?: string;
  log?: Logger;
  /** Latency trace: stamp one reading in this many at each stage (default 64; 1: every reading, as the bench does; 0: off). */
  traceEvery?: number;
  /**
   * Attach a K-step autoregressive rollout (`rollout` field) to every (or every Nth)
   * prediction. A model that cannot be rolled out (a classifier, a horizon other than 1,
   * unpredicted channels not in `hold`) is refused here, at create.
   */
  rollout?: RolloutOptions;
  /** The bundle the model came from (`--bundle`), for the dashboard's status. */
  bundle?: { name: string; version: string };
}

/** The sensor-stream daemon: sources → pipeline → stream pool → sinks, with metrics, health, checkpoints and a clean shutdown (see the module comment). */
export class Daemon {
  readonly metrics = new DaemonMetrics();
  readonly info: ModelInfo;
  readonly pre?: PreprocessingJson;
  private pool!: Pool<Prediction | null>;
  private pipeline!: Pipeline;
  private sinks: Sink[] = [];
  private timer?: NodeJS.Timeout;
  private readonly log: Logger;
  private started = 0;
  private stopping?: Promise<void>;
  /** Wall-clock ms of the last checkpoint written (or, after a restore, of the restored file). */
  private checkpointWrittenMs?: number;
  /** Pool pushes at the last checkpoint: an unchanged pool is not written again. */
  private checkpointedAt = -1;
  /** Outcome of the checkpoint restore at start. */
  restored: 'restored' | 'none' | 'mismatch' = 'none';
  /** Where a refused checkpoint was moved. */
  refusedCheckpoint?: string;

  private constructor(private readonly opts: DaemonOptions) {
    this.log = opts.log ?? silent;
    this.info = readModelInfo(opts.model);
    this.pre = readPreprocessing(this.info.metadata, `model ${this.info.sha256.slice(0, 12)}`);
  }

  static async create(opts: DaemonOptions): Promise<Daemon> {
    const every = opts.checkpointEveryS;
    if (every !== undefined && !(Number.isFinite(every) && every >= 1 && every <= 7 * 86400)) {
      throw new InputError(`checkpoint interval ${every} s`, { field: 'checkpointEveryS', expected: 'seconds between 1 and 604800' });
    }
    const r = opts.rollout;
    if (r && !(Number.isInteger(r.steps) && r.steps >= 1 && r.steps <= MAX_ROLLOUT))
      throw new InputError(`a rollout of ${r.steps} steps`, { option: 'rollout', expected: `an integer number of steps from 1 to ${MAX_ROLLOUT}` });
    if (r?.every !== undefined && !(Number.isSafeInteger(r.every) && r.every >= 1))
      throw new InputError(`a rollout every ${r.every} predictions`, { option: 'rolloutEvery', expected: 'a positive integer (1: every prediction)' });
    const d = new Daemon(opts);
    const poolOpts = { backend: opts.backend, preferBackends: opts.preferBackends, ...opts.pool, maxStreams: opts.pool?.maxStreams ?? DEFAULT_MAX_STREAMS };
    const window = opts.window ?? d.pre?.window;
    d.pool =
      d.info.kind === 'step'
        ? await StreamPool.create(opts.model, poolOpts)
        : await WindowPool.create(opts.model, { ...poolOpts, window }).catch((e: unknown) => {
            if (isInputError(e) && e.context.field === 'window') {
              throw new InputError(
                "the model is a sequence model with a free time dimension and carries no preprocessing window: give the window length (option 'window'), or streamify it to a step model",
                { field: 'window', expected: 'an integer number of samples' },
              );
            }
            throw e;
          });
    if (r) {
      // No stream yet: the pool only checks that its model's outputs can be fed back (the declared output size, the preprocessing, `hold`).
      await d.pool.forecastMany([], r.steps, { hold: r.hold }).catch(async (e: unknown) => {
        await d.pool.close();
        if (!isInputError(e)) throw e;
        throw new InputError(`cannot roll this model out: ${e.message}`, {
          option: e.context.field === 'hold' ? 'hold' : 'rollout',
          expected: e.context.expected,
        });
      });
    }
    const b = d.pool.backendRecord;
    d.metrics.backendInfo.set({ backend: b.name, version: b.version, how: b.how, native_probe: b.probe ? (b.probe.ok ? 'ok' : 'failed') : 'not-run' }, 1);
    d.metrics.poolStats = () => ({ streams: d.pool.size, evicted: d.pool.stats().evicted });
    try {
      d.sinks = [];
      for (const f of opts.sinks)
        d.sinks.push(await f({ metrics: d.metrics, health: () => d.health(), status: () => d.status(), token: opts.token, log: d.log }));
    } catch (e) {
      // Close what was opened (an HTTP port, an MQTT connection) before reporting.
      for (const s of d.sinks) await s.close().catch(() => undefined);
      await d.pool.close();
      throw e;
    }
    const trace = new LatencyTrace(opts.traceEvery);
    d.metrics.trace = trace;
    trace.onTrace = (ms) => d.metrics.observeTrace(ms);
    const channels = d.pre?.channels.length ?? Number(d.info.sampleInputs[0]?.dims.at(-1) ?? 1);
    d.pipeline = new Pipeline({
      pool: d.pool,
      channels,
      pre: d.pre,
      metrics: d.metrics,
      sinks: d.sinks,
      policy: opts.policy,
      resampleHz: opts.resampleHz,
      log: d.log,
      maxStreams: poolOpts.maxStreams,
      trace,
      rollout: r,
    });
    return d;
  }

  /** The backend in use, how it was chosen, and why others were skipped. */
  get backendRecord(): BackendRecord {
    return this.pool.backendRecord;
  }

  /**
   * `ok` while the sources are connected and the daemon is not stopping. A failing sink (full
   * disk, broker down) does not make it false — a restart cannot fix it and would lose state —
   * but is listed under `sinks` and sets `degraded`.
   */
  health(): { ok: boolean; [k: string]: unknown } {
    const sinks = this.sinks.map((s) => ({ uri: s.uri, ...(s.health?.() ?? { ok: true }) }));
    return {
      ok: this.pipeline.connected && !this.stopping,
      degraded: sinks.some((s) => !s.ok),
      sourcesConnected: this.pipeline.connected,
      sinks,
      streams: this.pool.size,
      uptimeS: this.started ? Math.round((Date.now() - this.started) / 1000) : 0,
      model: this.info.sha256,
      restored: this.restored,
      backend: this.backendRecord,
    };
  }

  /** The dashboard's `status` event: see {@link statusReport} (the same counters as `/metrics`). */
  status(): Promise<StatusReport> {
    const b = this.opts.bundle;
    return statusReport({
      metrics: this.metrics,
      startedMs: this.started,
      model: {
        sha256: this.info.sha256,
        bundleVersion: b?.version ?? null,
        name: b?.name ?? null,
        channels: this.pre?.channels ?? null,
        target: this.pre?.task === 'forecast' ? (this.pre.target ?? this.pre.channels[0]!) : null,
      },
      backend: this.backendRecord,
      sources: this.opts.sources.map((s) => ({ name: s.uri, connected: this.pipeline.sourceConnected(s.uri) })),
      sinks: this.sinks,
      checkpoint: { file: this.opts.checkpoint, writtenMs: this.checkpointWrittenMs },
      maxStreams: this.opts.pool?.maxStreams ?? DEFAULT_MAX_STREAMS,
    });
  }

  /** Where the time goes: p50/p99 per stage of the traced readings, and the event-loop delay. */
  latency(): LatencyBreakdown {
    return this.pipeline.trace.breakdown();
  }

  async start(): Promise<void> {
    this.started = Date.now();
    this.pipeline.trace.startLoop();
    const cp = this.opts.checkpoint;
    if (cp) await this.removeOrphanTemps(cp);
    if (cp && existsSync(cp)) {
      try {
        await this.pool.restore(cp);
        this.restored = 'restored';
        this.checkpointWrittenMs = (await stat(cp).catch(() => undefined))?.mtimeMs;
        this.log.info({ checkpoint: cp, streams: this.pool.size }, 'state restored from checkpoint');
      } catch (e) {
        // Another model's (or a damaged) checkpoint: start fresh, and move the file aside so the
        // next periodic write does not overwrite it (a rollback to that model can restore it).
        this.restored = 'mismatch';
        this.refusedCheckpoint = await this.moveAside(cp).catch(() => undefined);
        this.log.warn(
          { checkpoint: cp, movedTo: this.refusedCheckpoint, err: (e as Error).message },
          isInputError(e) ? 'checkpoint refused; starting from the initial state' : 'checkpoint unreadable',
        );
      }
    }
    if (cp && this.opts.checkpointEveryS) {
      this.timer = setInterval(() => void this.checkpoint(), this.opts.checkpointEveryS * 1000);
      this.timer.unref();
    }
    for (const s of this.opts.sources) await s.start(this.pipeline.eventsFor(s.uri));
    this.log.info({ sources: this.opts.sources.map((s) => s.uri), sinks: this.sinks.map((s) => s.uri), model: this.info.sha256.slice(0, 12) }, 'streaming');
  }

  /** Resolves when every finite source has been read and every reading handled. */
  async finished(): Promise<void> {
    await Promise.all(this.opts.sources.map((s) => s.done ?? new Promise<void>(() => {})));
    await this.pipeline.drained();
  }

  /** Writes the checkpoint when the pool changed since the last one (or `force`). */
  async checkpoint(force = false): Promise<void> {
    if (!this.opts.checkpoint) return;
    try {
      await this.pipeline.drained();
      const pushes = this.pool.stats().pushes;
      if (!force && pushes === this.checkpointedAt) return;
      await this.pool.snapshot(this.opts.checkpoint);
      this.checkpointWrittenMs = Date.now();
      this.checkpointedAt = pushes;
    } catch (e) {
      this.metrics.sinkErrors.inc({ sink: 'checkpoint', code: (e as NodeJS.ErrnoException).code ?? 'error' });
      this.log.error({ err: (e as Error).message }, 'checkpoint failed');
    }
  }

  /** `FILE` → `FILE.refused-<first 12 hex of its SHA-256>`; returns the new path. */
  private async moveAside(file: string): Promise<string> {
    const sha = createHash('sha256')
      .update(await readFile(file))
      .digest('hex')
      .slice(0, 12);
    const to = `${file}.refused-${sha}`;
    await rename(file, to);
    return to;
  }

  /** Temp files of checkpoint writes a killed process never renamed (`.NAME.PID.RANDOM.tmp`). */
  private async removeOrphanTemps(file: string): Promise<void> {
    const dir = dirname(file);
    const names = await readdir(dir).catch(() => [] as string[]);
    for (const n of names) {
      const pid = snapshotTempPid(file, n);
      if (pid === undefined || (pid !== process.pid && pidAlive(pid))) continue;
      const path = join(dir, n);
      if ((await stat(path).catch(() => undefined))?.isFile()) {
        await unlink(path).catch(() => undefined);
        this.log.info({ file: path }, 'removed the temp file of an interrupted checkpoint');
      }
    }
  }

  /** Stops sources, drains, checkpoints, flushes and closes sinks. Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      clearInterval(this.timer);
      await Promise.all(this.opts.sources.map((s) => s.stop()));
      await this.pipeline.drained();
      await this.checkpoint(true);
      for (const s of this.sinks) await s.flush().catch((e) => this.log.error({ sink: s.uri, err: (e as Error).message }, 'flush failed'));
      for (const s of this.sinks) await s.close().catch(() => undefined);
      await this.pool.close();
      this.pipeline.trace.stopLoop();
      this.log.info({}, 'stopped');
    })();
    return this.stopping;
  }
}

/** Whether a process with this id exists (a checkpoint temp of a live writer is left alone). */
function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
