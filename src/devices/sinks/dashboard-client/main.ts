/**
 * The dashboard page's script (browser side). Compiled by `tsconfig.dashboard.json` (DOM
 * types, no Node types) to a plain ES2017 script, `dist/devices/sinks/dashboard-client/main.js`,
 * which the HTTP sink reads at start and serves as `/assets/dashboard.js` (a same-origin script,
 * so the page's Content-Security-Policy needs no inline-script hash). No bundler, no imports:
 * uPlot is the global that `/assets/uplot.js` defines.
 *
 * Buffers per stream hold the last N points of [seq, first input channel, prediction]; the chart
 * of the selected stream redraws at most once per animation frame however fast predictions arrive.
 * A stream's latest rollout (`rollout`, daemon `--rollout K`) is drawn ahead of its signal, at
 * samples seq + 1 … seq + K, fading with the steps ahead; `#chart`'s `data-rollout-*` attributes
 * say what was drawn (points, alpha range, canvas x of the last sample and of the points).
 */

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
  input?: number[];
  forecast?: number;
  label?: string;
  outputs?: Record<string, number[]>;
  /** K predicted samples; K rows of one value per predicted channel for a multivariate model. */
  rollout?: Array<number | number[]>;
}

type Kind = 'forecast' | 'class' | null;

interface StreamBuffer {
  x: number[];
  input: Array<number | null>;
  pred: Array<number | null>;
  kind: Kind;
  lastSeq: number | null;
  count: number;
  last: PredictionMessage | null;
  classNames: Record<number, string>;
  /** The latest rollout (its first value per step) and the seq it starts after. */
  ahead: number[];
  aheadFrom: number;
}

/** Rollout colour (RGB); each step's alpha falls linearly from 1 to ALPHA_FAR at the last. */
const AHEAD_RGB = '255,127,14';
const ALPHA_FAR = 0.15;

