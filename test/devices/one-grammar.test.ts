/**
 * One reading grammar (src/devices/framing/grammar.ts): the same line gives the same values, or
 * the same drop reason, whether it comes from a serial port (a socat pty), a file, stdin or an
 * MQTT payload (a real mosquitto). Every source is built by `sourceFromUri`, as the daemon does.
 */
import { mkdtempSync, rmSync, writeFileSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { connect, type MqttClient } from 'mqtt';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseCsv } from '../../src/data/csv.js';
import { parsePayloadLine } from '../../src/devices/sources/mqtt.js';
import { sourceFromUri } from '../../src/devices/uri.js';
import type { DropReason, Source, SourceEvents } from '../../src/devices/types.js';
import { startMosquitto, type Mosquitto } from '../helpers/mosquitto.js';
import { PtyPair } from '../helpers/pty.js';

type Outcome = { values: number[] } | { drop: DropReason };
type Format = 'csv' | 'whitespace' | 'kv' | 'jsonl';

/** The URI query of each format; channels are ['a', 'b'], lines longer than 64 bytes are overlong. */
const QUERY: Record<Format, string> = {
  csv: 'format=csv&columns=0,1&header=false&maxLength=64',
  whitespace: 'format=whitespace&columns=0,1&header=false&maxLength=64',
  kv: 'format=kv&maxLength=64',
  jsonl: 'format=jsonl&maxLength=64',
};

const TABLE: Array<{ name: string; format: Format; line: string; want: Outcome }> = [
  { name: 'valid CSV', format: 'csv', line: '1.5,-2e-3', want: { values: [1.5, -0.002] } },
  { name: 'inf token', format: 'csv', line: '1,inf', want: { values: [1, Infinity] } },
  { name: 'nan and -Infinity tokens', format: 'csv', line: 'NaN,-Infinity', want: { values: [NaN, -Infinity] } },
  { name: 'empty field', format: 'csv', line: '1,', want: { values: [1, NaN] } },
  { name: 'quoted fields', format: 'csv', line: '"3","4"', want: { values: [3, 4] } },
  { name: 'BOM and CRLF', format: 'csv', line: '\uFEFF5,6\r', want: { values: [5, 6] } },
  { name: 'too few columns', format: 'csv', line: '1', want: { drop: 'column-count' } },
  { name: 'non-number', format: 'csv', line: '1,x', want: { drop: 'malformed' } },
  { name: 'overlong', format: 'csv', line: `1,${'2'.repeat(80)}`, want: { drop: 'overlong' } },
  { name: 'whitespace', format: 'whitespace', line: '  7   0.5 ', want: { values: [7, 0.5] } },
  { name: 'key=value', format: 'kv', line: 'a=1 b=2', want: { values: [1, 2] } },
  { name: 'key=value missing a key', format: 'kv', line: 'a=1', want: { drop: 'column-count' } },
  { name: 'JSON null', format: 'jsonl', line: '{"a":1,"b":null}', want: { values: [1, NaN] } },
  { name: 'JSON inf string', format: 'jsonl', line: '{"a":"inf","b":2}', want: { values: [Infinity, 2] } },
  { name: 'JSON missing key', format: 'jsonl', line: '{"a":1}', want: { drop: 'column-count' } },
  { name: 'JSON values array of the wrong length', format: 'jsonl', line: '{"values":[1,2,3]}', want: { drop: 'column-count' } },
  { name: 'JSON non-number', format: 'jsonl', line: '{"a":1,"b":"two"}', want: { drop: 'malformed' } },
  { name: 'invalid JSON', format: 'jsonl', line: '{"a":1', want: { drop: 'malformed' } },
];
const FORMATS = [...new Set(TABLE.map((r) => r.format))];
const ctx = { channels: ['a', 'b'] };

