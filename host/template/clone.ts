// Starting a clone of a template: each one gets its own wall clock, hostname
// and random seed through the line init waits for (guest/initramfs/init).
import { randomBytes } from 'node:crypto';
import type { Vm, VmExit } from '../vmm/vm.js';

export interface CloneIdentity {
  hostname: string;
  /** Hex; mixed into the guest's RNG pool (not credited as entropy). */
  seed: string;
}

export function newCloneIdentity(): CloneIdentity {
  return { hostname: `hako-${randomBytes(4).toString('hex')}`, seed: randomBytes(32).toString('hex') };
}

/** The line init reads: `hako-clone <unix-seconds> <hostname> <hex-seed>`. */
export function cloneLine(identity: CloneIdentity, nowMs = Date.now()): string {
  return `hako-clone ${Math.round(nowMs / 1000)} ${identity.hostname} ${identity.seed}\n`;
}

/** Runs `vm`, restored from a template, and hands it its identity; resolves like vm.run(). */
export function startClone(vm: Vm, identity: CloneIdentity = newCloneIdentity()): Promise<VmExit> {
  const exit = vm.run();
  vm.sendConsoleInput(Buffer.from(cloneLine(identity)));
  return exit;
}
