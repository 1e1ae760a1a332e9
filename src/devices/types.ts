/**
 * Contracts of the device layer. Sources produce readings, the pipeline validates and
 * normalises them and steps the model, sinks receive predictions. Every implementation is
 * passed in (never imported by the pipeline), so tests and users can swap any part.
 */

/** Why a reading was dropped. Each reason is a label of `streamcell_dropped_total`. */
export type DropReason =
  | 'malformed' // not parseable as the configured format
  | 'column-count' // wrong number of fields
  | 'non-finite' // NaN / Inf where a number was expected (and the stream policy is 'skip')
  | 'out-of-range' // outside the configured [min, max]
  | 'time-backwards' // timestamp older than the previous one of that stream
  | 'overlong' // line or frame longer than the limit
  | 'crc' // binary frame with a bad checksum
  | 'unknown-stream' // stream id not accepted by the pool
  | 'rejected'; // refused by the stream pool (bad length etc.)

/** One sample from one sensor stream. */
export interface Reading {
  /** Stream (sensor) id; single-stream sources use 'default'. */
  stream: string;
  /** Values in the order of the model's channels (before normalisation). */
  values: number[];
  /** Timestamp in ms since the epoch when the data carries one, else arrival time. */
  t: number;
  /** `performance.now()` when the bytes carrying it arrived (byte-stream sources): the latency trace's first stamp. */
  rx?: number;
}

/** What a source calls: a reading, a drop with its reason, a connection state change, and (optionally) asks for backpressure. Implement {@link Source} against it to add a source. */
export interface SourceEvents {
  reading(r: Reading): void;
  drop(reason: DropReason, detail: string): void;
  /** Connection state changes (serial unplugged, broker down, …). */
  status(state: 'connected' | 'disconnected', detail?: string): void;
  /**
   * Backpressure: a promise while the consumer is behind (too many readings in flight, or a
   * sink's queue over its high-water mark); a source that can pause (file, stdin, serial)
   * stops reading until it resolves. Undefined when the consumer keeps up.
   */
  pressure?(): Promise<void> | undefined;
}

/** A source of readings: serial port, MQTT subscription, file replay, stdin, simulator. */
export interface Source {
  readonly uri: string;
  /** Starts producing; resolves once running (a source that reconnects resolves on first attempt). */
  start(events: SourceEvents): Promise<void>;
  /** Stops; resolves when no more events will be emitted. */
  stop(): Promise<void>;
  /** Resolves when a finite source (file, stdin) has delivered everything. */
  readonly done?: Promise<void>;
}

/** One prediction as sinks receive it. */
export interface PredictionRecord {
  stream: string;
  /** Per-stream sample index (0-based), contiguous unless readings were dropped. */
  seq: number;
  t: number;
  /** The reading's raw values. */
  input: number[];
  /** Model outputs by name (denormalised where the preprocessing says how). */
  outputs: Record<string, number[]>;
  /** Forecast in target units, when the model is a forecaster. */
  forecast?: number;
  /** Class label, when the model is a classifier. */
  label?: string;
  /**
   * The autoregressive rollout (daemon `--rollout K`): the next K samples predicted by feeding
   * each prediction back, in target units; `rollout[0]` equals `forecast`. K numbers when the
   * model predicts one channel; K arrays (one value per predicted channel, in channel order)
   * when it predicts several.
   */
  rollout?: number[] | number[][];
}

/** A destination of predictions (JSONL, MQTT, HTTP). Implement it to add a sink; `write` must never throw. */
export interface Sink {
  readonly uri: string;
  /** Called in order for every prediction. Must not throw for transient failures: buffer instead. */
  write(rec: PredictionRecord): void;
  /** Resolves when everything written so far is delivered (or safely queued). */
  flush(): Promise<void>;
  close(): Promise<void>;
  /** Whether the sink is delivering now; `detail` says why not (shown by `/healthz`). */
  health?(): { ok: boolean; detail?: string };
  /** Records accepted but not yet delivered (for backpressure); a failing sink may report 0 and drop instead. */
  backlog?(): number;
}
