// `npm run bench [-- NAME...] [--quick] [--out DIR]`: runs benchmarks, each against its
// baseline in the same run, prints a table and writes bench/results/latest.json,
// latest.md (the tables) and latest.svg (a chart of the hako / baseline ratios).
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { repoRoot } from '../host/native.js';
import { benchBlk, BLK_TESTS, type BlkResult, type BlkTest, type BlkVmm } from './blk.js';
import { benchBoot, type BootResult } from './boot.js';
import { benchMemory, type MemoryResult, type MemoryRow } from './memory.js';
import { benchRestore, type RestoreResult } from './restore.js';
import { ratioChart, type ChartBar, type ChartGroup } from './chart.js';
import { formatSummary } from './stats.js';
import { benchIoEngine, reportIoEngine, type IoEngineResult } from './io-engine.js';
import { benchVirtio, reportVirtio, type VirtioResult } from './virtio.js';
import { benchVsock, reportVsock, type VsockResult } from './vsock.js';
import { benchProbe, reportProbe, PROBE_TESTS, type ProbeResult } from './probe.js';
import { benchFs, reportFs, FS_TESTS, type FsResult } from './fs.js';
import { benchCtr, reportCtr, type CtrResult } from './ctr.js';

const benchmarks = {
  boot: (quick: boolean) => benchBoot({ runs: quick ? 1 : 3, log: (l) => console.error(l) }),
  restore: (quick: boolean) => benchRestore({ runs: quick ? 1 : 3, log: (l) => console.error(l) }),
  memory: (quick: boolean) => benchMemory({ quick, log: (l) => console.error(l) }),
  blk: (quick: boolean) => benchBlk({ quick, log: (l) => console.error(l) }),
  virtio: (quick: boolean) => benchVirtio({ quick, log: (l) => console.error(l) }),
  io: (quick: boolean) => benchIoEngine({ quick, log: (l) => console.error(l) }),
  vsock: (quick: boolean) => benchVsock({ quick, log: (l) => console.error(l) }),
  probe: (quick: boolean) => benchProbe({ quick, log: (l) => console.error(l) }),
  fs: (quick: boolean) => benchFs({ quick, log: (l) => console.error(l) }),
  ctr: (quick: boolean) => benchCtr({ quick, log: (l) => console.error(l) }),
};
type Result = BootResult | RestoreResult | MemoryResult | BlkResult | VirtioResult | IoEngineResult | VsockResult | ProbeResult | FsResult | CtrResult;
type Name = keyof typeof benchmarks;

function report(r: Result): string {
  switch (r.name) {
    case 'boot': return reportBoot(r);
    case 'restore': return reportRestore(r);
    case 'memory': return reportMemory(r);
    case 'blk': return reportBlk(r);
    case 'virtio': return reportVirtio(r);
    case 'io': return reportIoEngine(r);
    case 'vsock': return reportVsock(r);
    case 'probe': return reportProbe(r);
    case 'fs': return reportFs(r);
    case 'ctr': return reportCtr(r);
  }
}

