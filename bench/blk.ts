// `npm run bench -- blk`: block I/O measured from inside the guest by
// guest/tools/blkbench.c (hako.init=blkbench): sequential 1 MiB and random
// 4 KiB reads and writes at queue depth 1, O_DIRECT, on /dev/vda. The same
// guest and the same image file under hako's virtio-blk and under QEMU
// microvm's (aio=threads and aio=io_uring), interleaved in one run.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { bundledCmdline, bundledGuest } from '../host/guest.js';
import { repoRoot } from '../host/native.js';
import { isPvmHost } from '../host/vmm/kvm.js';
import { platformCmdline } from '../host/vmm/cmdline.js';
import { runProcess, type ProcessRun } from './process.js';
import { qemuForGuest, QEMU_POWEROFF_STATUS } from './qemu.js';
import { summarize, type Summary } from './stats.js';

const MEMORY_MIB = 256;
const IMAGE_MIB = 256;
const TIMEOUT_MS = 15 * 60 * 1000;
export const BLK_TESTS = ['seq-read', 'seq-write', 'rand-read', 'rand-write'] as const;
export type BlkTest = (typeof BLK_TESTS)[number];

/** One VMM configuration's results, or why it could not run. */
export interface BlkVmm {
  label: string;
  notRun?: string;
  tests?: Record<BlkTest, { bs: number; MBps: Summary; iops: Summary }>;
}

export interface BlkResult {
  name: 'blk';
  runs: number;
  secsPerTest: number;
  hako: BlkVmm;
  qemu: BlkVmm[];
  /** hako MB/s / QEMU MB/s (medians) per QEMU configuration and test; empty when either side did not run. */
  ratio: Array<{ qemu: string; tests: Partial<Record<BlkTest, number>> }>;
}

interface Sample { bs: number; MBps: number; iops: number }

/** The guest's `hako-blkbench: <test> bs=.. MBps=.. iops=..` lines, or why they are missing. */
function parseGuest(run: ProcessRun, okStatus: number): Map<BlkTest, Sample> | string {
  const error = /hako-blkbench: error: (.*)/.exec(run.stdout);
  if (error) return `guest: ${error[1]!.trim()}`;
  if (!run.stdout.includes('hako-blkbench: done') || run.exitCode !== okStatus) {
    // The VMM's own complaint (bad option, missing device, crash) is on
    // stderr; without one, the guest's last console line says how far it got.
    const nonEmpty = (s: string) => s.split('\n').map((l) => l.trim()).filter(Boolean);
    const stderr = nonEmpty(run.stderr);
    const why = stderr.find((l) => /error|invalid|unknown|cannot|could not|failed/i.test(l)) ?? stderr.at(-1);
    const lastGuestLine = nonEmpty(run.stdout).at(-1);
    return `${why ?? `guest's last line: ${JSON.stringify(lastGuestLine ?? '')}`} (exit ${run.exitCode}, no 'hako-blkbench: done' from the guest)`;
  }
  const samples = new Map<BlkTest, Sample>();
  for (const m of run.stdout.matchAll(/hako-blkbench: ([a-z-]+) bs=(\d+) .*MBps=([\d.]+) iops=([\d.]+)/g)) {
    samples.set(m[1] as BlkTest, { bs: Number(m[2]), MBps: Number(m[3]), iops: Number(m[4]) });
  }
  const missing = BLK_TESTS.filter((t) => !samples.has(t));
  return missing.length ? `guest printed no result for ${missing.join(', ')}` : samples;
}