(function () {
  'use strict';
  const maxPoints = Number(document.body.getAttribute('data-points')) || 500;
  const token = new URLSearchParams(location.search).get('token');
  const eventsUrl = '/events' + (token ? '?token=' + encodeURIComponent(token) : '');
  const picker = document.getElementById('picker') as HTMLElement;
  const select = document.getElementById('stream') as HTMLSelectElement;
  const statusEl = document.getElementById('status') as HTMLElement;
  const chartEl = document.getElementById('chart') as HTMLElement;
  const streams = new Map<string, StreamBuffer>();
  let selected: string | null = null;
  let plot: UPlotChart | null = null;
  let plotFor: string | null = null;
  let plotKind: Kind = null;
  let dirty = false;
  let connected = false;
  let rateCount = 0;
  let rateAt = performance.now();
  let rate = 0;

  function finite(v: unknown): number | null {
    return typeof v === 'number' && isFinite(v) ? v : null;
  }

  function buffer(name: string): StreamBuffer {
    let b = streams.get(name);
    if (b) return b;
    b = { x: [], input: [], pred: [], kind: null, lastSeq: null, count: 0, last: null, classNames: {}, ahead: [], aheadFrom: 0 };
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

  // Forecasters: the forecast in target units. Classifiers: the index of the largest score
  // of the first output, i.e. the predicted class.
  function prediction(rec: PredictionMessage): { kind: Kind; v: number | null; name?: string } {
    if (typeof rec.forecast === 'number') return { kind: 'forecast', v: finite(rec.forecast) };
    if (typeof rec.label === 'string' && rec.outputs) {
      const keys = Object.keys(rec.outputs);
      const scores = keys.length ? rec.outputs[keys[0]!] : null;
      if (scores && scores.length) {
        let best = 0;
        for (let i = 1; i < scores.length; i++) if (scores[i]! > scores[best]!) best = i;
        return { kind: 'class', v: best, name: rec.label };
      }
    }
    return { kind: null, v: null };
  }

  function clear(b: StreamBuffer): void {
    b.x.length = 0;
    b.input.length = 0;
    b.pred.length = 0;
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
    b.x.push(rec.seq);
    b.input.push(finite(rec.input && rec.input[0]));
    b.pred.push(p.v);
    if (b.x.length > maxPoints) {
      b.x.shift();
      b.input.shift();
      b.pred.shift();
    }
    if (rec.rollout && rec.rollout.length) {
      b.ahead = rec.rollout.map((r) => finite(typeof r === 'number' ? r : r[0]) ?? NaN);
      b.aheadFrom = rec.seq;
    }
    b.lastSeq = rec.seq;
    b.count++;
    b.last = rec;
    if (rec.stream === selected) dirty = true;
  }

  /**
   * The chart's data: the signal, the prediction and the rollout series, whose x positions run
   * past the last sample (the rollout series only sets the y range; `drawAhead` paints it).
   */
  function chartData(b: StreamBuffer): Array<Array<number | null>> {
    const x = b.x.slice();
    const input = b.input.slice();
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
    const axes: object[] = [{ label: 'sample' }, { scale: 'y', label: 'input' }];
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
    plotFor = selected;
    plot = new uPlot(
      {
        width: Math.max(300, chartEl.clientWidth),
        height: 360,
        scales,
        series: [
          { label: 'sample' },
          { label: 'input', stroke: '#1f77b4', width: 1.5, scale: 'y' },
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

  function render(): void {
    if (dirty) {
      dirty = false;
      const b = selected === null ? undefined : streams.get(selected);
      if (b && b.x.length) {
        if (!plot || plotFor !== selected || plotKind !== b.kind) makePlot(b);
        else plot.setData(chartData(b));
      }
    }
    requestAnimationFrame(render);
  }

  function status(): void {
    const now = performance.now();
    const b = selected === null ? undefined : streams.get(selected);
    const count = b ? b.count : 0;
    rate = (count - rateCount) / ((now - rateAt) / 1000);
    rateCount = count;
    rateAt = now;
    const parts = [connected ? 'live' : 'disconnected, retrying'];
    if (b) {
      parts.push('stream ' + selected);
      parts.push(rate.toFixed(1) + ' samples/s');
      parts.push('last seq ' + b.lastSeq);
      if (b.last && typeof b.last.forecast === 'number') parts.push('forecast ' + b.last.forecast.toPrecision(4));
      if (b.last && typeof b.last.label === 'string') parts.push('label ' + b.last.label);
    } else if (connected) {
      parts.push('waiting for predictions');
    }
    if (streams.size > 1) parts.push(streams.size + ' streams');
    statusEl.textContent = parts.join(' \u00b7 ');
    statusEl.className = connected ? '' : 'down';
  }

  select.addEventListener('change', () => {
    selected = select.value;
    const b = streams.get(selected);
    rateCount = b ? b.count : 0;
    rateAt = performance.now();
    dirty = true;
  });
  window.addEventListener('resize', () => {
    if (plot) plot.setSize({ width: Math.max(300, chartEl.clientWidth), height: 360 });
  });

  const es = new EventSource(eventsUrl);
  es.addEventListener('open', () => {
    connected = true;
    status();
  });
  es.addEventListener('error', () => {
    connected = false;
    status();
  });
  // Sent first on every (re)connection: it replaces what the page holds.
  es.addEventListener('snapshot', (ev) => {
    const snap = JSON.parse((ev as MessageEvent<string>).data) as { streams?: Record<string, PredictionMessage[]> };
    streams.forEach(clear);
    const all = snap.streams || {};
    for (const name of Object.keys(all)) for (const rec of all[name]!) push(rec);
    const b = selected === null ? undefined : streams.get(selected);
    rateCount = b ? b.count : 0;
    rateAt = performance.now();
    dirty = true;
  });
  es.addEventListener('prediction', (ev) => push(JSON.parse((ev as MessageEvent<string>).data) as PredictionMessage));

  setInterval(status, 1000);
  requestAnimationFrame(render);
})();
