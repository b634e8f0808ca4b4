// Architectural start-up state every vCPU gets before its first KVM_RUN.
import type { Msr } from '../native.js';

const MSR = {
  TSC: 0x10,
  SYSENTER_CS: 0x174,
  SYSENTER_ESP: 0x175,
  SYSENTER_EIP: 0x176,
  MISC_ENABLE: 0x1a0,
  MTRR_DEF_TYPE: 0x2ff,
  STAR: 0xc0000081,
  LSTAR: 0xc0000082,
  CSTAR: 0xc0000083,
  SYSCALL_MASK: 0xc0000084,
  KERNEL_GS_BASE: 0xc0000102,
} as const;

const MISC_ENABLE_FAST_STRING = 1n;
/** MTRRs enabled, default memory type write-back: without it a guest maps RAM uncached on real KVM. */
const MTRR_ENABLE_WRITEBACK = (1n << 11n) | 6n;

/** The MSR values a vCPU starts with, limited to the MSRs this host's KVM reports. */
export function bootMsrs(supported: readonly number[]): Msr[] {
  const wanted: Msr[] = [
    { index: MSR.SYSENTER_CS, data: 0n },
    { index: MSR.SYSENTER_ESP, data: 0n },
    { index: MSR.SYSENTER_EIP, data: 0n },
    { index: MSR.STAR, data: 0n },
    { index: MSR.CSTAR, data: 0n },
    { index: MSR.KERNEL_GS_BASE, data: 0n },
    { index: MSR.SYSCALL_MASK, data: 0n },
    { index: MSR.LSTAR, data: 0n },
    { index: MSR.TSC, data: 0n },
    { index: MSR.MISC_ENABLE, data: MISC_ENABLE_FAST_STRING },
    { index: MSR.MTRR_DEF_TYPE, data: MTRR_ENABLE_WRITEBACK },
  ];
  const have = new Set(supported);
  return wanted.filter((m) => have.has(m.index));
}

const APIC_LVT_LINT0 = 0x350;
const APIC_LVT_LINT1 = 0x360;
const DELIVERY_MODE_MASK = 0x700;
const DELIVERY_EXTINT = 0x700;
const DELIVERY_NMI = 0x400;

/**
 * Routes LINT0 to the PIC (ExtINT) and LINT1 to NMI, as firmware would,
 * in a struct kvm_lapic_state buffer; returns the same buffer.
 */
export function configureLapicLints(lapic: Buffer): Buffer {
  const set = (offset: number, mode: number) =>
    lapic.writeUInt32LE(((lapic.readUInt32LE(offset) & ~DELIVERY_MODE_MASK) | mode) >>> 0, offset);
  set(APIC_LVT_LINT0, DELIVERY_EXTINT);
  set(APIC_LVT_LINT1, DELIVERY_NMI);
  return lapic;
}
