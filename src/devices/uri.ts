/**
 * Source and sink URIs (DESIGN.md): `serial:/dev/ttyUSB0?baud=115200&format=csv`,
 * `mqtt://host:1883/topic`, `file:data.csv?rate=360`, `stdin:?format=jsonl`, `sim:ecg?hz=360`;
 * sinks `jsonl:-`, `jsonl:out.jsonl`, `mqtt://host:1883/topic`, `http://127.0.0.1:8080`.
 * Parsing errors name the URI and the parameter.
 */
import { InputError } from '../errors.js';
import type { FramingOptions } from './sources/framed.js';
import type { LineFormat } from './framing/line-format.js';
import type { DaemonMetrics } from './metrics.js';
import type { Sink, Source } from './types.js';

/** What {@link sourceFromUri} needs to know of the model: its channel names (from the preprocessing) or count. */
export interface UriContext {
  /** The model's channel names (preprocessing) or count. */
  channels: string[] | number;
}

/** What a {@link SinkFactory} is given when the daemon opens its sinks: metrics, the health callback, the HTTP token and a logger. */
export interface SinkContext {
  metrics: DaemonMetrics;
  health: () => { ok: boolean; [k: string]: unknown };
  /** The dashboard's `status` event (HTTP sink). */
  status?: () => Promise<object>;
  /** Token for a non-loopback HTTP sink. */
  token?: string;
  log?: { info(o: object, msg: string): void; error(o: object, msg: string): void };
}

/** Opens a sink with the daemon's context ({@link sinkFromUri} returns one per sink URI). */
export type SinkFactory = (ctx: SinkContext) => Promise<Sink>;

function bad(uri: string, field: string, expected: string, got?: string): never {
  throw new InputError(`source/sink URI '${uri}': ${field}${got !== undefined ? ` is '${got}'` : ' is missing'}`, { field, expected });
}

function num(uri: string, q: URLSearchParams, key: string, dflt?: number): number | undefined {
  const v = q.get(key);
  if (v === null) return dflt;
  const n = Number(v);
  if (!Number.isFinite(n)) bad(uri, key, 'a number', v);
  return n;
}

function split(uri: string): { scheme: string; path: string; q: URLSearchParams } {
  const m = /^([a-z][a-z0-9+.-]*):(.*)$/i.exec(uri);
  if (!m) bad(uri, 'scheme', 'serial:, file:, stdin:, sim:, mqtt://, jsonl:, http://');
  const [, scheme, rest] = m as unknown as [string, string, string];
  const qi = rest.indexOf('?');
  return { scheme: scheme.toLowerCase(), path: qi < 0 ? rest : rest.slice(0, qi), q: new URLSearchParams(qi < 0 ? '' : rest.slice(qi + 1)) };
}

/** Framing options from URI parameters: `format`, `columns`, `stream`, `time`, `header`, binary `dtype`/`channels`/`scale`/`sync`. */
export function framingFrom(uri: string, q: URLSearchParams, ctx: UriContext): FramingOptions {
  const format = q.get('format') ?? 'csv';
  const count = typeof ctx.channels === 'number' ? ctx.channels : ctx.channels.length;
  if (format === 'binary') {
    const dtype = q.get('dtype') ?? 'int16';
    if (dtype !== 'int16' && dtype !== 'float32') bad(uri, 'dtype', 'int16 or float32', dtype);
    const sync = q.get('sync');
    return {
      kind: 'binary',
      dtype,
      channels: num(uri, q, 'channels', count)!,
      scale: num(uri, q, 'scale'),
      sync: sync ? (sync.match(/../g) ?? []).map((h) => parseInt(h, 16)) : undefined,
    };
  }
  if (!['csv', 'whitespace', 'kv', 'jsonl'].includes(format)) bad(uri, 'format', 'csv, whitespace, kv, jsonl or binary', format);
  const colParam = q.get('columns');
  const columns: (string | number)[] = colParam
    ? colParam.split(',').map((c) => (/^\d+$/.test(c) ? Number(c) : c))
    : typeof ctx.channels === 'number' || format === 'csv' || format === 'whitespace'
      ? typeof ctx.channels === 'number'
        ? Array.from({ length: ctx.channels }, (_, i) => i)
        : ctx.channels
      : ctx.channels;
  const col = (k: string) => {
    const v = q.get(k);
    return v === null ? undefined : /^\d+$/.test(v) ? Number(v) : v;
  };
  const header = q.get('header');
  return {
    kind: 'line',
    format: format as LineFormat,
    columns,
    streamColumn: col('stream'),
    timeColumn: col('time'),
    timeUnit: q.get('timeUnit') === 's' ? 's' : 'ms',
    header: header === null || header === 'auto' ? 'auto' : header === 'true',
    maxLength: num(uri, q, 'maxLength'),
  };
}

