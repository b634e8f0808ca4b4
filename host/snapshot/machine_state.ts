// KVM state of a stopped VM and its vCPUs: what a snapshot carries besides
// guest RAM and the device models. Restore order follows what KVM needs:
// CPUID before anything (set by the caller), sregs (APIC base) before the
// LAPIC, MP state and pending events last.
import type { IrqchipId, Msr, NativeVcpu, NativeVm, Regs, Sregs } from '../native.js';

export interface VcpuState {
  regs: Regs;
  sregs: Sregs;
  msrs: Msr[];
  /** struct kvm_xsave when the host has XSAVE, else struct kvm_fpu. */
  fpu: Buffer;
  xcrs?: Buffer;
  debugRegs: Buffer;
  lapic: Buffer;
  mpState: number;
  events: Buffer;
}

export interface VmState {
  /** PIC master, PIC slave, IOAPIC. */
  irqchips: Buffer[];
  pit: Buffer;
  clock: Buffer;
}

export interface StateCaps {
  xsave: boolean;
  xcrs: boolean;
}

const CHIPS: IrqchipId[] = [0, 1, 2];

/** The MSRs of `list` (KVM_GET_MSR_INDEX_LIST) that this vCPU can read: the ones a snapshot carries. */
export function readableMsrs(vcpu: NativeVcpu, list: readonly number[]): number[] {
  return list.filter((index) => {
    try {
      vcpu.getMsrs([index]);
      return true;
    } catch {
      return false;
    }
  });
}

export function captureVcpu(vcpu: NativeVcpu, msrIndices: number[], caps: StateCaps): VcpuState {
  return {
    regs: vcpu.getRegs(),
    sregs: vcpu.getSregs(),
    msrs: vcpu.getMsrs(msrIndices),
    fpu: caps.xsave ? vcpu.getXsave() : vcpu.getFpu(),
    ...(caps.xcrs ? { xcrs: vcpu.getXcrs() } : {}),
    debugRegs: vcpu.getDebugRegs(),
    lapic: vcpu.getLapic(),
    mpState: vcpu.getMpState(),
    events: vcpu.getVcpuEvents(),
  };
}

export function restoreVcpu(vcpu: NativeVcpu, s: VcpuState, caps: StateCaps): void {
  vcpu.setMsrs(s.msrs);
  vcpu.setSregs(s.sregs);
  vcpu.setRegs(s.regs);
  if (caps.xsave) vcpu.setXsave(s.fpu);
  else vcpu.setFpu(s.fpu);
  if (s.xcrs) vcpu.setXcrs(s.xcrs);
  vcpu.setDebugRegs(s.debugRegs);
  vcpu.setLapic(s.lapic);
  vcpu.setMpState(s.mpState);
  vcpu.setVcpuEvents(s.events);
}

export function captureVm(vm: NativeVm): VmState {
  return { irqchips: CHIPS.map((chip) => vm.getIrqchip(chip)), pit: vm.getPit2(), clock: vm.getClock() };
}

export function restoreVm(vm: NativeVm, s: VmState): void {
  CHIPS.forEach((chip) => vm.setIrqchip(chip, s.irqchips[chip]!));
  vm.setPit2(s.pit);
  vm.setClock(s.clock);
}
