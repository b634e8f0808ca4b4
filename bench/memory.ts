// `npm run bench -- memory`: host memory of N idle VMs started as clones of a
// VM template against N cold-booted ones, with KSM off and on. The measure is
// the sum of the VMM processes' PSS, guest RAM included: clones map the
// template's memory file copy-on-write, so their untouched pages are shared.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { repoRoot } from '../host/native.js';
import { runProcess } from './process.js';

const IDLE = 'hako-init: idle';
const MEMORY_MIB = 128;
/** CPU time of one cold boot on this 2-core PVM host (README), for the "not run" estimate. */
const COLD_BOOT_CPU_S = 28;
const CORES = 2;
const KSM = '/sys/kernel/mm/ksm';
/** KSM scan rate while measuring (pages per 20 ms wake-up): the default 100 takes minutes over 50 VMs. */
const KSM_PAGES_TO_SCAN = 5000;
const KSM_SETTLE_MS = 60_000;
const cli = path.join(repoRoot, 'dist', 'host', 'cli', 'main.js');

type Kind = 'clone' | 'cold';

export interface MemoryRow {
  kind: Kind;
  count: number;
  /** Why this row was not measured, e.g. too long for a full run. */
  notRun?: string;
  /** ms from the first spawn until every VM printed the idle marker. */
  allIdleMs?: number;
  /** Summed PSS of the VMM processes (KiB). */
  pssKsmOffKiB?: number;
  pssKsmOnKiB?: number;
  /** /sys/kernel/mm/ksm/pages_sharing once the scan settled, and how long that took. */
  ksmPagesSharing?: number;
  ksmSettleMs?: number;
}

export interface MemoryResult {
  name: 'memory';
  memoryMiB: number;
  /** Why KSM was not measured; absent when it was. */
  ksmUnavailable?: string;
  rows: MemoryRow[];
}

interface IdleVm { child: ChildProcess; closed: Promise<void> }

/** Spawns `hako boot ... --init-mode idle` and resolves once the guest printed the idle marker. */
function startIdleVm(extra: string[], timeoutMs: number, started: IdleVm[]): Promise<void> {
  const child = spawn(process.execPath, [cli, 'boot', '--memory', String(MEMORY_MIB), '--vcpus', '1', '--init-mode', 'idle', ...extra],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  const closed = new Promise<void>((resolve) => child.on('close', () => resolve()));
  started.push({ child, closed });
  let stdout = '', stderr = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`hako boot ${extra.join(' ')}: no '${IDLE}' within ${timeoutMs / 1000} s`)), timeoutMs);
    child.stdout!.on('data', (d: Buffer) => {
      stdout += d.toString('latin1');
      if (stdout.includes(IDLE)) { clearTimeout(timer); resolve(); }
    });
    child.stderr!.on('data', (d: Buffer) => { stderr += d.toString('latin1'); });
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      reject(new Error(`hako boot ${extra.join(' ')} exited (${code}) before '${IDLE}':\n${stderr.slice(-2000)}`));
    });
  });
}

/** Runs `tasks` with at most `limit` in flight; rejects on the first failure and starts no more. */
async function limited(tasks: Array<() => Promise<void>>, limit: number): Promise<void> {
  let next = 0, failed = false;
  const worker = async () => {
    while (next < tasks.length && !failed) {
      try { await tasks[next++]!(); } catch (e) { failed = true; throw e; }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, worker));
}

/** SIGINT (hako stops the VM and exits 130), SIGKILL after 10 s. */
async function stopAll(vms: IdleVm[]): Promise<void> {
  for (const vm of vms) vm.child.kill('SIGINT');
  const kill = setTimeout(() => { for (const vm of vms) if (vm.child.exitCode === null) vm.child.kill('SIGKILL'); }, 10_000);
  await Promise.all(vms.map((vm) => vm.closed));
  clearTimeout(kill);
}

function pssKiB(pid: number): number {
  const m = /^Pss:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
  if (!m) throw new Error(`no Pss: line in /proc/${pid}/smaps_rollup`);
  return Number(m[1]);
}

const ksmRead = (file: string) => Number(fs.readFileSync(path.join(KSM, file), 'utf8').trim());
const ksmWrite = (file: string, value: number) => fs.writeFileSync(path.join(KSM, file), String(value));

function ksmUnavailable(): string | undefined {
  try {
    const run = ksmRead('run');
    ksmWrite('run', run); // writable: we may switch it
    return undefined;
  } catch (e) {
    return `KSM not available (${KSM}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`;
  }
}

/**
 * Turns KSM on and waits until two full scans passed (a page merges on the
 * scan after the one that saw it unchanged) and pages_sharing stopped growing,
 * or KSM_SETTLE_MS.
 */
