/** Inline-SVG charts for the self-contained HTML reports (quantize/verify, rollout): no scripts, no network. */

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
): string {
  const W = 900;
  const H = 300;
  const m = { l: 78, r: 20, t: 30, b: 35 };
  const xs = series.flatMap((s) => s.x);
  const ys = series.flatMap((s) => s.y).filter(Number.isFinite);
  const [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  let [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  if (y0 === y1) [y0, y1] = [y0 - 1, y1 + 1];
  const px = (x: number) => m.l + ((x - x0) / Math.max(1e-12, x1 - x0)) * (W - m.l - m.r);
  const py = (y: number) => H - m.b - ((y - y0) / (y1 - y0)) * (H - m.t - m.b);
  const paths = series.map((s) => {
    const d = s.x.map((x, i) => `${i ? 'L' : 'M'}${px(x).toFixed(1)},${py(s.y[i]!).toFixed(1)}`).join('');
    const dots = s.dots ? s.x.map((x, i) => `<circle cx="${px(x).toFixed(1)}" cy="${py(s.y[i]!).toFixed(1)}" r="3" fill="${s.color}"/>`).join('') : '';
    return `<path d="${d}" fill="none" stroke="${s.color}" stroke-width="1.5"${s.dash ? ' stroke-dasharray="6 4"' : ''}/>${dots}`;
  });
  const legend = series.map(
    (s, i) => `<rect x="${m.l + 10 + i * 170}" y="8" width="12" height="12" fill="${s.color}"/><text x="${m.l + 28 + i * 170}" y="18">${esc(s.name)}</text>`,
  );
  const ticks = [0, 0.5, 1].map((f) => {
    const v = y0 + f * (y1 - y0);
    return `<text x="${m.l - 6}" y="${py(v) + 4}" text-anchor="end">${num(v, 2)}</text><line x1="${m.l}" x2="${W - m.r}" y1="${py(v)}" y2="${py(v)}" stroke="#ddd"/>`;
  });
  return `<figure><figcaption>${esc(title)}</figcaption><svg class="plot" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${esc(title)}">
<rect x="0" y="0" width="${W}" height="${H}" fill="#fff"/>${ticks.join('')}${paths.join('')}${legend.join('')}
<text x="${W / 2}" y="${H - 8}" text-anchor="middle">${esc(xLabel)}</text><text x="12" y="${H / 2}" transform="rotate(-90 12 ${H / 2})" text-anchor="middle">${esc(yLabel)}</text></svg></figure>`;
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
