/**
 * The daemon's config file (JSON or YAML), validated with a schema: every error names the
 * file and the field path. Command-line options override the file.
 */
import { readFile } from 'node:fs/promises';
import type { z as Zod } from 'zod';
import { InputError } from '../errors.js';
import { MAX_ROLLOUT } from '../runtime/forecast.js';

/**
 * The config schema, given zod. zod and yaml are loaded only when a config file is read (zod
 * for any, yaml for a YAML one): together they took 0.12–0.18 s to load on a 2-core x86 VM,
 * and a daemon started with flags alone needs neither (scripts/bench/startup.mjs).
 */
function schemaWith(z: typeof Zod) {
  return z
    .object({
      model: z.string().min(1).describe('step model (.onnx) or bundle directory'),
      sources: z.array(z.string().min(1)).min(1).describe('source URIs'),
      sinks: z.array(z.string().min(1)).default(['jsonl:-']),
      checkpoint: z
        .object({ file: z.string().min(1), every_s: z.number().min(1).max(604_800).default(30) })
        .strict()
        .optional(),
      policy: z
        .object({
          non_finite: z.enum(['skip', 'hold', 'reset']).default('skip'),
          min: z.number().optional(),
          max: z.number().optional(),
          monotonic_time: z.boolean().default(true),
        })
        .strict()
        .optional(),
      resample_hz: z.number().positive().optional(),
      window: z.number().int().positive().optional().describe('window length for a sequence model whose time dimension is free (default: its preprocessing)'),
      rollout: z
        .object({
          steps: z.number().int().min(1).max(MAX_ROLLOUT).describe('steps ahead, K'),
          every: z.number().int().positive().optional().describe('roll out every Nth prediction of each stream (default 1)'),
          hold: z.array(z.string().min(1)).optional().describe('channels the model does not predict, held at their last value'),
        })
        .strict()
        .optional()
        .describe("attach a K-step autoregressive rollout to predictions (the record's `rollout`)"),
      backend: z.enum(['onnxruntime-node', 'onnxruntime-web']).optional(),
      execution_providers: z.array(z.string().min(1)).optional().describe('onnxruntime execution providers to try first, e.g. ["cuda"]'),
      http_token: z.string().min(16).optional(),
      http_token_file: z.string().min(1).optional().describe('file holding the HTTP token (one line, at least 16 characters)'),
      log_level: z.enum(['debug', 'info', 'warn', 'error', 'silent']).default('info'),
      pool: z
        .object({
          max_batch: z.number().int().positive().max(65_536).optional(),
          max_wait_ms: z.number().nonnegative().max(60_000).optional(),
          max_streams: z.number().int().positive().max(1_000_000).optional().describe('streams kept (least recently used evicted); default 10000'),
          idle_ms: z.number().positive().optional(),
          workers: z
            .number()
            .int()
            .min(0)
            .max(64)
            .optional()
            .describe("worker threads running the model, one session each (default 0: in the daemon's thread, the spare cores as intra-op threads)"),
        })
        .strict()
        .optional(),
    })
    .strict();
}

export type DaemonConfig = Zod.infer<ReturnType<typeof schemaWith>>;

let schema: ReturnType<typeof schemaWith> | undefined;

/** The daemon config's zod schema (loads zod on first use). */
export async function daemonConfigSchema(): Promise<ReturnType<typeof schemaWith>> {
  schema ??= schemaWith((await import('zod')).z);
  return schema;
}

export async function loadDaemonConfig(file: string): Promise<DaemonConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new InputError(`cannot read config: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, {
      file,
      expected: 'a JSON or YAML daemon config',
    });
  }
  const isJson = /\.json$/i.test(file);
  const yaml = isJson ? undefined : await import('yaml');
  let raw: unknown;
  try {
    raw = yaml ? yaml.parse(text) : JSON.parse(text);
  } catch (e) {
    throw new InputError(`config is not valid ${/\.json$/i.test(file) ? 'JSON' : 'YAML'}: ${(e as Error).message.split('\n')[0]}`, {
      file,
      expected: 'a JSON or YAML document',
    });
  }
  const r = (await daemonConfigSchema()).safeParse(raw);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    const field = issue.path.join('.') || '(top level)';
    throw new InputError(`config field '${field}': ${issue.message}`, { file, field, expected: describeExpected(field) });
  }
  return r.data;
}

function describeExpected(field: string): string {
  const hints: Record<string, string> = {
    model: 'a path to a step model (.onnx)',
    sources: 'a list of source URIs, e.g. ["serial:/dev/ttyUSB0?baud=115200"]',
    sinks: 'a list of sink URIs, e.g. ["jsonl:-", "http://127.0.0.1:8080"]',
    'policy.non_finite': 'skip, hold or reset',
    'rollout.steps': `an integer number of steps from 1 to ${MAX_ROLLOUT}`,
    'rollout.every': 'a positive integer (1: every prediction)',
    http_token: 'a secret of at least 16 characters',
    http_token_file: 'a readable file holding the token',
  };
  return hints[field] ?? 'see the README config reference';
}

/**
 * The HTTP token from (first found) the config's `http_token`, its `http_token_file`, the
 * environment's `STREAMCELL_HTTP_TOKEN`, or the file named by `STREAMCELL_HTTP_TOKEN_FILE`;
 * never from the command line. At least 16 characters.
 */
export async function resolveHttpToken(
  cfg: Pick<DaemonConfig, 'http_token' | 'http_token_file'>,
  env: NodeJS.ProcessEnv = process.env,
  configFile?: string,
): Promise<string | undefined> {
  const fromFile = async (file: string, field: string): Promise<string> => {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (e) {
      throw new InputError(`cannot read the HTTP token file: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, {
        file,
        field,
        expected: 'a readable file holding the token',
      });
    }
    return check(text.trim(), field, file);
  };
  const check = (token: string, field: string, file?: string): string => {
    if (token.length < 16)
      throw new InputError(`the HTTP token has ${token.length} characters`, { file, field, expected: 'a secret of at least 16 characters' });
    return token;
  };
  if (cfg.http_token !== undefined) return check(cfg.http_token, 'http_token', configFile);
  if (cfg.http_token_file !== undefined) return fromFile(cfg.http_token_file, 'http_token_file');
  if (env.STREAMCELL_HTTP_TOKEN !== undefined && env.STREAMCELL_HTTP_TOKEN !== '') return check(env.STREAMCELL_HTTP_TOKEN, 'STREAMCELL_HTTP_TOKEN');
  if (env.STREAMCELL_HTTP_TOKEN_FILE) return fromFile(env.STREAMCELL_HTTP_TOKEN_FILE, 'STREAMCELL_HTTP_TOKEN_FILE');
  return undefined;
}