async function until(what: string, cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Records each reading or drop in order; MQTT readiness probes (topic level `probe`) are only counted. */
function collector(): SourceEvents & { out: Outcome[]; connected: boolean; probes: number } {
  const c = {
    out: [] as Outcome[],
    connected: false,
    probes: 0,
    reading: (r: { stream: string; values: number[] }) => {
      if (r.stream === 'probe') c.probes++;
      else c.out.push({ values: r.values });
    },
    drop: (reason: DropReason, detail: string) => {
      if (detail.includes("/probe'")) c.probes++;
      else c.out.push({ drop: reason });
    },
    status: (s: 'connected' | 'disconnected') => {
      c.connected = s === 'connected';
    },
  };
  return c;
}

const rows = (f: Format) => TABLE.filter((r) => r.format === f);
const text = (f: Format) =>
  rows(f)
    .map((r) => `${r.line}\n`)
    .join('');

describe('one reading grammar across serial, file, stdin and MQTT', () => {
  let broker: Mosquitto | undefined;
  let dir: string;
  const cleanups: Array<() => Promise<void> | void> = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'streamcell-one-grammar-'));
    broker = await startMosquitto();
  });
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });
  afterAll(async () => {
    await broker?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  const started = async (uri: string, events: SourceEvents): Promise<Source> => {
    const src = await sourceFromUri(uri, ctx);
    cleanups.push(() => src.stop());
    await src.start(events);
    return src;
  };

  const check = (f: Format, got: Outcome[]) => {
    expect(got.map((o, i) => ({ line: rows(f)[i]?.name, ...o }))).toEqual(rows(f).map((r) => ({ line: r.name, ...r.want })));
  };

  it.each(FORMATS)('file: %s', async (f) => {
    const path = join(dir, `in-${f}.txt`);
    writeFileSync(path, text(f));
    const c = collector();
    await started(`file:${path}?${QUERY[f]}`, c);
    await until('every line read', () => c.out.length >= rows(f).length);
    check(f, c.out);
  });

  it.each(FORMATS)('stdin: %s', async (f) => {
    const stdin = new PassThrough();
    const desc = Object.getOwnPropertyDescriptor(process, 'stdin')!;
    Object.defineProperty(process, 'stdin', { value: stdin, configurable: true });
    cleanups.push(() => void Object.defineProperty(process, 'stdin', desc));
    const c = collector();
    await started(`stdin:?${QUERY[f]}`, c);
    stdin.write(text(f));
    await until('every line read', () => c.out.length >= rows(f).length);
    check(f, c.out);
  });

  it.each(FORMATS)('serial (socat pty): %s', async (f) => {
    const pty = new PtyPair(dir, `pty-${f}`);
    cleanups.push(() => pty.kill());
    await pty.start();
    const c = collector();
    await started(`serial:${pty.dev}?baud=115200&${QUERY[f]}`, c);
    await until('the port open', () => c.connected);
    appendFileSync(pty.feed, text(f));
    await until('every line read', () => c.out.length >= rows(f).length);
    check(f, c.out);
  });

  it.each(FORMATS)('MQTT (mosquitto): %s', async (f) => {
    const c = collector();
    await started(`${broker!.url}/grammar/${f}/+?${QUERY[f]}`, c);
    const pub: MqttClient = await connect(broker!.url, { reconnectPeriod: 100 });
    cleanups.push(() => pub.endAsync(true));
    await new Promise<void>((r) => (pub.connected ? r() : pub.once('connect', () => r())));
    // Poll until the subscription is live: probes on another topic level, left out of the record.
    let probes = 0;
    await until('the subscription live', () => {
      if (c.probes > 0) return true;
      probes++;
      void pub.publishAsync(`grammar/${f}/probe`, 'probe', { qos: 1 });
      return false;
    });
    expect(probes).toBeGreaterThan(0);
    for (const r of rows(f)) await pub.publishAsync(`grammar/${f}/data`, r.line, { qos: 1 });
    await until('every payload read', () => c.out.length >= rows(f).length);
    check(f, c.out);
  });
});

describe('the same grammar without a configured format', () => {
  it('MQTT payloads detected per line read CSV and JSON rows of the table alike', () => {
    const fmt = { streamFrom: 'topic' as const, streamField: 'stream', channels: ['a', 'b'] };
    for (const r of TABLE.filter((x) => (x.format === 'csv' || x.format === 'jsonl') && x.name !== 'overlong')) {
      const res = parsePayloadLine(r.line.trim(), 's', fmt, 0);
      expect({ line: r.name, ...('reading' in res ? { values: res.reading.values } : { drop: res.drop }) }).toEqual({ line: r.name, ...r.want });
    }
  });

  it('the train/verify CSV reader splits and reads numbers the same way (infinities refused there)', () => {
    const t = parseCsv('\uFEFFa,b\r\n1.5,-2e-3\r\n1,\n"3","4"\nNaN,7\n', 'x.csv');
    expect([...t.numeric.get('a')!]).toEqual([1.5, 1, 3, NaN]);
    expect([...t.numeric.get('b')!]).toEqual([-0.002, NaN, 4, 7]);
    expect(() => parseCsv('a,b\n1,inf\n', 'x.csv')).toThrow(/not a number/);
    expect(() => parseCsv('a,b\n1,x\n', 'x.csv')).toThrow(/not a number/);
  });
});
