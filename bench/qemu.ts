// The baseline VMM: QEMU's microvm machine on KVM, configured to do the same
// work as hako (same kernel, initrd, command line, CPU features, devices).
import type { BundledGuest } from '../host/guest.js';
import { EXIT_PORT } from '../host/vmm/cmdline.js';

/** QEMU exits with (v << 1) | 1 when the guest writes v to its isa-debug-exit port. */
export const QEMU_POWEROFF_STATUS = 1;

/** The features the `compatible` template hides that QEMU's -cpu can remove (the kernel cmdline hides the rest). */
const HIDDEN_QEMU_FLAGS = ['xsave', 'cx16', 'popcnt', 'movbe', 'fsgsbase', 'bmi1', 'bmi2', 'smap', 'umip', 'rdpid', 'abm', 'avx', 'avx2', 'f16c', 'fma',
  // Not a guest feature: kvm_pvm refuses QEMU's write of this MSR and QEMU aborts.
  'arch-capabilities'];

export function qemuMicrovmArgs(opts: {
  kernel: string;
  /** Absent for a guest without one (the probe). */
  initrd?: string;
  cmdline: string;
  memoryMiB: number;
  vcpus: number;
  compatibleCpu: boolean;
}): string[] {
  const cpu = opts.compatibleCpu ? ['host', ...HIDDEN_QEMU_FLAGS.map((f) => `-${f}`)].join(',') : 'host';
  return [
    '-M', 'microvm,x-option-roms=off,isa-serial=on,rtc=on,pit=on,pic=on,acpi=off,auto-kernel-cmdline=off',
    '-enable-kvm', '-cpu', cpu, '-m', String(opts.memoryMiB), '-smp', String(opts.vcpus),
    '-nodefaults', '-no-user-config', '-nographic', '-serial', 'stdio', '-no-reboot',
    '-device', `isa-debug-exit,iobase=0x${EXIT_PORT.toString(16)},iosize=0x04`,
    '-kernel', opts.kernel, ...(opts.initrd ? ['-initrd', opts.initrd] : []), '-append', opts.cmdline,
  ];
}

export function qemuForGuest(guest: BundledGuest, cmdline: string, memoryMiB: number, vcpus: number, compatibleCpu: boolean): string[] {
  return qemuMicrovmArgs({ kernel: guest.vmlinux, initrd: guest.initrd, cmdline, memoryMiB, vcpus, compatibleCpu });
}
