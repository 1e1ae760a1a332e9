/**
 * MQTT source: subscribes to a topic filter on a broker and turns each message into readings.
 *
 * Payloads (one message may carry several lines, one reading each):
 * - a CSV / whitespace line of numbers: `0.12,0.40,-1.3` or `0.12 0.40 -1.3`;
 * - JSON with a values array: `{"stream":"ecg-1","values":[0.12,0.4],"t":1717000000000}`;
 * - JSON keyed by channel: `{"stream":"ecg-1","lead1":0.12,"lead2":0.4,"t":1717000000000}`
 *   (configure `channels` so the order is the model's, not the publisher's).
 *
 * The stream id comes from the topic (`streamFrom: 'topic'`, the default: the levels matched by
 * the filter's wildcards, e.g. `sensors/+` on `sensors/ecg-1` → `ecg-1`, or the last level when
 * the filter has none) or from the payload (`streamFrom: 'field'`: the JSON field `stream`, or
 * the first column of a CSV line).
 *
 * With `lineFormat` (URI `format=csv|whitespace|kv|jsonl` and the other line parameters of a
 * serial or file source), every payload line goes through the same {@link LineFormatParser} as
 * those sources, so a line reads the same whichever way it arrives; the stream id is then the
 * configured stream column (or a JSON `stream` field), else the topic's. Without it the payload
 * form is detected per line (JSON object, or CSV/whitespace numbers, below), with the same
 * number grammar (src/devices/framing/grammar.ts).
 *
 * A payload that cannot be read is reported through `events.drop(reason, detail)` and never
 * throws. `nan`/`inf` tokens, empty fields and JSON `null` are passed on as NaN/±Infinity: whether such a
 * reading is dropped ('non-finite') or repaired is the validation stage's policy, not ours.
 * Broker loss is reported with `status('disconnected')`; the mqtt client reconnects by itself
 * with exponential backoff (reconnectPeriodMs doubling up to maxReconnectPeriodMs, ±20 % jitter
 * so a fleet does not reconnect in lockstep) and re-subscribes.
 *
 * @example
 * ```ts
 * const src = new MqttSource({ url: 'mqtt://broker:1883', topic: 'sensors/+', channels: ['lead1', 'lead2'] });
 * await src.start({ reading: (r) => pool.push(r), drop: (why) => metrics.drop(why), status: (s) => log.info(s) });
 * ```
 */
import { InputError } from '../../errors.js';
import { parseJsonNumber, parseNumberField, splitFields } from '../framing/grammar.js';
import { LineFormatParser, type LineFormatOptions } from '../framing/line-format.js';
import type { DropReason, Reading, Source, SourceEvents } from '../types.js';
import { defaultMqttConnect, splitMqttUri, reconnectWithBackoff, validateTopicFilter, type MqttClientLike, type MqttConnect } from '../mqtt/client.js';

export interface MqttSourceOptions {
  /** Broker URL, `mqtt://host:1883`; may carry the topic as its path when `topic` is not given. */
  url: string;
  /** Topic filter; wildcards allowed (`sensors/+`, `plant/#`). */
  topic?: string;
  /** Where the stream id comes from (see the module comment). Default 'topic'. */
  streamFrom?: 'topic' | 'field';
  /** JSON field holding the stream id when `streamFrom` is 'field'. Default 'stream'. */
  streamField?: string;
  /** Channel names in model order. Fixes the column count and the order of keyed JSON payloads. */
  channels?: readonly string[];
  /** Subscription QoS. Default 1. */
  qos?: 0 | 1 | 2;
  clientId?: string;
  /** First reconnect delay; doubles per failed attempt. Default 1000. */
  reconnectPeriodMs?: number;
  /** Upper bound of the reconnect delay. Default 30000. */
  maxReconnectPeriodMs?: number;
  /** Larger payloads are dropped as 'overlong'. Default 65536 bytes. */
  maxPayloadBytes?: number;
  /** Client factory; defaults to mqtt.js `connect`. */
  connect?: MqttConnect;
  /** Read payload lines with this line format (as serial/file/stdin do) instead of detecting the form per line. */
  lineFormat?: LineFormatOptions;
  /** Arrival-time clock for payloads without `t`. Default Date.now. */
  now?: () => number;
}

/** Result of reading one payload line. */
export type ParsedLine = { reading: Reading } | { drop: DropReason; detail: string };

export interface PayloadFormat {
  streamFrom: 'topic' | 'field';
  streamField: string;
  channels?: readonly string[];
}

/**
 * Reads one payload line (CSV/whitespace numbers or a JSON object) into a reading, or says why
 * not. `topicStream` is the id derived from the topic (used when `streamFrom` is 'topic').
 */
