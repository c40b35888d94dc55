/**
 * A line chart as a standalone SVG document: for report.md and study.md, drawn without a browser.
 * Pure: series in, SVG text out. Small on purpose — axes with a few round ticks, one polyline per
 * series (a single point is drawn as a dot), a legend — so a report renders anywhere Markdown shows
 * images.
 */

export interface ChartSeries {
  readonly name: string;
  /** [x, y] pairs; non-finite ones are left out. */
  readonly points: readonly (readonly [number, number])[];
}

export interface LineChart {
  readonly title: string;
  readonly xLabel: string;
  readonly yLabel: string;
  readonly series: readonly ChartSeries[];
  readonly width?: number;
  readonly height?: number;
}

// Colour-blind-safe (Okabe–Ito), in order.
const COLOURS = ["#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#f0e442", "#000000"];
const MARGIN = { left: 60, right: 16, top: 32, bottom: 44 } as const;
const LEGEND_ROW = 16;

const escapeXml = (text: string) =>
  text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;").replaceAll('"', "&quot;");

/** About `count` round tick values (1, 2 or 5 × 10^k apart) covering [lo, hi]. */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (lo === hi) return [lo];
  const raw = (hi - lo) / count;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = ([1, 2, 5, 10].find((m) => m * magnitude >= raw) ?? 10) * magnitude;
  const ticks: number[] = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) ticks.push(Number(t.toPrecision(12)));
  return ticks;
}

const label = (v: number) => (Math.abs(v) >= 1e4 || (v !== 0 && Math.abs(v) < 1e-3) ? v.toExponential(1) : String(v));

export function lineChartSvg(chart: LineChart): string {
  const width = chart.width ?? 560;
  const series = chart.series.map((s) => ({
    name: s.name,
    points: s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y)),
  }));
  const legendHeight = LEGEND_ROW * series.length;
  const height = (chart.height ?? 300) + legendHeight;
  const plot = {
    x: MARGIN.left,
    y: MARGIN.top,
    w: width - MARGIN.left - MARGIN.right,
    h: height - MARGIN.top - MARGIN.bottom - legendHeight,
  };
  const all = series.flatMap((s) => s.points);
  const range = (values: number[]) => {
    if (values.length === 0) return [0, 1] as const;
    const lo = Math.min(...values);
    const hi = Math.max(...values);
    const pad = lo === hi ? Math.max(Math.abs(lo) * 0.1, 0.5) : 0;
    return [lo - pad, hi + pad] as const;
  };
  const [x0, x1] = range(all.map(([x]) => x));
  const [y0, y1] = range(all.map(([, y]) => y));
  const sx = (x: number) => plot.x + ((x - x0) / (x1 - x0)) * plot.w;
  const sy = (y: number) => plot.y + plot.h - ((y - y0) / (y1 - y0)) * plot.h;
  const r = (v: number) => Number(v.toFixed(2));

  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
    `<rect x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${width / 2}" y="18" text-anchor="middle" font-size="13" font-weight="bold">${escapeXml(chart.title)}</text>`,
    `<g class="axes" stroke="#888" fill="none"><rect x="${plot.x}" y="${plot.y}" width="${r(plot.w)}" height="${r(plot.h)}"/></g>`,
  ];
  for (const t of niceTicks(x0, x1))
    out.push(
      `<g class="x-tick"><line x1="${r(sx(t))}" y1="${r(plot.y + plot.h)}" x2="${r(sx(t))}" y2="${r(plot.y + plot.h + 4)}" stroke="#888"/>` +
        `<text x="${r(sx(t))}" y="${r(plot.y + plot.h + 16)}" text-anchor="middle">${label(t)}</text></g>`,
    );
  for (const t of niceTicks(y0, y1))
    out.push(
      `<g class="y-tick"><line x1="${plot.x - 4}" y1="${r(sy(t))}" x2="${r(plot.x + plot.w)}" y2="${r(sy(t))}" stroke="#eee"/>` +
        `<text x="${plot.x - 6}" y="${r(sy(t) + 4)}" text-anchor="end">${label(t)}</text></g>`,
    );
  out.push(
    `<text x="${r(plot.x + plot.w / 2)}" y="${r(plot.y + plot.h + 32)}" text-anchor="middle">${escapeXml(chart.xLabel)}</text>`,
    `<text transform="translate(14 ${r(plot.y + plot.h / 2)}) rotate(-90)" text-anchor="middle">${escapeXml(chart.yLabel)}</text>`,
  );
  series.forEach((s, i) => {
    const colour = COLOURS[i % COLOURS.length];
    const name = escapeXml(s.name);
    const coordinates = s.points.map(([x, y]) => `${r(sx(x))},${r(sy(y))}`).join(" ");
    if (s.points.length === 1)
      out.push(
        `<circle class="series" data-name="${name}" cx="${r(sx(s.points[0]![0]))}" cy="${r(sy(s.points[0]![1]))}" r="3" fill="${colour}"/>`,
      );
    else if (s.points.length > 1)
      out.push(
        `<polyline class="series" data-name="${name}" fill="none" stroke="${colour}" stroke-width="1.5" points="${coordinates}"/>`,
      );
    const ly = height - legendHeight - 4 + LEGEND_ROW * i;
    out.push(
      `<g class="legend"><line x1="${plot.x}" y1="${ly}" x2="${plot.x + 18}" y2="${ly}" stroke="${colour}" stroke-width="2"/>` +
        `<text x="${plot.x + 24}" y="${ly + 4}">${name}</text></g>`,
    );
  });
  out.push("</svg>");
  return `${out.join("\n")}\n`;
}
