/**
 * MQTT sink with an on-disk queue, for daemons that must outlive broker outages of any length.
 *
 * **Delivery guarantee: at-least-once, in order, per sink.** Every prediction is published as
 * JSON with QoS 1 and counts as delivered only when the broker's PUBACK arrives. Until then it
 * is in the sink's queue; records not acknowledged within one to two `syncIntervalMs` (or
 * written while the broker is away) are appended to the queue directory and fsync'd, so a
 * crash loses at most the last ~2 × syncIntervalMs of unacknowledged records. When the broker
 * comes back (or a new sink opens the same directory after a restart), the queue is replayed
 * oldest first, before newer records. A record may therefore arrive more than once (the broker
 * got it but its PUBACK was lost with the connection, or the acknowledged offset on disk lagged
 * a crash): each message carries `stream` and `seq`, so consumers drop duplicates by
 * (stream, seq), and every retransmission, and every record held back by an outage, carries
 * `"replay": true`. The first copy of a record may be unmarked; a second copy never is.
 *
 * The only loss is deliberate and counted: the queue is bounded (`maxQueueBytes`); when full,
 * the oldest segment's records are discarded and added to
 * `streamcell_queue_overflow_total{sink}`. `streamcell_queue_depth{sink}` is the number of
 * records not yet acknowledged.
 *
 * Queue directory layout (see {@link DiskQueue}):
 * - `seg-<first q, 16 digits>.jsonl`: append-only segments, one `{"q":N,"r":{record}}` per line,
 *   `q` a queue-wide sequence number;
 * - `ack.json`: `{"acked":N}`, every q < N acknowledged (or discarded); replaced atomically
 *   (write temp, fsync, rename). Segments wholly below it are deleted.
 *
 * @example
 * ```ts
 * const sink = new MqttSink({ url: 'mqtt://broker:1883', topic: 'plant/predictions/#',
 *   queueDir: '/var/lib/streamcell/queue', metrics });
 * sink.write(prediction);  // never throws for a dead broker
 * await sink.close();      // delivers what it can within closeTimeoutMs, keeps the rest on disk
 * ```
 */
