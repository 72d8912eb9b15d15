// Small hand-rolled SVG line charts for docs/benchmarks.md: axes, ticks, one polyline per series.
export interface Series {
  name: string;
  points: [number, number][];
}

export interface Chart {
  title: string;
  x: { label: string; log?: boolean };
  y: { label: string; log?: boolean };
  series: Series[];
}

const COLORS = ["#d1495b", "#00798c", "#edae49", "#30638e", "#66a182"];
const W = 640;
const H = 380;
const M = { l: 70, r: 150, t: 36, b: 48 };
const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;");

function ticks(lo: number, hi: number, log: boolean): number[] {
  if (log) {
    const out: number[] = [];
    for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) out.push(10 ** e);
    return out;
  }
  const step = 10 ** Math.floor(Math.log10((hi - lo) / 4 || 1));
  const nice = [1, 2, 5, 10].map((m) => m * step).find((s) => (hi - lo) / s <= 6) ?? step * 10;
  const out: number[] = [];
  for (let v = Math.ceil(lo / nice) * nice; v <= hi + 1e-9; v += nice) out.push(+v.toPrecision(12));
  return out;
}

const fmt = (v: number) =>
  Math.abs(v) >= 1e6 ? `${+(v / 1e6).toPrecision(3)}M` : Math.abs(v) >= 1e3 ? `${+(v / 1e3).toPrecision(3)}k` : `${+v.toPrecision(3)}`;

export function lineChart(c: Chart): string {
  const all = c.series.flatMap((s) => s.points).filter(([x, y]) => (!c.x.log || x > 0) && (!c.y.log || y > 0));
  if (all.length === 0) return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}"><text x="20" y="40">${esc(c.title)}: no data</text></svg>\n`;
  const range = (vals: number[], log?: boolean): [number, number] => {
    let lo = Math.min(...vals);
    let hi = Math.max(...vals);
    if (log) return [10 ** Math.floor(Math.log10(lo)), 10 ** Math.ceil(Math.log10(hi))];
    lo = Math.min(0, lo);
    if (hi === lo) hi = lo + 1;
    return [lo, hi * 1.05];
  };
  const [x0, x1] = range(
    all.map((p) => p[0]),
    c.x.log,
  );
  const [y0, y1] = range(
    all.map((p) => p[1]),
    c.y.log,
  );
  const scale = (v: number, lo: number, hi: number, log: boolean | undefined, a: number, b: number) =>
    a + ((log ? Math.log10(v) - Math.log10(lo) : v - lo) / (log ? Math.log10(hi) - Math.log10(lo) : hi - lo)) * (b - a);
  const sx = (v: number) => scale(v, x0, x1, c.x.log, M.l, W - M.r);
  const sy = (v: number) => scale(v, y0, y1, c.y.log, H - M.b, M.t);
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${M.l}" y="20" font-size="14" font-weight="bold">${esc(c.title)}</text>`,
  ];
  for (const t of ticks(x0, x1, c.x.log ?? false)) {
    const x = sx(t).toFixed(1);
    out.push(
      `<line x1="${x}" x2="${x}" y1="${M.t}" y2="${H - M.b}" stroke="#eee"/>`,
      `<text x="${x}" y="${H - M.b + 16}" text-anchor="middle">${fmt(t)}</text>`,
    );
  }
  for (const t of ticks(y0, y1, c.y.log ?? false)) {
    const y = sy(t).toFixed(1);
    out.push(
      `<line x1="${M.l}" x2="${W - M.r}" y1="${y}" y2="${y}" stroke="#eee"/>`,
      `<text x="${M.l - 6}" y="${y}" text-anchor="end" dominant-baseline="middle">${fmt(t)}</text>`,
    );
  }
  out.push(
    `<rect x="${M.l}" y="${M.t}" width="${W - M.l - M.r}" height="${H - M.t - M.b}" fill="none" stroke="#888"/>`,
    `<text x="${(M.l + W - M.r) / 2}" y="${H - 10}" text-anchor="middle">${esc(c.x.label)}</text>`,
    `<text transform="translate(16 ${(M.t + H - M.b) / 2}) rotate(-90)" text-anchor="middle">${esc(c.y.label)}</text>`,
  );
  c.series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length];
    const pts = s.points.filter(([x, y]) => (!c.x.log || x > 0) && (!c.y.log || y > 0));
    out.push(`<polyline fill="none" stroke="${color}" stroke-width="2" points="${pts.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(" ")}"/>`);
    for (const [x, y] of pts) out.push(`<circle cx="${sx(x).toFixed(1)}" cy="${sy(y).toFixed(1)}" r="2.5" fill="${color}"/>`);
    const ly = M.t + 14 + i * 18;
    out.push(
      `<line x1="${W - M.r + 12}" x2="${W - M.r + 32}" y1="${ly}" y2="${ly}" stroke="${color}" stroke-width="3"/>`,
      `<text x="${W - M.r + 38}" y="${ly}" dominant-baseline="middle">${esc(s.name)}</text>`,
    );
  });
  out.push("</svg>");
  return out.join("\n") + "\n";
}
