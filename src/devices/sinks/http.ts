/**
 * The HTTP sink: `/healthz`, Prometheus `/metrics` and a live dashboard (`/`, fed by the
 * Server-Sent Events of `/events`), for the sink URI `http://127.0.0.1:8080`.
 *
 * Security: the server binds to loopback unless told otherwise, and any other address
 * requires a token (at least {@link MIN_TOKEN_LENGTH} characters); with a token, every route
 * requires it (`Authorization: Bearer <token>` or `?token=<token>`) — except `/healthz` asked
 * from this machine (a loopback peer address), so the health timer and the deploy gate on the
 * device need no secret. Without a token, requests whose `Host` is not a loopback name are
 * refused, so a web page cannot reach the daemon through DNS rebinding.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { isIP, type AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { InputError } from '../../errors.js';
import type { DaemonMetrics } from '../metrics.js';
import type { PredictionRecord, Sink } from '../types.js';
import { DASHBOARD_CSP, dashboardHtml, loadDashboardScript } from './dashboard.js';

/** What `/healthz` reports: 200 when `ok`, else 503, with the object as JSON. */
export interface HealthReport {
  ok: boolean;
  [k: string]: unknown;
}

/** Options of {@link HttpSink.start}. */
export interface HttpSinkOptions {
  /** Address to bind; default `127.0.0.1`. Anything but loopback requires `token`. */
  host?: string;
  /** Port to bind; default 0, any free port (see {@link HttpSink.url}). The URI's default is 8080. */
  port?: number;
  /** The daemon's metrics, served as `/metrics`. */
  metrics: DaemonMetrics;
  /** Called per `/healthz` request; a throw reports unhealthy. */
  health: () => HealthReport;
  /**
   * The `status` event's data (the daemon's {@link StatusReport}): sent to each dashboard client
   * right after its snapshot, then to all every second. Without it no status event is sent.
   */
  status?: () => Promise<object> | object;
  /** Required on every route when set (Bearer header or `?token=`). */
  token?: string;
  /** Dashboard title; default `streamcell`. */
  title?: string;
  /** Predictions kept per stream for new dashboard clients; default 500. */
  historyPerStream?: number;
  /** Streams whose history is kept (the most recently written); default 100. */
  historyStreams?: number;
  /** Dashboard (SSE) clients served at once; more get 503. Default 32. */
  maxClients?: number;
  /** Bytes of history in a new client's snapshot (the newest records of each stream, shared fairly); default 2 MiB. */
  snapshotBytes?: number;
  /**
   * Bytes an SSE client may have waiting to be sent before it is dropped as too slow;
   * default 1 MiB. It reconnects (EventSource does) and starts again from a snapshot.
   */
  maxClientBacklog?: number;
}

const DEFAULT_HOST = '127.0.0.1';
/** Shortest token accepted (the config file demands the same). */
export const MIN_TOKEN_LENGTH = 16;
const HEARTBEAT_MS = 15_000;
/** Period of the `status` event. */
export const STATUS_MS = 1000;

/** Fixed-size ring of serialised records, oldest first. */
class Ring {
  private readonly items: string[] = [];
  private start = 0;

  constructor(private readonly capacity: number) {}

  push(item: string): void {
    if (this.items.length < this.capacity) this.items.push(item);
    else {
      this.items[this.start] = item;
      this.start = (this.start + 1) % this.capacity;
    }
  }

  toArray(): string[] {
    return this.items.slice(this.start).concat(this.items.slice(0, this.start));
  }
}

/**
 * True for addresses and names that only this machine can reach: `localhost`, 127.0.0.0/8,
 * `::1` and IPv4-mapped 127.x (with or without brackets).
 */