/** The chart's bars for a result: every ratio of hako to its baseline in the same run. */
function chartGroups(r: Result): ChartGroup[] {
  const time = (label: string, ratio: number): ChartBar => ({ label, ratio, better: 'lower' });
  const rate = (label: string, ratio: number | undefined): ChartBar => ({ label, ratio: ratio ?? NaN, better: 'higher' });
  switch (r.name) {
    case 'boot': return [{
      benchmark: 'boot', baseline: 'QEMU microvm',
      bars: [time('start to init marker, time', r.ratio.markerMs), time('start to exit, time', r.ratio.exitMs),
        time('VMM RSS without guest RAM', r.ratio.vmmRssKiB)],
    }];
    case 'restore': return [{
      benchmark: 'restore', baseline: 'cold boot',
      bars: [time('template clone: start to init marker, time', r.ratio.markerMs), time('template clone: start to exit, time', r.ratio.exitMs)],
    }];
    case 'blk': return r.ratio.map((q) => ({
      benchmark: 'blk', baseline: q.qemu,
      bars: BLK_TESTS.filter((t) => q.tests[t] !== undefined).map((t) => rate(`${t}, MB/s`, q.tests[t])),
    }));
    case 'probe': return [{
      benchmark: 'probe', baseline: 'QEMU microvm',
      bars: [...PROBE_TESTS.map((t) => time(`${t}, ns per op`, r.ratio[t])), time('VMM RSS without guest RAM', r.ratio.vmmRssKiB)],
    }];
    case 'ctr': return [{
      benchmark: 'ctr', baseline: 'runc',
      bars: [time('ctr run --rm echo, from a template, time', r.ratio.runMs),
        ...(r.ratio.coldRunMs !== undefined ? [time('ctr run --rm echo, cold boot, time', r.ratio.coldRunMs)] : []),
        time('shim PSS per running task', r.ratio.shimPssKiB)],
    }];
    case 'fs': return [{
      benchmark: 'fs', baseline: r.qemu.label,
      bars: FS_TESTS.filter((t) => r.ratio[t] !== undefined).map((t) => rate(`${t}, MB/s or files/s`, r.ratio[t])),
    }];
    case 'io': {
      // io_uring (hako's IoEngine) against libuv's thread pool at the same queue depth.
      const us = (method: string, depth: number) => r.rows.find((x) => x.method === method && x.depth === depth)?.usPerRead ?? NaN;
      const depths = [...new Set(r.rows.map((x) => x.depth))];
      return [{
        benchmark: 'io', baseline: 'libuv thread pool',
        bars: depths.map((d) => time(`io_uring, queue depth ${d}, µs per 4 KiB read`,
          us('IoEngine (io_uring)', d) / us('fs.read (libuv thread pool)', d))).filter((b) => !Number.isNaN(b.ratio)),
      }];
    }
    // No baseline in the same run: the Wasm micro-benchmarks, KSM sharing, and
    // vsock (QEMU's vhost-vsock is unavailable here; the container start is a VM against no VM).
    case 'memory': case 'virtio': case 'vsock': return [];
  }
}

function reportBlk(r: BlkResult): string {
  const ran = [r.hako, ...r.qemu].filter((v) => v.tests !== undefined);
  const row = (t: BlkTest, v: BlkVmm) => {
    const ratio = r.ratio.find((q) => q.qemu === v.label)?.tests[t];
    return `| ${t} | ${v.label} | ${formatSummary(v.tests![t].MBps, 'MB/s', 2)} | ${formatSummary(v.tests![t].iops, 'IOPS')} | `
      + `${ratio === undefined ? '' : ratio.toFixed(2)} |`;
  };
  return [
    `### blk (in the guest: O_DIRECT on /dev/vda, queue depth 1, sequential 1 MiB and random 4 KiB blocks, ${r.secsPerTest} s per test; `
      + `${r.runs} interleaved runs, medians and ranges)`,
    '| test | VMM | throughput | IOPS | hako / this |',
    '| --- | --- | --- | --- | --- |',
    ...BLK_TESTS.flatMap((t) => ran.map((v) => row(t, v))),
    ...[r.hako, ...r.qemu].filter((v) => v.notRun !== undefined).map((v) => `\n${v.label}: not available: ${v.notRun}`),
  ].join('\n');
}

function reportMemory(r: MemoryResult): string {
  const mib = (kib: number | undefined, count: number) =>
    kib === undefined ? '' : `${(kib / 1024).toFixed(0)} MiB (${(kib / 1024 / count).toFixed(1)} per VM)`;
  const row = (x: MemoryRow) => x.notRun !== undefined
    ? `| ${x.count} | ${x.kind} | ${x.notRun} | | | |`
    : `| ${x.count} | ${x.kind} | ${mib(x.pssKsmOffKiB, x.count)} | ${mib(x.pssKsmOnKiB, x.count)} | `
      + `${x.ksmPagesSharing ?? ''}${x.ksmSettleMs === undefined ? '' : ` (${(x.ksmSettleMs / 1000).toFixed(0)} s)`} | ${(x.allIdleMs! / 1000).toFixed(1)} s |`;
  return [
    `### memory (idle VMs of ${r.memoryMiB} MiB, summed PSS of the VMM processes, guest RAM included)`,
    ...(r.ksmUnavailable ? [`KSM columns empty: ${r.ksmUnavailable}.`] : []),
    '| VMs | started as | PSS, KSM off | PSS, KSM on | KSM pages_sharing (settle time) | start to all idle |',
    '| --- | --- | --- | --- | --- | --- |',
    ...r.rows.map(row),
  ].join('\n');
}