export function parsePayloadLine(line: string, topicStream: string, fmt: PayloadFormat, now: number): ParsedLine {
  const snippet = line.length > 80 ? `${line.slice(0, 80)}…` : line;
  const expected = fmt.channels?.length;
  if (line.startsWith('{')) {
    let obj: unknown;
    try {
      obj = JSON.parse(line);
    } catch {
      return { drop: 'malformed', detail: `invalid JSON: ${snippet}` };
    }
    if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) {
      return { drop: 'malformed', detail: `expected a JSON object: ${snippet}` };
    }
    const rec = obj as Record<string, unknown>;
    let stream = topicStream;
    if (fmt.streamFrom === 'field') {
      const id = rec[fmt.streamField];
      if ((typeof id !== 'string' && typeof id !== 'number') || id === '') {
        return { drop: 'malformed', detail: `missing stream field '${fmt.streamField}': ${snippet}` };
      }
      stream = String(id);
    }
    let t = now;
    if (rec.t !== undefined) {
      if (typeof rec.t !== 'number' || !Number.isFinite(rec.t)) {
        return { drop: 'malformed', detail: `field 't' must be a number of ms since the epoch: ${snippet}` };
      }
      t = rec.t;
    }
    let raw: unknown[];
    if (rec.values !== undefined) {
      if (!Array.isArray(rec.values)) return { drop: 'malformed', detail: `field 'values' must be an array: ${snippet}` };
      raw = rec.values;
    } else if (fmt.channels) {
      const missing = fmt.channels.filter((c) => !(c in rec));
      if (missing.length > 0) {
        return { drop: 'column-count', detail: `missing channel(s) ${missing.map((c) => `'${c}'`).join(', ')}: ${snippet}` };
      }
      raw = fmt.channels.map((c) => rec[c]);
    } else {
      raw = Object.entries(rec)
        .filter(([k]) => k !== 't' && k !== 'stream' && k !== fmt.streamField)
        .map(([, v]) => v);
    }
    if (expected !== undefined && raw.length !== expected) {
      return { drop: 'column-count', detail: `${raw.length} values, expected ${expected}: ${snippet}` };
    }
    const values: number[] = [];
    for (const v of raw) {
      const n = parseJsonNumber(v);
      if (n === undefined) return { drop: 'malformed', detail: `not a number: ${JSON.stringify(v)} in ${snippet}` };
      values.push(n);
    }
    if (values.length === 0) return { drop: 'column-count', detail: `no values: ${snippet}` };
    return { reading: { stream, values, t } };
  }
  // The one field grammar: comma (quote-aware, empty field = gap), else semicolon, else whitespace.
  const tokens = splitFields(line, line.includes(',') ? ',' : line.includes(';') ? ';' : 'whitespace');
  let stream = topicStream;
  if (fmt.streamFrom === 'field') {
    const id = tokens.shift();
    if (id === undefined) return { drop: 'malformed', detail: `empty line` };
    stream = id;
  }
  if (expected !== undefined && tokens.length !== expected) {
    return { drop: 'column-count', detail: `${tokens.length} values, expected ${expected}: ${snippet}` };
  }
  if (tokens.length === 0) return { drop: 'column-count', detail: `no values: ${snippet}` };
  const values: number[] = [];
  for (const tok of tokens) {
    const n = parseNumberField(tok);
    if (n === undefined) return { drop: 'malformed', detail: `not a number: '${tok}' in ${snippet}` };
    values.push(n);
  }
  return { reading: { stream, values, t: now } };
}

/** The stream id a message topic gives under a filter: the wildcard-matched levels, else the last level. */
export function streamFromTopic(filter: string, topic: string): string {
  const f = filter.split('/');
  const t = topic.split('/');
  const parts: string[] = [];
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') {
      parts.push(...t.slice(i));
      break;
    }
    if (f[i] === '+' && t[i] !== undefined) parts.push(t[i]);
  }
  const id = parts.join('/');
  return id.length > 0 ? id : (t[t.length - 1] ?? 'default') || 'default';
}

/** A {@link Source} reading sensor payloads from an MQTT subscription. */
export class MqttSource implements Source {
  readonly uri: string;
  private readonly url: string;
  private readonly topic: string;
  private readonly fmt: PayloadFormat;
  private readonly qos: 0 | 1 | 2;
  private readonly clientId: string;
  private readonly reconnectMs: number;
  private readonly maxReconnectMs: number;
  private readonly maxPayload: number;
  private readonly connectFn: MqttConnect;
  private readonly now: () => number;
  private readonly lineFormat?: LineFormatParser;
  private client?: MqttClientLike;
  private state: 'connected' | 'disconnected' | undefined;
  private stopped = false;

  /**
   * From a URI: `mqtt://host:1883/sensors/+?stream=field&channels=a,b&qos=1&client=ID`;
   * `maxLength=N` is the payload limit in bytes (`format=` is read by `sourceFromUri`, see `lineFormat`).
   */
  static fromUri(uri: string, options: Partial<MqttSourceOptions> = {}): MqttSource {
    const { url, topic, params } = splitMqttUri(uri);
    const stream = params.get('stream');
    if (stream !== null && stream !== 'topic' && stream !== 'field') {
      throw new InputError(`unknown stream mode '${stream}'`, { field: 'stream', expected: "'topic' or 'field'" });
    }
    const qos = params.get('qos');
    const maxLength = params.get('maxLength');
    return new MqttSource({
      maxPayloadBytes: maxLength === null ? undefined : Number(maxLength),
      url,
      topic,
      streamFrom: stream ?? undefined,
      channels: params.get('channels')?.split(',').filter(Boolean),
      qos: qos === null ? undefined : (Number(qos) as 0 | 1 | 2),
      clientId: params.get('client') ?? undefined,
      ...options,
    });
  }