export function isLoopbackHost(host: string): boolean {
  const h = host
    .trim()
    .toLowerCase()
    .replace(/^\[(.*)\]$/, '$1');
  if (h === 'localhost' || h === 'localhost.') return true;
  const family = isIP(h);
  if (family === 4) return h.startsWith('127.');
  if (family === 6) {
    // The URL parser writes IPv6 in canonical form (::1, ::ffff:7f00:1).
    const canonical = new URL(`http://[${h}]/`).hostname;
    return canonical === '[::1]' || /^\[::ffff:7f[0-9a-f]{2}:[0-9a-f]{1,4}\]$/.test(canonical);
  }
  return false;
}

/** The host name part of a `Host` header (`a:1`, `[::1]:2`, `b`). */
function hostHeaderName(header: string): string {
  const m = /^(\[[^\]]*\]|[^:]*)(?::\d*)?$/.exec(header.trim());
  return m ? m[1]! : header;
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}

interface Client {
  res: ServerResponse;
  /** The snapshot still being sent (in pieces, while the socket drains), then live frames held back meanwhile. */
  snapshot?: Iterator<string>;
  held: string[];
  heldBytes: number;
}

/** A client that has not taken its snapshot by then is dropped (it holds references to the history). */
const SNAPSHOT_DEADLINE_MS = 60_000;

/** The uPlot build served as `/assets/uplot.*`, read from the npm package, never a CDN. */
function loadUplotAssets(): { js: Buffer; css: Buffer } {
  const require = createRequire(import.meta.url);
  let dist: string;
  try {
    dist = dirname(require.resolve('uplot'));
  } catch (e) {
    throw new Error("the 'uplot' package is not installed: run npm ci", { cause: e });
  }
  return { js: readFileSync(join(dist, 'uPlot.iife.min.js')), css: readFileSync(join(dist, 'uPlot.min.css')) };
}

function listenError(e: NodeJS.ErrnoException, host: string, port: number): Error {
  const where = `${host}:${port}`;
  switch (e.code) {
    case 'EADDRINUSE':
      return new InputError(`http sink: ${where} is already in use`, { field: 'port', expected: 'a free port (0 picks one)' }, { cause: e });
    case 'EACCES':
      return new InputError(
        `http sink: no permission to bind ${where}`,
        { field: 'port', expected: 'a port above 1023, or the needed capability' },
        { cause: e },
      );
    case 'EADDRNOTAVAIL':
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return new InputError(
        `http sink: cannot bind host '${host}' (${e.code})`,
        { field: 'host', expected: 'an address of this machine, e.g. 127.0.0.1' },
        { cause: e },
      );
    default:
      return e;
  }
}

/**
 * Serves health, Prometheus metrics and a live dashboard of the predictions written to it.
 *
 * @example
 * const sink = await HttpSink.start({ port: 8080, metrics, health: () => ({ ok: true }) });
 * console.log(`dashboard at ${sink.url}/`);
 * sink.write(prediction); // from the pipeline
 * await sink.close();
 */
export class HttpSink implements Sink {
  /** The bound URL, e.g. `http://127.0.0.1:43117` (the actual port when started with 0). */
  readonly url: string;
  readonly uri: string;

  private readonly history = new Map<string, Ring>();
  private readonly clients = new Set<Client>();
  private readonly tokenDigest: Buffer | undefined;
  private readonly heartbeat: NodeJS.Timeout;
  private readonly statusTimer: NodeJS.Timeout;
  /** A periodic status is being built: the next tick is skipped rather than stacked. */
  private statusBusy = false;
  private closing: Promise<void> | undefined;
  private dropped = 0;
  private outbox: string[] = [];

  private constructor(
    private readonly server: Server,
    private readonly opts: Required<
      Pick<HttpSinkOptions, 'metrics' | 'health' | 'title' | 'historyPerStream' | 'historyStreams' | 'maxClients' | 'snapshotBytes' | 'maxClientBacklog'>
    > & { token?: string; status?: HttpSinkOptions['status'] },
    private readonly assets: { js: Buffer; css: Buffer; dashboard: Buffer },
  ) {
    const addr = server.address() as AddressInfo;
    const host = addr.address.includes(':') ? `[${addr.address}]` : addr.address;
    this.url = `http://${host}:${addr.port}`;
    this.uri = this.url;
    this.tokenDigest = opts.token === undefined ? undefined : digest(opts.token);
    server.on('request', (req: IncomingMessage, res: ServerResponse) => this.handle(req, res));
    // Comments keep proxies from timing out idle streams and reveal dead clients.
    this.heartbeat = setInterval(() => this.broadcast(': keepalive\n\n'), HEARTBEAT_MS);
    this.heartbeat.unref();
    this.statusTimer = setInterval(() => this.tickStatus(), STATUS_MS);
    this.statusTimer.unref();
  }

