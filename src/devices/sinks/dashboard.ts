/**
 * The live dashboard page of the HTTP sink: one HTML document (its other requests are
 * `/assets/uplot.js`, `/assets/uplot.css`, `/assets/dashboard.js` and the `/events` stream).
 *
 * The page's script is TypeScript of its own, `./dashboard-client/main.ts`, compiled for the
 * browser by `tsconfig.dashboard.json` (`npm run build`) and served same-origin as
 * `/assets/dashboard.js` ({@link loadDashboardScript}); the inline style is a constant, so its
 * SHA-256 hash is known up front. The server sends a strict Content-Security-Policy
 * ({@link DASHBOARD_CSP}): same-origin scripts only, no inline script, no inline event
 * handlers, no eval, nothing from another origin. Everything that varies per page (title,
 * history length, token for the asset URLs) travels in escaped markup, never in a script.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

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
* { box-sizing: border-box; }
body { margin: 0; padding: 12px 20px; background: #fff; color: #222; }
header { display: flex; align-items: baseline; gap: 24px; flex-wrap: wrap; }
h1 { font-size: 18px; margin: 0 0 6px; }
h2 { font-size: 13px; margin: 0 0 6px; color: #555; text-transform: uppercase; letter-spacing: .04em; }
[hidden] { display: none !important; }
#status { margin: 4px 0 12px; color: #555; font-variant-numeric: tabular-nums; }
#status::before { content: ""; display: inline-block; width: 9px; height: 9px; border-radius: 50%; margin-right: 6px; background: #2ca02c; }
#status.idle::before { background: #e5a50a; }
#status.down { color: #b00; }
#status.down::before { background: #b00; }
#chart { min-height: 280px; }
#chart .empty { padding: 40px 0; color: #888; }
#channels { display: grid; grid-template-columns: repeat(auto-fit, minmax(280px, 1fr)); gap: 8px; margin: 8px 0; }
.channel { min-width: 0; overflow: hidden; }
#probs { margin: 8px 0; }
.card { border: 1px solid #ddd; border-radius: 6px; padding: 8px 10px; min-width: 0; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { text-align: left; padding: 3px 8px; border-bottom: 1px solid #eee; white-space: nowrap; }
#streams th { cursor: pointer; user-select: none; background: #f6f6f6; }
#streams th[aria-sort="ascending"]::after { content: " \\25b2"; }
#streams th[aria-sort="descending"]::after { content: " \\25bc"; }
#streams tbody tr { cursor: pointer; }
#streams tbody tr:hover { background: #f0f6ff; }
#streams tr.selected { background: #e3eefc; font-weight: 600; }
#panels { display: grid; grid-template-columns: repeat(auto-fill, minmax(260px, 1fr)); gap: 12px; margin: 12px 0; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 2px 12px; margin: 0; }
dt { color: #666; }
dd { margin: 0; overflow-wrap: anywhere; font-variant-numeric: tabular-nums; }
#drops-list { list-style: none; margin: 0 0 6px; padding: 0; }
#drops-list li { display: flex; justify-content: space-between; }
#drops-list li.none { color: #888; }
div.mini { width: 100%; height: 56px; overflow: hidden; }
div.mini figure { margin: 0; }
div.mini figcaption { display: none; }
div.mini svg { display: block; max-width: 100%; height: auto; }
div.mini svg text { fill: #555; }
#latency-hist { height: 90px; }
#sinks td:first-child, #sources td:first-child { white-space: normal; overflow-wrap: anywhere; }
.big { font-size: 18px; font-weight: 600; margin-right: 12px; }
@media (max-width: 600px) { body { padding: 8px 10px; } #channels { grid-template-columns: minmax(0, 1fr); } header { gap: 8px; } }
`;

const sha256 = (s: string) => `'sha256-${createHash('sha256').update(s, 'utf8').digest('base64')}'`;

/**
 * The Content-Security-Policy to send with {@link dashboardHtml}: same-origin scripts,
 * styles and connections, plus exactly the page's inline style by hash; no inline script.
 */
