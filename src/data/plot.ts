/**
 * Inline-SVG charts shared by the self-contained HTML reports (verify/quantize, rollout, train,
 * bench) and the live dashboard page: pure string builders, no Node APIs, no scripts, no
 * network. Node imports this module; the dashboard build (`tsconfig.dashboard.json`) compiles
 * it for the browser too, where the page script reaches it as the global `streamcellPlot`
 * (see `loadDashboardScript` in src/devices/sinks/dashboard.ts), so the page and the reports
 * draw the same charts.
 */

/** Size of a chart: `width`/`height` in px (also the SVG's user units), `font` its text size. */
export interface PlotBox {
  width?: number;
  height?: number;
  font?: number;
  /** Draw the series legend (linePlot); default true. */
  legend?: boolean;
  /** The y axis starts at or below this (linePlot), e.g. 0 for counts. */
  yMin?: number;
}

const all = <T>(lists: T[][]): T[] => ([] as T[]).concat(...lists);

export const esc = (s: string) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);

/** A number for a report: fixed `d` digits, exponent form for very large or small values, '–' for none. */
export const num = (v: number | undefined, d = 4) =>
  v === undefined ? '–' : Math.abs(v) >= 1e4 || (Math.abs(v) < 1e-3 && v !== 0) ? v.toExponential(2) : v.toFixed(d);

/**
 * A line chart as an inline SVG figure (no scripts): one path per series, a legend, three y
 * ticks. `dash` draws a series dashed; `dots` marks its points.
 */