  /**
   * Validates the options, binds and starts serving.
   *
   * @throws InputError when binding a non-loopback host without a token, for bad options,
   *   or when the address cannot be bound (port in use, unknown host).
   */
  static async start(opts: HttpSinkOptions): Promise<HttpSink> {
    const host = opts.host ?? DEFAULT_HOST;
    const port = opts.port ?? 0;
    const historyPerStream = opts.historyPerStream ?? 500;
    const historyStreams = opts.historyStreams ?? 100;
    const maxClients = opts.maxClients ?? 32;
    const snapshotBytes = opts.snapshotBytes ?? 2 << 20;
    const maxClientBacklog = opts.maxClientBacklog ?? 1 << 20;
    if (typeof host !== 'string' || host.trim() === '') {
      throw new InputError(`http sink: host must be a non-empty address, got ${JSON.stringify(host)}`, { field: 'host', expected: 'e.g. 127.0.0.1' });
    }
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      throw new InputError(`http sink: port must be an integer in [0, 65535], got ${port}`, {
        field: 'port',
        expected: 'an integer in [0, 65535] (0 picks a free port)',
      });
    }
    if (opts.token !== undefined && (typeof opts.token !== 'string' || opts.token.length < MIN_TOKEN_LENGTH)) {
      throw new InputError(`http sink: the token has ${typeof opts.token === 'string' ? opts.token.length : 0} characters`, {
        field: 'token',
        expected: `a secret of at least ${MIN_TOKEN_LENGTH} characters`,
      });
    }
    if (opts.token === undefined && !isLoopbackHost(host)) {
      throw new InputError(`http sink: host '${host}' is reachable from other machines, so option 'token' is required (or bind 127.0.0.1)`, {
        field: 'token',
        expected: "a token whenever 'host' is not loopback",
      });
    }
    if (!Number.isInteger(historyPerStream) || historyPerStream < 1) {
      throw new InputError(`http sink: historyPerStream must be a positive integer, got ${historyPerStream}`, {
        field: 'historyPerStream',
        expected: 'an integer ≥ 1',
      });
    }
    if (!Number.isInteger(historyStreams) || historyStreams < 1 || historyStreams > 100_000) {
      throw new InputError(`http sink: historyStreams must be an integer in [1, 100000], got ${historyStreams}`, {
        field: 'historyStreams',
        expected: 'an integer in [1, 100000]',
      });
    }
    if (!Number.isInteger(maxClients) || maxClients < 1 || maxClients > 10_000) {
      throw new InputError(`http sink: maxClients must be an integer in [1, 10000], got ${maxClients}`, {
        field: 'maxClients',
        expected: 'an integer in [1, 10000]',
      });
    }
    if (!(maxClientBacklog > 0)) {
      throw new InputError(`http sink: maxClientBacklog must be positive, got ${maxClientBacklog}`, { field: 'maxClientBacklog', expected: 'bytes > 0' });
    }
    const assets = { ...loadUplotAssets(), dashboard: loadDashboardScript() };
    const server = createServer();
    const bindHost = host.trim().replace(/^\[(.*)\]$/, '$1');
    await new Promise<void>((resolve, reject) => {
      const onError = (e: NodeJS.ErrnoException) => reject(listenError(e, host, port));
      server.once('error', onError);
      server.listen({ host: bindHost, port }, () => {
        server.off('error', onError);
        resolve();
      });
    });
    return new HttpSink(
      server,
      {
        metrics: opts.metrics,
        health: opts.health,
        status: opts.status,
        token: opts.token,
        title: opts.title ?? 'streamcell',
        historyPerStream,
        historyStreams,
        maxClients,
        snapshotBytes,
        maxClientBacklog,
      },
      assets,
    );
  }

  /** Dashboard (SSE) clients connected now. */
  get clientCount(): number {
    return this.clients.size;
  }

  /** SSE clients dropped so far because they could not keep up. */
  get droppedClients(): number {
    return this.dropped;
  }

  /** Records the prediction for new clients and sends it to connected ones; never throws or blocks. */
  write(rec: PredictionRecord): void {
    if (this.closing) return;
    try {
      const wire: Record<string, unknown> = { stream: rec.stream, seq: rec.seq, t: rec.t, input: rec.input };
      if (rec.forecast !== undefined) wire.forecast = rec.forecast;
      if (rec.label !== undefined) wire.label = rec.label;
      if (rec.rollout !== undefined) wire.rollout = rec.rollout;
      wire.outputs = rec.outputs;
      const json = JSON.stringify(wire);
      let ring = this.history.get(rec.stream);
      if (ring)
        this.history.delete(rec.stream); // Map order is write order: the first is the least recent
      else {
        ring = new Ring(this.opts.historyPerStream);
        if (this.history.size >= this.opts.historyStreams) this.history.delete(this.history.keys().next().value!);
      }
      this.history.set(rec.stream, ring);
      ring.push(json);
      if (this.clients.size > 0) {
        // Coalesced: one write per client per turn of the event loop, however many predictions.
        this.outbox.push(`event: prediction\ndata: ${json}\n\n`);
        if (this.outbox.length === 1) setImmediate(() => this.flushOutbox());
      }
    } catch {
      // A record that cannot be serialised (BigInt, cycles) is skipped: a sink must not throw.
    }
  }

  /** Nothing is queued beyond the sockets' own buffers: resolves at once. */
  flush(): Promise<void> {
    return Promise.resolve();
  }

  /** Ends the event streams and closes the server; idempotent. */
  close(): Promise<void> {
    if (this.closing) return this.closing;
    clearInterval(this.heartbeat);
    clearInterval(this.statusTimer);
    for (const c of this.clients) c.res.end();
    this.clients.clear();
    this.closing = new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeIdleConnections();
      // Ended event streams may still hold keep-alive sockets; don't wait on them.
      setImmediate(() => this.server.closeAllConnections());
    });
    return this.closing;
  }

  /** The status event frame, or undefined when there is no status or it failed. */
  private async statusFrame(): Promise<string | undefined> {
    if (!this.opts.status) return undefined;
    try {
      return `event: status\ndata: ${JSON.stringify(await this.opts.status())}\n\n`;
    } catch {
      return undefined;
    }
  }

  /** Every second while clients are connected: one status built, sent to all. */
  private tickStatus(): void {
    if (!this.opts.status || this.statusBusy || this.closing || this.clients.size === 0) return;
    this.statusBusy = true;
    void this.statusFrame()
      .then((f) => {
        if (f && !this.closing) this.broadcast(f);
      })
      .finally(() => (this.statusBusy = false));
  }

  /** A new client's first status: right after its snapshot (ahead of the live frames held meanwhile). */
  private sendFirstStatus(c: Client): void {
    void this.statusFrame().then((f) => {
      if (!f || this.closing || !this.clients.has(c)) return;
      if (c.snapshot) {
        c.held.unshift(f);
        c.heldBytes += f.length;
      } else c.res.write(f);
    });
  }

  private flushOutbox(): void {
    const frames = this.outbox.join('');
    this.outbox = [];
    if (frames && !this.closing) this.broadcast(frames);
  }

  private broadcast(frame: string): void {
    for (const c of this.clients) {
      if (c.snapshot) {
        // Still taking its snapshot: hold live frames back, within the same byte budget.
        c.held.push(frame);
        c.heldBytes += frame.length;
        if (c.heldBytes > this.opts.maxClientBacklog) this.dropClient(c);
        continue;
      }
      if (c.res.writableLength > this.opts.maxClientBacklog) {
        this.dropClient(c);
        continue;
      }
      c.res.write(frame);
    }
  }

  private dropClient(c: Client): void {
    if (!this.clients.delete(c)) return;
    this.dropped++;
    c.snapshot = undefined;
    c.held = [];
    c.res.destroy();
  }

  /**
   * Writes snapshot pieces, about 64 KiB per turn of the event loop (so many clients connecting
   * at once cannot stall the pipeline or `/healthz`), while the socket's buffer is under the
   * backlog limit; continues on 'drain'.
   */
  private pumpSnapshot(c: Client): void {
    if (!this.clients.has(c)) return;
    let budget = 64 << 10;
    while (c.snapshot && c.res.writableLength < this.opts.maxClientBacklog) {
      if (budget <= 0) {
        setImmediate(() => this.pumpSnapshot(c));
        return;
      }
      const next = c.snapshot.next();
      if (next.done) {
        c.snapshot = undefined;
        for (const f of c.held) c.res.write(f);
        c.held = [];
        c.heldBytes = 0;
        return;
      }
      budget -= next.value.length;
      c.res.write(next.value);
    }
    if (c.snapshot) c.res.once('drain', () => this.pumpSnapshot(c));
  }

  /** The newest records of each stream, within `snapshotBytes` shared fairly between streams. */
  private snapshotHistory(): (readonly [string, string[]])[] {
    const rings = [...this.history];
    let left = this.opts.snapshotBytes;
    const out: [string, string[]][] = [];
    for (let i = 0; i < rings.length; i++) {
      const [name, ring] = rings[i]!;
      const share = left / (rings.length - i);
      const all = ring.toArray();
      let bytes = 0;
      let from = all.length;
      while (from > 0 && bytes + all[from - 1]!.length <= share) bytes += all[--from]!.length;
      left -= bytes;
      out.push([name, all.slice(from)]);
    }
    return out;
  }

  private authorized(req: IncomingMessage, query: URLSearchParams): boolean {
    if (!this.tokenDigest) return true;
    const candidates: string[] = [];
    const auth = req.headers.authorization;
    const m = auth ? /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(auth) : null;
    if (m) candidates.push(m[1]!);
    const q = query.get('token');
    if (q !== null) candidates.push(q);
    // Comparing fixed-length digests keeps the comparison constant-time in the token's length too.
    let ok = false;
    for (const c of candidates) ok = timingSafeEqual(digest(c), this.tokenDigest) || ok;
    return ok;
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('Referrer-Policy', 'no-referrer');
    const raw = req.url ?? '/';
    const qi = raw.indexOf('?');
    const path = qi < 0 ? raw : raw.slice(0, qi);
    const query = new URLSearchParams(qi < 0 ? '' : raw.slice(qi + 1));

    // /healthz from this machine answers without the token: the systemd timer and the deploy
    // health gate run on the device. The peer address is the socket's, not a header.
    const localHealth = path === '/healthz' && isLoopbackHost(req.socket.remoteAddress ?? '');
    if (!localHealth && !this.authorized(req, query)) {
      res.setHeader('WWW-Authenticate', 'Bearer realm="streamcell"');
      return text(res, 401, 'unauthorized: send Authorization: Bearer <token> or ?token=<token>\n');
    }
    if (!this.tokenDigest && !isLoopbackHost(hostHeaderName(req.headers.host ?? ''))) {
      return text(res, 403, 'forbidden: this daemon answers only to loopback host names\n');
    }
    const known = ['/', '/healthz', '/metrics', '/events', '/assets/uplot.js', '/assets/uplot.css', '/assets/dashboard.js'];
    if (!known.includes(path)) return text(res, 404, 'not found\n');
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      return text(res, 405, 'method not allowed\n');
    }
    switch (path) {
      case '/healthz':
        return this.serveHealth(res);
      case '/metrics':
        return this.serveMetrics(res);
      case '/':
        return this.serveDashboard(res, query);
      case '/events':
        return this.serveEvents(req, res);
      case '/assets/uplot.js':
        return asset(res, 'text/javascript; charset=utf-8', this.assets.js);
      case '/assets/uplot.css':
        return asset(res, 'text/css; charset=utf-8', this.assets.css);
      case '/assets/dashboard.js':
        return asset(res, 'text/javascript; charset=utf-8', this.assets.dashboard);
    }
  }

  private serveHealth(res: ServerResponse): void {
    let report: HealthReport;
    let body: string;
    try {
      report = this.opts.health();
      body = JSON.stringify(report);
    } catch (e) {
      report = { ok: false, error: e instanceof Error ? e.message : String(e) };
      body = JSON.stringify(report);
    }
    res.writeHead(report?.ok === true ? 200 : 503, { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store' });
    res.end(body + '\n');
  }

  private serveMetrics(res: ServerResponse): void {
    const registry = this.opts.metrics.registry;
    registry.metrics().then(
      (body) => {
        res.writeHead(200, { 'Content-Type': registry.contentType, 'Cache-Control': 'no-store' });
        res.end(body);
      },
      (e: unknown) => text(res, 500, `metrics failed: ${e instanceof Error ? e.message : String(e)}\n`),
    );
  }

  private serveDashboard(res: ServerResponse, query: URLSearchParams): void {
    // Only a token that came in the URL goes into the asset URLs: one sent as a header
    // stays out of the page.
    const token = this.tokenDigest ? (query.get('token') ?? undefined) : undefined;
    res.writeHead(200, {
      'Content-Type': 'text/html; charset=utf-8',
      'Cache-Control': 'no-store',
      'Content-Security-Policy': DASHBOARD_CSP,
      'X-Frame-Options': 'DENY',
    });
    res.end(dashboardHtml({ title: this.opts.title, points: this.opts.historyPerStream, token }));
  }

  /** Snapshot of the history first, then every prediction as it is written. */
  private serveEvents(req: IncomingMessage, res: ServerResponse): void {
    if (req.method !== 'HEAD' && this.clients.size >= this.opts.maxClients) {
      res.setHeader('Retry-After', '10');
      this.dropped++;
      return text(res, 503, `too many dashboard clients (${this.opts.maxClients}); try again later\n`);
    }
    res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-store',
      Connection: 'keep-alive',
      'X-Accel-Buffering': 'no',
    });
    if (req.method === 'HEAD' || this.closing) {
      res.end();
      return;
    }
    req.socket.setNoDelay(true);
    // The history as it is now (references only); sent in pieces as the client reads.
    const history = this.snapshotHistory();
    const client: Client = { res, snapshot: snapshotPieces(history), held: [], heldBytes: 0 };
    this.clients.add(client);
    res.on('close', () => this.clients.delete(client));
    const deadline = setTimeout(() => client.snapshot && this.dropClient(client), SNAPSHOT_DEADLINE_MS);
    deadline.unref();
    res.on('close', () => clearTimeout(deadline));
    this.sendFirstStatus(client);
    this.pumpSnapshot(client);
  }
}

/** The snapshot event, `{"streams":{"a":[…],…}}` on one data line, in pieces of at most 64 records. */
function* snapshotPieces(history: readonly (readonly [string, string[]])[]): Generator<string> {
  yield 'retry: 2000\n\nevent: snapshot\ndata: {"streams":{';
  for (let s = 0; s < history.length; s++) {
    const [name, recs] = history[s]!;
    yield `${s ? ',' : ''}${JSON.stringify(name)}:[`;
    for (let i = 0; i < recs.length; i += 64) yield (i ? ',' : '') + recs.slice(i, i + 64).join(',');
    yield ']';
  }
  yield '}}\n\n';
}

function asset(res: ServerResponse, type: string, body: Buffer): void {
  res.writeHead(200, { 'Content-Type': type, 'Content-Length': body.length, 'Cache-Control': 'private, max-age=3600' });
  res.end(body);
}

function text(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-store' });
  res.end(body);
}
