/**
 * The live dashboard page of the HTTP sink: one self-contained HTML document (its only
 * other requests are `/assets/uplot.js`, `/assets/uplot.css` and the `/events` stream).
 *
 * The page's script and style are constants, so their SHA-256 hashes are known up front and
 * the server can send a strict Content-Security-Policy ({@link DASHBOARD_CSP}) that allows
 * exactly them: no inline event handlers, no eval, nothing from another origin. Everything
 * that varies per page (title, history length, token for the asset URLs) travels in escaped
 * markup, never in the script.
 */
import { createHash } from 'node:crypto';

/** Options of {@link dashboardHtml}. */
export interface DashboardOptions {
  /** Page title and heading (escaped here). */
  title: string;
  /** Points kept per stream in the chart; the sink's `historyPerStream`. */
  points: number;
  /**
   * Token to append as `?token=` to the asset URLs, when the page itself was opened with one
   * (a browser cannot add an `Authorization` header to `<script src>`). The page's script
   * reads it from its own URL for `/events`.
   */
  token?: string;
}

const STYLE = `
:root { color-scheme: light; font: 14px/1.4 system-ui, sans-serif; }
body { margin: 0; padding: 12px 20px; background: #fff; color: #222; }
header { display: flex; align-items: baseline; gap: 24px; flex-wrap: wrap; }
h1 { font-size: 18px; margin: 0 0 6px; }
[hidden] { display: none !important; }
#status { margin: 4px 0 12px; color: #555; font-variant-numeric: tabular-nums; }
#status.down { color: #b00; }
#chart { min-height: 380px; }
#chart .empty { padding: 40px 0; color: #888; }
`;

/**
 * Browser side, plain ES2017 (no build step). Buffers per stream hold the last N points of
 * [seq, first input channel, prediction]; the chart of the selected stream redraws at most
 * once per animation frame however fast predictions arrive.
 */
