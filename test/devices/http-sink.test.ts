/**
 * The HTTP sink against real sockets: health, Prometheus text checked by a strict parser of
 * the exposition format, token and bind rules, the SSE stream, and the dashboard in
 * headless Chromium drawing live data (screenshots decoded and compared).
 */
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { createRequire } from 'node:module';
import { connect } from 'node:net';
import { networkInterfaces } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { PNG } from 'pngjs';
import { afterEach, describe, expect, it } from 'vitest';
import { isInputError } from '../../src/errors.js';
import { DaemonMetrics } from '../../src/devices/metrics.js';
import { LatencyTrace } from '../../src/devices/trace.js';
import { HttpSink, isLoopbackHost, type HttpSinkOptions } from '../../src/devices/sinks/http.js';
import type { PredictionRecord } from '../../src/devices/types.js';
import { launchChromium } from '../helpers/browser.js';

// ---------------------------------------------------------------------------------------
// A strict parser of the Prometheus text exposition format 0.0.4.

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}
interface Family {
  name: string;
  type?: string;
  help?: string;
  samples: Sample[];
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const FLOAT = /^(?:[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|[+-]?Inf|NaN)$/;
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

function parseFloatStrict(s: string, where: string): number {
  if (!FLOAT.test(s)) throw new Error(`${where}: '${s}' is not a float`);
  return s === 'NaN' ? NaN : s.endsWith('Inf') ? (s.startsWith('-') ? -Infinity : Infinity) : Number(s);
}

/** Unescapes a HELP docstring (only \\ and \n are escapes there). */
function unescapeHelp(s: string, where: string): string {
  return s.replace(/\\(.?)/g, (_, c: string) => {
    if (c === '\\') return '\\';
    if (c === 'n') return '\n';
    throw new Error(`${where}: bad escape '\\${c}' in HELP`);
  });
}

/** `{a="x",b="y\"z"}` starting at `i`; returns the labels and the index after `}`. */
function parseLabels(line: string, i: number, where: string): [Record<string, string>, number] {
  const labels: Record<string, string> = {};
  i++; // '{'
  for (;;) {
    if (line[i] === '}') return [labels, i + 1];
    const m = /^[a-zA-Z_][a-zA-Z0-9_]*/.exec(line.slice(i));
    if (!m) throw new Error(`${where}: bad label name at column ${i}`);
    const name = m[0];
    if (!LABEL_NAME.test(name) || name.startsWith('__')) throw new Error(`${where}: reserved or bad label name '${name}'`);
    if (name in labels) throw new Error(`${where}: duplicate label '${name}'`);
    i += name.length;
    if (line.slice(i, i + 2) !== '="') throw new Error(`${where}: expected =" after label '${name}'`);
    i += 2;
    let value = '';
    for (;;) {
      const c = line[i];
      if (c === undefined) throw new Error(`${where}: unterminated label value`);
      if (c === '"') break;
      if (c === '\\') {
        const e = line[i + 1];
        if (e === '\\' || e === '"') value += e;
        else if (e === 'n') value += '\n';
        else throw new Error(`${where}: bad escape '\\${e}' in label value`);
        i += 2;
      } else {
        value += c;
        i++;
      }
    }
    labels[name] = value;
    i++; // closing quote
    if (line[i] === ',') i++;
    else if (line[i] !== '}') throw new Error(`${where}: expected , or } after label '${name}'`);
  }
}

function parsePrometheusText(text: string): Map<string, Family> {
  if (text.length > 0 && !text.endsWith('\n')) throw new Error('exposition must end with a newline');
  const families = new Map<string, Family>();
  const finished = new Set<string>();
  let current: string | undefined;
  const enter = (name: string, where: string) => {
    if (current === name) return;
    if (finished.has(name)) throw new Error(`${where}: lines of metric family '${name}' are not one group`);
    if (current !== undefined) finished.add(current);
    current = name;
  };
  const family = (name: string) => {
    let f = families.get(name);
    if (!f) families.set(name, (f = { name, samples: [] }));
    return f;
  };

  text
    .split('\n')
    .slice(0, -1)
    .forEach((line, n) => {
      const where = `line ${n + 1}`;
      if (line === '') return;
      if (line.startsWith('#')) {
        const m = /^#[ \t]+(HELP|TYPE)[ \t]+(\S+)(?:[ \t]+(.*))?$/.exec(line);
        if (!m) return; // other comments are allowed
        const [, kw, name, rest = ''] = m as unknown as [string, string, string, string?];
        if (!METRIC_NAME.test(name)) throw new Error(`${where}: bad metric name '${name}'`);
        enter(name, where);
        const f = family(name);
        if (kw === 'HELP') {
          if (f.help !== undefined) throw new Error(`${where}: second HELP for '${name}'`);
          f.help = unescapeHelp(rest, where);
        } else {
          if (!TYPES.has(rest)) throw new Error(`${where}: unknown TYPE '${rest}'`);
          if (f.type !== undefined) throw new Error(`${where}: second TYPE for '${name}'`);
          if (f.samples.length > 0) throw new Error(`${where}: TYPE for '${name}' after its samples`);
          f.type = rest;
        }
        return;
      }
      const nm = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line);
      if (!nm) throw new Error(`${where}: expected a metric name: ${line}`);
      const name = nm[0];
      let i = name.length;
      let labels: Record<string, string> = {};
      if (line[i] === '{') [labels, i] = parseLabels(line, i, where);
      const rest = line.slice(i);
      const vm = /^[ \t]+(\S+)(?:[ \t]+(-?\d+))?[ \t]*$/.exec(rest);
      if (!vm) throw new Error(`${where}: expected ' value [timestamp]' after the name and labels: ${line}`);
      const value = parseFloatStrict(vm[1]!, where);

      // The sample's family must be declared: the name itself, or a histogram/summary whose
      // _bucket/_sum/_count it is.
      let owner = families.get(name)?.type ? name : undefined;
      if (!owner) {
        for (const [suffix, kinds] of [
          ['_bucket', ['histogram']],
          ['_sum', ['histogram', 'summary']],
          ['_count', ['histogram', 'summary']],
        ] as const) {
          const base = name.slice(0, -suffix.length);
          if (name.endsWith(suffix) && (kinds as readonly string[]).includes(families.get(base)?.type ?? '')) owner = base;
        }
      }
      if (!owner) throw new Error(`${where}: sample '${name}' has no declared metric family (# TYPE)`);
      if (name.endsWith('_bucket') && families.get(owner)!.type === 'histogram' && labels.le === undefined) {
        throw new Error(`${where}: histogram bucket without an 'le' label`);
      }
      enter(owner, where);
      families.get(owner)!.samples.push({ name, labels, value });
    });

  // Histograms: per series (the labels other than le), cumulative buckets ending in +Inf, which equals _count.
  for (const f of families.values()) {
    if (f.type !== 'histogram') continue;
    const key = (l: Record<string, string>) =>
      JSON.stringify(
        Object.entries(l)
          .filter(([k]) => k !== 'le')
          .sort(),
      );
    for (const series of new Set(f.samples.map((s) => key(s.labels)))) {
      const buckets = f.samples.filter((s) => s.name === `${f.name}_bucket` && key(s.labels) === series);
      const les = buckets.map((b) => parseFloatStrict(b.labels.le!, `${f.name} le`));
      expect(les.at(-1), `${f.name}${series}: last bucket`).toBe(Infinity);
      for (let k = 1; k < buckets.length; k++) {
        expect(les[k]!, `${f.name}${series}: le ascending`).toBeGreaterThan(les[k - 1]!);
        expect(buckets[k]!.value, `${f.name}${series}: cumulative`).toBeGreaterThanOrEqual(buckets[k - 1]!.value);
      }
      const count = f.samples.find((s) => s.name === `${f.name}_count` && key(s.labels) === series);
      expect(count?.value, `${f.name}${series}: +Inf bucket = _count`).toBe(buckets.at(-1)?.value);
    }
  }
  return families;
}

function sampleValue(fams: Map<string, Family>, family: string, labels: Record<string, string> = {}, name = family): number | undefined {
  return fams.get(family)?.samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
}

// ---------------------------------------------------------------------------------------

const sinks: HttpSink[] = [];
afterEach(async () => {
  await Promise.all(sinks.splice(0).map((s) => s.close()));
});

async function startSink(opts: Partial<HttpSinkOptions> = {}): Promise<HttpSink> {
  const sink = await HttpSink.start({ port: 0, metrics: new DaemonMetrics(), health: () => ({ ok: true }), ...opts });
  sinks.push(sink);
  return sink;
}

/** Polls `get` until `ok` holds (then returns the value) or `ms` pass (then throws with the last value). */
async function pollUntil<T>(get: () => Promise<T>, ok: (v: T) => boolean, ms = 10_000): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = await get();
    if (ok(v)) return v;
    if (Date.now() - t0 > ms) throw new Error(`timed out after ${ms} ms (last: ${String(v).slice(0, 200)})`);
    await sleep(50);
  }
}

