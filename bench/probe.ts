// `npm run bench -- probe`: the VMM's own paths without a guest kernel in the
// way. guest/probe/ is a tiny guest that runs at CPL3 (native speed on PVM
// hosts, where guest kernel code is emulated) and drives virtio-mmio devices
// by polling: MMIO register reads (a VM exit each), virtio-blk 4 KiB random
// reads and writes at queue depth 1 and 32, 1 MiB sequential reads, and
// virtio-rng. The same ELF with the same devices (a 64 MiB raw disk,
// virtio-rng) under hako and under QEMU microvm, interleaved.
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { repoRoot } from '../host/native.js';
import { isPvmHost } from '../host/vmm/kvm.js';
import { runProcess, type ProcessRun } from './process.js';
import { qemuMicrovmArgs, QEMU_POWEROFF_STATUS } from './qemu.js';
import { formatSummary, summarize, type Summary } from './stats.js';

/** The guest's tests in the order it runs them (guest/probe/main.s). */
export const PROBE_TESTS = [
  'mmio-read',
  'blk-randread-4k-qd1',
  'blk-randwrite-4k-qd1',
  'blk-randread-4k-qd32',
  'blk-randwrite-4k-qd32',
  'blk-seqread-1m-qd1',
  'rng-4k',
] as const;
export type ProbeTest = (typeof PROBE_TESTS)[number];

// Guest RAM does not matter to the probe; 256 MiB as in `bench boot`, so the
// RSS figures leave out the same mappings.
const MEMORY_MIB = 256;
export const PROBE_DISK_MIB = 64;
const TIMEOUT_MS = 5 * 60 * 1000;
/** Sampled for the VMM's RSS: the guest still runs its last test after this line. */
const RSS_MARKER = 'probe: blk-seqread-1m-qd1 ';