export async function sourceFromUri(uri: string, ctx: UriContext): Promise<Source> {
  const { scheme, path, q } = split(uri);
  switch (scheme) {
    case 'serial': {
      if (!path) bad(uri, 'path', 'a device path, e.g. serial:/dev/ttyUSB0');
      const { SerialSource } = await import('./sources/serial.js');
      return new SerialSource({ path, baudRate: num(uri, q, 'baud', 115200), framing: framingFrom(uri, q, ctx) });
    }
    case 'file': {
      if (!path) bad(uri, 'path', 'a file path, e.g. file:data.csv');
      const { fileSource } = await import('./sources/file.js');
      return fileSource(path, framingFrom(uri, q, ctx), num(uri, q, 'rate'));
    }
    case 'stdin': {
      const { stdinSource } = await import('./sources/file.js');
      return stdinSource(framingFrom(uri, q, ctx));
    }
    case 'sim': {
      const { SimSource } = await import('./sources/sim.js');
      const kind = (path || 'sine') as 'sine' | 'ecg' | 'imu';
      if (!['sine', 'ecg', 'imu'].includes(kind)) bad(uri, 'simulator', 'sine, ecg or imu', kind);
      return new SimSource({ kind, hz: num(uri, q, 'hz', 50)!, streams: num(uri, q, 'streams', 1), seed: num(uri, q, 'seed', 1), count: num(uri, q, 'count') });
    }
    case 'mqtt':
    case 'mqtts': {
      const { MqttSource } = await import('./sources/mqtt.js');
      const channels = typeof ctx.channels === 'number' ? Array.from({ length: ctx.channels }, (_, i) => String(i)) : ctx.channels;
      // fromUri keeps '#' wildcards (a URL parser would read them as a fragment).
      // `format=` reads payload lines with the same line format as serial/file/stdin.
      // `stream=topic|field` is the MQTT stream mode, not a stream column.
      const lq = new URLSearchParams(q);
      if (['topic', 'field'].includes(lq.get('stream') ?? '')) lq.delete('stream');
      const framing = q.has('format') ? framingFrom(uri, lq, ctx) : undefined;
      if (framing?.kind === 'binary') bad(uri, 'format', 'csv, whitespace, kv or jsonl for MQTT payloads', 'binary');
      const lineFormat = framing?.kind === 'line' ? framing : undefined;
      return MqttSource.fromUri(uri, { ...(q.has('channels') ? {} : { channels }), ...(lineFormat ? { lineFormat } : {}) });
    }
    default:
      return bad(uri, 'scheme', 'serial:, file:, stdin:, sim: or mqtt://', scheme);
  }
}

export function sinkFromUri(uri: string): SinkFactory {
  const { scheme, path, q } = split(uri);
  switch (scheme) {
    case 'jsonl':
      return async (ctx) => {
        const { JsonlSink } = await import('./sinks/jsonl.js');
        return new JsonlSink({
          path: path || '-',
          maxBytes: num(uri, q, 'maxBytes'),
          keep: num(uri, q, 'keep'),
          maxQueueBytes: num(uri, q, 'maxQueueBytes'),
          metrics: ctx.metrics,
          onError: (e, queued) => ctx.log?.error({ sink: uri, code: e.code, err: e.message, queued }, 'sink write failed; queueing and retrying'),
          onRecover: (ms) => ctx.log?.info({ sink: uri, afterMs: ms }, 'sink writing again'),
        });
      };
    case 'http': {
      let u: URL;
      try {
        u = new URL(uri);
      } catch {
        return bad(uri, 'host', 'http://HOST:PORT, e.g. http://127.0.0.1:8080', uri);
      }
      if (!u.hostname) bad(uri, 'host', 'http://HOST:PORT, e.g. http://127.0.0.1:8080');
      // A secret on the command line is visible to every user in `ps`.
      if (q.has('token')) {
        throw new InputError(`sink URI '${uri.replace(/([?&]token=)[^&]*/, '$1…')}': a token in the URI is visible to every user of this machine (ps)`, {
          field: 'token',
          expected: 'the token in STREAMCELL_HTTP_TOKEN, a file named by STREAMCELL_HTTP_TOKEN_FILE, or http_token / http_token_file in the config',
        });
      }
      return async (ctx) => {
        const { HttpSink } = await import('./sinks/http.js');
        return HttpSink.start({
          host: u.hostname,
          port: Number(u.port || 8080),
          metrics: ctx.metrics,
          health: ctx.health,
          status: ctx.status,
          token: ctx.token,
        });
      };
    }
    case 'mqtt':
    case 'mqtts':
      return async (ctx) => {
        const { MqttSink } = await import('./sinks/mqtt.js');
        return MqttSink.fromUri(uri, {
          metrics: ctx.metrics,
          onStatus: (state, detail) =>
            state === 'connected' ? ctx.log?.info({ sink: uri }, 'broker connected') : ctx.log?.error({ sink: uri, detail }, 'broker unreachable; queueing'),
        });
      };
    default:
      return bad(uri, 'scheme', 'jsonl:, http:// or mqtt://', scheme);
  }
}