import { homedir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { IStore } from 'mqtt';
import { InputError } from '../../errors.js';
import type { DaemonMetrics } from '../metrics.js';
import type { PredictionRecord, Sink } from '../types.js';
import { defaultMqttConnect, reconnectWithBackoff, splitMqttUri, type MqttClientLike, type MqttConnect } from '../mqtt/client.js';
import { DiskQueue, type QueueEntry } from '../queue/disk-queue.js';

/** An mqtt.js outgoing store that keeps nothing: our disk queue owns retransmission. */
function nullStore(): IStore {
  const store = {
    put(_packet: unknown, cb: () => void) {
      cb();
      return store;
    },
    createStream() {
      return Readable.from([]);
    },
    del(packet: { messageId?: number }, cb: (err?: Error, packet?: unknown) => void) {
      cb(undefined, packet);
      return store;
    },
    get(_packet: unknown, cb: (err?: Error) => void) {
      cb(new Error('packet not stored'));
      return store;
    },
    close(cb: () => void) {
      cb();
    },
  };
  return store as unknown as IStore;
}

export interface MqttSinkOptions {
  /** Broker URL `mqtt://host:1883`; may carry the topic as its path when `topic` is not given. */
  url: string;
  /** Topic to publish to; `base/#` means one topic per stream, `base/<stream>`. */
  topic?: string;
  /** Publish to `{topic}/{stream}` even without a trailing `/#`. */
  perStream?: boolean;
  /** Queue directory. Default `$STATE_DIRECTORY` (systemd) or `~/.local/state/streamcell`, under `mqtt-queue/<broker and topic>`. */
  queueDir?: string;
  /** Bound of the on-disk queue (bytes); when full the oldest records are discarded and counted. Default 64 MiB. */
  maxQueueBytes?: number;
  /** Segment file size; also the granularity of discards. Default maxQueueBytes/8 within [4 KiB, 4 MiB]. */
  segmentBytes?: number;
  /** Interval of queue writes, fsyncs and offset saves. Default 250 ms. */
  syncIntervalMs?: number;
  /** Publishes awaiting PUBACK at once. Default 100. */
  maxInflight?: number;
  /** Memory for records awaiting publication; the rest is read back from disk. Default 4 MiB. */
  memoryBytes?: number;
  clientId?: string;
  /** First reconnect delay; doubles per failed attempt. Default 1000. */
  reconnectPeriodMs?: number;
  /** Upper bound of the reconnect delay. Default 30000. */
  maxReconnectPeriodMs?: number;
  /** How long close() waits for acknowledgements before leaving the rest on disk. Default 5000. */
  closeTimeoutMs?: number;
  metrics?: DaemonMetrics;
  /** The `sink` label of the metrics. Default the sink's URI. */
  label?: string;
  /** Broker up/down notifications (for logs). */
  onStatus?: (state: 'connected' | 'disconnected', detail?: string) => void;
  /** Client factory; defaults to mqtt.js `connect`. */
  connect?: MqttConnect;
}

/** Default queue directory for a sink URI. */
export function defaultQueueDir(url: string, topic: string): string {
  const base = process.env.STATE_DIRECTORY?.split(':')[0] ?? join(process.env.XDG_STATE_HOME ?? join(homedir(), '.local', 'state'), 'streamcell');
  const name = `${url.replace(/^[a-z]+:\/\//, '')}_${topic}`.replace(/[^A-Za-z0-9._-]+/g, '_');
  return join(base, 'mqtt-queue', name);
}

/** Turns a stream id into one topic level. */
const topicLevel = (stream: string) => stream.replace(/[/+#\u0000]/g, '_') || '_';

/** A {@link Sink} publishing predictions to MQTT, at least once, through a disk queue. */
export class MqttSink implements Sink {
  readonly uri: string;
  /** The queue directory in use. */
  readonly queueDir: string;
  private readonly url: string;
  private readonly baseTopic: string;
  private readonly perStream: boolean;
  private readonly queue: DiskQueue;
  private readonly client: MqttClientLike;
  private readonly label: string;
  private readonly metrics?: DaemonMetrics;
  private readonly maxInflight: number;
  private readonly closeTimeoutMs: number;
  private readonly onStatus?: (state: 'connected' | 'disconnected', detail?: string) => void;
  private readonly timer: NodeJS.Timeout;
  /** Next q to publish. */
  private sentQ: number;
  /** Records with q below this were held back or may have been sent before: marked replay. */
  private replayBelow: number;
  /** Bumped on every (re)connect: acks of an older connection are ignored, its records resent. */
  private epoch = 0;
  private inflight = 0;
  private loading = false;
  private pumping = false;
  private wasConnected = false;
  private lastError?: string;
  private closing = false;
  private closed?: Promise<void>;
  private queueError?: string;
  private graceQ: number;
  private waiters: Array<() => void> = [];

  /** From a URI: `mqtt://host:1883/topic?queue=DIR&maxQueueBytes=N&perStream=1&client=ID`. */
  static fromUri(uri: string, options: Partial<MqttSinkOptions> = {}): MqttSink {
    const { url, topic, params } = splitMqttUri(uri);
    const max = params.get('maxQueueBytes');
    return new MqttSink({
      url,
      topic,
      queueDir: params.get('queue') ?? undefined,
      maxQueueBytes: max === null ? undefined : Number(max),
      perStream: params.get('perStream') === '1' || params.get('perStream') === 'true' || undefined,
      clientId: params.get('client') ?? undefined,
      ...options,
    });
  }

  constructor(options: MqttSinkOptions) {
    const split = options.topic === undefined ? splitMqttUri(options.url) : undefined;
    this.url = split ? split.url : options.url.replace(/\/+$/, '');
    if (!/^(mqtts?|wss?|tcp|ssl):\/\//.test(this.url)) {
      throw new InputError(`broker URL '${options.url}' has no MQTT scheme`, { field: 'url', expected: 'mqtt://host:1883' });
    }
    const topic = options.topic ?? split?.topic ?? '';
    this.perStream = options.perStream === true || topic.endsWith('/#');
    this.baseTopic = topic.endsWith('/#') ? topic.slice(0, -2) : topic;
    if (this.baseTopic.length === 0 || /[+#\u0000]/.test(this.baseTopic)) {
      throw new InputError(`invalid MQTT publish topic '${topic}'`, {
        field: 'topic',
        expected: "a topic without wildcards, or 'base/#' for one topic per stream",
      });
    }
    this.uri = `${this.url}/${topic}`;
    this.label = options.label ?? this.uri;
    this.metrics = options.metrics;
    this.maxInflight = Math.max(1, options.maxInflight ?? 100);
    this.closeTimeoutMs = options.closeTimeoutMs ?? 5000;
    this.onStatus = options.onStatus;
    this.queueDir = options.queueDir ?? defaultQueueDir(this.url, topic);
    this.queue = new DiskQueue(this.queueDir, {
      maxBytes: options.maxQueueBytes,
      segmentBytes: options.segmentBytes,
      memoryBytes: options.memoryBytes,
      onOverflow: (n) => this.metrics?.queueOverflow.inc({ sink: this.label }, n),
      onCorrupt: (n) => this.metrics?.sinkErrors.inc({ sink: this.label, code: 'corrupt-queue-record' }, n),
      onError: (e) => this.queueFailed(e),
    });
    this.sentQ = this.queue.acked;
    // Whatever a previous process left is a replay.
    this.replayBelow = this.queue.nextQ;
    this.graceQ = this.queue.nextQ;
    this.updateDepth();

    const reconnectMs = options.reconnectPeriodMs ?? 1000;
    this.client = (options.connect ?? defaultMqttConnect)(this.url, {
      clientId: options.clientId ?? `streamcell-sink-${Math.random().toString(16).slice(2, 10)}`,
      clean: true,
      reconnectPeriod: reconnectMs,
      connectTimeout: 10_000,
      outgoingStore: nullStore(),
      queueQoSZero: false,
    });
    reconnectWithBackoff(this.client, reconnectMs, Math.max(reconnectMs, options.maxReconnectPeriodMs ?? 30_000));
    this.client.on('connect', () => {
      this.restartDelivery(this.queue.nextQ);
      this.wasConnected = true;
      this.lastError = undefined;
      this.metrics?.sinkHealthy.set({ sink: this.label }, 1);
      this.onStatus?.('connected');
      this.pump();
    });
    this.client.on('close', () => {
      if (this.wasConnected) {
        this.wasConnected = false;
        this.restartDelivery(this.sentQ);
        this.metrics?.sinkErrors.inc({ sink: this.label, code: 'disconnected' });
        this.metrics?.sinkHealthy.set({ sink: this.label }, 0);
        this.onStatus?.('disconnected', this.lastError ?? 'connection closed');
      }
    });
    this.client.on('error', (err) => {
      this.lastError = err.message;
    });

    const syncMs = options.syncIntervalMs ?? 250;
    this.timer = setInterval(() => this.tick(), syncMs);
    this.timer.unref();
  }

  /**
   * Forgets what is in flight (its acks may never come) and resends from the oldest
   * unacknowledged record; records below `replayFrom` are marked replay.
   */
  private restartDelivery(replayFrom: number): void {
    this.epoch++;
    this.inflight = 0;
    this.sentQ = this.queue.acked;
    this.replayBelow = Math.max(this.replayBelow, replayFrom);
  }

  private tick(): void {
    // Connected: give the broker one interval to acknowledge before writing to disk.
    // Disconnected: nothing will be acknowledged, write everything now.
    const upTo = this.client.connected ? this.graceQ : this.queue.nextQ;
    this.graceQ = this.queue.nextQ;
    try {
      this.queue.tick(upTo);
      this.queueError = undefined;
    } catch (err) {
      this.queueFailed(err);
    }
    this.updateDepth();
    this.pump();
  }

  /** A queue write failed (full disk, I/O error): counted by code; the records stay in memory and the next tick retries. */
  private queueFailed(err: unknown): void {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    this.metrics?.sinkErrors.inc({ sink: this.label, code });
    this.lastError = `queue: ${(err as Error).message}`;
    this.queueError = code;
  }

  /** Unhealthy while the broker is unreachable or the queue directory cannot be written. */
  health(): { ok: boolean; detail?: string } {
    if (this.queueError) return { ok: false, detail: `queue directory ${this.queueDir}: ${this.queueError}; ${this.queue.depth} records held` };
    if (!this.client.connected) return { ok: false, detail: `broker not connected (${this.lastError ?? 'connecting'}); ${this.queue.depth} records queued` };
    return { ok: true };
  }

  private updateDepth(): void {
    this.metrics?.queueDepth.set({ sink: this.label }, this.queue.depth);
    if (this.queue.depth === 0 && this.waiters.length > 0) {
      for (const w of this.waiters.splice(0)) w();
    }
  }

  write(rec: PredictionRecord): void {
    if (this.closing) throw new Error(`MqttSink.write() after close() (${this.uri})`);
    let json: string;
    try {
      json = JSON.stringify(rec);
    } catch (err) {
      this.metrics?.sinkErrors.inc({ sink: this.label, code: 'unserialisable' });
      this.lastError = `unserialisable record: ${(err as Error).message}`;
      return;
    }
    try {
      this.queue.append(rec.stream, json);
    } catch (err) {
      // Disk full or similar: the record stays in memory and is retried by the next tick.
      this.queueFailed(err);
    }
    this.updateDepth();
    this.pump();
  }

  /** Publishes pending records in q order while connected and the in-flight window has room. */
  private pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.client.connected && !this.loading && this.inflight < this.maxInflight) {
        const next = this.queue.next(this.sentQ);
        if (!next) break;
        if ('load' in next) {
          this.loading = true;
          void this.queue.load(next.load).finally(() => {
            this.loading = false;
            this.updateDepth();
            this.pump();
          });
          break;
        }
        this.publish(next.entry);
        this.sentQ = next.entry.q + 1;
      }
    } finally {
      this.pumping = false;
    }
  }

  private publish(e: QueueEntry): void {
    const topic = this.perStream ? `${this.baseTopic}/${topicLevel(e.stream)}` : this.baseTopic;
    const payload = e.q < this.replayBelow ? `${e.json.slice(0, -1)},"replay":true}` : e.json;
    const epoch = this.epoch;
    this.inflight++;
    this.client.publish(topic, payload, { qos: 1 }, (err) => {
      if (epoch !== this.epoch) return; // that connection is gone; the record was or will be resent
      this.inflight--;
      if (err) {
        // With MQTT 3.1.1 this only happens while the client is shutting down. Resend
        // everything unacknowledged, in order, rather than this one record out of order.
        this.metrics?.sinkErrors.inc({ sink: this.label, code: 'publish' });
        this.lastError = err.message;
        this.restartDelivery(this.sentQ);
        setTimeout(() => this.pump(), 1000).unref();
        return;
      }
      this.queue.ack(e.q);
      this.updateDepth();
      this.pump();
    });
  }

  /** Resolves when every record written so far is acknowledged by the broker or fsync'd in the queue. */
  async flush(): Promise<void> {
    if (this.closed) return this.closed;
    await this.queue.sync();
    this.updateDepth();
  }

  /**
   * Waits up to `closeTimeoutMs` for the broker to acknowledge everything (when connected),
   * keeps the rest on disk for the next process, and disconnects.
   */
  close(): Promise<void> {
    this.closed ??= (async () => {
      this.closing = true;
      if (this.client.connected && this.queue.depth > 0) {
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, this.closeTimeoutMs);
          this.waiters.push(() => {
            clearTimeout(t);
            resolve();
          });
        });
      }
      clearInterval(this.timer);
      await this.queue.close();
      this.updateDepth();
      this.epoch++; // late acks must not touch the closed queue
      await new Promise<void>((resolve) => this.client.end(true, {}, () => resolve()));
    })();
    return this.closed;
  }
}