/** Assembles guest/probe/ (cached by content; milliseconds) and returns the ELF's path. */
export function buildProbe(): string {
  const r = spawnSync('bash', [path.join(repoRoot, 'guest', 'probe', 'build.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.status !== 0) throw new Error(`guest/probe/build.sh failed (exit ${r.status ?? r.signal}): ${r.stderr.trim()}`);
  return r.stdout.trim().split('\n').pop()!;
}

/** Arguments for `node dist/host/cli/main.js` to boot the probe. */
export function hakoProbeArgs(elf: string, disk: string): string[] {
  return [path.join(repoRoot, 'dist', 'host', 'cli', 'main.js'), 'boot', '--kernel', elf, '--disk', disk,
    '--memory', String(MEMORY_MIB), '--vcpus', '1'];
}

/**
 * QEMU microvm with hako's devices: modern (version 2) virtio-mmio, which the
 * probe requires; the disk through the host page cache with io_uring, as
 * hako's virtio-blk reads and writes it; virtio-rng from getrandom.
 */
function qemuProbeArgs(elf: string, disk: string): string[] {
  const args = qemuMicrovmArgs({ kernel: elf, cmdline: 'probe', memoryMiB: MEMORY_MIB, vcpus: 1, compatibleCpu: isPvmHost() });
  return [...args,
    '-global', 'virtio-mmio.force-legacy=false',
    '-drive', `id=d0,file=${disk},format=raw,if=none,cache=writeback,aio=io_uring`,
    '-device', 'virtio-blk-device,drive=d0',
    '-device', 'virtio-rng-device'];
}

export interface ProbeLine { cycles: number; ops: number; bytes?: number }

export interface ProbeOutput {
  tests: Map<string, ProbeLine>;
  /** TSC values printed with "probe: start" and "probe: done". */
  startTsc: number;
  doneTsc: number;
}

/** The probe's console lines, or why they are incomplete. */
export function parseProbe(stdout: string): ProbeOutput | string {
  const error = /^probe: error: (.*)$/m.exec(stdout);
  if (error) return `guest: ${error[1]!.trim()}`;
  const start = /^probe: start tsc=(\d+)/m.exec(stdout);
  const done = /^probe: done tsc=(\d+)/m.exec(stdout);
  if (!start || !done) return `no 'probe: ${start ? 'done' : 'start'}' line from the guest`;
  const tests = new Map<string, ProbeLine>();
  for (const m of stdout.matchAll(/^probe: (\S+) cycles=(\d+) ops=(\d+)(?: bytes=(\d+))?/gm)) {
    tests.set(m[1]!, { cycles: Number(m[2]), ops: Number(m[3]), bytes: m[4] === undefined ? undefined : Number(m[4]) });
  }
  const missing = PROBE_TESTS.filter((t) => !tests.has(t));
  if (missing.length) return `guest printed no result for ${missing.join(', ')}`;
  return { tests, startTsc: Number(start[1]), doneTsc: Number(done[1]) };
}

interface Sample { nsPerOp: Record<ProbeTest, number>; tscMHz: number; vmmRssKiB?: number }

/** ns per operation of each test, with the TSC rate taken from when the start and done lines arrived. */
function sample(run: ProcessRun, okStatus: number, who: string): Sample {
  const parsed = parseProbe(run.stdout);
  if (typeof parsed === 'string' || run.exitCode !== okStatus) {
    const why = typeof parsed === 'string' ? parsed : `exit status ${run.exitCode}, expected ${okStatus}`;
    throw new Error(`probe under ${who} failed: ${why}\n${run.stderr.slice(-2000)}\n${run.stdout.slice(-2000)}`);
  }
  const ms = run.markers.get('probe: done')! - run.markers.get('probe: start')!;
  const tscMHz = (parsed.doneTsc - parsed.startTsc) / ms / 1000;
  const nsPerOp = Object.fromEntries(PROBE_TESTS.map((t) => {
    const line = parsed.tests.get(t)!;
    return [t, (line.cycles / line.ops) * 1000 / tscMHz];
  })) as Record<ProbeTest, number>;
  return { nsPerOp, tscMHz, vmmRssKiB: run.vmmRssKiB };
}

export interface ProbeVmm { nsPerOp: Record<ProbeTest, Summary>; vmmRssKiB: Summary }

export interface ProbeResult {
  name: 'probe';
  runs: number;
  /** The TSC rate each run measured (MHz). */
  tscMHz: Summary;
  hako: ProbeVmm;
  qemu: ProbeVmm;
  /** hako / QEMU, medians. */
  ratio: Record<ProbeTest | 'vmmRssKiB', number>;
}

function makeDisk(dir: string): string {
  const file = path.join(dir, 'probe-disk.img');
  fs.writeFileSync(file, crypto.randomBytes(PROBE_DISK_MIB << 20));
  return file;
}

export async function benchProbe(opts: { quick: boolean; log: (line: string) => void }): Promise<ProbeResult> {
  const runs = opts.quick ? 1 : 5;
  const elf = buildProbe();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-bench-probe-'));
  try {
    const disk = makeDisk(dir);
    const spawnOpts = { markers: ['probe: start', RSS_MARKER, 'probe: done'], guestRamBytes: MEMORY_MIB << 20, timeoutMs: TIMEOUT_MS };
    const hako: Sample[] = [], qemu: Sample[] = [];
    const show = (s: Sample) => PROBE_TESTS.map((t) => `${t} ${s.nsPerOp[t].toFixed(0)} ns`).join(', ');
    for (let i = 0; i < runs; i++) {
      hako.push(sample(await runProcess(process.execPath, hakoProbeArgs(elf, disk), spawnOpts), 0, 'hako'));
      opts.log(`probe ${i + 1}/${runs} hako: ${show(hako.at(-1)!)}`);
      qemu.push(sample(await runProcess('qemu-system-x86_64', qemuProbeArgs(elf, disk), spawnOpts), QEMU_POWEROFF_STATUS, 'QEMU'));
      opts.log(`probe ${i + 1}/${runs} qemu: ${show(qemu.at(-1)!)}`);
    }
    const of = (samples: Sample[]): ProbeVmm => ({
      nsPerOp: Object.fromEntries(PROBE_TESTS.map((t) => [t, summarize(samples.map((s) => s.nsPerOp[t]))])) as Record<ProbeTest, Summary>,
      vmmRssKiB: summarize(samples.flatMap((s) => (s.vmmRssKiB === undefined ? [] : [s.vmmRssKiB]))),
    });
    const h = of(hako), q = of(qemu);
    return {
      name: 'probe',
      runs,
      tscMHz: summarize([...hako, ...qemu].map((s) => s.tscMHz)),
      hako: h,
      qemu: q,
      ratio: {
        ...Object.fromEntries(PROBE_TESTS.map((t) => [t, h.nsPerOp[t].median / q.nsPerOp[t].median])) as Record<ProbeTest, number>,
        vmmRssKiB: h.vmmRssKiB.median / q.vmmRssKiB.median,
      },
    };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export function reportProbe(r: ProbeResult): string {
  const mib = (s: Summary) => ({ ...s, median: s.median / 1024, min: s.min / 1024, max: s.max / 1024 });
  return [
    `### probe (guest/probe/ at CPL3 polling virtio-mmio, no guest kernel; ${r.runs} interleaved runs, medians and ranges; `
      + `TSC ${r.tscMHz.median.toFixed(0)} MHz, measured)`,
    '| test | hako | QEMU microvm | hako / QEMU |',
    '| --- | --- | --- | --- |',
    ...PROBE_TESTS.map((t) =>
      `| ${t} | ${formatSummary(r.hako.nsPerOp[t], 'ns/op', 0)} | ${formatSummary(r.qemu.nsPerOp[t], 'ns/op', 0)} | ${r.ratio[t].toFixed(2)} |`),
    `| VMM RSS without guest RAM | ${formatSummary(mib(r.hako.vmmRssKiB), 'MiB')} | ${formatSummary(mib(r.qemu.vmmRssKiB), 'MiB')} | `
      + `${r.ratio.vmmRssKiB.toFixed(2)} |`,
  ].join('\n');
}
