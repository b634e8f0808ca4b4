import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { escapeXml, ratioChart, type ChartGroup } from '../../bench/chart.js';

const groups: ChartGroup[] = [
  { benchmark: 'boot', baseline: 'QEMU microvm', bars: [
    { label: 'start to exit, time', ratio: 0.5, better: 'lower' },
    { label: 'VMM RSS', ratio: 2, better: 'lower' },
  ] },
  { benchmark: 'blk', baseline: 'QEMU <aio=threads> & "friends"', bars: [
    { label: "seq-read, MB/s <it's>", ratio: 4, better: 'higher' },
    { label: 'rand-read, MB/s', ratio: NaN, better: 'higher' },
  ] },
  { benchmark: 'virtio', baseline: 'nothing', bars: [] },
];

/** Elements in order, checking that every one closes and nothing else closes (enough XML for this writer's output). */
function elements(svg: string): string[] {
  const open: string[] = [];
  const seen: string[] = [];
  for (const m of svg.matchAll(/<(\/?)([a-z]+)([^<>]*?)(\/?)>/g)) {
    const [, close, name, , selfClose] = m;
    if (close) assert.is(open.pop(), name, `</${name}> closes the open element`);
    else {
      seen.push(name!);
      if (!selfClose) open.push(name!);
    }
  }
  assert.equal(open, [], 'every element is closed');
  return seen;
}

const rects = (svg: string) => [...svg.matchAll(/<rect x="([\d.]+)" y="[\d.]+" width="([\d.]+)" height="\d+" fill="(#[0-9a-f]+)"\/>/g)]
  .map((m) => ({ x: Number(m[1]), width: Number(m[2]), fill: m[3]! }));

test('output is one well-formed svg element with only escaped text', () => {
  const svg = ratioChart(groups, 'title & <more>');
  assert.ok(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"'));
  assert.ok(svg.trimEnd().endsWith('</svg>'));
  const seen = elements(svg);
  assert.is(seen[0], 'svg');
  assert.is(seen.filter((e) => e === 'svg').length, 1);
  // Outside tags, no raw markup characters: every & starts an entity.
  const textOnly = svg.replace(/<[^<>]*>/g, '');
  assert.not.match(textOnly, /[<>]|&(?!(amp|lt|gt|quot|apos);)/);
});

test('one bar per finite ratio, on the side of 1.0 its ratio says, coloured by which way is better', () => {
  const svg = ratioChart(groups, 't');
  const bars = rects(svg);
  assert.is(bars.length, 3, 'NaN gets no bar');
  const one = Number(/<line x1="([\d.]+)"[^>]*stroke="#000000"/.exec(svg)![1]);
  const [faster, bigger, throughput] = bars as [typeof bars[0], typeof bars[0], typeof bars[0]];
  assert.ok(Math.abs(faster.x + faster.width - one) < 0.2, '0.5 ends at the 1.0 line');
  assert.ok(Math.abs(bigger.x - one) < 0.2, '2 starts at the 1.0 line');
  assert.ok(Math.abs(faster.width - bigger.width) < 0.2, 'log scale: 0.5 and 2 are equally long');
  assert.ok(Math.abs(throughput.width - 2 * bigger.width) < 0.2, '4 is twice as long as 2');
  assert.is.not(faster.fill, bigger.fill, 'a smaller time is better, a larger RSS is worse');
  assert.is(throughput.fill, faster.fill, 'higher throughput and lower time are both "better"');
  assert.match(svg, />0\.50×</);
  assert.match(svg, />no value</);
  assert.match(svg, /lower is better/);
  assert.match(svg, /higher is better/);
  assert.not.match(svg, /virtio/, 'a group without bars is left out');
});

test('labels are escaped', () => {
  const svg = ratioChart(groups, 't');
  assert.match(svg, /QEMU &lt;aio=threads&gt; &amp; &quot;friends&quot;/);
  assert.match(svg, /seq-read, MB\/s &lt;it&apos;s&gt;/);
  assert.is(escapeXml(`a<b>&"c'`), 'a&lt;b&gt;&amp;&quot;c&apos;');
});

test('the axis covers the largest ratio in whole powers of two', () => {
  const svg = ratioChart([{ benchmark: 'b', baseline: 'q', bars: [{ label: 'x', ratio: 0.04, better: 'lower' }] }], 't');
  assert.match(svg, />1\/32</);
  assert.match(svg, />32</);
  assert.not.match(svg, />64</);
  assert.match(svg, />0\.040×</);
});

test.run();
