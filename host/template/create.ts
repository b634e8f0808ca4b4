// Creating a template: cold-boot the guest with the template hand-off
// enabled, wait until init says it is waiting for its clone line, snapshot.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { HakoError } from '../errors.js';
import { readManifest } from '../snapshot/format.js';
import { Vm } from '../vmm/vm.js';
import { templateDir, templateKey } from './cache.js';
import { templateInputs, templateVmConfig, type TemplateSpec } from './spec.js';

/** What init prints once it blocks for the clone line (guest/initramfs/init). */
export const TEMPLATE_READY_MARKER = 'hako-init: template-ready';
/** A cold boot takes about 30 s on PVM hosts (README.md); this leaves room for slower ones. */
const DEFAULT_TIMEOUT_MS = 300_000;
/** After the marker init makes one read() system call; let it get there so clones start blocked in it. */
const SETTLE_MS = 200;
const PROGRESS_EVERY_MS = 10_000;

export interface CreateOptions {
  /** One line of progress for humans (the CLI prints it on stderr). */
  progress?: (line: string) => void;
  timeoutMs?: number;
}

export interface Template {
  key: string;
  dir: string;
  /** True when this call made it (a cold boot), false when it was in the cache. */
  created: boolean;
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/** Cold-boots `spec` and snapshots it into `dir`, which must not exist. */
async function bootAndSnapshot(spec: TemplateSpec, dir: string, opts: CreateOptions, key: string): Promise<void> {
  const progress = opts.progress ?? (() => {});
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const started = performance.now();
  progress(`creating VM template ${key} (cold boot of the guest: ${spec.vcpus} vCPU, ${spec.memoryMiB} MiB; about 30 s on PVM hosts)...`);

  let output = '';
  let onReady!: () => void;
  const ready = new Promise<void>((resolve) => { onReady = resolve; });
  // Nothing connects while the template boots; the socket exists because the device's host side needs one.
  const vsockSocketPath = path.join(os.tmpdir(), `hako-template-${key}-${process.pid}.vsock`);
  // The share slot's directory while the template boots: empty, read-only and private to this boot. The
  // slot itself is writable, so that each clone chooses (RestoreOptions.shares): the device keeps the mode it booted with.
  const shareDir = fs.mkdtempSync(path.join(os.tmpdir(), `hako-template-${key}-share-`));
  fs.chmodSync(shareDir, 0o555);
  const vm = await Vm.create(templateVmConfig(spec, vsockSocketPath, shareDir), {
    console: (chunk) => {
      output = (output + chunk.toString('latin1')).slice(-4096);
      if (output.includes(TEMPLATE_READY_MARKER)) onReady();
    },
    pvmHost: spec.pvmHost, // what the snapshot records and its clones are checked against
  });
  const exit = vm.run();
  const ticker = setInterval(() => progress(`  still booting, ${seconds(performance.now() - started)}`), PROGRESS_EVERY_MS);
  let timer: NodeJS.Timeout | undefined;
  try {
    const outcome = await Promise.race([
      ready.then(() => 'ready' as const),
      exit.then((e) => e),
      new Promise<'timeout'>((resolve) => { timer = setTimeout(() => resolve('timeout'), timeoutMs); }),
    ]);
    const tail = () => (output.trim() ? `; last console output:\n${output.trim().split('\n').slice(-10).join('\n')}` : '; the guest printed nothing');
    if (outcome === 'timeout') {
      vm.stop('template creation timed out');
      await exit;
      throw new HakoError('VM_FAILED', `the guest did not print '${TEMPLATE_READY_MARKER}' within ${seconds(timeoutMs)}${tail()}`);
    }
    if (outcome !== 'ready') {
      throw new HakoError('VM_FAILED', `the guest stopped before '${TEMPLATE_READY_MARKER}': ${outcome.detail}${tail()}`);
    }
    await sleep(SETTLE_MS);
    await vm.snapshot(dir);
    vm.stop('template saved');
    await exit;
  } finally {
    clearInterval(ticker);
    clearTimeout(timer);
    fs.rmdirSync(shareDir);
  }
  progress(`VM template ${key} created in ${seconds(performance.now() - started)} (${dir})`);
}

/** Creations in progress in this process, by directory: two callers share one cold boot. */
const pending = new Map<string, Promise<Template>>();

/** How often a process waiting for another one's template creation looks again. */
const LOCK_POLL_MS = 500;

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Takes `${dir}.lock` (created exclusively, holding our pid), so that only one
 * process cold-boots a template; waits while a live process holds it and
 * breaks a lock whose process is gone. Returns false when, after waiting,
 * the template exists (the holder made it).
 */
export async function lockCreation(dir: string, key: string, progress: (line: string) => void): Promise<boolean> {
  const lock = `${dir}.lock`;
  let announced = false;
  for (;;) {
    if (fs.existsSync(dir)) return false;
    try {
      fs.writeFileSync(lock, `${process.pid}\n`, { flag: 'wx' });
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const holder = Number.parseInt(fs.readFileSync(lock, 'utf8'), 10);
    if (!Number.isInteger(holder) || !pidAlive(holder)) {
      fs.rmSync(lock, { force: true }); // left by a process that died while creating
      continue;
    }
    if (!announced) progress(`waiting for process ${holder}, which is creating VM template ${key}...`);
    announced = true;
    await sleep(LOCK_POLL_MS);
  }
}

/**
 * The template for `spec` in `root`, created (a cold boot) when missing.
 * One process creates a template at a time; concurrent callers in this
 * process share its creation, other processes wait for it.
 */
export function ensureTemplate(spec: TemplateSpec, root: string, opts: CreateOptions = {}): Promise<Template> {
  const key = templateKey(templateInputs(spec));
  const dir = templateDir(root, key);
  if (fs.existsSync(dir)) return Promise.resolve({ key, dir, created: false });
  const inFlight = pending.get(dir);
  if (inFlight) return inFlight;
  const creation = (async (): Promise<Template> => {
    fs.mkdirSync(root, { recursive: true });
    if (!(await lockCreation(dir, key, opts.progress ?? (() => {})))) {
      readManifest(dir);
      return { key, dir, created: false };
    }
    try {
      if (fs.existsSync(dir)) return { key, dir, created: false };
      await bootAndSnapshot(spec, dir, opts, key);
      return { key, dir, created: true };
    } finally {
      fs.rmSync(`${dir}.lock`, { force: true });
    }
  })().finally(() => pending.delete(dir));
  pending.set(dir, creation);
  return creation;
}