export const DASHBOARD_CSP = [
  "default-src 'none'",
  "script-src 'self'",
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
 * The dashboard page: per stream (a selector and a sortable stream table) a uPlot chart of
 * the first input channel and the prediction (forecast, or predicted class index for
 * classifiers) over the last `points` samples, live from `/events`, the latest rollout (when
 * the records carry one) ahead of the signal, small charts of every input channel, class
 * probabilities as a stacked band, panels from the `status` event (drops, latency, sinks,
 * sources, backend, model, uptime, checkpoint), and a status line with the connection state,
 * samples/s and the last sequence number. The layout stacks on a phone-width screen.
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
<div id="channels" hidden></div>
<div id="probs" hidden></div>
<div class="scroll"><table id="streams" hidden>
<thead><tr><th data-key="id">stream</th><th data-key="rate">rate /s</th><th data-key="lastSeenMs">last seen</th><th data-key="drops">drops</th><th data-key="latencyP99Ms">p99 ms</th><th data-key="last">last prediction</th></tr></thead>
<tbody></tbody>
</table></div>
<div id="panels" hidden>
<section class="card" id="info"><h2>Daemon</h2><dl>
<dt>backend</dt><dd id="backend">–</dd>
<dt>model</dt><dd id="model">–</dd>
<dt>uptime</dt><dd id="uptime">–</dd>
<dt>checkpoint</dt><dd id="checkpoint">–</dd>
<dt>predictions</dt><dd id="predictions">–</dd>
</dl></section>
<section class="card" id="drops"><h2>Drops <span id="drops-total">0</span></h2><ul id="drops-list"></ul><div class="mini" id="drops-spark"></div></section>
<section class="card" id="latency"><h2>Line → prediction latency (ms)</h2><p><span class="big">p50 <span id="lat-p50">–</span></span><span class="big">p99 <span id="lat-p99">–</span></span></p><div class="mini" id="latency-hist"></div></section>
<section class="card"><h2>Sinks</h2><div class="scroll"><table id="sinks"><thead><tr><th>sink</th><th>backlog</th><th>errors</th></tr></thead><tbody></tbody></table></div></section>
<section class="card"><h2>Sources</h2><div class="scroll"><table id="sources"><thead><tr><th>source</th><th>connected</th><th>reconnects</th></tr></thead><tbody></tbody></table></div></section>
</div>
<noscript>The dashboard needs JavaScript.</noscript>
<script src="/assets/uplot.js${q}"></script>
<script src="/assets/dashboard.js${q}"></script>
</body>
</html>
`;
}

/**
 * The page script served as `/assets/dashboard.js`: the shared SVG chart builders
 * (`src/data/plot.ts` compiled for the browser, `data/plot.js`, wrapped to define the global
 * `streamcellPlot`) followed by the compiled page script (`devices/sinks/dashboard-client/main.js`),
 * both from `tsconfig.dashboard.json`'s output `dist/browser/`, read once at sink start. The
 * built package has it at `../../browser/` from this module; when this module runs from the
 * TypeScript sources (tests), it is the `dist/browser/` of the same checkout.
 *
 * @throws Error naming `npm run build` when the script has not been built.
 */
export function loadDashboardScript(): Buffer {
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [join(here, '..', '..', 'browser'), join(here, '..', '..', '..', 'dist', 'browser')];
  const parts = (root: string) => [join(root, 'data', 'plot.js'), join(root, 'devices', 'sinks', 'dashboard-client', 'main.js')];
  const found = candidates.find((root) => parts(root).every((p) => existsSync(p)));
  if (!found) throw new Error(`the dashboard script is not built (looked in ${candidates.join(', ')}): run npm run build`);
  const [plot, main] = parts(found).map((p) => readFileSync(p, 'utf8'));
  // plot.js is CommonJS without require(): its exports object becomes the global. The
  // leading directive keeps main.js strict, as it was when it started the script.
  const shared = `"use strict";\nvar streamcellPlot = (function (exports) {\n${plot}\nreturn exports;\n})({});\n`;
  return Buffer.from(shared + main!, 'utf8');
}