export function linePlot(
  series: { name: string; color: string; x: number[]; y: number[]; dash?: boolean; dots?: boolean }[],
  title: string,
  yLabel: string,
  xLabel = 'sample',
  box: PlotBox = {},
): string {
  const W = Math.round(box.width ?? 900);
  const H = Math.round(box.height ?? 300);
  const f = box.font ?? 12;
  const small = H < 200;
  const m = small ? { l: 8 + f * 4, r: 8, t: box.legend === false ? 6 : f + 10, b: f + 8 } : { l: 78, r: 20, t: 30, b: 35 };
  const xs = all(series.map((s) => s.x));
  const ys = all(series.map((s) => s.y)).filter((v) => Number.isFinite(v));
  if (!xs.length || !ys.length) return `<figure><figcaption>${esc(title)}</figcaption><p class="empty">no data</p></figure>`;
  let [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  if (x0 === x1) [x0, x1] = [x0 - 1, x1 + 1];
  let [y0, y1] = [Math.min(...ys, box.yMin ?? Infinity), Math.max(...ys)];
  if (y0 === y1) [y0, y1] = box.yMin === undefined ? [y0 - 1, y1 + 1] : [y0, y1 + 1];
  const px = (x: number) => m.l + ((x - x0) / Math.max(1e-12, x1 - x0)) * (W - m.l - m.r);
  const py = (y: number) => H - m.b - ((y - y0) / (y1 - y0)) * (H - m.t - m.b);
  const paths = series.map((s) => {
    const d = s.x.map((x, i) => `${i ? 'L' : 'M'}${px(x).toFixed(1)},${py(s.y[i]!).toFixed(1)}`).join('');
    const dots = s.dots ? s.x.map((x, i) => `<circle cx="${px(x).toFixed(1)}" cy="${py(s.y[i]!).toFixed(1)}" r="3" fill="${s.color}"/>`).join('') : '';
    return `<path d="${d}" fill="none" stroke="${s.color}" stroke-width="1.5"${s.dash ? ' stroke-dasharray="6 4"' : ''}/>${dots}`;
  });
  const lw = small ? 110 : 170;
  const legend =
    box.legend === false
      ? []
      : series.map(
          (s, i) =>
            `<rect x="${m.l + 10 + i * lw}" y="${m.t - f - 6}" width="${f}" height="${f}" fill="${s.color}"/><text x="${m.l + 14 + f + i * lw}" y="${m.t - 6}">${esc(s.name)}</text>`,
        );
  const ticks = (small ? [0, 1] : [0, 0.5, 1]).map((t) => {
    const v = y0 + t * (y1 - y0);
    return `<text x="${m.l - 6}" y="${py(v) + f / 3}" text-anchor="end">${small && Number.isInteger(v) ? String(v) : num(v, 2)}</text><line x1="${m.l}" x2="${W - m.r}" y1="${py(v)}" y2="${py(v)}" stroke="#ddd"/>`;
  });
  const labels = small
    ? `<text x="${W - m.r}" y="${H - 4}" text-anchor="end">${esc(xLabel)}</text>`
    : `<text x="${W / 2}" y="${H - 8}" text-anchor="middle">${esc(xLabel)}</text><text x="12" y="${H / 2}" transform="rotate(-90 12 ${H / 2})" text-anchor="middle">${esc(yLabel)}</text>`;
  return `<figure><figcaption>${esc(title)}</figcaption><svg class="plot" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" font-size="${f}" role="img" aria-label="${esc(title)}">
<rect x="0" y="0" width="${W}" height="${H}" fill="#fff"/>${ticks.join('')}${paths.join('')}${legend.join('')}
${labels}</svg></figure>`;
}

/** A horizontal bar chart as an inline SVG figure, one bar per entry, labelled with its value. */
export function barPlot(
  bars: { label: string; value: number; color: string }[],
  title: string,
  unit: string,
  fmt: (v: number) => string = (v) => num(v, 2),
): string {
  const W = 900;
  const H = 60 + bars.length * 40;
  const max = Math.max(...bars.map((b) => b.value), 1e-12);
  const rows = bars.map((b, i) => {
    const w = (b.value / max) * (W - 340);
    return `<text x="10" y="${45 + i * 40}">${esc(b.label)}</text><rect x="200" y="${28 + i * 40}" width="${Math.max(1, w).toFixed(1)}" height="24" fill="${b.color}"/><text x="${208 + w}" y="${45 + i * 40}">${fmt(b.value)} ${esc(unit)}</text>`;
  });
  return `<figure><figcaption>${esc(title)}</figcaption><svg class="plot" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${esc(title)}"><rect width="${W}" height="${H}" fill="#fff"/>${rows.join('')}</svg></figure>`;
}

/**
 * A column chart (vertical bars, e.g. a histogram) as an inline SVG figure: one column per
 * entry, its label under it (thinned to what fits), its value on top when there is room.
 */
export function columnPlot(cols: { label: string; value: number; color?: string }[], title: string, unit: string, box: PlotBox = {}): string {
  const W = Math.round(box.width ?? 900);
  const H = Math.round(box.height ?? 300);
  const f = box.font ?? 12;
  const m = { l: 6, r: 6, t: f + 6, b: f + 8 };
  const max = Math.max(1e-12, ...cols.map((c) => (Number.isFinite(c.value) ? c.value : 0)));
  const bw = (W - m.l - m.r) / Math.max(1, cols.length);
  const every = Math.max(1, Math.ceil((f * 3) / bw));
  const bars = cols.map((c, i) => {
    const v = Number.isFinite(c.value) ? Math.max(0, c.value) : 0;
    const h = (v / max) * (H - m.t - m.b);
    const x = m.l + i * bw;
    const label = i % every === 0 ? `<text x="${(x + bw / 2).toFixed(1)}" y="${H - 4}" text-anchor="middle">${esc(c.label)}</text>` : '';
    const value =
      bw >= f * 3 && v > 0 ? `<text x="${(x + bw / 2).toFixed(1)}" y="${(H - m.b - h - 3).toFixed(1)}" text-anchor="middle">${num(v, 0)}</text>` : '';
    return `<rect x="${(x + 1).toFixed(1)}" y="${(H - m.b - h).toFixed(1)}" width="${Math.max(1, bw - 2).toFixed(1)}" height="${h.toFixed(1)}" fill="${c.color ?? '#1f77b4'}"><title>${esc(c.label)}: ${num(v, 2)} ${esc(unit)}</title></rect>${label}${value}`;
  });
  return `<figure><figcaption>${esc(title)}</figcaption><svg class="plot" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" font-size="${f}" role="img" aria-label="${esc(title)}"><rect width="${W}" height="${H}" fill="#fff"/><line x1="${m.l}" x2="${W - m.r}" y1="${H - m.b}" y2="${H - m.b}" stroke="#bbb"/>${bars.join('')}</svg></figure>`;
}

/** An HTML table from rows of text (header first); rows whose first cell is '*' get class "chosen" (bold). */
export function htmlTable(rows: string[][]): string {
  return `<table><thead><tr>${rows[0]!.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>${rows
    .slice(1)
    .map((r) => `<tr${r[0] === '*' ? ' class="chosen"' : ''}>${r.map((v) => `<td>${esc(v)}</td>`).join('')}</tr>`)
    .join('')}</tbody></table>`;
}

/** A self-contained HTML page (no scripts, no network) around `body`, with the reports' shared style. */
export function htmlPage(title: string, body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title>
<style>body{font:14px system-ui,sans-serif;margin:24px;color:#222;max-width:960px}table{border-collapse:collapse;margin:12px 0}td,th{border:1px solid #ccc;padding:4px 10px;text-align:left}tr.chosen{font-weight:600}figure{margin:18px 0}figcaption{font-weight:600;margin-bottom:6px}svg text{font:12px system-ui,sans-serif;fill:#222}pre{font:12px ui-monospace,monospace}</style>
</head><body><h1>${esc(title)}</h1>${body}</body></html>
`;
}

/** Rows padded to their columns' widths, a rule under the header. */
export function textTable(rows: string[][]): string {
  const w = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const lines = rows.map((r) =>
    r
      .map((v, i) => v.padEnd(w[i]!))
      .join('  ')
      .trimEnd(),
  );
  lines.splice(1, 0, w.map((n) => '-'.repeat(n)).join('  '));
  return lines.join('\n');
}
