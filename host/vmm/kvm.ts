// The host's KVM, as the rest of host/ sees it: one call that either returns
// what the host offers or fails with the check that did not pass.
import fs from 'node:fs';
import { HakoError } from '../errors.js';
import { isKvmError, native, type NativeAddon } from '../native.js';

export interface KvmHost {
  addon: NativeAddon;
  maxVcpus: number;
}

const KVM_DEVICE = '/dev/kvm';
const PVM_MODULE = '/sys/module/kvm_pvm';

/** Whether the host is PVM: detected ('auto', the configuration's hypervisor.pvm default) or as the configuration says. */
export type PvmMode = 'auto' | 'on' | 'off';

/** kvm_pvm (pagetable-based virtualization) emulates guest kernel code and needs guest workarounds (DESIGN.md). */
export function isPvmHost(mode: PvmMode = 'auto', pvmModulePath = PVM_MODULE): boolean {
  return mode === 'auto' ? fs.existsSync(pvmModulePath) : mode === 'on';
}

function loadAddon(): NativeAddon {
  try {
    return native();
  } catch (e) {
    throw new HakoError('NOT_BUILT', `the hako native addon is not built or does not load (${(e as Error).message}); run 'npm run setup'`, { cause: e });
  }
}

export function openKvm(): KvmHost {
  if (!fs.existsSync(KVM_DEVICE)) {
    throw new HakoError('KVM_UNAVAILABLE', `${KVM_DEVICE} does not exist: the kernel has no KVM module loaded or this is a container without the device`);
  }
  const addon = loadAddon();
  try {
    const info = addon.kvmInfo();
    return { addon, maxVcpus: info.maxVcpus };
  } catch (e) {
    if (isKvmError(e)) throw new HakoError('KVM_UNAVAILABLE', `KVM is not usable: ${e.message}`, { cause: e });
    throw e;
  }
}
