import { resolve } from 'node:path';
import type { Argv } from 'yargs';
import { InputError, isInputError } from '../../errors.js';
import type { DaemonConfig } from '../../devices/config.js';
import type { RolloutOptions } from '../../devices/pipeline.js';
import { detectDevice } from '../../devices/detect.js';
import { MAX_WINDOW } from '../../limits.js';
import { commaList, guarded, type ArgsOf } from '../output.js';
import { backendChoice, describeBackend, executionProviders } from '../backend-option.js';

export const command = 'stream';
export const describe = 'Run the sensor-stream daemon: sources → model → sinks (Ctrl-C / SIGTERM stops cleanly)';

export function builder(y: Argv) {
  return y
    .option('model', { type: 'string', describe: 'step model (.onnx); a sequence model runs in window mode' })
    .option('bundle', { type: 'string', describe: 'bundle directory (its step model)' })
    .option('source', { type: 'string', array: true, describe: 'source URI (repeatable): serial:…, mqtt://…, file:…, stdin:, sim:…' })
    .option('sink', { type: 'string', array: true, describe: 'sink URI (repeatable): jsonl:-, jsonl:FILE, mqtt://…, http://127.0.0.1:8080' })
    .option('config', { type: 'string', describe: 'JSON or YAML config file (options override it)' })
    .option('checkpoint', { type: 'string', describe: 'state checkpoint file (restored on start when the model matches)' })
    .option('checkpoint-every', { type: 'number', default: 30, describe: 'seconds between checkpoints' })
    .option('non-finite', { choices: ['skip', 'hold', 'reset'] as const, describe: 'what a NaN/Inf reading does' })
    .option('min', { type: 'number', describe: 'drop readings with a value below this' })
    .option('max', { type: 'number', describe: 'drop readings with a value above this' })
    .option('resample', { type: 'number', describe: 'resample every stream to this rate (Hz)' })
    .option('execution-provider', {
      type: 'string',
      describe: 'onnxruntime execution providers to try first, comma-separated (e.g. cuda); refused with the list of what the installed onnxruntime has',
    })
    .option('window', { type: 'number', describe: 'window length (samples) for a sequence model with a free time dimension; default: its preprocessing' })
    .option('backend', {
      choices: ['onnxruntime-node', 'onnxruntime-web'] as const,
      describe:
        "force an inference backend (also STREAMCELL_BACKEND or `backend:` in the config); default: the board's preference, onnxruntime-node after a crash-safe probe, else onnxruntime-web",
    })
    .option('workers', {
      type: 'number',
      describe: "worker threads running the model, one session each (default 0: in the daemon's thread, with the spare cores as intra-op threads)",
    })
    .option('rollout', {
      type: 'number',
      describe:
        'attach a K-step autoregressive rollout to each prediction: `rollout`, the next K samples in target units (forecasters; K - 1 extra model steps a prediction)',
    })
    .option('rollout-every', { type: 'number', describe: 'with --rollout: roll out every Nth prediction of each stream (default 1)' })
    .option('hold', { type: 'string', describe: 'with --rollout: input channels the model does not predict, held at their last value (comma-separated names)' })
    .option('duration', { type: 'number', describe: 'stop after this many seconds' })
    .option('public-key', { type: 'string', describe: "verify the bundle's signature with this key (or STREAMCELL_PUBLIC_KEY)" })
    .option('log-level', { choices: ['debug', 'info', 'warn', 'error', 'silent'], describe: 'log level (logs are JSON lines on stderr)' });
}

async function modelBytes(args: {
  model?: string;
  bundle?: string;
  publicKey?: string;
}): Promise<{ file: string; bytes: Uint8Array; bundle?: { manifest: { name: string; version: string } } }> {
  const path = args.bundle ?? args.model;
  if (!path) throw new InputError('name the model', { field: '--model', expected: '--model STEP.onnx, --bundle DIR or a config file with "model"' });
  const { resolveModel } = await import('../model-source.js');
  return resolveModel(path, { publicKey: args.publicKey });
}

/** The rollout from the flags over the config's `rollout`; `--rollout-every` / `--hold` alone are refused. */
function rolloutOptions(args: { rollout?: number; rolloutEvery?: number; hold?: string }, cfg: DaemonConfig['rollout']): RolloutOptions | undefined {
  const steps = args.rollout ?? cfg?.steps;
  const every = args.rolloutEvery ?? cfg?.every;
  const hold = commaList(args.hold) ?? cfg?.hold;
  if (steps === undefined && (every !== undefined || hold !== undefined)) {
    const flag = every !== undefined ? '--rollout-every' : '--hold';
    throw new InputError(`${flag} without --rollout`, { field: flag, expected: `--rollout K as well (or no ${flag})` });
  }
  return steps === undefined ? undefined : { steps, every, hold };
}