async function waitUntil(ok: () => boolean, ms = 5000): Promise<void> {
  const t0 = Date.now();
  while (!ok()) {
    if (Date.now() - t0 > ms) throw new Error('timed out');
    await sleep(10);
  }
}

function rec(stream: string, seq: number, extra: Partial<PredictionRecord> = {}): PredictionRecord {
  const x = Math.sin(seq / 10);
  return {
    stream,
    seq,
    t: 1_700_000_000_000 + seq * 10,
    input: [x, 0.5],
    outputs: { y: [Math.sin((seq + 1) / 10)] },
    forecast: Math.sin((seq + 1) / 10),
    ...extra,
  };
}

/** A raw GET through node:http, so the Host header can be set. */
function rawGet(url: string, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Reads SSE events from `/events` until `until` says stop. */
async function readEvents(url: string, until: (events: { event: string; data: string }[]) => boolean, write?: () => void) {
  const ac = new AbortController();
  const res = await fetch(url, { signal: ac.signal });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  const events: { event: string; data: string }[] = [];
  let buf = '';
  let wrote = false;
  try {
    while (!until(events)) {
      const { value, done } = await reader.read();
      if (done) return { events, ended: true };
      buf += decoder.decode(value, { stream: true });
      let cut: number;
      while ((cut = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, cut);
        buf = buf.slice(cut + 2);
        const event = /^event: (.*)$/m.exec(block)?.[1] ?? 'message';
        const data = [...block.matchAll(/^data: (.*)$/gm)].map((m) => m[1]).join('\n');
        if (data) events.push({ event, data });
      }
      if (!wrote && write && events.length > 0) {
        wrote = true;
        write();
      }
    }
    return { events, ended: false };
  } finally {
    ac.abort();
  }
}

describe('HttpSink: health, metrics, routes', () => {
  it('serves /healthz as 200 when ok and 503 when not, with the report as JSON', async () => {
    let healthy = true;
    const sink = await startSink({ health: () => ({ ok: healthy, streams: 2, source: healthy ? 'connected' : 'disconnected' }) });
    expect(sink.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(sink.uri).toBe(sink.url);
    let r = await fetch(`${sink.url}/healthz`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await r.json()).toEqual({ ok: true, streams: 2, source: 'connected' });
    healthy = false;
    r = await fetch(`${sink.url}/healthz`);
    expect(r.status).toBe(503);
    expect(await r.json()).toEqual({ ok: false, streams: 2, source: 'disconnected' });
  });

  it('reports a health callback that throws as 503', async () => {
    const sink = await startSink({
      health: () => {
        throw new Error('pool gone');
      },
    });
    const r = await fetch(`${sink.url}/healthz`);
    expect(r.status).toBe(503);
    expect(await r.json()).toEqual({ ok: false, error: 'pool gone' });
  });

  it('serves /metrics as valid Prometheus text with the daemon counters', async () => {
    const metrics = new DaemonMetrics();
    const sink = await startSink({ metrics });
    const weird = 'we"ird\\name\nx';
    metrics.samplesIn.inc({ stream: 'a' }, 3);
    metrics.samplesIn.inc({ stream: weird });
    metrics.predictionsOut.inc({ stream: 'a' }, 2);
    metrics.drop('crc');
    metrics.drop('crc');
    metrics.drop('non-finite');
    metrics.queueDepth.set({ sink: 'mqtt' }, 7);
    metrics.streams.set(2);
    metrics.stepSeconds.observe(0.0003);
    metrics.stepSeconds.observe(0.02);
    metrics.stepSeconds.observe(0.001, 3);
    // the pipeline's plain per-stream counters, added to the counters at the scrape
    metrics.streamCounts('a').in += 4;
    metrics.streamCounts('b').out += 1;
    metrics.observeTrace(Float64Array.from([0.01, 0.001, 0.02, 0.3, 0.02, 0.351]));
    metrics.trace = new LatencyTrace();
    metrics.trace.startLoop();

    const r = await fetch(`${sink.url}/metrics`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe(metrics.registry.contentType);
    expect(r.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const fams = parsePrometheusText(await r.text());

    for (const [name, type] of [
      ['streamcell_samples_in_total', 'counter'],
      ['streamcell_predictions_out_total', 'counter'],
      ['streamcell_dropped_total', 'counter'],
      ['streamcell_reconnects_total', 'counter'],
      ['streamcell_sink_errors_total', 'counter'],
      ['streamcell_queue_depth', 'gauge'],
      ['streamcell_queue_overflow_total', 'counter'],
      ['streamcell_streams', 'gauge'],
      ['streamcell_step_seconds', 'histogram'],
      ['streamcell_stage_seconds', 'histogram'],
      ['streamcell_event_loop_delay_seconds', 'gauge'],
    ]) {
      expect(fams.get(name!)?.type, name).toBe(type);
      expect(fams.get(name!)?.help, name).toBeTruthy();
    }
    metrics.trace.stopLoop();
    expect(sampleValue(fams, 'streamcell_samples_in_total', { stream: 'a' })).toBe(3 + 4);
    expect(sampleValue(fams, 'streamcell_predictions_out_total', { stream: 'b' })).toBe(1);
    expect(sampleValue(fams, 'streamcell_step_seconds', {}, 'streamcell_step_seconds_count')).toBe(5);
    expect(sampleValue(fams, 'streamcell_step_seconds', { le: '0.001' }, 'streamcell_step_seconds_bucket')).toBe(4);
    expect(sampleValue(fams, 'streamcell_stage_seconds', { stage: 'infer' }, 'streamcell_stage_seconds_sum')).toBeCloseTo(0.0003, 12);
    expect(sampleValue(fams, 'streamcell_stage_seconds', { stage: 'queue' }, 'streamcell_stage_seconds_count')).toBe(1);
    expect(sampleValue(fams, 'streamcell_samples_in_total', { stream: weird })).toBe(1); // escapes round-trip
    expect(sampleValue(fams, 'streamcell_predictions_out_total', { stream: 'a' })).toBe(2);
    expect(sampleValue(fams, 'streamcell_dropped_total', { reason: 'crc' })).toBe(2);
    expect(sampleValue(fams, 'streamcell_dropped_total', { reason: 'non-finite' })).toBe(1);
    expect(sampleValue(fams, 'streamcell_queue_depth', { sink: 'mqtt' })).toBe(7);
    expect(sampleValue(fams, 'streamcell_streams')).toBe(2);
    expect(sampleValue(fams, 'streamcell_step_seconds', { le: '0.0005' }, 'streamcell_step_seconds_bucket')).toBe(1);
    expect(sampleValue(fams, 'streamcell_step_seconds', {}, 'streamcell_step_seconds_sum')).toBeCloseTo(0.0203 + 3 * 0.001, 9);
  });

  it('the Prometheus parser itself rejects malformed exposition', () => {
    const ok = '# HELP a_total A.\n# TYPE a_total counter\na_total{x="1"} 2\n';
    expect(() => parsePrometheusText(ok)).not.toThrow();
    expect(() => parsePrometheusText('a_total 1\n')).toThrow(/no declared metric family/);
    expect(() => parsePrometheusText('# TYPE a counter\na{x="1"} one\n')).toThrow(/not a float/);
    expect(() => parsePrometheusText('# TYPE 1a counter\n')).toThrow(/bad metric name/);
    expect(() => parsePrometheusText('# TYPE a counter\na{x="1} 1\n')).toThrow(/unterminated|expected/);
    expect(() => parsePrometheusText('# TYPE a counter\na{x="\\t"} 1\n')).toThrow(/bad escape/);
    expect(() => parsePrometheusText('# TYPE a counter\na 1')).toThrow(/newline/);
    expect(() => parsePrometheusText('# TYPE a gauge\n# TYPE b gauge\nb 1\na 1\n')).toThrow(/one group/);
    expect(() => parsePrometheusText('# TYPE a gauge\na 1\n# TYPE a gauge\n')).toThrow(/second TYPE/);
  });

  it('serves uPlot from the npm package and 404/405 for anything else', async () => {
    const sink = await startSink();
    const dist = dirname(createRequire(import.meta.url).resolve('uplot'));
    const js = await fetch(`${sink.url}/assets/uplot.js`);
    expect(js.status).toBe(200);
    expect(js.headers.get('content-type')).toMatch(/^text\/javascript/);
    expect(Buffer.from(await js.arrayBuffer()).equals(readFileSync(join(dist, 'uPlot.iife.min.js')))).toBe(true);
    const css = await fetch(`${sink.url}/assets/uplot.css`);
    expect(css.headers.get('content-type')).toMatch(/^text\/css/);
    expect(await css.text()).toBe(readFileSync(join(dist, 'uPlot.min.css'), 'utf8'));

    const page = await fetch(`${sink.url}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    const csp = page.headers.get('content-security-policy') ?? '';
    expect(csp).toMatch(/default-src 'none'/);
    // The page script is a same-origin asset (compiled from dashboard-client/main.ts): no inline script, no script hash.
    expect(csp).toMatch(/script-src 'self'(;|$)/);
    const html = await page.text();
    expect(html).toMatch(/<script src="\/assets\/uplot\.js">/);
    expect(html).toMatch(/<script src="\/assets\/dashboard\.js"><\/script>/);
    expect(html).not.toMatch(/<script>/);
    const script = await fetch(`${sink.url}/assets/dashboard.js`);
    expect(script.status).toBe(200);
    expect(script.headers.get('content-type')).toMatch(/^text\/javascript/);
    const code = await script.text();
    expect(code).toContain('new EventSource(');
    expect(code).not.toMatch(/^\s*(export|import)\b/m);

    for (const path of ['/nope', '/assets/uPlot.iife.js', '/assets/../package.json', '/metrics/', '//healthz']) {
      expect((await fetch(`${sink.url}${path}`)).status, path).toBe(404);
    }
    const post = await fetch(`${sink.url}/healthz`, { method: 'POST' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
  });

  it('without a token answers only to loopback Host names (no DNS rebinding)', async () => {
    const sink = await startSink();
    expect((await rawGet(`${sink.url}/healthz`, { host: 'evil.example:80' })).status).toBe(403);
    expect((await rawGet(`${sink.url}/healthz`, { host: `localhost:${new URL(sink.url).port}` })).status).toBe(200);
    expect((await rawGet(`${sink.url}/healthz`, { host: '[::1]:9' })).status).toBe(200);
  });
});

describe('HttpSink: binding and token', () => {
  it('knows loopback hosts', () => {
    for (const h of ['127.0.0.1', '127.1.2.3', 'localhost', '::1', '[::1]', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1']) expect(isLoopbackHost(h), h).toBe(true);
    for (const h of ['0.0.0.0', '::', '10.0.0.1', '192.168.1.5', 'example.com', '::ffff:10.0.0.1', '128.0.0.1', '']) expect(isLoopbackHost(h), h).toBe(false);
  });

  it('refuses a non-loopback host without a token, naming the option', async () => {
    for (const host of ['0.0.0.0', '::', '192.168.1.5']) {
      const e = await HttpSink.start({ host, port: 0, metrics: new DaemonMetrics(), health: () => ({ ok: true }) }).catch((x: unknown) => x);
      expect(isInputError(e), host).toBe(true);
      expect((e as Error).message).toMatch(/'token'/);
      expect((e as { context: { field?: string } }).context.field).toBe('token');
    }
    const empty = await HttpSink.start({ host: '0.0.0.0', token: '', port: 0, metrics: new DaemonMetrics(), health: () => ({ ok: true }) }).catch(
      (x: unknown) => x,
    );
    expect(isInputError(empty)).toBe(true);
    const badPort = await HttpSink.start({ port: 70000, metrics: new DaemonMetrics(), health: () => ({ ok: true }) }).catch((x: unknown) => x);
    expect((badPort as { context: { field?: string } }).context.field).toBe('port');
  });

  it('reports a port in use as an InputError naming the port', async () => {
    const a = await startSink();
    const e = await HttpSink.start({ port: Number(new URL(a.url).port), metrics: new DaemonMetrics(), health: () => ({ ok: true }) }).catch((x: unknown) => x);
    expect(isInputError(e)).toBe(true);
    expect((e as { context: { field?: string } }).context.field).toBe('port');
  });

  it('refuses tokens shorter than 16 characters', async () => {
    for (const token of ['x', 's3cret-token', '123456789012345']) {
      const e = await HttpSink.start({ host: '0.0.0.0', token, port: 0, metrics: new DaemonMetrics(), health: () => ({ ok: true }) }).catch((x: unknown) => x);
      expect(isInputError(e), token).toBe(true);
      expect((e as { context: { expected?: string } }).context.expected).toMatch(/at least 16 characters/);
    }
  });

  it('with a token requires it on every route (Bearer header or ?token=), except /healthz from this machine', async () => {
    const token = 's3cret-token-0123456789';
    const sink = await startSink({ host: '0.0.0.0', token });
    const port = new URL(sink.url).port;
    // A peer that is not loopback: this machine's own non-internal address (the socket's peer
    // address is then that address, as for a request from another host).
    const external = Object.values(networkInterfaces())
      .flat()
      .find((a) => a && !a.internal && a.family === 'IPv4')?.address;
    const remote = external ? `http://${external}:${port}` : undefined;
    const loop = `http://127.0.0.1:${port}`;
    // The health timer and the deploy gate ask from the device itself: no token needed.
    expect((await fetch(`${loop}/healthz`)).status).toBe(200);
    if (remote) expect((await fetch(`${remote}/healthz`)).status).toBe(401);
    const base = remote ?? loop;
    for (const path of ['/metrics', '/', '/events', '/assets/uplot.js', '/assets/uplot.css', '/nope', ...(remote ? ['/healthz'] : [])]) {
      const r = await fetch(`${base}${path}`);
      expect(r.status, path).toBe(401);
      expect(r.headers.get('www-authenticate'), path).toMatch(/^Bearer/);
      expect((await fetch(`${base}${path}`, { headers: { authorization: 'Bearer wrong' } })).status, path).toBe(401);
      expect((await fetch(`${base}${path}?token=${token}x`)).status, path).toBe(401);
    }
    expect((await fetch(`${base}/healthz`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
    expect((await fetch(`${base}/metrics?token=${token}`)).status).toBe(200);
    expect((await fetch(`${base}/nope?token=${token}`)).status).toBe(404);
    // The page opened with ?token= passes it on to its assets; a header token stays out of the page.
    expect(await (await fetch(`${base}/?token=${token}`)).text()).toContain(`/assets/uplot.js?token=${token}`);
    expect(await (await fetch(`${base}/`, { headers: { authorization: `Bearer ${token}` } })).text()).not.toContain(token);
    // A token disables the Host check: the daemon is meant to be reached by name then.
    expect((await rawGet(`${base}/healthz?token=${token}`, { host: 'sensor-7.example:8080' })).status).toBe(200);
  });
});

describe('HttpSink: event stream', () => {
  it('keeps the history of the most recently written streams only, and caps the snapshot in bytes', async () => {
    const sink = await startSink({ historyPerStream: 50, historyStreams: 3, snapshotBytes: 4096 });
    for (const s of ['a', 'b', 'c', 'd']) for (let i = 0; i < 50; i++) sink.write(rec(s, i));
    sink.write(rec('b', 50)); // b becomes the most recent: a is the one evicted when d came
    const { events } = await readEvents(`${sink.url}/events`, (ev) => ev.length >= 1);
    const snap = JSON.parse(events[0]!.data) as { streams: Record<string, PredictionRecord[]> };
    expect(Object.keys(snap.streams).sort()).toEqual(['b', 'c', 'd']);
    // 4096 bytes shared by 3 streams: the newest records of each, ending at the last written.
    expect(events[0]!.data.length).toBeLessThanOrEqual(4096 + 64);
    for (const [name, recs] of Object.entries(snap.streams)) {
      expect(recs.length, name).toBeGreaterThan(5);
      expect(recs.length, name).toBeLessThan(50);
      expect(recs.at(-1)!.seq, name).toBe(name === 'b' ? 50 : 49);
      expect(
        recs.map((r) => r.seq),
        name,
      ).toEqual(Array.from({ length: recs.length }, (_, i) => recs.at(-1)!.seq - recs.length + 1 + i));
    }
  });

  it('serves at most maxClients event streams (503 beyond), and counts them', async () => {
    const sink = await startSink({ maxClients: 2 });
    const acs = [new AbortController(), new AbortController()];
    try {
      for (const ac of acs) expect((await fetch(`${sink.url}/events`, { signal: ac.signal })).status).toBe(200);
      await waitUntil(() => sink.clientCount === 2);
      const third = await fetch(`${sink.url}/events`);
      expect(third.status).toBe(503);
      expect(third.headers.get('retry-after')).toBe('10');
      expect((await fetch(`${sink.url}/healthz`)).status).toBe(200);
    } finally {
      for (const ac of acs) ac.abort();
    }
    await waitUntil(() => sink.clientCount === 0);
    expect((await fetch(`${sink.url}/events`, { method: 'HEAD' })).status).toBe(200);
  });

  it('sends a bounded snapshot per stream, then each prediction as written', async () => {
    const sink = await startSink({ historyPerStream: 5 });
    for (let i = 0; i < 12; i++) sink.write(rec('a', i));
    sink.write(rec('b', 0, { forecast: undefined, label: 'V', outputs: { probs: [0.1, 0.9] } }));
    const { events } = await readEvents(
      `${sink.url}/events`,
      (ev) => ev.length >= 3,
      () => {
        sink.write(rec('a', 12));
        sink.write(rec('b', 1, { forecast: undefined, label: 'N', outputs: { probs: [0.8, 0.2] } }));
      },
    );
    expect(events.map((e) => e.event)).toEqual(['snapshot', 'prediction', 'prediction']);
    const snap = JSON.parse(events[0]!.data) as { streams: Record<string, PredictionRecord[]> };
    expect(Object.keys(snap.streams)).toEqual(['a', 'b']);
    expect(snap.streams.a!.map((r) => r.seq)).toEqual([7, 8, 9, 10, 11]);
    expect(snap.streams.b![0]).toEqual({ stream: 'b', seq: 0, t: 1_700_000_000_000, input: [0, 0.5], label: 'V', outputs: { probs: [0.1, 0.9] } });
    expect(JSON.parse(events[1]!.data)).toEqual(rec('a', 12));
    expect(JSON.parse(events[2]!.data)).toMatchObject({ stream: 'b', seq: 1, label: 'N' });
    await sink.flush();
  });

  it('never throws from write, even for a record JSON cannot carry', async () => {
    const sink = await startSink();
    expect(() => sink.write({ ...rec('a', 0), outputs: { y: [1n as unknown as number] } })).not.toThrow();
    sink.write(rec('a', 1));
    const { events } = await readEvents(`${sink.url}/events`, (ev) => ev.length >= 1);
    expect((JSON.parse(events[0]!.data) as { streams: Record<string, PredictionRecord[]> }).streams.a!.map((r) => r.seq)).toEqual([1]);
  });

  it('drops a client that cannot keep up, without blocking write', async () => {
    const sink = await startSink({ maxClientBacklog: 64 * 1024 });
    const port = Number(new URL(sink.url).port);
    const socket = connect(port, '127.0.0.1');
    await new Promise<void>((r) => socket.once('connect', () => r()));
    socket.write(`GET /events HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`);
    socket.pause(); // never reads: the kernel buffers fill, then the sink's backlog grows
    for (let i = 0; i < 100 && sink.clientCount === 0; i++) await sleep(10);
    expect(sink.clientCount).toBe(1);
    const big = { y: Array.from({ length: 200 }, (_, k) => k / 7) };
    let seq = 0;
    const t0 = performance.now();
    for (let batch = 0; batch < 400 && sink.droppedClients === 0; batch++) {
      for (let k = 0; k < 500; k++) sink.write(rec('a', seq++, { outputs: big }));
      await sleep(1);
    }
    expect(sink.droppedClients).toBe(1);
    expect(sink.clientCount).toBe(0);
    expect((performance.now() - t0) / seq).toBeLessThan(1); // ms per write: it never waited on the client
    socket.destroy();
  });

  it('close() ends event streams and the server', async () => {
    const sink = await startSink();
    const reading = readEvents(`${sink.url}/events`, () => false);
    for (let i = 0; i < 100 && sink.clientCount === 0; i++) await sleep(10);
    const t0 = performance.now();
    await sink.close();
    expect(performance.now() - t0).toBeLessThan(2000);
    expect((await reading).ended).toBe(true);
    expect(sink.clientCount).toBe(0);
    await expect(fetch(`${sink.url}/healthz`)).rejects.toThrow();
    sink.write(rec('a', 0)); // after close: ignored, no throw
    await sink.close(); // idempotent
  });
});

// ---------------------------------------------------------------------------------------

const INPUT_RGB: [number, number, number] = [31, 119, 180];
const FORECAST_RGB: [number, number, number] = [214, 39, 40];

function countColour(png: PNG, [r, g, b]: [number, number, number], tol = 60): number {
  let n = 0;
  for (let i = 0; i < png.data.length; i += 4) {
    if (Math.abs(png.data[i]! - r) + Math.abs(png.data[i + 1]! - g) + Math.abs(png.data[i + 2]! - b) < tol) n++;
  }
  return n;
}

function differingPixels(a: PNG, b: PNG): number {
  expect([a.width, a.height]).toEqual([b.width, b.height]);
  let n = 0;
  for (let i = 0; i < a.data.length; i += 4) {
    if (a.data[i] !== b.data[i] || a.data[i + 1] !== b.data[i + 1] || a.data[i + 2] !== b.data[i + 2]) n++;
  }
  return n;
}

describe('HttpSink dashboard in headless Chromium', () => {
  async function openDashboard(sink: HttpSink, query = '') {
    const browser = await launchChromium();
    const page = await browser.newPage({ viewport: { width: 1000, height: 700 } });
    const errors: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    page.on('pageerror', (e) => errors.push(String(e)));
    const foreign: string[] = [];
    page.on('request', (q) => {
      if (!q.url().startsWith(`${sink.url}/`)) foreign.push(q.url());
    });
    await page.goto(`${sink.url}/${query}`);
    return { browser, page, errors, foreign };
  }

  it('draws the live input and forecast, updating as predictions arrive', async () => {
    const sink = await startSink({ title: 'ECG <ward 3>', historyPerStream: 300 });
    let seq = 0;
    const feed = () => {
      for (let k = 0; k < 4; k++, seq++) {
        sink.write(rec('ecg', seq));
        // A classifier stream too, so the page offers a stream selector.
        sink.write({
          stream: 'beats',
          seq,
          t: seq,
          input: [Math.cos(seq / 15)],
          label: seq % 40 < 20 ? 'N' : 'V',
          outputs: { probs: seq % 40 < 20 ? [0.9, 0.1] : [0.2, 0.8] },
        });
      }
    };
    for (let i = 0; i < 50; i++) feed(); // history for the snapshot
    const timer = setInterval(feed, 10);
    const { browser, page, errors, foreign } = await openDashboard(sink);
    try {
      expect(await page.title()).toBe('ECG <ward 3>');
      const chart = page.locator('#chart');
      await page.locator('#chart canvas').waitFor();
      await page.locator('#status', { hasText: /samples\/s/ }).waitFor();
      // Until a full rate window has passed: live, a rate, and 200+ predictions seen.
      const status = await pollUntil(
        async () => (await page.locator('#status').textContent()) ?? '',
        (t) => /live/.test(t) && Number(/([\d.]+) samples\/s/.exec(t)?.[1] ?? 0) > 20 && Number(/last seq (\d+)/.exec(t)?.[1] ?? 0) > 200,
      );
      expect(status).toMatch(/live/);
      expect(status).toMatch(/stream ecg/);
      const rate = Number(/([\d.]+) samples\/s/.exec(status)![1]);
      expect(rate).toBeGreaterThan(20);
      const lastSeq = Number(/last seq (\d+)/.exec(status)![1]);
      expect(lastSeq).toBeGreaterThan(200);
      expect(status).toMatch(/forecast -?\d/);

      const box = (await chart.boundingBox())!;
      expect(box.width).toBeGreaterThan(800);
      expect(box.height).toBeGreaterThan(300);
      const shot1 = PNG.sync.read(await chart.screenshot());
      const shot2 = await pollUntil(
        async () => PNG.sync.read(await chart.screenshot()),
        (shot) => differingPixels(shot1, shot) > 500,
      );
      expect(differingPixels(shot1, shot2)).toBeGreaterThan(500);
      for (const shot of [shot1, shot2]) {
        expect(countColour(shot, INPUT_RGB)).toBeGreaterThan(300);
        expect(countColour(shot, FORECAST_RGB)).toBeGreaterThan(300);
      }

      // Several streams: a selector, and the classifier's predicted class plotted on its own axis.
      const select = page.locator('#stream');
      expect(await select.isVisible()).toBe(true);
      expect(await select.locator('option').allTextContents()).toEqual(['ecg', 'beats']);
      await select.selectOption('beats');
      await page.locator('#status', { hasText: /stream beats/ }).waitFor();
      await page.locator('#chart .u-legend .u-label', { hasText: 'predicted class' }).waitFor();
      const shot3 = await pollUntil(
        async () => PNG.sync.read(await chart.screenshot()),
        (shot) => countColour(shot, FORECAST_RGB) > 300 && countColour(shot, INPUT_RGB) > 300,
      );
      expect(countColour(shot3, FORECAST_RGB)).toBeGreaterThan(300);
      expect(countColour(shot3, INPUT_RGB)).toBeGreaterThan(300);
      expect(await page.locator('#status').textContent()).toMatch(/label [NV]/);

      if (process.env.SHOT_DIR) await page.screenshot({ path: `${process.env.SHOT_DIR}/page.png` });
      expect(errors).toEqual([]);
      expect(foreign).toEqual([]);
    } finally {
      clearInterval(timer);
      await browser.close();
    }
  });

  it('works behind a token passed in the page URL', async () => {
    const token = 'dash-token-0123456789';
    const sink = await startSink({ token });
    let seq = 0;
    const timer = setInterval(() => sink.write(rec('default', seq++)), 5);
    const { browser, page, errors, foreign } = await openDashboard(sink, `?token=${token}`);
    try {
      await page.locator('#chart canvas').waitFor();
      await page.locator('#status', { hasText: /live/ }).waitFor();
      const shot = await pollUntil(
        async () => PNG.sync.read(await page.locator('#chart').screenshot()),
        (x) => countColour(x, FORECAST_RGB) > 300,
      );
      expect(countColour(shot, FORECAST_RGB)).toBeGreaterThan(300);
      expect(await page.locator('#stream').isVisible()).toBe(false); // one stream: no selector
      expect(errors).toEqual([]);
      expect(foreign).toEqual([]);
    } finally {
      clearInterval(timer);
      await browser.close();
    }
  });
});
