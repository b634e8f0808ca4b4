// `npm run bench [-- NAME...] [--quick]`: runs benchmarks, each against its
// baseline in the same run, prints a table and writes bench/results/latest.json.
import fs from 'node:fs';
import path from 'node:path';
import { repoRoot } from '../host/native.js';
import { benchBoot, type BootResult } from './boot.js';
import { formatSummary } from './stats.js';

const benchmarks = {
  boot: (quick: boolean) => benchBoot({ runs: quick ? 1 : 3, log: (l) => console.error(l) }),
};
type Name = keyof typeof benchmarks;

function report(r: BootResult): string {
  const row = (what: string, hako: string, qemu: string, ratio: number) =>
    `| ${what} | ${hako} | ${qemu} | ${ratio.toFixed(2)} |`;
  return [
    `### boot (${r.runs} interleaved runs, medians and ranges)`,
    '| measure | hako | QEMU microvm | hako / QEMU |',
    '| --- | --- | --- | --- |',
    row('start to init marker', formatSummary(scale(r.hako.markerMs, 1e-3), 's'), formatSummary(scale(r.qemu.markerMs, 1e-3), 's'), r.ratio.markerMs),
    row('start to exit', formatSummary(scale(r.hako.exitMs, 1e-3), 's'), formatSummary(scale(r.qemu.exitMs, 1e-3), 's'), r.ratio.exitMs),
    row('VMM RSS without guest RAM', formatSummary(scale(r.hako.vmmRssKiB, 1 / 1024), 'MiB'), formatSummary(scale(r.qemu.vmmRssKiB, 1 / 1024), 'MiB'), r.ratio.vmmRssKiB),
    `| start to first KVM_RUN (hako) | ${formatSummary(r.hako.firstKvmRunMs, 'ms')} | | |`,
  ].join('\n');
}

function scale<T extends { median: number; min: number; max: number }>(s: T, k: number): T {
  return { ...s, median: s.median * k, min: s.min * k, max: s.max * k };
}

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const names = args.filter((a) => !a.startsWith('--'));
for (const n of names) {
  if (!(n in benchmarks)) {
    console.error(`bench: unknown benchmark ${JSON.stringify(n)}; known: ${Object.keys(benchmarks).join(', ')}`);
    process.exit(2);
  }
}
const selected = (names.length ? names : Object.keys(benchmarks)) as Name[];
const results: BootResult[] = [];
for (const name of selected) results.push(await benchmarks[name](quick));

const text = results.map(report).join('\n\n');
console.log(text);
const out = path.join(repoRoot, 'bench', 'results');
fs.mkdirSync(out, { recursive: true });
fs.writeFileSync(path.join(out, 'latest.json'), JSON.stringify({ date: new Date().toISOString(), quick, results }, null, 2) + '\n');
fs.writeFileSync(path.join(out, 'latest.md'), text + '\n');
