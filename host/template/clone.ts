// Starting a clone of a template: each one gets its own wall clock, hostname
// and random seed through the line init waits for (guest/initramfs/init,
// which hands clock and seed to guest/tools/clone-setup.c).
import { randomBytes } from 'node:crypto';
import { HakoError } from '../errors.js';
import type { Vm, VmExit } from '../vmm/vm.js';

export interface CloneIdentity {
  hostname: string;
  /** 32 bytes from the host's CSPRNG, hex; credited as entropy in the guest, which reseeds its CRNG with it. */
  seed: string;
}

export function newCloneIdentity(): CloneIdentity {
  return { hostname: `hako-${randomBytes(4).toString('hex')}`, seed: randomBytes(32).toString('hex') };
}

/** An init mode is one word on the clone line and on the kernel command line (hako.init=). */
export function checkInitMode(mode: string): string {
  if (!/^[a-z][a-z0-9-]{0,31}$/.test(mode)) {
    throw new HakoError('INVALID_ARGUMENT', `init mode must be a lowercase word such as idle or check, got ${JSON.stringify(mode)}`);
  }
  return mode;
}

/**
 * The host's wall time in unix nanoseconds, at the millisecond precision of
 * Date.now(): performance.timeOrigin + performance.now() has sub-millisecond
 * digits but follows the monotonic clock, so it drifts from wall time once the
 * host clock is stepped after this process started.
 */
export function unixNanoseconds(): bigint {
  return BigInt(Date.now()) * 1_000_000n;
}

/**
 * The line init reads: `hako-clone <unix-nanoseconds> <hostname> <hex-seed> [<mode>]`;
 * without a mode the clone runs the template's.
 */
export function cloneLine(identity: CloneIdentity, nowNs = unixNanoseconds(), initMode?: string): string {
  const mode = initMode === undefined ? '' : ` ${checkInitMode(initMode)}`;
  return `hako-clone ${nowNs} ${identity.hostname} ${identity.seed}${mode}\n`;
}

/** Runs `vm`, restored from a template, and hands it its identity (and init mode); resolves like vm.run(). */
export function startClone(vm: Vm, opts: { identity?: CloneIdentity; initMode?: string } = {}): Promise<VmExit> {
  const line = cloneLine(opts.identity ?? newCloneIdentity(), unixNanoseconds(), opts.initMode);
  const exit = vm.run();
  vm.sendConsoleInput(Buffer.from(line));
  return exit;
}
