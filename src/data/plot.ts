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