const SCRIPT = `
(function () {
  'use strict';
  var maxPoints = Number(document.body.getAttribute('data-points')) || 500;
  var token = new URLSearchParams(location.search).get('token');
  var eventsUrl = '/events' + (token ? '?token=' + encodeURIComponent(token) : '');
  var picker = document.getElementById('picker');
  var select = document.getElementById('stream');
  var statusEl = document.getElementById('status');
  var chartEl = document.getElementById('chart');
  var streams = new Map();
  var selected = null;
  var plot = null;
  var plotFor = null;
  var plotKind = null;
  var dirty = false;
  var connected = false;
  var rateCount = 0;
  var rateAt = performance.now();
  var rate = 0;

  function finite(v) { return typeof v === 'number' && isFinite(v) ? v : null; }

  function buffer(name) {
    var b = streams.get(name);
    if (b) return b;
    b = { x: [], input: [], pred: [], kind: null, lastSeq: null, count: 0, last: null, classNames: {} };
    streams.set(name, b);
    var opt = document.createElement('option');
    opt.value = name;
    opt.textContent = name;
    select.appendChild(opt);
    picker.hidden = streams.size < 2;
    if (selected === null) { selected = name; select.value = name; }
    return b;
  }

  // Forecasters: the forecast in target units. Classifiers: the index of the largest score
  // of the first output, i.e. the predicted class.
  function prediction(rec) {
    if (typeof rec.forecast === 'number') return { kind: 'forecast', v: finite(rec.forecast) };
    if (typeof rec.label === 'string' && rec.outputs) {
      var keys = Object.keys(rec.outputs);
      var scores = keys.length ? rec.outputs[keys[0]] : null;
      if (scores && scores.length) {
        var best = 0;
        for (var i = 1; i < scores.length; i++) if (scores[i] > scores[best]) best = i;
        return { kind: 'class', v: best, name: rec.label };
      }
    }
    return { kind: null, v: null };
  }

  function clear(b) { b.x.length = 0; b.input.length = 0; b.pred.length = 0; }

  function push(rec) {
    if (!rec || typeof rec.stream !== 'string' || typeof rec.seq !== 'number') return;
    var b = buffer(rec.stream);
    var p = prediction(rec);
    if (p.kind && b.kind !== p.kind) b.kind = p.kind;
    if (p.kind === 'class') b.classNames[p.v] = p.name;
    // uPlot needs ascending x: a stream that restarted its numbering starts a new trace.
    if (b.x.length && rec.seq <= b.x[b.x.length - 1]) clear(b);
    b.x.push(rec.seq);
    b.input.push(finite(rec.input && rec.input[0]));
    b.pred.push(p.v);
    if (b.x.length > maxPoints) { b.x.shift(); b.input.shift(); b.pred.shift(); }
    b.lastSeq = rec.seq;
    b.count++;
    b.last = rec;
    if (rec.stream === selected) dirty = true;
  }

  function makePlot(b) {
    if (plot) { plot.destroy(); plot = null; }
    chartEl.textContent = '';
    var cls = b.kind === 'class';
    var predSeries = { label: cls ? 'predicted class' : 'forecast', stroke: '#d62728', width: 2, scale: cls ? 'cls' : 'y', spanGaps: false };
    if (cls && uPlot.paths && uPlot.paths.stepped) predSeries.paths = uPlot.paths.stepped({ align: 1 });
    var axes = [{ label: 'sample' }, { scale: 'y', label: 'input' }];
    if (cls) axes.push({ scale: 'cls', side: 1, label: 'class', grid: { show: false }, incrs: [1, 2, 5, 10, 20, 50, 100],
      values: function (u, splits) { return splits.map(function (v) { return b.classNames[v] !== undefined ? b.classNames[v] : v; }); } });
    var scales = { x: { time: false } };
    if (cls) scales.cls = { range: function (u, min, max) { return [Math.min(0, min) - 0.5, Math.max(1, max) + 0.5]; } };
    plot = new uPlot({
      width: Math.max(300, chartEl.clientWidth),
      height: 360,
      scales: scales,
      series: [{ label: 'sample' }, { label: 'input', stroke: '#1f77b4', width: 1.5, scale: 'y' }, predSeries],
      axes: axes,
    }, [b.x, b.input, b.pred], chartEl);
    plotFor = selected;
    plotKind = b.kind;
  }

  function render() {
    if (dirty) {
      dirty = false;
      var b = selected === null ? null : streams.get(selected);
      if (b && b.x.length) {
        if (!plot || plotFor !== selected || plotKind !== b.kind) makePlot(b);
        else plot.setData([b.x, b.input, b.pred]);
      }
    }
    requestAnimationFrame(render);
  }

  function status() {
    var now = performance.now();
    var b = selected === null ? null : streams.get(selected);
    var count = b ? b.count : 0;
    rate = (count - rateCount) / ((now - rateAt) / 1000);
    rateCount = count;
    rateAt = now;
    var parts = [connected ? 'live' : 'disconnected, retrying'];
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
    statusEl.textContent = parts.join(' \\u00b7 ');
    statusEl.className = connected ? '' : 'down';
  }

  select.addEventListener('change', function () {
    selected = select.value;
    var b = streams.get(selected);
    rateCount = b ? b.count : 0;
    rateAt = performance.now();
    dirty = true;
  });
  window.addEventListener('resize', function () {
    if (plot) plot.setSize({ width: Math.max(300, chartEl.clientWidth), height: 360 });
  });

  var es = new EventSource(eventsUrl);
  es.addEventListener('open', function () { connected = true; status(); });
  es.addEventListener('error', function () { connected = false; status(); });
  // Sent first on every (re)connection: it replaces what the page holds.
  es.addEventListener('snapshot', function (ev) {
    var snap = JSON.parse(ev.data);
    streams.forEach(clear);
    var names = Object.keys(snap.streams || {});
    for (var i = 0; i < names.length; i++) {
      var recs = snap.streams[names[i]];
      for (var j = 0; j < recs.length; j++) push(recs[j]);
    }
    var b = selected === null ? null : streams.get(selected);
    rateCount = b ? b.count : 0;
    rateAt = performance.now();
    dirty = true;
  });
  es.addEventListener('prediction', function (ev) { push(JSON.parse(ev.data)); });

  setInterval(status, 1000);
  requestAnimationFrame(render);
})();
`;

const sha256 = (s: string) => `'sha256-${createHash('sha256').update(s, 'utf8').digest('base64')}'`;

/**
 * The Content-Security-Policy to send with {@link dashboardHtml}: same-origin scripts,
 * styles and connections, plus exactly the page's inline script and style by hash.
 */
export const DASHBOARD_CSP = [
  "default-src 'none'",
  `script-src 'self' ${sha256(SCRIPT)}`,
  `style-src 'self' ${sha256(STYLE)}`,
  "connect-src 'self'",
  "img-src 'self' data:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/**
 * The dashboard page: per stream (a selector when there are several) a uPlot chart of the
 * first input channel and the prediction (forecast, or predicted class index for
 * classifiers) over the last `points` samples, live from `/events`, and a status line with
 * samples/s and the last sequence number.
 *
 * @example
 * res.setHeader('Content-Security-Policy', DASHBOARD_CSP);
 * res.end(dashboardHtml({ title: 'streamcell', points: 500 }));
 */
export function dashboardHtml(opts: DashboardOptions): string {
  const title = escapeHtml(opts.title);
  const q = opts.token ? escapeHtml(`?token=${encodeURIComponent(opts.token)}`) : '';
  const points = Number.isInteger(opts.points) && opts.points > 0 ? opts.points : 500;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title}</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/assets/uplot.css${q}">
<style>${STYLE}</style>
</head>
<body data-points="${points}">
<header>
<h1>${title}</h1>
<label id="picker" hidden>Stream <select id="stream"></select></label>
</header>
<p id="status" role="status">connecting…</p>
<div id="chart"><p class="empty">Waiting for predictions…</p></div>
<noscript>The dashboard needs JavaScript.</noscript>
<script src="/assets/uplot.js${q}"></script>
<script>${SCRIPT}</script>
</body>
</html>
`;
}
