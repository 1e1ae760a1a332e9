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
body { margin: 0; padding: 12px 20px; background: #fff; color: #222; }
header { display: flex; align-items: baseline; gap: 24px; flex-wrap: wrap; }
h1 { font-size: 18px; margin: 0 0 6px; }
[hidden] { display: none !important; }
#status { margin: 4px 0 12px; color: #555; font-variant-numeric: tabular-nums; }
#status.down { color: #b00; }
#chart { min-height: 380px; }
#chart .empty { padding: 40px 0; color: #888; }
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
 * The dashboard page: per stream (a selector when there are several) a uPlot chart of the
 * first input channel and the prediction (forecast, or predicted class index for
 * classifiers) over the last `points` samples, live from `/events`, the latest rollout (when
 * the records carry one) ahead of the signal, and a status line with samples/s and the last
 * sequence number.
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
<script src="/assets/dashboard.js${q}"></script>
</body>
</html>
`;
}

/**
 * The compiled page script (`dashboard-client/main.js`), read once at sink start. Next to this
 * module in the built package; when this module runs from the TypeScript sources (tests), the
 * build output under `dist/` of the same checkout.
 *
 * @throws Error naming `npm run build` when the script has not been built.
 */
export function loadDashboardScript(): Buffer {
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [join(here, 'dashboard-client', 'main.js'), join(here, '..', '..', '..', 'dist', 'devices', 'sinks', 'dashboard-client', 'main.js')];
  const found = candidates.find((p) => existsSync(p));
  if (!found) throw new Error(`the dashboard script is not built (looked for ${candidates.join(', ')}): run npm run build`);
  return readFileSync(found);
}