function reportRestore(r: RestoreResult): string {
  const row = (what: string, t: string, c: string, ratio: string) => `| ${what} | ${t} | ${c} | ${ratio} |`;
  return [
    `### restore (${r.runs} interleaved runs of \`hako boot\`, medians and ranges)`,
    '| measure | from a VM template | cold boot | template / cold |',
    '| --- | --- | --- | --- |',
    row('start to first KVM_RUN', formatSummary(r.template.firstKvmRunMs, 'ms'), formatSummary(r.cold.firstKvmRunMs, 'ms'), ''),
    row('start to init marker', formatSummary(scale(r.template.markerMs, 1e-3), 's', 2), formatSummary(scale(r.cold.markerMs, 1e-3), 's'), r.ratio.markerMs.toFixed(3)),
    row('start to exit', formatSummary(scale(r.template.exitMs, 1e-3), 's', 2), formatSummary(scale(r.cold.exitMs, 1e-3), 's'), r.ratio.exitMs.toFixed(3)),
    row('VMM RSS without guest RAM', formatSummary(scale(r.template.vmmRssKiB, 1 / 1024), 'MiB'), formatSummary(scale(r.cold.vmmRssKiB, 1 / 1024), 'MiB'), ''),
  ].join('\n');
}

function reportBoot(r: BootResult): string {
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

// --out DIR sends the report elsewhere, so a CI smoke run (--quick) leaves
// the committed bench/results alone.
let parsed;
try {
  parsed = parseArgs({ options: { quick: { type: 'boolean', default: false }, out: { type: 'string' } }, allowPositionals: true });
} catch (e) {
  console.error(`bench: ${(e as Error).message}; usage: npm run bench -- [NAME...] [--quick] [--out DIR]`);
  process.exit(2);
}
const quick = parsed.values.quick!;
const names = parsed.positionals;
for (const n of names) {
  if (!(n in benchmarks)) {
    console.error(`bench: unknown benchmark ${JSON.stringify(n)}; known: ${Object.keys(benchmarks).join(', ')}`);
    process.exit(2);
  }
}
const selected = (names.length ? names : Object.keys(benchmarks)) as Name[];
const results: Result[] = [];
for (const name of selected) results.push(await benchmarks[name](quick));

console.log(results.map(report).join('\n\n'));

// The report keeps the latest result of every benchmark, so running one
// benchmark updates its section and leaves the others as they were.
const out = path.resolve(parsed.values.out ?? path.join(repoRoot, 'bench', 'results'));
const latest = path.join(out, 'latest.json');
const previous: Result[] = fs.existsSync(latest) ? (JSON.parse(fs.readFileSync(latest, 'utf8')) as { results: Result[] }).results : [];
const merged = [...previous.filter((p) => !results.some((r) => r.name === p.name)), ...results]
  .sort((a, b) => Object.keys(benchmarks).indexOf(a.name) - Object.keys(benchmarks).indexOf(b.name));
fs.mkdirSync(out, { recursive: true });
fs.writeFileSync(latest, JSON.stringify({ date: new Date().toISOString(), quick, results: merged }, null, 2) + '\n');
fs.writeFileSync(path.join(out, 'latest.svg'), ratioChart(merged.flatMap(chartGroups), 'hako against its baselines, same run'));
fs.writeFileSync(path.join(out, 'latest.md'),
  ['Chart of every hako / baseline ratio: [latest.svg](latest.svg)\n\n![hako / baseline ratios](latest.svg)', ...merged.map(report)].join('\n\n') + '\n');
