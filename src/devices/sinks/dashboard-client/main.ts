/**
 * The dashboard page's script (browser side). Compiled by `tsconfig.dashboard.json` (DOM
 * types, no Node types) to a plain ES2019 script, `dist/browser/devices/sinks/dashboard-client/main.js`,
 * which the HTTP sink reads at start and serves, after the shared chart builders
 * (`dist/browser/data/plot.js` as the global `streamcellPlot`), as `/assets/dashboard.js` (a same-origin script,
 * so the page's Content-Security-Policy needs no inline-script hash). No bundler, no imports:
 * uPlot is the global that `/assets/uplot.js` defines, `streamcellPlot` the shared SVG charts
 * (drops sparkline, latency histogram: the same builders as the HTML reports).
 *
 * What it draws, from the `/events` stream (`snapshot`, then `prediction` records and `status`
 * every second):
 * - `#chart`: the selected stream's first input channel and its prediction (forecast in target
 *   units, or the predicted class as a step line). A stream's latest rollout (`rollout`, daemon
 *   `--rollout K`) is drawn ahead of its signal, at samples seq + 1 … seq + K, fading with the
 *   steps ahead; `#chart`'s `data-rollout-*` attributes say what was drawn.
 * - `#channels`: one small chart per input channel (shared x = seq). Each `.channel` element
 *   carries what it plots as `data-seq` and `data-values` (comma lists, the last
 *   {@link EXPORT_POINTS} points) so tests can compare them with another sink.
 * - `#probs`: classifiers' class probabilities (the first output, normalised) as a stacked band.
 * - `#streams`: a sortable table of streams (from `status.streams`, else from the records seen);
 *   clicking a row selects the stream.
 * - `#panels`: drops by reason (with a sparkline), latency p50/p99 and histogram, sinks, sources,
 *   backend, model, uptime, checkpoint age — from `status` events, hidden until one arrives.
 * - `#status`: "live" only while events arrive (within {@link LIVE_MS}); on a lost connection the
 *   page closes the EventSource and reopens it with exponential backoff (1, 2, 4 … 30 s),
 *   "disconnected, retrying in Ns" meanwhile.
 * Buffers per stream hold the last N points; charts redraw at most once per animation frame.
 */

/**
 * The shared SVG chart builders (src/data/plot.ts, the same the HTML reports use), compiled by
 * the same build and prepended to this script as the global `streamcellPlot`.
 */
declare const streamcellPlot: typeof import('../../../data/plot.js');

/** The part of uPlot's API this page uses (the global from uPlot.iife.min.js). */
interface UPlotChart {
  ctx: CanvasRenderingContext2D;
  data: Array<Array<number | null>>;
  valToPos(v: number, scale: string, canvasPixels: boolean): number;
  setData(data: Array<Array<number | null>>): void;
  setSize(size: { width: number; height: number }): void;
  destroy(): void;
}
interface UPlotStatic {
  new (opts: object, data: Array<Array<number | null>>, target: HTMLElement): UPlotChart;
  paths?: { stepped?: (opts: { align: number }) => unknown };
}
declare const uPlot: UPlotStatic;

/** A prediction record as the `/events` stream sends it (only the fields used here). */
interface PredictionMessage {
  stream: string;
  seq: number;
  t?: number;
  input?: number[];
  forecast?: number;
  label?: string;
  outputs?: Record<string, number[]>;
  /** K predicted samples; K rows of one value per predicted channel for a multivariate model. */
  rollout?: Array<number | number[]>;
}

/** One row of `status.streams`. */
interface StreamRow {
  id: string;
  rate?: number | null;
  lastSeenMs?: number | null;
  drops?: number | null;
  latencyP99Ms?: number | null;
  last?: number | string | null;
}

/** The `status` event (every field optional: the page tolerates what a daemon cannot say). */
interface StatusMessage {
  t?: number;
  uptimeS?: number | null;
  model?: { sha256?: string | null; bundleVersion?: string | null; name?: string | null; channels?: string[] | null; target?: string | null } | null;
  backend?: { name?: string | null; version?: string | null; how?: string | null } | null;
  sources?: Array<{ name?: string; connected?: boolean; reconnects?: number }> | null;
  drops?: Record<string, number> | null;
  latencyMs?: { p50?: number | null; p99?: number | null; buckets?: Array<[number, number]> | null } | null;
  sinks?: Array<{ uri?: string; backlog?: number; errors?: number }> | null;
  checkpoint?: { file?: string | null; ageS?: number | null } | null;
  predictions?: number | null;
  streams?: StreamRow[] | null;
}

type Kind = 'forecast' | 'class' | null;