  constructor(options: MqttSourceOptions) {
    const split = options.topic === undefined ? splitMqttUri(options.url) : undefined;
    this.url = split ? split.url : options.url.replace(/\/+$/, '');
    this.topic = options.topic ?? split?.topic ?? '';
    if (!/^(mqtts?|wss?|tcp|ssl):\/\//.test(this.url)) {
      throw new InputError(`broker URL '${options.url}' has no MQTT scheme`, { field: 'url', expected: 'mqtt://host:1883' });
    }
    validateTopicFilter(this.topic);
    const qos = options.qos ?? 1;
    if (qos !== 0 && qos !== 1 && qos !== 2) throw new InputError(`qos ${String(qos)}`, { field: 'qos', expected: '0, 1 or 2' });
    if (options.channels && options.channels.length === 0) {
      throw new InputError('channels is empty', { field: 'channels', expected: 'at least one channel name' });
    }
    this.qos = qos;
    this.fmt = {
      streamFrom: options.streamFrom ?? 'topic',
      streamField: options.streamField ?? 'stream',
      channels: options.channels,
    };
    this.clientId = options.clientId ?? `streamcell-src-${Math.random().toString(16).slice(2, 10)}`;
    this.reconnectMs = options.reconnectPeriodMs ?? 1000;
    this.maxReconnectMs = Math.max(this.reconnectMs, options.maxReconnectPeriodMs ?? 30_000);
    this.maxPayload = options.maxPayloadBytes ?? 65_536;
    this.connectFn = options.connect ?? defaultMqttConnect;
    this.now = options.now ?? Date.now;
    if (options.lineFormat) this.lineFormat = new LineFormatParser(options.lineFormat);
    this.uri = `${this.url}/${this.topic}`;
  }

  start(events: SourceEvents): Promise<void> {
    if (this.client) throw new Error('MqttSource.start() called while running; call stop() first');
    this.stopped = false;
    return new Promise<void>((resolve) => {
      let firstAttempt = true;
      const settle = () => {
        if (firstAttempt) {
          firstAttempt = false;
          resolve();
        }
      };
      const setState = (s: 'connected' | 'disconnected', detail?: string) => {
        if (this.stopped || this.state === s) return;
        this.state = s;
        events.status(s, detail);
      };
      let lastError: string | undefined;
      const client = this.connectFn(this.url, {
        clientId: this.clientId,
        clean: true,
        reconnectPeriod: this.reconnectMs,
        connectTimeout: 10_000,
        resubscribe: true,
      });
      this.client = client;
      reconnectWithBackoff(client, this.reconnectMs, this.maxReconnectMs);
      client.on('connect', () => {
        lastError = undefined;
        setState('connected');
        settle();
      });
      client.on('close', () => {
        setState('disconnected', lastError ?? 'connection closed');
        settle();
      });
      client.on('error', (err) => {
        lastError = err.message;
      });
      client.on('message', (topic, payload) => {
        if (!this.stopped) this.onMessage(topic, payload, events);
      });
      // mqtt.js queues the SUBSCRIBE until connected and repeats it after reconnects.
      client.subscribe(this.topic, { qos: this.qos }, (err, granted) => {
        const refused = err ?? (granted?.some((g) => g.qos === 128) ? new Error(`broker refused subscription to '${this.topic}'`) : null);
        if (refused && !this.stopped) events.status('disconnected', refused.message);
      });
    });
  }

  private onMessage(topic: string, payload: Buffer, events: SourceEvents): void {
    if (payload.length > this.maxPayload) {
      events.drop('overlong', `${payload.length} bytes on '${topic}' (limit ${this.maxPayload})`);
      return;
    }
    const topicStream = streamFromTopic(this.topic, topic);
    const now = this.now();
    for (const raw of payload.toString('utf8').split('\n')) {
      const line = raw.trim();
      if (line.length === 0) continue;
      const res = this.lineFormat ? this.readLine(line, topicStream, now) : parsePayloadLine(line, topicStream, this.fmt, now);
      if ('header' in res) continue;
      if ('reading' in res) events.reading(res.reading);
      else events.drop(res.drop, `${res.detail} (topic '${topic}')`);
    }
  }

  /** One payload line through the configured line format; the topic names the stream unless a column does. */
  private readLine(line: string, topicStream: string, now: number): ReturnType<LineFormatParser['parse']> {
    const res = this.lineFormat!.parse(line, now);
    if ('reading' in res && this.fmt.streamFrom === 'topic' && this.lineFormat!.opts.streamColumn === undefined && res.reading.stream === 'default') {
      return { reading: { ...res.reading, stream: topicStream } };
    }
    return res;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    const client = this.client;
    this.client = undefined;
    this.state = undefined;
    if (client) await new Promise<void>((resolve) => client.end(true, {}, () => resolve()));
  }
}
