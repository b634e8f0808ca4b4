// The report's chart: every hako / baseline ratio as a horizontal bar from a
// line at 1.0, on a log scale so that 0.5 and 2 are the same distance from
// parity and a 30x outlier does not flatten the rest. Plain SVG text written
// here, so the report needs no plotting dependency.

export interface ChartBar {
  /** What was measured, e.g. "start to exit". */
  label: string;
  /** hako / baseline, medians; a bar is drawn only for a finite ratio above 0. */
  ratio: number;
  /** Which way hako is better: lower for times and memory, higher for throughput. */
  better: 'lower' | 'higher';
}

export interface ChartGroup {
  /** The benchmark, e.g. "boot". */
  benchmark: string;
  /** What hako is divided by, e.g. "QEMU microvm". */
  baseline: string;
  bars: ChartBar[];
}

const WIDTH = 960;
const LABEL_WIDTH = 430;
const VALUE_WIDTH = 70;
const PLOT_LEFT = LABEL_WIDTH + 10;
const PLOT_WIDTH = WIDTH - PLOT_LEFT - VALUE_WIDTH - 10;
const ROW = 20;
const BAR = 13;
const HEADER = 64;
const FOOTER = 28;
const BETTER = '#2e7d32';
const WORSE = '#c62828';

/** Escapes text for SVG character data and attribute values. */
export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!);
}

const drawable = (r: number) => Number.isFinite(r) && r > 0;

/** The SVG document for `groups` (groups without bars are left out). */
export function ratioChart(groups: readonly ChartGroup[], title: string): string {
  const shown = groups.filter((g) => g.bars.length > 0);
  // The axis spans whole powers of two, symmetric around 1.0, at least 0.5–2.
  const extent = Math.max(1, ...shown.flatMap((g) => g.bars.filter((b) => drawable(b.ratio)).map((b) => Math.ceil(Math.abs(Math.log2(b.ratio))))));
  const x = (ratio: number) => PLOT_LEFT + PLOT_WIDTH * (Math.log2(ratio) + extent) / (2 * extent);
  const rows = shown.reduce((n, g) => n + 1 + g.bars.length, 0);
  const height = HEADER + rows * ROW + FOOTER;
  const plotBottom = HEADER + rows * ROW;
  const text = (px: number, py: number, s: string, attrs = '') =>
    `<text x="${px.toFixed(1)}" y="${py.toFixed(1)}"${attrs}>${escapeXml(s)}</text>`;

  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" `
      + 'font-family="sans-serif" font-size="12">',
    `<rect width="${WIDTH}" height="${height}" fill="#ffffff"/>`,
    text(10, 20, title, ' font-size="15" font-weight="bold"'),
    text(10, 38, 'hako / baseline (medians, log scale). Right of 1.0: hako\'s number is larger. '
      + 'Green: hako better, red: baseline better.'),
  ];
  // Grid lines at each power of two; the 1.0 line is the one that matters.
  for (let e = -extent; e <= extent; e++) {
    const gx = x(2 ** e).toFixed(1);
    const one = e === 0;
    out.push(`<line x1="${gx}" y1="${HEADER - 8}" x2="${gx}" y2="${plotBottom}" stroke="${one ? '#000000' : '#dddddd'}" `
      + `stroke-width="${one ? 1.5 : 1}"/>`);
    out.push(text(Number(gx), plotBottom + 16, e < 0 ? `1/${2 ** -e}` : String(2 ** e), ' text-anchor="middle" fill="#555555"'));
  }
  let y = HEADER;
  for (const g of shown) {
    out.push(text(10, y + 14, `${g.benchmark}: hako / ${g.baseline}`, ' font-weight="bold"'));
    y += ROW;
    for (const b of g.bars) {
      const better = b.better === 'lower' ? 'lower is better' : 'higher is better';
      out.push(text(22, y + 14, `${b.label} (${better})`));
      if (drawable(b.ratio)) {
        const from = x(1);
        const to = x(Math.min(Math.max(b.ratio, 2 ** -extent), 2 ** extent));
        const good = b.better === 'lower' ? b.ratio <= 1 : b.ratio >= 1;
        out.push(`<rect x="${Math.min(from, to).toFixed(1)}" y="${(y + (ROW - BAR) / 2).toFixed(1)}" `
          + `width="${Math.max(Math.abs(to - from), 1).toFixed(1)}" height="${BAR}" fill="${good ? BETTER : WORSE}"/>`);
        out.push(text(WIDTH - VALUE_WIDTH, y + 14, `${b.ratio < 0.1 ? b.ratio.toFixed(3) : b.ratio.toFixed(2)}×`));
      } else {
        out.push(text(WIDTH - VALUE_WIDTH, y + 14, 'no value', ' fill="#555555"'));
      }
      y += ROW;
    }
  }
  out.push('</svg>');
  return out.join('\n') + '\n';
}
