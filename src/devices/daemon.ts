/**
 * The sensor-stream daemon: sources → pipeline → stream pool → sinks, with Prometheus metrics,
 * health, periodic state checkpoints (restored on start when the model hash matches) and a
 * clean shutdown that drains the pipeline, checkpoints and flushes every sink.
 */
import { existsSync } from 'node:fs';
import { checkPreprocessing, type PreprocessingJson } from '../data/preprocessing.js';
import { InputError, isInputError } from '../errors.js';
import type { BackendName, BackendRecord } from '../runtime/backend.js';
import type { Pool, PoolOptions, Prediction } from '../runtime/pool-types.js';
import { StreamPool } from '../runtime/pool.js';
import { readModelInfo, type ModelInfo } from '../runtime/step-model.js';
import { WindowPool } from '../runtime/window.js';
import { DaemonMetrics } from './metrics.js';
import { Pipeline, type StreamPolicy } from './pipeline.js';
import type { SinkFactory } from './uri.js';
import type { Sink, Source } from './types.js';

export interface Logger {
  info(o: object, msg: string): void;
  warn(o: object, msg: string): void;
  error(o: object, msg: string): void;
}

const silent: Logger = { info() {}, warn() {}, error() {} };

export interface DaemonOptions {
  model: Uint8Array;
  sources: Source[];
  sinks: SinkFactory[];
  /** State checkpoint file, written every `checkpointEveryS` seconds and on stop. */
  checkpoint?: string;
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
}

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
  /** Outcome of the checkpoint restore at start. */
  restored: 'restored' | 'none' | 'mismatch' = 'none';

  private constructor(private readonly opts: DaemonOptions) {
    this.log = opts.log ?? silent;
    this.info = readModelInfo(opts.model);
    const p = this.info.metadata['streamcell.preprocessing'];
    this.pre = p ? checkPreprocessing(JSON.parse(p), 'model metadata streamcell.preprocessing') : undefined;
  }

  static async create(opts: DaemonOptions): Promise<Daemon> {
    const d = new Daemon(opts);
    const poolOpts = { backend: opts.backend, preferBackends: opts.preferBackends, ...opts.pool };
    const window = opts.window ?? d.pre?.window;
    d.pool = d.info.kind === 'step' ? await StreamPool.create(opts.model, poolOpts) : await WindowPool.create(opts.model, { ...poolOpts, window }).catch((e: unknown) => {
      if (isInputError(e) && e.context.field === 'window') {
        throw new InputError("the model is a sequence model with a free time dimension and carries no preprocessing window: give the window length (option 'window'), or streamify it to a step model", { field: 'window', expected: 'an integer number of samples' });
      }
      throw e;
    });
    const b = d.pool.backendRecord;
    d.metrics.backendInfo.set({ backend: b.name, version: b.version, how: b.how, native_probe: b.probe ? (b.probe.ok ? 'ok' : 'failed') : 'not-run' }, 1);
    d.sinks = await Promise.all(opts.sinks.map((f) => f({ metrics: d.metrics, health: () => d.health(), token: opts.token })));
    const channels = d.pre?.channels.length ?? Number(d.info.sampleInputs[0]?.dims.at(-1) ?? 1);
    d.pipeline = new Pipeline({ pool: d.pool, channels, pre: d.pre, metrics: d.metrics, sinks: d.sinks, policy: opts.policy, resampleHz: opts.resampleHz, log: d.log });
    return d;
  }

  /** The backend in use, how it was chosen, and why others were skipped. */
  get backendRecord(): BackendRecord {
    return this.pool.backendRecord;
  }

  health(): { ok: boolean; [k: string]: unknown } {
    return {
      ok: this.pipeline.connected && !this.stopping,
      sourcesConnected: this.pipeline.connected,
      streams: this.pool.size,
      uptimeS: this.started ? Math.round((Date.now() - this.started) / 1000) : 0,
      model: this.info.sha256,
      restored: this.restored,
      backend: this.backendRecord,
    };
  }

  async start(): Promise<void> {
    this.started = Date.now();
    const cp = this.opts.checkpoint;
    if (cp && existsSync(cp)) {
      try {
        await this.pool.restore(cp);
        this.restored = 'restored';
        this.log.info({ checkpoint: cp, streams: this.pool.size }, 'state restored from checkpoint');
      } catch (e) {
        // Another model's (or a damaged) checkpoint: start fresh, keep the file for inspection.
        this.restored = 'mismatch';
        this.log.warn({ checkpoint: cp, err: (e as Error).message }, isInputError(e) ? 'checkpoint refused; starting from the initial state' : 'checkpoint unreadable');
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

  async checkpoint(): Promise<void> {
    if (!this.opts.checkpoint) return;
    try {
      await this.pipeline.drained();
      await this.pool.snapshot(this.opts.checkpoint);
    } catch (e) {
      this.log.error({ err: (e as Error).message }, 'checkpoint failed');
    }
  }

  /** Stops sources, drains, checkpoints, flushes and closes sinks. Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      clearInterval(this.timer);
      await Promise.all(this.opts.sources.map((s) => s.stop()));
      await this.pipeline.drained();
      await this.checkpoint();
      for (const s of this.sinks) await s.flush().catch((e) => this.log.error({ sink: s.uri, err: (e as Error).message }, 'flush failed'));
      for (const s of this.sinks) await s.close().catch(() => undefined);
      await this.pool.close();
      this.log.info({}, 'stopped');
    })();
    return this.stopping;
  }
}