export async function handler(args: ArgsOf<typeof builder>): Promise<void> {
  await guarded(args, async () => {
    const { loadDaemonConfig, resolveHttpToken } = await import('../../devices/config.js');
    const { Daemon } = await import('../../devices/daemon.js');
    const { sinkFromUri, sourceFromUri } = await import('../../devices/uri.js');
    const { aboutFile, assertOnnxLoads, channelsOf } = await import('../model-source.js');
    const cfg: Partial<DaemonConfig> = args.config ? await loadDaemonConfig(resolve(args.config)) : {};
    const { file, bytes, bundle } = await modelBytes({
      model: args.model ?? (args.bundle ? undefined : cfg.model),
      bundle: args.bundle,
      publicKey: args.publicKey,
    });
    if (args.window !== undefined && (!Number.isInteger(args.window) || args.window < 1 || args.window > MAX_WINDOW))
      throw new InputError(`--window is ${args.window}`, {
        field: '--window',
        expected: `an integer number of samples from 1 to ${MAX_WINDOW} (streamcell's window limit)`,
      });
    const every = args.checkpoint ? args.checkpointEvery : (cfg.checkpoint?.every_s ?? args.checkpointEvery);
    if (!(Number.isFinite(every) && every >= 1 && every <= 604_800))
      throw new InputError(`--checkpoint-every is ${every}`, { field: '--checkpoint-every', expected: 'seconds between 1 and 604800' });
    if (args.workers !== undefined && !(Number.isInteger(args.workers) && args.workers >= 0 && args.workers <= 64))
      throw new InputError(`--workers is ${args.workers}`, { field: '--workers', expected: 'an integer from 0 to 64' });
    const sourceUris = args.source ?? cfg.sources;
    if (!sourceUris?.length)
      throw new InputError('no source', { field: '--source', expected: 'at least one source URI, e.g. --source serial:/dev/ttyUSB0?baud=115200' });
    const rollout = rolloutOptions(args, cfg.rollout);
    const level = args.logLevel ?? cfg.log_level ?? 'info';
    const pino = (await import('pino')).default;
    const log = pino({ level, base: { app: 'streamcell' } }, pino.destination(2));
    const device = detectDevice();
    const probe = await import('../../runtime/step-model.js');
    const info = probe.readModelInfo(bytes, file);
    const channels = channelsOf(info, file);
    const c = backendChoice(args, cfg.backend);
    await assertOnnxLoads(bytes, file, { force: c.force, prefer: c.prefer });
    const sources = await Promise.all(sourceUris.map((u) => sourceFromUri(u, { channels })));
    const sinks = (args.sink ?? cfg.sinks ?? ['jsonl:-']).map((u) => sinkFromUri(u));
    const p = cfg.policy;
    const token = await resolveHttpToken(cfg, process.env, args.config ? resolve(args.config) : undefined);
    const daemon = await aboutFile(file, () =>
      Daemon.create({
        model: bytes,
        sources,
        sinks,
        log,
        checkpoint: args.checkpoint ?? cfg.checkpoint?.file,
        checkpointEveryS: every,
        policy: { nonFinite: args.nonFinite ?? p?.non_finite, min: args.min ?? p?.min, max: args.max ?? p?.max, monotonicTime: p?.monotonic_time },
        resampleHz: args.resample ?? cfg.resample_hz,
        window: args.window ?? cfg.window,
        rollout,
        bundle: bundle && { name: bundle.manifest.name, version: bundle.manifest.version },
        ...(() => {
          const c = backendChoice(args, cfg.backend);
          return { backend: c.force, preferBackends: c.prefer };
        })(),
        pool: {
          session: { intraOpThreads: device.threads, executionProviders: executionProviders(args.executionProvider ?? cfg.execution_providers) },
          maxBatch: cfg.pool?.max_batch,
          maxWaitMs: cfg.pool?.max_wait_ms,
          maxStreams: cfg.pool?.max_streams,
          idleMs: cfg.pool?.idle_ms,
          workers: args.workers ?? cfg.pool?.workers,
        },
        token,
      }).catch((e: unknown) => {
        // The library names its option; a CLI user sets a flag or a config key.
        if (isInputError(e) && e.context.field === 'window') {
          throw new InputError(
            'the model is a sequence model with a free time dimension and carries no window length: pass --window N (or `window: N` in the config), or streamify it to a step model and stream that',
            { field: '--window', expected: 'a positive integer number of samples' },
          );
        }
        throw e;
      }),
    );
    log.info({ device, backend: daemon.backendRecord }, `device; ${describeBackend(daemon.backendRecord)}`);
    let stopping = false;
    const stop = async (why: string) => {
      if (stopping) return;
      stopping = true;
      log.info({ why }, 'stopping');
      await daemon.stop();
    };
    const onSignal = (sig: string) => void stop(sig).then(() => process.exit(process.exitCode ?? 0));
    process.once('SIGTERM', () => onSignal('SIGTERM'));
    process.once('SIGINT', () => onSignal('SIGINT'));
    await daemon.start();
    const finite = sources.every((s) => s.done);
    const timers: Promise<string>[] = [];
    let durationTimer: NodeJS.Timeout | undefined;
    // unref: when the sources finish first, the timer must not keep the process alive.
    if (args.duration)
      timers.push(new Promise((r) => (durationTimer = setTimeout(() => r(`--duration ${args.duration} s reached`), args.duration! * 1000)).unref()));
    if (finite) timers.push(daemon.finished().then(() => 'sources finished'));
    // Whichever comes first is the reason logged.
    if (timers.length) {
      await stop(await Promise.race(timers));
      clearTimeout(durationTimer);
    } else await new Promise(() => {}); // until a signal
  });
}