async function ksmSettle(): Promise<{ pagesSharing: number; settleMs: number }> {
  const start = performance.now();
  const scans = ksmRead('full_scans');
  ksmWrite('run', 1);
  let sharing = -1;
  while (performance.now() - start < KSM_SETTLE_MS) {
    await new Promise((r) => setTimeout(r, 3000));
    const now = ksmRead('pages_sharing');
    if (ksmRead('full_scans') >= scans + 2 && now <= sharing) break;
    sharing = now;
  }
  return { pagesSharing: ksmRead('pages_sharing'), settleMs: performance.now() - start };
}

async function measure(kind: Kind, count: number, ksm: boolean, log: (l: string) => void): Promise<MemoryRow> {
  const extra = kind === 'cold' ? ['--no-template'] : [];
  const perVmMs = kind === 'cold' ? 2 * COLD_BOOT_CPU_S * 1000 : 10_000;
  const timeoutMs = 120_000 + count * perVmMs;
  const vms: IdleVm[] = [];
  const start = performance.now();
  try {
    // Cold boots are CPU-bound: more in flight than cores only slows each one.
    await limited(Array.from({ length: count }, () => () => startIdleVm(extra, timeoutMs, vms)), kind === 'cold' ? CORES : 4);
    const row: MemoryRow = { kind, count, allIdleMs: performance.now() - start };
    const sum = () => vms.reduce((s, vm) => s + pssKiB(vm.child.pid!), 0);
    row.pssKsmOffKiB = sum();
    log(`memory: ${count} ${kind} VMs idle after ${(row.allIdleMs! / 1000).toFixed(1)} s, PSS ${(row.pssKsmOffKiB / 1024).toFixed(0)} MiB with KSM off`);
    if (ksm) {
      const settled = await ksmSettle();
      row.pssKsmOnKiB = sum();
      row.ksmPagesSharing = settled.pagesSharing;
      row.ksmSettleMs = settled.settleMs;
      ksmWrite('run', 0);
      log(`memory: ${count} ${kind} VMs, PSS ${(row.pssKsmOnKiB / 1024).toFixed(0)} MiB with KSM on (pages_sharing ${settled.pagesSharing} after ${(settled.settleMs / 1000).toFixed(0)} s)`);
    }
    return row;
  } finally {
    await stopAll(vms);
    const left = vms.filter((vm) => vm.child.exitCode === null && vm.child.signalCode === null);
    if (left.length) throw new Error(`memory: ${left.length} VMM processes did not exit: ${left.map((vm) => vm.child.pid).join(' ')}`);
  }
}

export async function benchMemory(opts: { quick: boolean; log: (line: string) => void }): Promise<MemoryResult> {
  const counts = opts.quick ? [1, 2] : [1, 10, 50];
  // Cold boots cost COLD_BOOT_CPU_S of CPU each: a full run leaves out 50 (the row says how long it would take).
  const coldMax = opts.quick ? 2 : 10;
  opts.log(`memory: making sure the ${MEMORY_MIB} MiB template exists`);
  const made = await runProcess(process.execPath, [cli, 'boot', '--init-mode', 'poweroff', '--memory', String(MEMORY_MIB), '--vcpus', '1'],
    { markers: [], guestRamBytes: MEMORY_MIB * 1024 * 1024, timeoutMs: 10 * 60 * 1000 });
  if (made.exitCode !== 0) throw new Error(`hako boot --memory ${MEMORY_MIB} failed (exit ${made.exitCode}):\n${made.stderr.slice(-2000)}`);

  const ksmUnavailableWhy = ksmUnavailable();
  const ksm = ksmUnavailableWhy === undefined;
  const saved = ksm ? { run: ksmRead('run'), pagesToScan: ksmRead('pages_to_scan') } : undefined;
  const rows: MemoryRow[] = [];
  try {
    if (ksm) {
      ksmWrite('run', 0);
      ksmWrite('pages_to_scan', KSM_PAGES_TO_SCAN);
    }
    for (const kind of ['clone', 'cold'] as const) {
      for (const count of counts) {
        if (kind === 'cold' && count > coldMax) {
          const minutes = Math.ceil((count * COLD_BOOT_CPU_S) / CORES / 60);
          rows.push({ kind, count, notRun: `not run: would take about ${minutes} min (${COLD_BOOT_CPU_S} s of CPU per cold boot, ${CORES} cores)` });
          continue;
        }
        rows.push(await measure(kind, count, ksm, opts.log));
      }
    }
  } finally {
    if (saved) {
      ksmWrite('pages_to_scan', saved.pagesToScan);
      ksmWrite('run', saved.run);
    }
  }
  return { name: 'memory', memoryMiB: MEMORY_MIB, ...(ksmUnavailableWhy ? { ksmUnavailable: ksmUnavailableWhy } : {}), rows };
}
