// `npm run bench -- fs`: a shared directory measured from inside the guest by
// guest/tools/fsbench.c (hako.init=fsbench): sequential write and read of one
// large file, then a metadata workload (make a tree of small files, then
// readdir + lstat all of it). hako's in-VMM virtio-fs against QEMU microvm
// with Debian's virtiofsd on the same kind of directory, same guest kernel and
// initramfs, cache mode auto on both, interleaved in one run.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { bundledCmdline, bundledGuest } from '../host/guest.js';
import { repoRoot } from '../host/native.js';
import { isPvmHost } from '../host/vmm/kvm.js';
import { platformCmdline } from '../host/vmm/cmdline.js';
import { runProcess, type ProcessRun } from './process.js';
import { qemuForGuest, QEMU_POWEROFF_STATUS } from './qemu.js';
import { formatSummary, summarize, type Summary } from './stats.js';

const MEMORY_MIB = 256;
const TIMEOUT_MS = 20 * 60 * 1000;
const VIRTIOFSD = '/usr/lib/qemu/virtiofsd';
const TAG = 'hako-shared';
export const FS_TESTS = ['seq-write', 'seq-read', 'create-files', 'stat-walk'] as const;
export type FsTest = (typeof FS_TESTS)[number];
const UNITS: Record<FsTest, string> = { 'seq-write': 'MB/s', 'seq-read': 'MB/s', 'create-files': 'files/s', 'stat-walk': 'files/s' };

export interface FsVmm {
  label: string;
  notRun?: string;
  tests?: Record<FsTest, Summary>;
}

export interface FsResult {
  name: 'fs';
  runs: number;
  seqMiB: number;
  files: number;
  hako: FsVmm;
  qemu: FsVmm;
  /** hako / QEMU (medians) per test; empty when either did not run. */
  ratio: Partial<Record<FsTest, number>>;
}

/** The guest's `fsbench: <test> <unit> <value>` lines, or why they are missing. */
function parseGuest(run: ProcessRun, okStatus: number): Map<FsTest, number> | string {
  const nonEmpty = (s: string) => s.split('\n').map((l) => l.trim()).filter(Boolean);
  const error = /(fsbench: error: .*|hako-init: mount virtiofs .* failed)/.exec(run.stdout);
  if (error) return `guest: ${error[1]!.trim()}`;
  if (!run.stdout.includes('fsbench: done') || run.exitCode !== okStatus) {
    const stderr = nonEmpty(run.stderr);
    const why = stderr.find((l) => /error|invalid|unknown|cannot|could not|failed/i.test(l)) ?? stderr.at(-1);
    return `${why ?? `guest's last line: ${JSON.stringify(nonEmpty(run.stdout).at(-1) ?? '')}`} (exit ${run.exitCode}, no 'fsbench: done')`;
  }
  const values = new Map<FsTest, number>();
  for (const m of run.stdout.matchAll(/fsbench: ([a-z-]+) (?:MB|files)\/s ([\d.]+)/g)) values.set(m[1] as FsTest, Number(m[2]));
  const missing = FS_TESTS.filter((t) => !values.has(t));
  return missing.length ? `guest printed no result for ${missing.join(', ')}` : values;
}

/** A fresh, empty directory to share for one run (each run starts from the same state). */
function freshShare(parent: string, label: string, run: number): string {
  const dir = path.join(parent, `${label}-${run}`);
  fs.mkdirSync(dir);
  return dir;
}

