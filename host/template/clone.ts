// Starting a clone of a template: each one gets its own wall clock, hostname
// and random seed through the line init waits for (guest/initramfs/init).
import { randomBytes } from 'node:crypto';
import { HakoError } from '../errors.js';
import type { Vm, VmExit } from '../vmm/vm.js';

export interface CloneIdentity {
  hostname: string;
  /** Hex; mixed into the guest's RNG pool (not credited as entropy). */
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
 * The line init reads: `hako-clone <unix-seconds> <hostname> <hex-seed> [<mode>]`;
 * without a mode the clone runs the template's.
 */
export function cloneLine(identity: CloneIdentity, nowMs = Date.now(), initMode?: string): string {
  const mode = initMode === undefined ? '' : ` ${checkInitMode(initMode)}`;
  return `hako-clone ${Math.round(nowMs / 1000)} ${identity.hostname} ${identity.seed}${mode}\n`;
}

/** Runs `vm`, restored from a template, and hands it its identity (and init mode); resolves like vm.run(). */
export function startClone(vm: Vm, opts: { identity?: CloneIdentity; initMode?: string } = {}): Promise<VmExit> {
  const line = cloneLine(opts.identity ?? newCloneIdentity(), Date.now(), opts.initMode);
  const exit = vm.run();
  vm.sendConsoleInput(Buffer.from(line));
  return exit;
}