interface StreamBuffer {
  name: string;
  x: number[];
  /** One array per input channel, aligned with `x`. */
  chans: Array<Array<number | null>>;
  pred: Array<number | null>;
  /** Normalised class probabilities per point (classifiers), aligned with `x`. */
  probs: Array<number[] | null>;
  kind: Kind;
  lastSeq: number | null;
  count: number;
  last: PredictionMessage | null;
  lastSeenMs: number | null;
  /** `count` at the last few one-second ticks (for the fallback rate). */
  ticks: number[];
  classNames: Record<number, string>;
  /** The latest rollout (its first value per step) and the seq it starts after. */
  ahead: number[];
  aheadFrom: number;
}

/** Rollout colour (RGB); each step's alpha falls linearly from 1 to ALPHA_FAR at the last. */
const AHEAD_RGB = '255,127,14';
const ALPHA_FAR = 0.15;
/** "live" while the last event is younger than this. */
const LIVE_MS = 3000;
/** A connection that has sent `status` events and then nothing for this long is reopened. */
const STALL_MS = 5000;
const BACKOFF_MAX_S = 30;
/** Stream table rows at most (the server sends at most as many). */
const MAX_ROWS = 256;
/** Points per channel exposed as `data-seq` / `data-values`. */
const EXPORT_POINTS = 200;
const CHANNEL_COLOURS = ['#1f77b4', '#2ca02c', '#9467bd', '#8c564b', '#e377c2', '#17becf', '#bcbd22', '#7f7f7f'];
const CLASS_COLOURS = ['#4e79a7', '#f28e2b', '#59a14f', '#e15759', '#76b7b2', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac'];

(function () {
  'use strict';
  const maxPoints = Number(document.body.getAttribute('data-points')) || 500;
  const token = new URLSearchParams(location.search).get('token');
  const eventsUrl = '/events' + (token ? '?token=' + encodeURIComponent(token) : '');
  const $ = (id: string) => document.getElementById(id) as HTMLElement;
  const picker = $('picker');
  const select = $('stream') as HTMLSelectElement;
  const statusEl = $('status');
  const chartEl = $('chart');
  const channelsEl = $('channels');
  const probsEl = $('probs');
  const tableEl = $('streams') as HTMLTableElement;
  const panelsEl = $('panels');
  const streams = new Map<string, StreamBuffer>();
  let selected: string | null = null;
  let plot: UPlotChart | null = null;
  let plotFor: string | null = null;
  let plotKind: Kind = null;
  let chanPlots: UPlotChart[] = [];
  let chanFor: string | null = null;
  let probPlot: UPlotChart | null = null;
  let probFor: string | null = null;
  let probClasses = 0;
  let dirty = false;
  /** From the status event: the input channels' names and the forecaster's target channel (drawn with the forecast). */
  let channelNames: string[] | null = null;
  let targetChannel = 0;
  const channelName = (c: number) => (channelNames && channelNames[c] !== undefined ? channelNames[c]! : 'ch ' + c);
  /** Makes the next render build the charts again (new names, another target channel). */
  function rebuildCharts(): void {
    plotFor = null;
    chanFor = null;
  }
  let exportDirty = false;
  let rateCount = 0;
  let rateAt = performance.now();
  let rate = 0;
  // Connection state.
  let es: EventSource | null = null;
  let opened = false;
  let lastEventAt = 0;
  let statusSeen = false;
  let backoffS = 1;
  let retryAt = 0;
  let retryTimer: number | undefined;
  // Status panels.
  let lastStatus: StatusMessage | null = null;
  let lastStatusAt = 0;
  const dropHistory: number[] = [];
  let prevDropTotal: number | null = null;
  let sortKey: keyof StreamRow = 'id';
  let sortDir = 1;

  function finite(v: unknown): number | null {
    return typeof v === 'number' && isFinite(v) ? v : null;
  }

  function buffer(name: string): StreamBuffer {
    let b = streams.get(name);
    if (b) return b;
    b = {
      name,
      x: [],
      chans: [],
      pred: [],
      probs: [],
      kind: null,
      lastSeq: null,
      count: 0,
      last: null,
      lastSeenMs: null,
      ticks: [],
      classNames: {},
      ahead: [],
      aheadFrom: 0,
    };
    streams.set(name, b);
    const opt = document.createElement('option');
    opt.value = name;
    opt.textContent = name;
    select.appendChild(opt);
    picker.hidden = streams.size < 2;
    if (selected === null) {
      selected = name;
      select.value = name;
    }
    return b;
  }

  /** The first output's scores as probabilities (normalised when they do not sum to 1). */
  function probabilities(rec: PredictionMessage): number[] | null {
    if (!rec.outputs) return null;
    const keys = Object.keys(rec.outputs);
    const scores = keys.length ? rec.outputs[keys[0]!] : null;
    if (!scores || !scores.length) return null;
    const p = scores.map((v) => Math.max(0, finite(v) ?? 0));
    const sum = p.reduce((a, v) => a + v, 0);
    return sum > 0 ? p.map((v) => v / sum) : null;
  }

  // Forecasters: the forecast in target units. Classifiers: the index of the largest score
  // of the first output, i.e. the predicted class.
  function prediction(rec: PredictionMessage): { kind: Kind; v: number | null; name?: string; probs?: number[] } {
    if (typeof rec.forecast === 'number') return { kind: 'forecast', v: finite(rec.forecast) };
    if (typeof rec.label === 'string' && rec.outputs) {
      const probs = probabilities(rec);
      if (probs) {
        let best = 0;
        for (let i = 1; i < probs.length; i++) if (probs[i]! > probs[best]!) best = i;
        return { kind: 'class', v: best, name: rec.label, probs };
      }
    }
    return { kind: null, v: null };
  }

  function clear(b: StreamBuffer): void {
    b.x.length = 0;
    b.chans = [];
    b.pred.length = 0;
    b.probs.length = 0;
    b.ahead.length = 0;
  }

  function push(rec: PredictionMessage | null): void {
    if (!rec || typeof rec.stream !== 'string' || typeof rec.seq !== 'number') return;
    const b = buffer(rec.stream);
    const p = prediction(rec);
    if (p.kind && b.kind !== p.kind) b.kind = p.kind;
    if (p.kind === 'class' && p.v !== null && p.name !== undefined) b.classNames[p.v] = p.name;
    // uPlot needs ascending x: a stream that restarted its numbering starts a new trace.
    if (b.x.length && rec.seq <= b.x[b.x.length - 1]!) clear(b);
    const input = Array.isArray(rec.input) ? rec.input : [];
    while (b.chans.length < input.length) b.chans.push(b.x.map(() => null));
    b.x.push(rec.seq);
    for (let c = 0; c < b.chans.length; c++) b.chans[c]!.push(finite(input[c]));
    b.pred.push(p.v);
    b.probs.push(p.probs || null);
    if (b.x.length > maxPoints) {
      b.x.shift();
      for (const ch of b.chans) ch.shift();
      b.pred.shift();
      b.probs.shift();
    }
    if (rec.rollout && rec.rollout.length) {
      b.ahead = rec.rollout.map((r) => finite(typeof r === 'number' ? r : r[0]) ?? NaN);
      b.aheadFrom = rec.seq;
    }
    b.lastSeq = rec.seq;
    b.count++;
    b.last = rec;
    b.lastSeenMs = Date.now();
    if (rec.stream === selected) dirty = true;
  }

  function width(el: HTMLElement, min: number): number {
    return Math.max(min, Math.floor(el.clientWidth));
  }

  /**
   * The chart's data: the signal, the prediction and the rollout series, whose x positions run
   * past the last sample (the rollout series only sets the y range; `drawAhead` paints it).
   */
  function chartData(b: StreamBuffer): Array<Array<number | null>> {
    const x = b.x.slice();
    const input = b.chans.length ? (b.chans[targetChannel] ?? b.chans[0]!).slice() : x.map(() => null);
    const pred = b.pred.slice();
    const ahead: Array<number | null> = x.map(() => null);
    const last = x.length ? x[x.length - 1]! : -Infinity;
    for (let j = 0; j < b.ahead.length; j++) {
      const at = b.aheadFrom + 1 + j;
      const v = isFinite(b.ahead[j]!) ? b.ahead[j]! : null;
      if (at > last) {
        x.push(at);
        input.push(null);
        pred.push(null);
        ahead.push(v);
      } else {
        const i = x.lastIndexOf(at);
        if (i >= 0) ahead[i] = v;
      }
    }
    return [x, input, pred, ahead];
  }

  /** Paints the rollout series: segments and dots fading with the steps ahead; records what it drew on `#chart`. */
  function drawAhead(u: UPlotChart): void {
    const b = plotFor === null ? undefined : streams.get(plotFor);
    const xs = u.data[0]!;
    const ys = u.data[3]!;
    const dpr = window.devicePixelRatio || 1;
    const ctx = u.ctx;
    let drawn = 0;
    let aMax = 0;
    let aMin = 1;
    let x0 = Infinity;
    let x1 = -Infinity;
    let prev: [number, number] | null = null;
    const k = b ? b.ahead.length : 0;
    ctx.save();
    for (let i = 0; i < xs.length && b; i++) {
      const v = ys[i];
      if (v === null || v === undefined) continue;
      const j = xs[i]! - b.aheadFrom - 1;
      const alpha = k > 1 ? 1 - ((1 - ALPHA_FAR) * j) / (k - 1) : 1;
      const px = u.valToPos(xs[i]!, 'x', true);
      const py = u.valToPos(v, 'y', true);
      ctx.strokeStyle = ctx.fillStyle = 'rgba(' + AHEAD_RGB + ',' + alpha.toFixed(3) + ')';
      ctx.lineWidth = 2 * dpr;
      if (prev) {
        ctx.beginPath();
        ctx.moveTo(prev[0], prev[1]);
        ctx.lineTo(px, py);
        ctx.stroke();
      }
      ctx.beginPath();
      ctx.arc(px, py, 2.5 * dpr, 0, 2 * Math.PI);
      ctx.fill();
      prev = [px, py];
      drawn++;
      aMax = Math.max(aMax, alpha);
      aMin = Math.min(aMin, alpha);
      x0 = Math.min(x0, px);
      x1 = Math.max(x1, px);
    }
    ctx.restore();
    const lastX = b && b.x.length ? u.valToPos(b.x[b.x.length - 1]!, 'x', true) : NaN;
    chartEl.setAttribute('data-rollout-points', String(drawn));
    chartEl.setAttribute('data-rollout-alpha', drawn ? aMax.toFixed(3) + ',' + aMin.toFixed(3) : '');
    chartEl.setAttribute('data-rollout-x', drawn ? Math.round(lastX) + ',' + Math.round(x0) + ',' + Math.round(x1) : '');
  }

  function makePlot(b: StreamBuffer): void {
    if (plot) {
      plot.destroy();
      plot = null;
    }
    chartEl.textContent = '';
    const cls = b.kind === 'class';
    const predSeries: Record<string, unknown> = {
      label: cls ? 'predicted class' : 'forecast',
      stroke: '#d62728',
      width: 2,
      scale: cls ? 'cls' : 'y',
      spanGaps: false,
    };
    if (cls && uPlot.paths && uPlot.paths.stepped) predSeries.paths = uPlot.paths.stepped({ align: 1 });
    const inputLabel = b.chans.length > 1 || channelNames ? channelName(targetChannel) : 'input';
    const axes: object[] = [{ label: 'sample' }, { scale: 'y', label: inputLabel }];
    if (cls) {
      axes.push({
        scale: 'cls',
        side: 1,
        label: 'class',
        grid: { show: false },
        incrs: [1, 2, 5, 10, 20, 50, 100],
        values: (_u: unknown, splits: number[]) => splits.map((v) => (b.classNames[v] !== undefined ? b.classNames[v] : v)),
      });
    }
    const scales: Record<string, object> = { x: { time: false } };
    if (cls) scales.cls = { range: (_u: unknown, min: number, max: number) => [Math.min(0, min) - 0.5, Math.max(1, max) + 0.5] };
    // Before the constructor: its first draw runs `drawAhead`, which reads it.
    plotFor = b.name;
    plot = new uPlot(
      {
        width: width(chartEl, 240),
        height: window.innerWidth < 600 ? 260 : 360,
        scales,
        series: [
          { label: 'sample' },
          { label: inputLabel, stroke: '#1f77b4', width: 1.5, scale: 'y' },
          predSeries,
          { label: 'rollout', stroke: 'rgb(' + AHEAD_RGB + ')', scale: 'y', paths: () => null, points: { show: false } },
        ],
        axes,
        hooks: { draw: [drawAhead] },
      },
      chartData(b),
      chartEl,
    );
    plotKind = b.kind;
  }

  /** Small multiples: one chart per input channel of the selected stream. */
  function makeChannelPlots(b: StreamBuffer): void {
    for (const p of chanPlots) p.destroy();
    chanPlots = [];
    channelsEl.textContent = '';
    chanFor = b.name;
    channelsEl.setAttribute('data-stream', b.name);
    channelsEl.setAttribute('data-count', String(b.chans.length));
    channelsEl.hidden = b.chans.length < 2;
    // All the boxes first, so that each chart takes its grid cell's final width.
    const divs: HTMLElement[] = [];
    for (let c = 0; c < b.chans.length; c++) {
      const div = document.createElement('div');
      div.className = 'channel';
      div.setAttribute('data-channel', String(c));
      div.setAttribute('data-name', channelName(c));
      div.title = channelName(c);
      channelsEl.appendChild(div);
      divs.push(div);
    }
    divs.forEach((div, c) => {
      chanPlots.push(
        new uPlot(
          {
            width: width(div, 200),
            height: 150,
            legend: { show: false },
            scales: { x: { time: false } },
            series: [{ label: 'sample' }, { label: channelName(c), stroke: CHANNEL_COLOURS[c % CHANNEL_COLOURS.length], width: 1.25 }],
            axes: [{ size: 30 }, { label: channelName(c), size: 50 }],
          },
          [b.x.slice(), b.chans[c]!.slice()],
          div,
        ),
      );
    });
  }

  function probData(b: StreamBuffer, n: number): Array<Array<number | null>> {
    // Cumulative sums, top band first: each series is filled down to 0 and painted over by the next.
    const out: Array<Array<number | null>> = [b.x.slice()];
    for (let k = n; k >= 1; k--) {
      out.push(
        b.probs.map((p) => {
          if (!p) return null;
          let s = 0;
          for (let i = 0; i < k && i < p.length; i++) s += p[i]!;
          return s;
        }),
      );
    }
    return out;
  }

  function classCount(b: StreamBuffer): number {
    let n = 0;
    for (const p of b.probs) if (p && p.length > n) n = p.length;
    return n;
  }

  function makeProbPlot(b: StreamBuffer, n: number): void {
    if (probPlot) probPlot.destroy();
    probPlot = null;
    probsEl.textContent = '';
    probFor = b.name;
    probClasses = n;
    probsEl.hidden = !n;
    probsEl.setAttribute('data-classes', String(n));
    if (!n) return;
    const series: object[] = [{ label: 'sample' }];
    for (let k = n; k >= 1; k--) {
      const c = CLASS_COLOURS[(k - 1) % CLASS_COLOURS.length]!;
      const name = b.classNames[k - 1] !== undefined ? b.classNames[k - 1]! : 'class ' + (k - 1);
      series.push({ label: name, stroke: c, fill: c, width: 0, value: (_u: unknown, v: number | null) => (v === null ? '–' : v.toFixed(2)) });
    }
    probPlot = new uPlot(
      {
        width: width(probsEl, 240),
        height: 140,
        scales: { x: { time: false }, y: { range: [0, 1] } },
        series,
        axes: [{ size: 30 }, { label: 'p(class)', size: 50 }],
      },
      probData(b, n),
      probsEl,
    );
  }

  function render(): void {
    if (dirty) {
      dirty = false;
      const b = selected === null ? undefined : streams.get(selected);
      if (b && b.x.length) {
        if (!plot || plotFor !== selected || plotKind !== b.kind) makePlot(b);
        else plot.setData(chartData(b));
        if (chanFor !== b.name || chanPlots.length !== b.chans.length) makeChannelPlots(b);
        else for (let c = 0; c < chanPlots.length; c++) chanPlots[c]!.setData([b.x.slice(), b.chans[c]!.slice()]);
        const n = b.kind === 'class' ? classCount(b) : 0;
        if (probFor !== b.name || probClasses !== n) makeProbPlot(b, n);
        else if (probPlot) probPlot.setData(probData(b, n));
        exportDirty = true;
      }
    }
    requestAnimationFrame(render);
  }

  /** What the small charts plot, as DOM attributes (for tests and for copy-paste). */
  function exportChannels(): void {
    if (!exportDirty) return;
    exportDirty = false;
    const b = chanFor === null ? undefined : streams.get(chanFor);
    if (!b) return;
    const from = Math.max(0, b.x.length - EXPORT_POINTS);
    const seqs = b.x.slice(from).join(',');
    const divs = channelsEl.querySelectorAll('.channel');
    for (let c = 0; c < divs.length && c < b.chans.length; c++) {
      const div = divs[c] as HTMLElement;
      div.setAttribute('data-seq', seqs);
      div.setAttribute(
        'data-values',
        b.chans[c]!.slice(from)
          .map((v) => (v === null ? '' : String(v)))
          .join(','),
      );
    }
  }

  // ---- Connection ---------------------------------------------------------------------------

  function isLive(): boolean {
    return es !== null && opened && performance.now() - lastEventAt < LIVE_MS;
  }

  function alive(): void {
    lastEventAt = performance.now();
    backoffS = 1;
    if (statusEl.getAttribute('data-state') !== 'live') status();
  }

  function disconnect(): void {
    if (es) es.close();
    es = null;
    opened = false;
    if (retryTimer !== undefined) return;
    const wait = backoffS;
    backoffS = Math.min(BACKOFF_MAX_S, backoffS * 2);
    retryAt = performance.now() + wait * 1000;
    retryTimer = window.setTimeout(() => {
      retryTimer = undefined;
      connect();
    }, wait * 1000);
    status();
  }

  function connect(): void {
    statusSeen = false;
    opened = false;
    const src = new EventSource(eventsUrl);
    es = src;
    src.addEventListener('open', () => {
      if (es !== src) return;
      opened = true;
      status();
    });
    src.addEventListener('error', () => {
      if (es === src) disconnect();
    });
    // Sent first on every (re)connection: it replaces what the page holds.
    src.addEventListener('snapshot', (ev) => {
      if (es !== src) return;
      alive();
      const snap = JSON.parse((ev as MessageEvent<string>).data) as { streams?: Record<string, PredictionMessage[]> };
      streams.forEach((b) => {
        clear(b);
        b.ticks.length = 0;
      });
      const all = snap.streams || {};
      for (const name of Object.keys(all)) for (const rec of all[name]!) push(rec);
      const b = selected === null ? undefined : streams.get(selected);
      rateCount = b ? b.count : 0;
      rateAt = performance.now();
      dirty = true;
    });
    src.addEventListener('prediction', (ev) => {
      if (es !== src) return;
      alive();
      push(JSON.parse((ev as MessageEvent<string>).data) as PredictionMessage);
    });
    src.addEventListener('status', (ev) => {
      if (es !== src) return;
      alive();
      statusSeen = true;
      let s: StatusMessage | null = null;
      try {
        s = JSON.parse((ev as MessageEvent<string>).data) as StatusMessage;
      } catch {
        s = null;
      }
      if (s && typeof s === 'object') onStatus(s);
    });
  }

  // ---- Status line --------------------------------------------------------------------------

  function status(): void {
    const now = performance.now();
    const b = selected === null ? undefined : streams.get(selected);
    const count = b ? b.count : 0;
    if (now - rateAt >= 500) {
      rate = (count - rateCount) / ((now - rateAt) / 1000);
      rateCount = count;
      rateAt = now;
    }
    const live = isLive();
    let state: string;
    let text: string;
    if (live) {
      state = 'live';
      text = 'live';
    } else if (es && opened) {
      state = 'idle';
      text = lastEventAt ? 'connected, no events for ' + Math.round((now - lastEventAt) / 1000) + ' s' : 'connected';
    } else if (es) {
      state = 'connecting';
      text = 'connecting';
    } else {
      state = 'down';
      text = 'disconnected, retrying in ' + Math.max(0, Math.ceil((retryAt - now) / 1000)) + ' s';
    }
    const parts = [text];
    if (b) {
      parts.push('stream ' + selected);
      parts.push(rate.toFixed(1) + ' samples/s');
      parts.push('last seq ' + b.lastSeq);
      if (b.last && typeof b.last.forecast === 'number') parts.push('forecast ' + b.last.forecast.toPrecision(4));
      if (b.last && typeof b.last.label === 'string') parts.push('label ' + b.last.label);
    } else if (live || (es && opened)) {
      parts.push('waiting for predictions');
    }
    if (streams.size > 1) parts.push(streams.size + ' streams');
    statusEl.textContent = parts.join(' \u00b7 ');
    statusEl.className = state === 'live' ? '' : state === 'down' ? 'down' : 'idle';
    statusEl.setAttribute('data-state', state);
  }

  // ---- Stream table -------------------------------------------------------------------------

  function rows(): StreamRow[] {
    const fromStatus = lastStatus && Array.isArray(lastStatus.streams) && performance.now() - lastStatusAt < 5000 ? lastStatus.streams : null;
    const local = new Map<string, StreamRow>();
    streams.forEach((b) => {
      const t = b.ticks;
      const r = t.length > 1 ? (b.count - t[0]!) / (t.length - 1) : null;
      const last = b.last ? (typeof b.last.forecast === 'number' ? b.last.forecast : typeof b.last.label === 'string' ? b.last.label : null) : null;
      local.set(b.name, { id: b.name, rate: r, lastSeenMs: b.lastSeenMs, drops: null, latencyP99Ms: null, last });
    });
    if (!fromStatus) return Array.from(local.values());
    const out: StreamRow[] = [];
    for (const s of fromStatus) {
      if (!s || typeof s.id !== 'string') continue;
      const l = local.get(s.id);
      out.push({
        id: s.id,
        rate: finite(s.rate) ?? (l ? l.rate : null),
        lastSeenMs: finite(s.lastSeenMs) ?? (l ? l.lastSeenMs : null),
        drops: finite(s.drops),
        latencyP99Ms: finite(s.latencyP99Ms),
        last: s.last !== undefined && s.last !== null ? s.last : l ? l.last : null,
      });
    }
    return out;
  }

  function fmt(v: number | null | undefined, digits: number): string {
    return typeof v === 'number' && isFinite(v) ? (Math.abs(v) >= 1000 ? v.toFixed(0) : v.toPrecision(digits)) : '–';
  }

  function ago(ms: number | null | undefined): string {
    if (typeof ms !== 'number' || !isFinite(ms)) return '–';
    const s = Math.max(0, (Date.now() - ms) / 1000);
    return s < 1 ? 'now' : s < 120 ? s.toFixed(0) + ' s ago' : (s / 60).toFixed(0) + ' min ago';
  }

  function compare(a: StreamRow, b: StreamRow): number {
    const va = a[sortKey];
    const vb = b[sortKey];
    const na = va === null || va === undefined;
    const nb = vb === null || vb === undefined;
    if (na || nb) return na === nb ? 0 : na ? 1 : -1; // missing values last, whatever the direction
    if (typeof va === 'number' && typeof vb === 'number') return sortDir * (va - vb);
    return sortDir * String(va).localeCompare(String(vb), undefined, { numeric: true });
  }

  function renderTable(): void {
    const list = rows().slice(0, MAX_ROWS);
    list.sort((a, b) => compare(a, b) || a.id.localeCompare(b.id, undefined, { numeric: true }));
    tableEl.hidden = list.length === 0;
    const body = tableEl.tBodies[0]!;
    const frag = document.createDocumentFragment();
    for (const r of list) {
      const tr = document.createElement('tr');
      tr.setAttribute('data-stream', r.id);
      if (r.id === selected) tr.className = 'selected';
      const cells = [
        r.id,
        r.rate === null || r.rate === undefined ? '–' : r.rate.toFixed(1),
        ago(r.lastSeenMs),
        r.drops === null || r.drops === undefined ? '–' : String(r.drops),
        fmt(r.latencyP99Ms, 3),
        typeof r.last === 'number' ? r.last.toPrecision(4) : r.last === null || r.last === undefined ? '–' : String(r.last),
      ];
      const keys = ['id', 'rate', 'lastSeenMs', 'drops', 'latencyP99Ms', 'last'];
      cells.forEach((text, i) => {
        const td = document.createElement('td');
        td.textContent = text;
        td.setAttribute('data-key', keys[i]!);
        tr.appendChild(td);
      });
      frag.appendChild(tr);
    }
    body.textContent = '';
    body.appendChild(frag);
    tableEl.setAttribute('data-sort', sortKey + (sortDir > 0 ? ' asc' : ' desc'));
    const ths = tableEl.tHead ? tableEl.tHead.querySelectorAll('th') : [];
    for (let i = 0; i < ths.length; i++) {
      const th = ths[i] as HTMLElement;
      th.setAttribute('aria-sort', th.getAttribute('data-key') === sortKey ? (sortDir > 0 ? 'ascending' : 'descending') : 'none');
    }
  }

  function choose(name: string): void {
    if (!streams.has(name) && !(lastStatus && lastStatus.streams && lastStatus.streams.some((s) => s && s.id === name))) return;
    buffer(name);
    selected = name;
    select.value = name;
    const b = streams.get(name);
    rateCount = b ? b.count : 0;
    rateAt = performance.now();
    dirty = true;
    renderTable();
    status();
  }

  // ---- Panels -------------------------------------------------------------------------------

  function setText(id: string, text: string): void {
    const el = document.getElementById(id);
    if (el && el.textContent !== text) el.textContent = text;
  }

  function duration(s: number | null | undefined): string {
    if (typeof s !== 'number' || !isFinite(s)) return '–';
    if (s < 120) return s.toFixed(0) + ' s';
    if (s < 7200) return (s / 60).toFixed(0) + ' min';
    if (s < 172800) return (s / 3600).toFixed(1) + ' h';
    return (s / 86400).toFixed(1) + ' d';
  }

  /** A shared SVG chart (src/data/plot.ts) into a panel element, sized to the element. */
  function svgInto(id: string, draw: (box: { width: number; height: number; font: number; legend: boolean }) => string): void {
    const el = document.getElementById(id);
    if (!el) return;
    const box = { width: Math.max(120, el.clientWidth), height: Math.max(40, el.clientHeight), font: 10, legend: false };
    el.innerHTML = draw(box);
  }

  function drawSparkline(values: number[]): void {
    const n = values.length;
    svgInto('drops-spark', (box) =>
      streamcellPlot.linePlot(
        [{ name: 'drops/s', color: '#d62728', x: values.map((_, i) => i - n + 1), y: values }],
        'drops per second',
        'drops/s',
        `last ${n} s`,
        { ...box, yMin: 0 },
      ),
    );
  }

  function drawHistogram(buckets: Array<[number, number]>): void {
    const cols: Array<{ label: string; value: number }> = [];
    let prev = 0;
    for (const bk of buckets) {
      if (!Array.isArray(bk)) continue;
      const n = finite(bk[1]) ?? prev;
      const le = finite(bk[0]);
      cols.push({ label: le === null ? '+∞' : String(le), value: Math.max(0, n - prev) });
      prev = n;
    }
    if (!cols.length) return;
    svgInto('latency-hist', (box) => streamcellPlot.columnPlot(cols, 'line → prediction latency histogram', 'predictions', box));
  }

  function listInto(id: string, items: Array<{ key: string; attr: string; cells: string[] }>): void {
    const el = document.getElementById(id);
    if (!el) return;
    const body = el instanceof HTMLTableElement ? el.tBodies[0]! : el;
    const frag = document.createDocumentFragment();
    for (const it of items) {
      const tr = document.createElement('tr');
      tr.setAttribute(it.attr, it.key);
      for (const c of it.cells) {
        const td = document.createElement('td');
        td.textContent = c;
        tr.appendChild(td);
      }
      frag.appendChild(tr);
    }
    body.textContent = '';
    body.appendChild(frag);
  }

  function onStatus(s: StatusMessage): void {
    const names = s.model && Array.isArray(s.model.channels) ? s.model.channels : null;
    const target = names && s.model && typeof s.model.target === 'string' ? Math.max(0, names.indexOf(s.model.target)) : 0;
    if (target !== targetChannel || (names || []).join() !== (channelNames || []).join()) {
      // The forecast is drawn with its own channel, and the charts name the channels: rebuild them.
      targetChannel = target;
      channelNames = names;
      dirty = true;
      rebuildCharts();
    }
    lastStatus = s;
    lastStatusAt = performance.now();
    panelsEl.hidden = false;
    // Summary.
    const m = s.model || {};
    const sha = typeof m.sha256 === 'string' ? m.sha256 : '';
    setText('model', [m.name, sha ? sha.slice(0, 12) : null, m.bundleVersion ? 'v' + m.bundleVersion : null].filter(Boolean).join(' · ') || '–');
    const modelEl = $('model');
    modelEl.setAttribute('data-sha256', sha);
    modelEl.title = sha;
    const be = s.backend || {};
    setText('backend', [be.name, be.version, be.how ? '(' + be.how + ')' : null].filter(Boolean).join(' ') || '–');
    setText('uptime', duration(s.uptimeS));
    $('uptime').setAttribute('data-s', String(finite(s.uptimeS) ?? ''));
    const cp = s.checkpoint || {};
    setText('checkpoint', cp.file ? duration(cp.ageS) + (typeof cp.ageS === 'number' ? ' ago' : '') : 'off');
    $('checkpoint').title = cp.file || '';
    setText('predictions', typeof s.predictions === 'number' ? String(s.predictions) : '–');
    // Drops by reason, and drops per status interval as a sparkline.
    const drops = s.drops && typeof s.drops === 'object' ? s.drops : {};
    const reasons = Object.keys(drops).sort();
    let total = 0;
    const ul = $('drops-list');
    ul.textContent = '';
    for (const r of reasons) {
      const n = finite(drops[r]) ?? 0;
      total += n;
      const li = document.createElement('li');
      li.setAttribute('data-reason', r);
      li.setAttribute('data-count', String(n));
      const name = document.createElement('span');
      name.textContent = r;
      const num = document.createElement('b');
      num.textContent = String(n);
      li.appendChild(name);
      li.appendChild(num);
      ul.appendChild(li);
    }
    if (!reasons.length) {
      const li = document.createElement('li');
      li.className = 'none';
      li.textContent = 'none';
      ul.appendChild(li);
    }
    $('drops').setAttribute('data-total', String(total));
    setText('drops-total', String(total));
    dropHistory.push(prevDropTotal === null ? 0 : Math.max(0, total - prevDropTotal));
    prevDropTotal = total;
    if (dropHistory.length > 120) dropHistory.shift();
    drawSparkline(dropHistory);
    // Latency.
    const lat = s.latencyMs || {};
    setText('lat-p50', fmt(lat.p50, 3));
    setText('lat-p99', fmt(lat.p99, 3));
    drawHistogram(Array.isArray(lat.buckets) ? lat.buckets : []);
    // Sinks and sources.
    listInto(
      'sinks',
      (Array.isArray(s.sinks) ? s.sinks : []).map((k) => ({
        key: String(k.uri),
        attr: 'data-uri',
        cells: [String(k.uri), String(finite(k.backlog) ?? '–'), String(finite(k.errors) ?? '–')],
      })),
    );
    listInto(
      'sources',
      (Array.isArray(s.sources) ? s.sources : []).map((k) => ({
        key: String(k.name),
        attr: 'data-source',
        cells: [String(k.name), k.connected === true ? 'yes' : k.connected === false ? 'no' : '–', String(finite(k.reconnects) ?? '–')],
      })),
    );
  }

  // ---- Wiring -------------------------------------------------------------------------------

  select.addEventListener('change', () => choose(select.value));
  tableEl.addEventListener('click', (ev) => {
    const target = ev.target as HTMLElement;
    const th = target.closest('th');
    if (th && th.getAttribute('data-key')) {
      const key = th.getAttribute('data-key') as keyof StreamRow;
      if (key === sortKey) sortDir = -sortDir;
      else {
        sortKey = key;
        sortDir = key === 'id' ? 1 : -1;
      }
      renderTable();
      return;
    }
    const tr = target.closest('tr[data-stream]');
    if (tr) choose(tr.getAttribute('data-stream')!);
  });
  window.addEventListener('resize', () => {
    if (plot) plot.setSize({ width: width(chartEl, 240), height: window.innerWidth < 600 ? 260 : 360 });
    const divs = channelsEl.querySelectorAll('.channel');
    chanPlots.forEach((p, i) => p.setSize({ width: width(divs[i] as HTMLElement, 200), height: 150 }));
    if (probPlot) probPlot.setSize({ width: width(probsEl, 240), height: 140 });
    drawSparkline(dropHistory);
    if (lastStatus && lastStatus.latencyMs && Array.isArray(lastStatus.latencyMs.buckets)) drawHistogram(lastStatus.latencyMs.buckets);
  });

  function tick(): void {
    streams.forEach((b) => {
      b.ticks.push(b.count);
      if (b.ticks.length > 11) b.ticks.shift();
    });
    // A server that sends `status` every second and then nothing is gone, whatever TCP says.
    if (es && statusSeen && performance.now() - lastEventAt > STALL_MS) disconnect();
    status();
    renderTable();
  }

  connect();
  setInterval(tick, 1000);
  setInterval(exportChannels, 250);
  requestAnimationFrame(render);
})();