/** A raw image of random bytes: every block allocated on the host, nothing compressible. */
function makeImage(dir: string): string {
  const file = path.join(dir, 'disk.img');
  const fd = fs.openSync(file, 'w');
  try {
    const chunk = crypto.randomBytes(1 << 20);
    for (let i = 0; i < IMAGE_MIB; i++) fs.writeSync(fd, chunk, 0, chunk.length, i << 20);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  return file;
}

interface Vmm {
  label: string;
  run(): Promise<ProcessRun>;
  okStatus: number;
  samples: Sample[][];
  notRun?: string;
}

export async function benchBlk(opts: { quick: boolean; log: (line: string) => void }): Promise<BlkResult> {
  const runs = opts.quick ? 1 : 3;
  const secsPerTest = opts.quick ? 2 : 4;
  const guest = bundledGuest();
  const pvmHost = isPvmHost();
  // HAKO_BLKBENCH_SECS has no dot: the kernel hands it to init as an environment variable.
  const cmdline = `${bundledCmdline(guest, pvmHost)} hako.init=blkbench HAKO_BLKBENCH_SECS=${secsPerTest}`;
  const guestRamBytes = MEMORY_MIB * 1024 * 1024;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-bench-blk-'));
  try {
    const image = makeImage(dir);
    const spawnOpts = { markers: [], guestRamBytes, timeoutMs: TIMEOUT_MS };
    // hako announces the disk itself; QEMU is told where its first transport is
    // (microvm without ACPI: 512 bytes at 0xfeb00000, GSI 5) because
    // auto-kernel-cmdline is off.
    const hakoArgs = [path.join(repoRoot, 'dist', 'host', 'cli', 'main.js'), 'boot', '--memory', String(MEMORY_MIB), '--vcpus', '1',
      '--disk', image, '--cmdline', cmdline];
    const qemuCmdline = `${platformCmdline(cmdline, { pvmHost })} virtio_mmio.device=512@0xfeb00000:5`;
    const qemu = (aio: string): Vmm => ({
      label: `QEMU microvm aio=${aio}`,
      okStatus: QEMU_POWEROFF_STATUS,
      samples: [],
      run: () => runProcess('qemu-system-x86_64', [
        ...qemuForGuest(guest, qemuCmdline, MEMORY_MIB, 1, pvmHost),
        '-drive', `id=d0,file=${image},format=raw,if=none,cache=none,aio=${aio}`,
        '-device', 'virtio-blk-device,drive=d0,bus=virtio-mmio-bus.0',
      ], spawnOpts),
    });
    const vmms: Vmm[] = [
      { label: 'hako', okStatus: 0, samples: [], run: () => runProcess(process.execPath, hakoArgs, spawnOpts) },
      qemu('threads'),
      qemu('io_uring'),
    ];

    for (let i = 0; i < runs; i++) {
      for (const vmm of vmms) {
        if (vmm.notRun !== undefined) continue; // it will not start on a second try either
        const parsed = parseGuest(await vmm.run(), vmm.okStatus);
        if (typeof parsed === 'string') {
          vmm.notRun = parsed;
          opts.log(`blk ${i + 1}/${runs} ${vmm.label}: not available: ${parsed}`);
          continue;
        }
        vmm.samples.push(BLK_TESTS.map((t) => parsed.get(t)!));
        opts.log(`blk ${i + 1}/${runs} ${vmm.label}: ${BLK_TESTS.map((t) => `${t} ${parsed.get(t)!.MBps} MB/s`).join(', ')}`);
      }
    }

    const result = vmms.map((v): BlkVmm => {
      // A VMM that failed in a later run reports that, not a partial sample.
      if (v.notRun !== undefined) return { label: v.label, notRun: v.notRun };
      const tests = Object.fromEntries(BLK_TESTS.map((t, k) => [t, {
        bs: v.samples[0]![k]!.bs,
        MBps: summarize(v.samples.map((s) => s[k]!.MBps)),
        iops: summarize(v.samples.map((s) => s[k]!.iops)),
      }])) as Record<BlkTest, { bs: number; MBps: Summary; iops: Summary }>;
      return { label: v.label, tests };
    });
    const [hako, ...qemus] = result as [BlkVmm, ...BlkVmm[]];
    return {
      name: 'blk',
      runs,
      secsPerTest,
      hako,
      qemu: qemus,
      ratio: qemus.map((q) => ({
        qemu: q.label,
        tests: Object.fromEntries(hako.tests && q.tests
          ? BLK_TESTS.map((t) => [t, hako.tests![t].MBps.median / q.tests![t].MBps.median])
          : []),
      })),
    };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
