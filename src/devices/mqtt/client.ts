/**
 * MQTT client plumbing shared by the MQTT source and sink: the client interface streamcell
 * uses (so tests can hand in a fake), the default mqtt.js factory, `mqtt://host/topic?query`
 * URI splitting, topic-filter validation, and the exponential reconnect backoff.
 */
import { connect as mqttConnect, type IClientOptions } from 'mqtt';
import { InputError } from '../../errors.js';

/** The part of an mqtt.js `MqttClient` that streamcell uses; a test may hand in its own. */
export interface MqttClientLike {
  readonly connected: boolean;
  /** mqtt.js reads `reconnectPeriod` from here before each retry; we change it for backoff. */
  options: { reconnectPeriod?: number };
  on(event: 'connect', listener: (packet: { sessionPresent?: boolean }) => void): unknown;
  on(event: 'message', listener: (topic: string, payload: Buffer) => void): unknown;
  on(event: 'error', listener: (error: Error) => void): unknown;
  on(event: 'close' | 'reconnect' | 'offline', listener: () => void): unknown;
  subscribe(topic: string, opts: { qos: 0 | 1 | 2 }, callback: (err: Error | null, granted?: Array<{ topic: string; qos: number }>) => void): unknown;
  publish(topic: string, payload: string, opts: { qos: 0 | 1 | 2 }, callback: (err?: Error) => void): unknown;
  end(force: boolean, opts: object, callback: () => void): unknown;
}

/** Creates a client; defaults to mqtt.js `connect`. */
export type MqttConnect = (url: string, options: IClientOptions) => MqttClientLike;

/** The default {@link MqttConnect}: mqtt.js `connect`. */
export const defaultMqttConnect: MqttConnect = (url, options) => mqttConnect(url, options);

/**
 * Splits `mqtt://host:1883/sensors/+?qos=1` into the broker URL, the topic (the whole path,
 * wildcards included; `#` is taken literally, not as a URL fragment) and the query.
 */
export function splitMqttUri(uri: string): { url: string; topic: string; params: URLSearchParams } {
  const m = /^(mqtts?|wss?|tcp|ssl):\/\/([^/?]+)(?:\/([^?]*))?(?:\?(.*))?$/.exec(uri);
  if (!m) {
    throw new InputError(`not an MQTT URI: '${uri}'`, { field: 'uri', expected: 'mqtt://host:1883/topic' });
  }
  const [, scheme, authority, path = '', query = ''] = m;
  return { url: `${scheme}://${authority}`, topic: decodeURIComponent(path), params: new URLSearchParams(query) };
}

/** Checks an MQTT topic filter (subscribe side): `+` and `#` must fill a whole level, `#` only last. */
export function validateTopicFilter(topic: string, field = 'topic'): void {
  const levels = topic.split('/');
  const bad =
    topic.length === 0 ||
    topic.includes('\u0000') ||
    levels.some((l, i) => (l.includes('+') && l !== '+') || (l.includes('#') && (l !== '#' || i !== levels.length - 1)));
  if (bad) {
    throw new InputError(`invalid MQTT topic filter '${topic}'`, {
      field,
      expected: "levels separated by '/', '+' for one whole level, '#' only as the last level",
    });
  }
}

/**
 * Makes mqtt.js's fixed `reconnectPeriod` an exponential backoff: base, 2×base, … up to max,
 * with ±20 % jitter, back to base after a successful connect.
 */
export function reconnectWithBackoff(client: MqttClientLike, baseMs: number, maxMs: number): void {
  let period = baseMs;
  const jitter = (ms: number) => Math.round(ms * (0.8 + 0.4 * Math.random()));
  client.on('reconnect', () => {
    period = Math.min(maxMs, period * 2);
    client.options.reconnectPeriod = jitter(period);
  });
  client.on('connect', () => {
    period = baseMs;
    client.options.reconnectPeriod = baseMs;
  });
}