/** QEMU with virtiofsd serving `share`: virtiofsd needs guest RAM shared with it (a memfd backend). */
async function runQemu(share: string, work: string, cmdline: string, pvmHost: boolean, spawnOpts: Parameters<typeof runProcess>[2]): Promise<ProcessRun> {
  const socket = path.join(work, `virtiofsd-${path.basename(share)}.sock`);
  const { spawn } = await import('node:child_process');
  const daemon = spawn(VIRTIOFSD, [`--socket-path=${socket}`, '-o', `source=${share}`, '-o', 'cache=auto', '-o', 'sandbox=chroot'],
    { stdio: ['ignore', 'ignore', 'pipe'] });
  let daemonErr = '';
  daemon.stderr.on('data', (d: Buffer) => { daemonErr += d.toString(); });
  const gone = new Promise<void>((resolve) => daemon.on('close', () => resolve()));
  try {
    for (let i = 0; i < 100 && !fs.existsSync(socket); i++) {
      if (daemon.exitCode !== null) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    if (!fs.existsSync(socket)) {
      return { markers: new Map(), exitMs: 0, exitCode: null, vmmRssKiB: undefined, stdout: '', stderr: `virtiofsd did not start: ${daemonErr.trim()}` };
    }
    const guest = bundledGuest();
    return await runProcess('qemu-system-x86_64', [
      ...qemuForGuest(guest, cmdline, MEMORY_MIB, 1, pvmHost),
      '-global', 'virtio-mmio.force-legacy=false', // a virtio 1.x transport, as hako's
      '-object', `memory-backend-memfd,id=mem,size=${MEMORY_MIB}M,share=on`, '-machine', 'memory-backend=mem',
      '-chardev', `socket,id=vfs,path=${socket}`,
      '-device', `vhost-user-fs-device,chardev=vfs,tag=${TAG},bus=virtio-mmio-bus.0`,
    ], spawnOpts);
  } finally {
    daemon.kill('SIGTERM');
    await gone;
  }
}

export async function benchFs(opts: { quick: boolean; log: (line: string) => void }): Promise<FsResult> {
  const runs = opts.quick ? 1 : 3;
  const seqMiB = opts.quick ? 16 : 64;
  const files = opts.quick ? 200 : 1000;
  const guest = bundledGuest();
  const pvmHost = isPvmHost();
  // HAKO_FSBENCH has no dot: the kernel hands it to init as an environment variable.
  const cmdline = `${bundledCmdline(guest, pvmHost)} hako.init=fsbench HAKO_FSBENCH=${seqMiB},${files}`;
  const spawnOpts = { markers: [], guestRamBytes: MEMORY_MIB * 1024 * 1024, timeoutMs: TIMEOUT_MS };
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-bench-fs-'));
  // QEMU is told where its first transport is (microvm without ACPI: 512 bytes at 0xfeb00000, GSI 5).
  const qemuCmdline = `${platformCmdline(cmdline, { pvmHost })} virtio_mmio.device=512@0xfeb00000:5`;
  const vmms = [
    {
      label: 'hako', okStatus: 0, samples: [] as number[][], notRun: undefined as string | undefined,
      run: (share: string) => runProcess(process.execPath, [path.join(repoRoot, 'dist', 'host', 'cli', 'main.js'), 'boot',
        '--memory', String(MEMORY_MIB), '--vcpus', '1', '--share', share, '--cmdline', cmdline], spawnOpts),
    },
    {
      label: 'QEMU microvm + virtiofsd', okStatus: QEMU_POWEROFF_STATUS, samples: [] as number[][], notRun: undefined as string | undefined,
      run: (share: string) => runQemu(share, work, qemuCmdline, pvmHost, spawnOpts),
    },
  ];
  if (!fs.existsSync(VIRTIOFSD)) vmms[1]!.notRun = `${VIRTIOFSD} is missing (Debian package qemu-system-common)`;
  try {
    for (let i = 0; i < runs; i++) {
      for (const vmm of vmms) {
        if (vmm.notRun !== undefined) continue;
        const share = freshShare(work, vmm.label.split(' ')[0]!, i);
        const parsed = parseGuest(await vmm.run(share), vmm.okStatus);
        fs.rmSync(share, { recursive: true, force: true });
        if (typeof parsed === 'string') {
          vmm.notRun = parsed;
          opts.log(`fs ${i + 1}/${runs} ${vmm.label}: not available: ${parsed}`);
          continue;
        }
        vmm.samples.push(FS_TESTS.map((t) => parsed.get(t)!));
        opts.log(`fs ${i + 1}/${runs} ${vmm.label}: ${FS_TESTS.map((t) => `${t} ${parsed.get(t)} ${UNITS[t]}`).join(', ')}`);
      }
    }
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
  const [hako, qemu] = vmms.map((v): FsVmm => (v.notRun !== undefined ? { label: v.label, notRun: v.notRun } : {
    label: v.label,
    tests: Object.fromEntries(FS_TESTS.map((t, k) => [t, summarize(v.samples.map((s) => s[k]!))])) as Record<FsTest, Summary>,
  })) as [FsVmm, FsVmm];
  return {
    name: 'fs', runs, seqMiB, files, hako, qemu,
    ratio: hako.tests && qemu.tests ? Object.fromEntries(FS_TESTS.map((t) => [t, hako.tests![t].median / qemu.tests![t].median])) : {},
  };
}

export function reportFs(r: FsResult): string {
  const cell = (v: FsVmm, t: FsTest) => (v.tests ? formatSummary(v.tests[t], UNITS[t], 1) : 'not run');
  return [
    `### fs (in the guest, on a virtio-fs mount, cache=auto: ${r.seqMiB} MiB written then read in 1 MiB blocks; `
      + `${r.files} files of 1–8 KiB made, then readdir + lstat of all; ${r.runs} interleaved runs, medians and ranges)`,
    `| test | hako | ${r.qemu.label} | hako / QEMU |`,
    '| --- | --- | --- | --- |',
    ...FS_TESTS.map((t) => `| ${t} | ${cell(r.hako, t)} | ${cell(r.qemu, t)} | ${r.ratio[t] === undefined ? '' : r.ratio[t]!.toFixed(2)} |`),
    ...[r.hako, r.qemu].filter((v) => v.notRun !== undefined).map((v) => `\n${v.label}: not available: ${v.notRun}`),
  ].join('\n');
}
